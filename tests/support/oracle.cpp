#include "support/oracle.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

namespace krill::test {

std::uint64_t run_seed() {
  static const std::uint64_t seed = [] {
    if (const char* s = std::getenv("KRILL_TEST_SEED")) return std::strtoull(s, nullptr, 10);
    auto now = std::chrono::high_resolution_clock::now().time_since_epoch().count();
    return static_cast<std::uint64_t>(now) % 1000000007ULL;
  }();
  static bool printed = false;
  if (!printed) {
    printed = true;
    std::cerr << "[krill test] random seed " << seed << " (set KRILL_TEST_SEED=" << seed << " to reproduce)\n";
  }
  return seed;
}

std::string make_temp_dir(const std::string& tag) {
  namespace fs = std::filesystem;
  static int counter = 0;
  fs::path base = fs::path(KRILL_BINARY_DIR) / "tmp";
  fs::create_directories(base);
  for (;;) {
    fs::path p = base / (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    if (fs::create_directory(p)) return p.string();
  }
}

int run_command(const std::string& cmd, std::string* output) {
  std::string full = cmd + " 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf{};
  std::string out;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = ::pclose(pipe);
  if (output) *output = std::move(out);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

std::string run_oracle(const std::string& script, const std::vector<std::string>& args) {
  std::string cmd = quote(KRILL_TEST_PYTHON) + " " + quote(std::string(KRILL_SOURCE_DIR) + "/tests/oracle/" + script);
  for (const auto& a : args) cmd += " " + quote(a);
  std::string out;
  int rc = run_command(cmd, &out);
  if (rc != 0) {
    throw std::runtime_error("PyTorch oracle failed (exit " + std::to_string(rc) + "): " + cmd + "\n" + out +
                             "\nThe oracles need Debian's python3-torch, python3-pandas and python3-sklearn: bash scripts/setup-deps.sh --tests");
  }
  return out;
}

std::string krill_cli() { return KRILL_CLI_PATH; }
std::string source_dir() { return KRILL_SOURCE_DIR; }
std::string binary_dir() { return KRILL_BINARY_DIR; }

double max_rel_error(const Tensor& actual, const Tensor& expected, double floor) {
  if (!(actual.shape() == expected.shape()))
    throw std::runtime_error("max_rel_error: shapes differ: " + actual.shape().str() + " vs " + expected.shape().str());
  auto a = actual.to(DType::Float64).contiguous();
  auto b = expected.to(DType::Float64).contiguous();
  const double* pa = a.data_ptr<double>();
  const double* pb = b.data_ptr<double>();
  double worst = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    double d = std::abs(pa[i] - pb[i]) / std::max(std::abs(pb[i]), floor);
    if (std::isnan(pa[i]) != std::isnan(pb[i])) d = INFINITY;
    if (!(d <= worst)) worst = d;
  }
  return worst;
}

}  // namespace krill::test
