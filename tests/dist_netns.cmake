# krill::dist across two "hosts": tests/dist/netns_2host.sh makes two network namespaces joined
# by a veth pair and runs a 2-rank job across them with OpenMPI's TCP transport and a host list
# (mpirun -H A:1,B:1 with an rsh agent that enters the other namespace, where a real cluster uses
# ssh), checking that the allreduced bytes crossed the veth. Needs root (ip netns): where
# namespaces cannot be created the test fails with that message. Label: dist;mpi;netns.
if(NOT KRILL_MPIEXEC OR NOT TARGET dist_mpi_faults)
  return()
endif()
set(_netns_args $<TARGET_FILE:dist_mpi_faults>)
if(TARGET dist_mpi_checks)
  list(APPEND _netns_args $<TARGET_FILE:dist_mpi_checks> ${PROJECT_SOURCE_DIR}/data/penguins_train.csv)
endif()
add_test(NAME dist_netns_2host
         COMMAND ${CMAKE_COMMAND} -E env KRILL_MPIEXEC=${KRILL_MPIEXEC}
                 bash ${CMAKE_CURRENT_SOURCE_DIR}/dist/netns_2host.sh ${_netns_args})
set_tests_properties(dist_netns_2host PROPERTIES LABELS "dist;mpi;netns" TIMEOUT 150 RUN_SERIAL TRUE)
