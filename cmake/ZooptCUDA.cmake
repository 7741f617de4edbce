# Optional CUDA component: zoopt::cuda (the CUDA backend, compiled part in
# cuda/).
#
# Included by the top-level CMakeLists.txt when ZOOPT_ENABLE_CUDA is ON. Builds
# cuda/ only when a CUDA compiler is found, and sets ZOOPT_HAS_CUDA
# accordingly. The CPU library never needs nvcc.
set(ZOOPT_HAS_CUDA OFF)
include(CheckLanguage)
check_language(CUDA)
if(CMAKE_CUDA_COMPILER)
  enable_language(CUDA)
  set(ZOOPT_HAS_CUDA ON)
  add_subdirectory(${PROJECT_SOURCE_DIR}/cuda ${PROJECT_BINARY_DIR}/cuda)
else()
  message(STATUS "zoopt: no CUDA compiler found; building the CPU library only")
endif()
