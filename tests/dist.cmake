# krill::dist tests. tests/dist/test_*.cpp are GoogleTest programs run in one process (registered
# by tests/CMakeLists.txt like every layer's); the multi-process tests below run
# tests/dist/mpi_checks.cpp under `mpirun -np 2` and `-np 3` (more ranks than this machine's
# cores: oversubscribed) through tests/dist/mpirun_test.sh, which bounds every job by a 60 s
# timeout (a hang fails the test) and checks the exit status and output. Label: dist.
foreach(t IN ITEMS dist_test_dist)
  if(TARGET ${t})
    if(NOT TARGET nlohmann_json::nlohmann_json)
      find_package(nlohmann_json 3.10 REQUIRED)
    endif()
    target_link_libraries(${t} PRIVATE nlohmann_json::nlohmann_json)
  endif()
endforeach()

if(NOT KRILL_MPIEXEC)
  message(WARNING "mpirun not found (apt-get install openmpi-bin): the MPI tests are not registered")
  return()
endif()

add_executable(dist_mpi_checks ${CMAKE_CURRENT_SOURCE_DIR}/dist/mpi_checks.cpp)
if(NOT TARGET nlohmann_json::nlohmann_json)
  find_package(nlohmann_json 3.10 REQUIRED)
endif()
target_link_libraries(dist_mpi_checks PRIVATE krill nlohmann_json::nlohmann_json)
if(KRILL_NATIVE_ARCH)
  target_compile_options(dist_mpi_checks PRIVATE -march=native)
endif()

set(_krill_mpirun_test ${CMAKE_CURRENT_SOURCE_DIR}/dist/mpirun_test.sh)
# krill_add_mpi_test(NAME NP [ENV VAR=VALUE...] [RUNNER_ARGS ...] MODE_ARGS ...)
function(krill_add_mpi_test name np)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "ENV;RUNNER_ARGS;ARGS")
  add_test(NAME ${name}
           COMMAND ${CMAKE_COMMAND} -E env KRILL_MPIEXEC=${KRILL_MPIEXEC} ${arg_ENV}
                   bash ${_krill_mpirun_test} ${arg_RUNNER_ARGS} -- ${np} $<TARGET_FILE:dist_mpi_checks> ${arg_ARGS})
  set_tests_properties(${name} PROPERTIES LABELS "dist;mpi" TIMEOUT 90 RUN_SERIAL TRUE)
endfunction()

foreach(np 2 3)
  krill_add_mpi_test(dist_mpi_collectives_np${np} ${np}
    RUNNER_ARGS --expect "rank 0: OK collectives" --expect "rank ${np}: OK|rank [12]: OK collectives"
    ARGS collectives)
  krill_add_mpi_test(dist_mpi_broadcast_np${np} ${np} ARGS broadcast RUNNER_ARGS --expect "rank 1: OK broadcast")
  krill_add_mpi_test(dist_mpi_equivalence_np${np} ${np}
    ARGS equivalence ${PROJECT_SOURCE_DIR}/data/penguins_train.csv
    RUNNER_ARGS --expect "equivalence \\(one bucket" --expect "equivalence \\(many buckets" --expect "rank 0: OK equivalence")
  krill_add_mpi_test(dist_mpi_unused_np${np} ${np} ARGS unused RUNNER_ARGS --expect "rank 0: OK unused")
  # Ranks that disagree fail at start-up, all of them, with the same message; never a hang.
  krill_add_mpi_test(dist_mpi_structure_mismatch_np${np} ${np} ARGS structure_mismatch
    RUNNER_ARGS --expect-fail
      --expect "rank 0: DistributedError: dist::broadcast_parameters: the ranks disagree.*rank 1 differs from rank 0"
      --expect "rank 1: DistributedError: .*'parameter fc1.weight float32 \\[10, 5\\]', rank 1 has 'parameter fc1.weight float32 \\[12, 5\\]'"
      --reject "no error")
  krill_add_mpi_test(dist_mpi_dataset_mismatch_np${np} ${np} ARGS dataset_mismatch
    RUNNER_ARGS --expect-fail --expect "rank 0: DistributedError: the training set size differs across ranks.*rank ${np}|rank 0: DistributedError: the training set size differs"
      --expect "rank 1: DistributedError" --reject "no error")
endforeach()
krill_add_mpi_test(dist_mpi_timeline_np2 2 ARGS timeline ${CMAKE_CURRENT_BINARY_DIR}/dist_mpi_timeline
  RUNNER_ARGS --expect "rank 0: OK timeline")
# The stall inspector: a late rank is reported; a missing one ends the job (not a hang).
krill_add_mpi_test(dist_mpi_stall_np2 2 ENV KRILL_STALL_CHECK_SECONDS=1 ARGS stall
  RUNNER_ARGS --expect "rank 0: stall: barrier \\(0 B\\) has waited [12] s"
    --expect "rank 0: stall: allreduce of bucket [0-9] \\(" --expect "rank 0: OK stall")
krill_add_mpi_test(dist_mpi_stall_shutdown_np2 2 ENV KRILL_STALL_CHECK_SECONDS=1 KRILL_STALL_SHUTDOWN_SECONDS=2
  ARGS stall_shutdown
  RUNNER_ARGS --expect-fail --expect "rank 0: stall: barrier .*ending the job")

# `krill train` under MPI and `krill launch` (tests/dist/cli_dist_checks.cpp): GoogleTest cases
# that start 2-rank jobs through the launcher, each under `timeout` with no stdin.
add_executable(dist_cli_checks ${CMAKE_CURRENT_SOURCE_DIR}/dist/cli_dist_checks.cpp)
target_link_libraries(dist_cli_checks PRIVATE krill_test_support GTest::gtest_main nlohmann_json::nlohmann_json)
add_dependencies(dist_cli_checks krill_cli)
gtest_discover_tests(dist_cli_checks DISCOVERY_TIMEOUT 60
  PROPERTIES LABELS dist TIMEOUT 180 RUN_SERIAL TRUE ENVIRONMENT KRILL_MPIEXEC=${KRILL_MPIEXEC})

# examples/penguins_distributed.cpp (the lab's Horovod cell) on 2 ranks: it trains and rank 0
# alone saves.
if(TARGET example_penguins_distributed)
  add_test(NAME example_penguins_distributed_np2
           COMMAND ${CMAKE_COMMAND} -E env KRILL_MPIEXEC=${KRILL_MPIEXEC}
                   bash ${_krill_mpirun_test} --expect "Training on 2 rank\\(s\\)"
                     --expect "Final: rank 0 of 2 saved .*validation accuracy (4[01][0-9])/411"
                     -- 2 $<TARGET_FILE:example_penguins_distributed> ${PROJECT_SOURCE_DIR}/data/penguins.csv
                     ${CMAKE_CURRENT_BINARY_DIR}/example_penguins_distributed_out 50)
  set_tests_properties(example_penguins_distributed_np2 PROPERTIES LABELS "dist;mpi;examples" TIMEOUT 90 RUN_SERIAL TRUE)
endif()
