# Steps of the install_and_consume test (tests/install.cmake), run with cmake -P. Any failing
# step stops the test with FATAL_ERROR naming the step.
foreach(var KRILL_BUILD_DIR KRILL_VERSION KRILL_CONFIG KRILL_LIBDIR KRILL_BINDIR KRILL_INCLUDEDIR KRILL_CMAKEDIR
            CONSUMER_SOURCE_DIR WORK_DIR CONSUMER_GENERATOR CONSUMER_CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install_and_consume: -D${var}=... is required")
  endif()
endforeach()

set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/consumer-build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# step(<name> <command...>): runs the command, its output going to the test log; fails loudly.
function(step name)
  string(JOIN " " shown ${ARGN})
  message(STATUS "[install_and_consume] ${name}: ${shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "install_and_consume: step '${name}' failed (${rc}): ${shown}")
  endif()
endfunction()

step(install ${CMAKE_COMMAND} --install "${KRILL_BUILD_DIR}" --prefix "${prefix}" --config "${KRILL_CONFIG}")

# The installed layout.
file(GLOB libs "${prefix}/${KRILL_LIBDIR}/libkrill.*")
set(expected
  "${prefix}/${KRILL_BINDIR}/krill"
  "${prefix}/${KRILL_INCLUDEDIR}/krill/krill.hpp"
  "${prefix}/${KRILL_CMAKEDIR}/krillConfig.cmake"
  "${prefix}/${KRILL_CMAKEDIR}/krillConfigVersion.cmake"
  "${prefix}/${KRILL_CMAKEDIR}/krillTargets.cmake")
foreach(f IN LISTS expected)
  if(NOT EXISTS "${f}")
    message(FATAL_ERROR "install_and_consume: the install lacks ${f}")
  endif()
endforeach()
if(NOT libs)
  message(FATAL_ERROR "install_and_consume: the install lacks ${prefix}/${KRILL_LIBDIR}/libkrill.*")
endif()
# Header-only private dependencies must not leak into the package (a consumer need not have them).
file(GLOB target_files "${prefix}/${KRILL_CMAKEDIR}/krillTargets*.cmake")
foreach(f IN LISTS target_files)
  file(READ "${f}" text)
  foreach(leak nlohmann_json krill_deps_json krill_deps_cli11 "${KRILL_BUILD_DIR}")
    string(FIND "${text}" "${leak}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "install_and_consume: ${f} mentions '${leak}'")
    endif()
  endforeach()
endforeach()

# A downstream project: found only through CMAKE_PREFIX_PATH, like a user's.
step(configure-consumer ${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${consumer_build}"
     -G "${CONSUMER_GENERATOR}"
     "-DCMAKE_BUILD_TYPE=${KRILL_CONFIG}"
     "-DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER}"
     "-DCMAKE_PREFIX_PATH=${prefix}"
     "-DKRILL_EXPECTED_DIR=${prefix}/${KRILL_CMAKEDIR}")
step(build-consumer ${CMAKE_COMMAND} --build "${consumer_build}" --config "${KRILL_CONFIG}")
file(GLOB_RECURSE app "${consumer_build}/krill_consumer")  # <build>/ or <build>/<config>/
if(NOT app)
  message(FATAL_ERROR "install_and_consume: the consumer build made no krill_consumer")
endif()
list(GET app 0 app)
step(run-consumer "${app}")
step(installed-cli-help "${prefix}/${KRILL_BINDIR}/krill" --help)
execute_process(COMMAND "${prefix}/${KRILL_BINDIR}/krill" --version RESULT_VARIABLE rc OUTPUT_VARIABLE version
                ERROR_VARIABLE version)
string(STRIP "${version}" version)
message(STATUS "[install_and_consume] installed-cli-version: ${version}")
if(NOT rc STREQUAL "0" OR NOT version STREQUAL "krill ${KRILL_VERSION}")
  message(FATAL_ERROR "install_and_consume: installed `krill --version` gave '${version}' (${rc}), "
                      "expected 'krill ${KRILL_VERSION}'")
endif()
message(STATUS "[install_and_consume] all steps passed")
