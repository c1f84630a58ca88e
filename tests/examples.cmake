# The example programs run as tests: the penguin notebook in C++ must train to the lab's result
# and predict class 1 for the new penguin.
if(TARGET example_penguins)
  add_test(NAME example_penguins
           COMMAND ${CMAKE_COMMAND} -E env OMP_NUM_THREADS=1
                   $<TARGET_FILE:example_penguins> ${PROJECT_SOURCE_DIR}/data/penguins.csv
                   ${CMAKE_CURRENT_BINARY_DIR}/example_penguins_out)
  set_tests_properties(example_penguins PROPERTIES
    LABELS examples
    PASS_REGULAR_EXPRESSION "Validation set: Average loss: 0\\.00[0-9]+, Accuracy: 411/411 \\(100%\\)\n\n.*Prediction: 1")
endif()
