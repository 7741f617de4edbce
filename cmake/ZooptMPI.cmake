# Optional MPI component: zoopt::mpi (header-only; scale-out over MPI).
#
# Included by the top-level CMakeLists.txt when ZOOPT_ENABLE_MPI is ON. Defines
# the INTERFACE target zoopt_mpi (alias zoopt::mpi) only when an MPI with C++
# support is found, and sets ZOOPT_HAS_MPI accordingly. The core target
# zoopt::zoopt never links MPI.
find_package(MPI COMPONENTS CXX QUIET)
if(MPI_CXX_FOUND)
  add_library(zoopt_mpi INTERFACE)
  add_library(zoopt::mpi ALIAS zoopt_mpi)
  set_target_properties(zoopt_mpi PROPERTIES EXPORT_NAME mpi)
  target_link_libraries(zoopt_mpi INTERFACE zoopt::zoopt MPI::MPI_CXX)
  set(ZOOPT_HAS_MPI ON)
  message(STATUS "zoopt: MPI ${MPI_CXX_VERSION} found; building zoopt::mpi")
  if(ZOOPT_INSTALL)
    # Consumers of the installed package need find_dependency(MPI COMPONENTS
    # CXX) in zooptConfig.cmake before they can link zoopt::mpi.
    install(TARGETS zoopt_mpi EXPORT zooptTargets)
  endif()
else()
  set(ZOOPT_HAS_MPI OFF)
  message(STATUS "zoopt: no MPI (C++) found; zoopt::mpi not built "
                 "(Debian: apt-get install libopenmpi-dev openmpi-bin)")
endif()
