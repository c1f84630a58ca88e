# tests/track/test_store.cpp also opens the store with SQLite directly (hand-made old schemas,
# a second connection holding the write lock).
if(TARGET track_test_store)
  target_link_libraries(track_test_store PRIVATE krill_deps::sqlite)
endif()
