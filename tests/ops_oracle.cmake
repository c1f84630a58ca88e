# tests/tensor/test_ops_oracle.cpp reads the PyTorch oracle's JSON manifest with nlohmann/json.
if(TARGET tensor_test_ops_oracle)
  if(NOT TARGET nlohmann_json::nlohmann_json)
    find_package(nlohmann_json 3.10 REQUIRED)
  endif()
  target_link_libraries(tensor_test_ops_oracle PRIVATE nlohmann_json::nlohmann_json)
endif()
