// `krill train` records every run in the tracking store (issue 5, "Automatic logging"): the
// options as params, one point per epoch of each metric (checked against the model directory's
// metrics.csv, written from the same history by another path), the model files as artifacts,
// FINISHED; a failure is a FAILED run carrying its error; --no-track records nothing;
// --tracking-uri wins over KRILL_TRACKING_URI; an unusable store stops before training.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "krill/track/store.hpp"
#include "support/oracle.hpp"

using krill::test::make_temp_dir;
using krill::test::source_dir;
using namespace krill::test::cli;
namespace track = krill::track;

namespace {

std::vector<std::string> lab_args(const std::string& out, int epochs) {
  return {"train", source_dir() + "/data/penguins.csv", "--label", "Species", "--categorical", "Island",
          "--epochs", std::to_string(epochs), "--out", out};
}

std::string describe(const CliResult& r) { return r.command + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err; }

// Column `name` of a CSV text with a header row, as numbers.
std::vector<double> csv_column(const std::string& text, const std::string& name) {
  const auto lines = split_lines(text);
  std::vector<std::string> header;
  {
    std::string cell;
    std::istringstream is(lines.at(0));
    while (std::getline(is, cell, ',')) header.push_back(cell);
  }
  const auto col = std::find(header.begin(), header.end(), name) - header.begin();
  EXPECT_LT(static_cast<std::size_t>(col), header.size()) << name << " not in " << lines.at(0);
  std::vector<double> out;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::istringstream is(lines[i]);
    std::string cell;
    for (long c = 0; c <= col; ++c) std::getline(is, cell, ',');
    out.push_back(std::stod(cell));
  }
  return out;
}

}  // namespace

TEST(TrainTracking, RecordsParamsEpochMetricsArtifactsAndStatus) {
  const std::string dir = make_temp_dir("train-track");
  const std::string store_path = dir + "/store/runs.db";
  auto args = lab_args(dir + "/model", 6);
  for (std::string a : {"--tracking-uri", store_path.c_str(), "--experiment", "penguin-lab", "--run-name", "first",
                        "--lr", "0.01"})
    args.push_back(a);
  const CliResult r = run_krill(args);
  ASSERT_EQ(r.rc, 0) << describe(r);

  track::Store store(store_path);
  const auto runs = store.list_runs();
  ASSERT_EQ(runs.size(), 1u);
  const track::RunInfo& run = runs[0];
  EXPECT_EQ(run.name, "first");
  EXPECT_EQ(run.experiment, "penguin-lab");
  EXPECT_EQ(run.status, track::RunStatus::Finished);
  ASSERT_TRUE(run.end_time.has_value());
  EXPECT_GE(*run.end_time, run.start_time);
  EXPECT_NE(run.command_line.find("--run-name"), std::string::npos) << run.command_line;
  EXPECT_NE(r.out.find("Run " + run.id), std::string::npos) << r.out;   // the receipt names the run

  const auto params = store.params(run.id);
  EXPECT_EQ(params.at("lr"), "0.01");
  EXPECT_EQ(params.at("epochs"), "6");
  EXPECT_EQ(params.at("label"), "Species");
  EXPECT_EQ(params.at("categorical"), "Island");
  EXPECT_EQ(params.at("hidden"), "10,10");
  EXPECT_EQ(params.at("optimizer"), "adam");
  EXPECT_EQ(params.at("batch_size"), "20");
  EXPECT_EQ(params.at("world_size"), "1");

  // Per-epoch metrics equal the model directory's metrics.csv, epoch for epoch.
  const std::string csv = read_text(dir + "/model/metrics.csv");
  const std::pair<const char*, const char*> same[] = {{"train_loss", "train_loss"}, {"val_loss", "val_loss"},
                                                      {"val_accuracy", "val_accuracy"},
                                                      {"epoch_seconds", "epoch_seconds"}};
  for (const auto& [metric, column] : same) {
    const auto history = store.metric_history(run.id, metric);
    const auto expected = csv_column(csv, column);
    ASSERT_EQ(history.size(), 6u) << metric;
    for (std::size_t i = 0; i < history.size(); ++i) {
      EXPECT_EQ(history[i].step, static_cast<std::int64_t>(i + 1)) << metric;
      EXPECT_NEAR(history[i].value, expected[i], 1e-6 * std::max(1.0, std::abs(expected[i]))) << metric << " " << i;
    }
  }
  for (const auto& p : store.metric_history(run.id, "lr")) EXPECT_DOUBLE_EQ(p.value, 0.01);
  for (const auto& p : store.metric_history(run.id, "rows_per_s")) EXPECT_GT(p.value, 0.0);
  EXPECT_EQ(store.metric_history(run.id, "rows_per_s").size(), 6u);

  std::vector<std::string> artifact_names;
  for (const auto& a : store.artifacts(run.id)) {
    EXPECT_TRUE(std::filesystem::exists(a.path)) << a.path;
    artifact_names.push_back(std::filesystem::path(a.path).filename().string() + ":" + a.kind);
  }
  for (const char* want : {"model:model", "model.safetensors:file", "config.json:file", "metrics.csv:file",
                           "loss.png:plot"})
    EXPECT_NE(std::find(artifact_names.begin(), artifact_names.end(), want), artifact_names.end()) << want;
}

