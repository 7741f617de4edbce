// zoopt::mpi: distributed ZO steps over MPI that exchange only scalars.
// A separate include (and CMake target zoopt::mpi) so that the core library
// never depends on MPI:
//   #include <zoopt/kerzoo.hpp>
//   #include <zoopt/mpi.hpp>
//   target_link_libraries(app PRIVATE zoopt::mpi)
#pragma once

#include "zoopt/mpi/communicator.hpp"
#include "zoopt/mpi/distributed.hpp"
#include "zoopt/mpi/error.hpp"
