# cmake -P script: builds and runs the consumer project against zoopt.
# Inputs: MODE (find_package | add_subdirectory), ZOOPT_SOURCE_DIR,
# CONSUMER_SOURCE_DIR, WORK_DIR, GENERATOR, CXX_COMPILER.
cmake_minimum_required(VERSION 3.20)

foreach(var MODE ZOOPT_SOURCE_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: ${var} is not set")
  endif()
endforeach()

# Runs a command, echoing it; stops the script (test fails) if it fails.
function(run_step what)
  message(STATUS "consumer.${MODE}: ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rv COMMAND_ECHO STDOUT)
  if(NOT rv EQUAL 0)
    message(FATAL_ERROR "consumer.${MODE}: ${what} failed (${rv})")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Keep the library's optional parts (CUDA, MPI) out: the consumer checks the
# CPU headers and the packaging, and must not take minutes.
set(zoopt_options -DZOOPT_ENABLE_CUDA=OFF -DZOOPT_ENABLE_MPI=OFF)
set(common -G "${GENERATOR}" -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release)

if(MODE STREQUAL "find_package")
  set(prefix "${WORK_DIR}/prefix")
  run_step("configure zoopt"
    ${CMAKE_COMMAND} -S "${ZOOPT_SOURCE_DIR}" -B "${WORK_DIR}/zoopt-build" ${common}
      -DCMAKE_INSTALL_PREFIX=${prefix}
      -DZOOPT_BUILD_TESTS=OFF -DZOOPT_BUILD_EXAMPLES=OFF -DZOOPT_BUILD_BENCHMARKS=OFF
      -DZOOPT_INSTALL=ON ${zoopt_options})
  run_step("install zoopt" ${CMAKE_COMMAND} --install "${WORK_DIR}/zoopt-build")
  if(NOT EXISTS "${prefix}/include/zoopt/kerzoo.hpp")
    message(FATAL_ERROR "consumer.find_package: the install has no include/zoopt/kerzoo.hpp")
  endif()
  # Only the temporary prefix may provide zoopt: no package registries.
  run_step("configure consumer"
    ${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/consumer-build" ${common}
      -DCMAKE_PREFIX_PATH=${prefix}
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
      -DZOOPT_CONSUMER_MODE=find_package)
  # The package found must be the one just installed.
  file(STRINGS "${WORK_DIR}/consumer-build/CMakeCache.txt" found REGEX "^zoopt_DIR:")
  string(FIND "${found}" "${prefix}/" at)
  if(NOT at GREATER -1)
    message(FATAL_ERROR "consumer.find_package: zoopt was found outside ${prefix}: ${found}")
  endif()
elseif(MODE STREQUAL "add_subdirectory")
  run_step("configure consumer"
    ${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/consumer-build" ${common}
      -DZOOPT_CONSUMER_MODE=add_subdirectory -DZOOPT_SOURCE_DIR=${ZOOPT_SOURCE_DIR}
      ${zoopt_options})
else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

run_step("build consumer" ${CMAKE_COMMAND} --build "${WORK_DIR}/consumer-build")
run_step("run consumer" "${WORK_DIR}/consumer-build/app")
