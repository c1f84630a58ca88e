// Test helpers for error checks: the message of the exception of type E that `f` throws
// (a test failure when it throws nothing or something else), and substring search.
#pragma once
#include <gtest/gtest.h>

#include <exception>
#include <string>

namespace krill::test {

template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw the wrong type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace krill::test
