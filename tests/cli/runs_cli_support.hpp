// Helpers for the `krill runs` command-line tests (test_runs_cli*.cpp): krill run with a chosen
// store and terminal width, and one store of three runs (A, B, C) shared by the read-only tests.
#pragma once
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "krill/track/store.hpp"
#include "support/expect.hpp"

namespace krill::test::runs_cli {

using namespace krill::test::cli;

// krill with $KRILL_TRACKING_URI unset (or set to `env_uri`) and a wide terminal, in `cwd` when given.
inline CliResult krill(const std::vector<std::string>& args, const std::string& env_uri = "",
                       const std::string& cwd = "", const std::string& columns = "200") {
  std::string prefix = cwd.empty() ? "" : "cd " + shell_quote(cwd) + " && ";
  prefix += "env -u KRILL_TRACKING_URI COLUMNS=" + columns + " ";
  if (!env_uri.empty()) prefix += "KRILL_TRACKING_URI=" + shell_quote(env_uri) + " ";
  return run_krill(args, prefix);
}

inline std::string where(const CliResult& r) { return r.command + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err; }

inline track::RunOptions opts(const std::string& uri, const std::string& name) {
  track::RunOptions o;
  o.tracking_uri = uri;
  o.name = name;
  return o;
}

inline void log_series(track::Run& run, const std::string& key, const std::vector<double>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) run.log_metric(key, values[i], static_cast<std::int64_t>(i));
}

inline void pause_ms() { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }  // distinct start times

// One store shared by the read-only tests: A (baseline) and B (wide) in "penguins", C (FAILED) in "mnist".
struct Fixture {
  std::string dir, uri, a, b, c, artifact_file;
};

inline const Fixture& fixture() {
  static Fixture f = [] {
    Fixture f;
    f.dir = krill::test::make_temp_dir("runs_cli");
    f.uri = f.dir + "/store/runs.db";
    f.artifact_file = f.dir + "/model.safetensors";
    krill::test::cli::write_text(f.artifact_file, "weights");
    {
      auto run = track::start_run("penguins", opts(f.uri, "baseline"));
      run.log_param("lr", "0.01");
      run.log_param("hidden", "10,10");
      run.log_param("epochs", "5");
      run.log_param("optimizer", "adam");
      run.set_tag("note", "first try");
      log_series(run, "train_loss", {1.0, 0.6, 0.4, 0.45, 0.42});
      log_series(run, "val_loss", {1.1, 0.7, 0.5, 0.52, 0.51});
      log_series(run, "val_accuracy", {0.5, 0.7, 0.9, 0.85, 0.88});
      run.log_artifact(f.artifact_file);
      run.log_artifact(f.dir + "/gone.png", "file");
      f.a = run.id();
      run.end();
    }
    pause_ms();
    {
      auto run = track::start_run("penguins", opts(f.uri, "wide"));
      run.log_param("lr", "0.001");
      run.log_param("hidden", "64,64");
      run.log_param("epochs", "5");
      run.log_param("optimizer", "adam");
      log_series(run, "train_loss", {1.2, 0.8, 0.5, 0.3, 0.25});
      log_series(run, "val_loss", {1.3, 0.9, 0.6, 0.4, 0.35});
      log_series(run, "val_accuracy", {0.4, 0.6, 0.8, 0.95, 0.93});
      f.b = run.id();
      run.end();
    }
    pause_ms();
    {
      auto run = track::start_run("mnist", opts(f.uri, "other"));
      run.log_param("lr", "0.01");
      log_series(run, "train_loss", {2.0, 1.5});
      f.c = run.id();
      run.end(track::RunStatus::Failed);
    }
    return f;
  }();
  return f;
}

inline std::string short_id(const std::string& id) { return id.substr(0, 8); }

// The line of a table that holds `needle`.
inline std::string line_with(const std::string& text, const std::string& needle) {
  for (const auto& l : split_lines(text))
    if (contains(l, needle)) return l;
  return "";
}

}  // namespace krill::test::runs_cli
