// ui_fake_run: a run that trains "live" for the dashboard's browser test (tests/ui/browser_test.mjs).
//
//   ui_fake_run STORE DIR POINTS INTERVAL_MS
//
// Records a RUNNING run in experiment "live" with params and tags holding markup (they must show
// as text), a model directory DIR with per-rank logs (DIR/logs/rank-<r>.log) recorded as an
// artifact, then logs metric "loss" (and "accuracy") once every INTERVAL_MS for POINTS steps,
// appending a line to each rank's log each time, and ends the run FINISHED. Prints "RUN <id>" as
// soon as the run exists.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "krill/track/store.hpp"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: ui_fake_run STORE DIR POINTS INTERVAL_MS\n";
    return 2;
  }
  const std::string store = argv[1];
  const std::filesystem::path dir = argv[2];
  const int points = std::stoi(argv[3]);
  const int interval_ms = std::stoi(argv[4]);

  krill::track::RunOptions options;
  options.tracking_uri = store;
  options.name = "live-run";
  options.flush_interval_s = 0.05;
  auto run = krill::track::start_run("live", options);
  run.log_param("lr", 0.01);
  run.log_param("note", "<img src=x onerror=alert(2)>");
  run.set_tag("owner", "<b>not bold</b>");
  std::filesystem::create_directories(dir / "logs");
  std::ofstream logs[2] = {std::ofstream(dir / "logs" / "rank-0.log"), std::ofstream(dir / "logs" / "rank-1.log")};
  for (int r = 0; r < 2; ++r) logs[r] << "rank " << r << ": starting <script>alert(3)</script>" << std::endl;
  run.log_artifact(dir.string(), "model");
  std::cout << "RUN " << run.id() << std::endl;

  for (int step = 1; step <= points; ++step) {
    double loss = 1.2 * std::exp(-step / 40.0) + 0.05 * std::sin(step / 3.0);
    run.log_metric("loss", loss, step);
    run.log_metric("accuracy", 1.0 - loss / 1.3, step);
    for (int r = 0; r < 2; ++r) logs[r] << "rank " << r << ": step " << step << " loss " << loss << std::endl;
    run.flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
  run.end();
  return 0;
}