TEST(TrainTracking, FailedTrainingIsRecordedWithItsError) {
  const std::string dir = make_temp_dir("train-track-fail");
  const std::string store_path = dir + "/runs.db";
  auto args = lab_args(dir + "/model", 2);
  args[3] = "Speciez";   // --label: a column that does not exist
  args.push_back("--tracking-uri");
  args.push_back(store_path);
  const CliResult r = run_krill(args);
  ASSERT_EQ(r.rc, 1) << describe(r);
  EXPECT_FALSE(std::filesystem::exists(dir + "/model"));
  track::Store store(store_path);
  const auto runs = store.list_runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, track::RunStatus::Failed);
  const auto tags = store.tags(runs[0].id);
  ASSERT_TRUE(tags.contains("error"));
  EXPECT_NE(tags.at("error").find("Speciez"), std::string::npos) << tags.at("error");
  EXPECT_NE(r.err.find("Speciez"), std::string::npos) << r.err;   // the same message on the console
}

TEST(TrainTracking, NoTrackWritesNoStore) {
  const std::string dir = make_temp_dir("train-track-off");
  auto args = lab_args(dir + "/model", 1);
  for (std::string a : {"--no-track", "--tracking-uri", (dir + "/runs.db").c_str()}) args.push_back(a);
  const CliResult r = run_krill(args);
  ASSERT_EQ(r.rc, 0) << describe(r);
  EXPECT_FALSE(std::filesystem::exists(dir + "/runs.db"));
  EXPECT_EQ(r.out.find("recorded in"), std::string::npos) << r.out;
}

TEST(TrainTracking, EnvironmentStoreAndFlagPrecedence) {
  const std::string dir = make_temp_dir("train-track-env");
  const std::string env_store = dir + "/env/runs.db", flag_store = dir + "/flag/runs.db";
  const std::string prefix = "KRILL_TRACKING_URI=" + shell_quote(env_store) + " ";
  CliResult r = run_krill(lab_args(dir + "/m1", 1), prefix);
  ASSERT_EQ(r.rc, 0) << describe(r);
  auto args = lab_args(dir + "/m2", 1);
  args.push_back("--tracking-uri=" + flag_store);
  r = run_krill(args, prefix);
  ASSERT_EQ(r.rc, 0) << describe(r);
  EXPECT_EQ(track::Store(env_store).list_runs().size(), 1u);
  EXPECT_EQ(track::Store(flag_store).list_runs().size(), 1u);
  // with neither, the default store is ./krill-runs/runs.db in the working directory
  r = run_krill(lab_args(dir + "/m3", 1), "cd " + shell_quote(dir) + " && env -u KRILL_TRACKING_URI ");
  ASSERT_EQ(r.rc, 0) << describe(r);
  EXPECT_EQ(track::Store(dir + "/krill-runs/runs.db").list_runs().size(), 1u);
}

TEST(TrainTracking, UnusableStoreStopsBeforeTraining) {
  const std::string dir = make_temp_dir("train-track-bad");
  write_text(dir + "/runs.db", std::string(8192, 'x'));   // not a database
  auto args = lab_args(dir + "/model", 1);
  args.push_back("--tracking-uri");
  args.push_back(dir + "/runs.db");
  const CliResult r = run_krill(args);
  EXPECT_EQ(r.rc, 1) << describe(r);
  EXPECT_NE(r.err.find("not a valid krill run database"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--no-track"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("Epoch"), std::string::npos) << r.out;   // no training happened
  EXPECT_FALSE(std::filesystem::exists(dir + "/model"));
}
