// Compile-time configuration shared by host and device code.
#pragma once

#if defined(__CUDACC__)
#define ZOOPT_HD __host__ __device__
#else
#define ZOOPT_HD
#endif

#define ZOOPT_VERSION_MAJOR 0
#define ZOOPT_VERSION_MINOR 1
#define ZOOPT_VERSION_PATCH 0
