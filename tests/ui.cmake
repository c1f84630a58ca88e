# krill ui (the dashboard): the server's GoogleTest (tests/ui/test_server.cpp, registered by
# tests/CMakeLists.txt) links the dashboard library; the browser test drives Debian's Chromium
# with playwright-core (web/node_modules, installed by `scripts/setup-deps.sh --tests`) through a
# real `krill train` run, a run named <script>alert(1)</script> and a live run (ui_fake_run).
# Neither a missing node, Chromium nor playwright-core skips it: the test fails and says which.
if(TARGET ui_test_server)
  target_link_libraries(ui_test_server PRIVATE krill_ui krill_deps::httplib)
endif()

add_executable(ui_fake_run ${CMAKE_CURRENT_SOURCE_DIR}/ui/fake_run.cpp)
target_link_libraries(ui_fake_run PRIVATE krill)

find_program(KRILL_NODE NAMES node nodejs)
set(KRILL_CHROMIUM "/usr/bin/chromium" CACHE FILEPATH "Chromium for the dashboard's browser test")
if(KRILL_NODE)
  set(_node ${KRILL_NODE})
else()
  set(_node ${CMAKE_COMMAND} -E false)   # fails: node missing (apt-get install nodejs npm)
  message(STATUS "node not found: the ui_browser test will fail (apt-get install nodejs npm)")
endif()
add_test(NAME ui_browser
         COMMAND ${_node} ${CMAKE_CURRENT_SOURCE_DIR}/ui/browser_test.mjs
                 --krill $<TARGET_FILE:krill_cli> --fake-run $<TARGET_FILE:ui_fake_run>
                 --chromium ${KRILL_CHROMIUM} --source ${PROJECT_SOURCE_DIR}
                 --work ${CMAKE_CURRENT_BINARY_DIR}/ui_browser --screenshot ${PROJECT_BINARY_DIR}/ui-screenshot.png)
set_tests_properties(ui_browser PROPERTIES LABELS ui TIMEOUT 300)
