# krill::dist "faults never hang": tests/dist/mpi_faults.cpp under `mpirun -np 2` and `-np 3`
# through tests/dist/faults_run.sh. A rank that crashes (abort, segfault), is killed with SIGKILL
# (by itself, or from outside while the others are in the allreduces of a DistributedOptimizer
# step loop), throws a DistributedError, or stops participating (with
# KRILL_STALL_SHUTDOWN_SECONDS set) ends the whole job with a non-zero status within 30 s, and
# the output names the failed rank (OpenMPI's "process rank N ... exited on signal", or krill's
# "rank N: ..."). Label: dist;mpi;faults.
if(NOT KRILL_MPIEXEC)
  return()
endif()

add_executable(dist_mpi_faults ${CMAKE_CURRENT_SOURCE_DIR}/dist/mpi_faults.cpp)
target_link_libraries(dist_mpi_faults PRIVATE krill)

set(_krill_faults_run ${CMAKE_CURRENT_SOURCE_DIR}/dist/faults_run.sh)
# krill_add_fault_test(NAME NP [ENV VAR=VALUE...] [RUNNER_ARGS ...] ARGS mode args...)
function(krill_add_fault_test name np)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "ENV;RUNNER_ARGS;ARGS")
  add_test(NAME ${name}
           COMMAND ${CMAKE_COMMAND} -E env KRILL_MPIEXEC=${KRILL_MPIEXEC} ${arg_ENV}
                   bash ${_krill_faults_run} ${arg_RUNNER_ARGS} -- ${np} $<TARGET_FILE:dist_mpi_faults> ${arg_ARGS})
  set_tests_properties(${name} PROPERTIES LABELS "dist;mpi;faults" TIMEOUT 90 RUN_SERIAL TRUE)
endfunction()

foreach(np 2 3)
  math(EXPR bad "${np} - 1")  # the last rank fails; the others are in the step loop's allreduces
  set(_named "process rank ${bad} .*exited on signal")
  krill_add_fault_test(dist_fault_abort_np${np} ${np} ARGS train abort ${bad} 50
    RUNNER_ARGS --expect "${_named} 6" --reject "no fault ended the job")
  krill_add_fault_test(dist_fault_segv_np${np} ${np} ARGS train segv ${bad} 50
    RUNNER_ARGS --expect "${_named} 11" --reject "no fault ended the job")
  krill_add_fault_test(dist_fault_sigkill_self_np${np} ${np} ARGS train sigkill ${bad} 50
    RUNNER_ARGS --expect "${_named} 9" --reject "no fault ended the job")
  set(_piddir ${CMAKE_CURRENT_BINARY_DIR}/dist_fault_pids_np${np})
  krill_add_fault_test(dist_fault_sigkill_external_np${np} ${np} ARGS train external -1 50 ${_piddir}
    RUNNER_ARGS --kill-rank ${bad} --piddir ${_piddir} --expect "${_named} 9" --reject "no fault ended the job")
  krill_add_fault_test(dist_fault_throw_np${np} ${np} ARGS train throw ${bad} 50
    RUNNER_ARGS --expect "rank ${bad}: DistributedError: rank ${bad}: a simulated check failure"
      --reject "no fault ended the job")
  # A rank that stops participating: with KRILL_STALL_SHUTDOWN_SECONDS the stall inspector of a
  # waiting rank ends the job, naming the collective it waits in. (By default, shutdown 0, it
  # only warns every KRILL_STALL_CHECK_SECONDS (60 s) and the job waits, as Horovod's does.)
  krill_add_fault_test(dist_fault_stall_np${np} ${np}
    ENV KRILL_STALL_CHECK_SECONDS=1 KRILL_STALL_SHUTDOWN_SECONDS=3
    ARGS train stall ${bad} 50
    RUNNER_ARGS --expect "rank 0: stall: allreduce of bucket [0-9]+ .*ending the job"
      --reject "no fault ended the job")
endforeach()
