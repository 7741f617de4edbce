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
  # Open MPI refuses to run as root without --allow-run-as-root and to start
  # more ranks than cores without --oversubscribe; other MPIs need neither.
  # Used by the tests that run under mpiexec (ZOOPT_MPIEXEC_EXTRA_FLAGS).
  set(ZOOPT_MPIEXEC_EXTRA_FLAGS "")
  if(MPIEXEC_EXECUTABLE)
    execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version
      OUTPUT_VARIABLE _zoopt_mpiexec_version ERROR_VARIABLE _zoopt_mpiexec_version
      RESULT_VARIABLE _zoopt_mpiexec_rc TIMEOUT 20)
    if(_zoopt_mpiexec_version MATCHES "Open MPI|OpenRTE")
      set(ZOOPT_MPIEXEC_EXTRA_FLAGS --allow-run-as-root --oversubscribe)
    endif()
  endif()
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
