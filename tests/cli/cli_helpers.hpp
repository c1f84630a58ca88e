// Helpers for the `krill` command-line tests: run the built binary with separate stdout and
// stderr, write and read small files, list a directory.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/oracle.hpp"

namespace krill::test::cli {

namespace fs = std::filesystem;

struct CliResult {
  int rc = -1;          // exit code; >= 128 means the process died of a signal
  std::string out, err;  // stdout, stderr
  std::string command;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

inline void write_text(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  if (!f) throw std::runtime_error("cannot write test fixture " + path);
}

// Runs `krill <args...>` (optionally prefixed by `prefix`, e.g. a setpriv invocation, and with
// another copy of the binary); stdout and stderr go to separate files in a private log
// directory.
inline CliResult run_krill(const std::vector<std::string>& args, const std::string& prefix = "",
                           const std::string& binary = "") {
  static const std::string logs = make_temp_dir("cli-logs");
  static int n = 0;
  const std::string out_path = logs + "/" + std::to_string(n) + ".out";
  const std::string err_path = logs + "/" + std::to_string(n++) + ".err";
  CliResult r;
  r.command = prefix + shell_quote(binary.empty() ? krill_cli() : binary);
  for (const auto& a : args) r.command += " " + shell_quote(a);
  std::string shell_out;
  r.rc = run_command("{ " + r.command + " >" + shell_quote(out_path) + " 2>" + shell_quote(err_path) + "; }", &shell_out);
  r.out = read_text(out_path);
  r.err = read_text(err_path) + shell_out;  // the shell's own complaints, if any
  return r;
}

// Names in `dir` (including hidden ones), sorted.
inline std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream is(text);
  for (std::string line; std::getline(is, line);) lines.push_back(line);
  return lines;
}

}  // namespace krill::test::cli
