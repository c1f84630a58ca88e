# install_and_consume: installs this build tree into a scratch prefix, builds tests/consumer (a
# downstream project: find_package(krill) + krill::krill) against it, runs that program, and runs
# the installed `krill --help` and `krill --version`. The steps are in
# tests/consumer/install_and_consume.cmake (kept out of tests/*.cmake, which tests/CMakeLists.txt
# includes).
add_test(NAME install_and_consume
  COMMAND ${CMAKE_COMMAND}
    -DKRILL_BUILD_DIR=${PROJECT_BINARY_DIR}
    -DKRILL_VERSION=${PROJECT_VERSION}
    -DKRILL_CONFIG=$<CONFIG>
    -DKRILL_LIBDIR=${CMAKE_INSTALL_LIBDIR}
    -DKRILL_BINDIR=${CMAKE_INSTALL_BINDIR}
    -DKRILL_INCLUDEDIR=${CMAKE_INSTALL_INCLUDEDIR}
    -DKRILL_CMAKEDIR=${KRILL_INSTALL_CMAKEDIR}
    -DCONSUMER_SOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}/consumer
    -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/install_and_consume
    -DCONSUMER_GENERATOR=${CMAKE_GENERATOR}
    -DCONSUMER_CXX_COMPILER=${CMAKE_CXX_COMPILER}
    -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/install_and_consume.cmake)
set_tests_properties(install_and_consume PROPERTIES LABELS install TIMEOUT 600)
