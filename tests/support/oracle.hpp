// Test support: run a PyTorch oracle script and read what it wrote, random seeds, temp dirs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "krill/krill.hpp"

namespace krill::test {

// Seed for this test run: $KRILL_TEST_SEED if set, else fresh from the clock. Printed so a
// failure can be reproduced.
std::uint64_t run_seed();

// A fresh empty directory under the build tree's tmp/, removed by the caller when wanted.
std::string make_temp_dir(const std::string& tag);

// Runs `/usr/bin/python3 tests/oracle/<script> <args...>`; returns its combined output.
// Fails the test (gtest FAIL/ADD_FAILURE via exception) when python, torch or the script fails.
std::string run_oracle(const std::string& script, const std::vector<std::string>& args);

// Runs a shell command, capturing stdout+stderr; returns the exit code.
int run_command(const std::string& cmd, std::string* output = nullptr);

// Path of the built `krill` binary, the source dir and build dir.
std::string krill_cli();
std::string source_dir();
std::string binary_dir();

// Max |a-b| / max(|b|, floor) over elements (shapes must match).
double max_rel_error(const Tensor& actual, const Tensor& expected, double floor = 1e-3);

}  // namespace krill::test
