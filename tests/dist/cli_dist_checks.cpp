// `krill train` under MPI and `krill launch` (issue 4, "The command line"): a 2-rank job with
// --no-scale-lr and batch b gives the weights of one process with batch 2b; the model directory
// is written once, by rank 0, with one log per rank; a refused --out stops every rank quickly;
// the launcher's command line, its errors and its exit code. Every job runs under `timeout`
// with no stdin (a hang fails the test). Registered by tests/dist.cmake (RUN_SERIAL: the ranks
// need this machine's cores).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "krill/io/safetensors.hpp"
#include "krill/track/store.hpp"
#include "support/oracle.hpp"

using krill::test::make_temp_dir;
using krill::test::source_dir;
using namespace krill::test::cli;
using json = nlohmann::json;

namespace {

const std::string kBound = "exec </dev/null; timeout -k 5 120 ";

CliResult krill_bounded(const std::vector<std::string>& args) { return run_krill(args, kBound); }

std::string describe(const CliResult& r) { return r.command + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err; }

// The first 900 data rows of the bundled training split (900 = 45 batches of 20).
std::string train_900(const std::string& dir) {
  const auto lines = split_lines(read_text(source_dir() + "/data/penguins_train.csv"));
  EXPECT_GT(lines.size(), 901u);
  std::string text;
  for (std::size_t i = 0; i <= 900 && i < lines.size(); ++i) text += lines[i] + "\n";
  const std::string path = dir + "/train900.csv";
  write_text(path, text);
  return path;
}

std::vector<std::string> train_args(const std::string& train, const std::string& out, const std::string& batch) {
  return {"train",      "--train", train,   "--validation", source_dir() + "/data/penguins_val.csv",
          "--label",    "Species", "--seed", "0",           "--epochs",
          "4",          "--no-shuffle", "--batch-size", batch, "--out", out, "-q"};
}

void set_flag(std::vector<std::string>& args, const std::string& flag, const std::string& value) {
  for (std::size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == flag) {
      args[i + 1] = value;
      return;
    }
  ADD_FAILURE() << "no " << flag;
}

double rel_diff(const krill::Tensor& a, const krill::Tensor& b) {
  krill::Tensor x = a.contiguous(), y = b.contiguous();
  const float* p = x.data_ptr<float>();
  const float* q = y.data_ptr<float>();
  double num = 0, den = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) num += (double(p[i]) - q[i]) * (double(p[i]) - q[i]), den += double(q[i]) * q[i];
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-12);
}

TEST(DistCli, TwoRanksMatchOneProcessWithTheGlobalBatch) {
  const std::string dir = make_temp_dir("dist-cli-equiv");
  const std::string train = train_900(dir);
  const CliResult one = krill_bounded(train_args(train, dir + "/one", "20"));
  ASSERT_EQ(one.rc, 0) << describe(one);

  std::vector<std::string> args{"launch", "-np", "2", "--", "krill"};
  for (const auto& a : train_args(train, dir + "/two", "10")) args.push_back(a);
  args.push_back("--no-scale-lr");
  const CliResult two = krill_bounded(args);
  ASSERT_EQ(two.rc, 0) << describe(two);
  // Only rank 0 prints (--log-verbosity rank0): one summary line.
  EXPECT_EQ(split_lines(two.out).size(), 2u) << two.out;

  const auto w1 = krill::io::load_safetensors(dir + "/one/model.safetensors");
  const auto w2 = krill::io::load_safetensors(dir + "/two/model.safetensors");
  ASSERT_EQ(w1.size(), w2.size());
  for (const auto& [name, t] : w1) {
    ASSERT_TRUE(w2.contains(name)) << name;
    EXPECT_LE(rel_diff(w2.at(name), t), 1e-5) << name;
  }
  // One model directory (no staging directories left), with a log per rank.
  EXPECT_EQ(list_dir(dir), (std::vector<std::string>{"one", "train900.csv", "two"}));
  EXPECT_EQ(list_dir(dir + "/two/logs"), (std::vector<std::string>{"rank-0.log", "rank-1.log"}));
  for (int r = 0; r < 2; ++r) {
    const std::string log = read_text(dir + "/two/logs/rank-" + std::to_string(r) + ".log");
    EXPECT_NE(log.find("rank " + std::to_string(r) + " of 2"), std::string::npos) << log;
    EXPECT_NE(log.find("epoch 4: train loss"), std::string::npos) << log;
  }
  const json cfg = json::parse(read_text(dir + "/two/config.json"));
  const std::string dump = cfg.dump();
  EXPECT_NE(dump.find("\"distributed\":{"), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"world_size\":2"), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"scale_lr\":false"), std::string::npos) << dump;
  // The training loss logged is the mean over ranks: the one-process curve.
  // Validation runs in batches of the global batch: the same metrics as one process.
  const auto m1 = split_lines(read_text(dir + "/one/metrics.csv"));
  const auto m2 = split_lines(read_text(dir + "/two/metrics.csv"));
  ASSERT_EQ(m1.size(), m2.size());
  for (std::size_t i = 1; i < m1.size(); ++i) {
    for (int col = 1; col <= 5; ++col) {  // train_loss, val_loss, val_accuracy, val_correct, val_total
      auto field = [col](const std::string& line) {
        std::size_t at = 0;
        for (int c = 0; c < col; ++c) at = line.find(',', at) + 1;
        return std::stod(line.substr(at, line.find(',', at) - at));
      };
      EXPECT_NEAR(field(m1[i]), field(m2[i]), 1e-5 * std::abs(field(m1[i]))) << "epoch " << i << " column " << col;
    }
  }
}

TEST(DistCli, RankZeroRecordsOneRunWithEveryRanksLog) {
  const std::string dir = make_temp_dir("dist-cli-track");
  std::vector<std::string> args{"launch", "-np", "2", "--", "krill"};
  for (const auto& a : train_args(train_900(dir), dir + "/m", "10")) args.push_back(a);
  set_flag(args, "--epochs", "3");
  args.push_back("--tracking-uri");
  args.push_back(dir + "/runs.db");
  const CliResult r = krill_bounded(args);
  ASSERT_EQ(r.rc, 0) << describe(r);
  krill::track::Store store(dir + "/runs.db");
  const auto runs = store.list_runs();
  ASSERT_EQ(runs.size(), 1u);   // rank 0 alone records
  EXPECT_EQ(runs[0].status, krill::track::RunStatus::Finished);
  const auto params = store.params(runs[0].id);
  EXPECT_EQ(params.at("world_size"), "2");
  EXPECT_EQ(params.at("effective_lr"), "0.002");
  EXPECT_EQ(params.at("global_batch_size"), "20");
  EXPECT_EQ(store.metric_history(runs[0].id, "val_loss").size(), 3u);
  for (const auto& p : store.metric_history(runs[0].id, "lr")) EXPECT_DOUBLE_EQ(p.value, 0.002);
  std::vector<std::string> logs;
  for (const auto& a : store.artifacts(runs[0].id))
    if (a.kind == "log") logs.push_back(std::filesystem::path(a.path).filename().string());
  EXPECT_EQ(logs, (std::vector<std::string>{"rank-0.log", "rank-1.log"}));
}

TEST(DistCli, ImageTrainingOnTwoRanks) {
  // LeNet on synthetic images, 2 ranks: each trains its shard, the weights stay in sync (checked
  // by krill train itself at the end), lr x 2, one model directory with both ranks' logs.
  const std::string dir = make_temp_dir("dist-cli-images");
  const CliResult r = krill_bounded({"launch", "-np", "2", "--", "krill", "train", "--model", "lenet", "--data",
                                     "synthetic:1x28x28:4:128", "--epochs", "2", "--batch-size", "16", "--lr", "0.01",
                                     "--print-freq", "2", "--out", dir + "/m", "--tracking-uri", dir + "/runs.db"});
  ASSERT_EQ(r.rc, 0) << describe(r);
  EXPECT_NE(r.out.find("Epoch: [1][2/4]"), std::string::npos) << r.out;   // 128 / 2 ranks / 16 = 4 iterations
  EXPECT_EQ(list_dir(dir + "/m/logs"), (std::vector<std::string>{"rank-0.log", "rank-1.log"}));
  const std::string dump = json::parse(read_text(dir + "/m/config.json")).dump();
  EXPECT_NE(dump.find("\"effective_lr\":0.02"), std::string::npos) << dump;
  krill::track::Store store(dir + "/runs.db");
  ASSERT_EQ(store.list_runs().size(), 1u);
  EXPECT_EQ(store.params(store.list_runs()[0].id).at("world_size"), "2");
  const CliResult p = run_krill({"inspect", dir + "/m"});
  EXPECT_EQ(p.rc, 0) << describe(p);
}

TEST(DistCli, LearningRateIsScaledByDefaultAndAllRanksPrintOnRequest) {
  const std::string dir = make_temp_dir("dist-cli-lr");
  std::vector<std::string> args{"launch", "-np", "2", "--", "krill"};
  for (const auto& a : train_args(train_900(dir), dir + "/m", "10")) args.push_back(a);
  args.back() = "--log-verbosity=all";  // instead of -q
  set_flag(args, "--epochs", "1");
  const CliResult r = krill_bounded(args);
  ASSERT_EQ(r.rc, 0) << describe(r);
  EXPECT_NE(r.out.find("[rank 0] Epoch: 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[rank 1] Epoch: 1"), std::string::npos) << r.out;
  const std::string dump = json::parse(read_text(dir + "/m/config.json")).dump();
  EXPECT_NE(dump.find("\"scale_lr\":true"), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"effective_lr\":0.002"), std::string::npos) << dump;
}

TEST(DistCli, ExistingOutStopsEveryRankWithoutAHang) {
  const std::string dir = make_temp_dir("dist-cli-out");
  const std::string train = train_900(dir);
  ASSERT_EQ(run_krill(train_args(train, dir + "/m", "20")).rc, 0);
  std::vector<std::string> args{"launch", "-np", "2", "--", "krill"};
  for (const auto& a : train_args(train, dir + "/m", "10")) args.push_back(a);
  const auto t0 = std::chrono::steady_clock::now();
  const CliResult r = krill_bounded(args);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.rc, 0) << describe(r);
  EXPECT_NE(r.rc, 124) << "a hang: " << describe(r);
  EXPECT_LT(s, 30.0);
  // Both ranks stop with rank 0's verdict.
  std::size_t n = 0;
  for (std::size_t at = r.err.find("krill train: error: --out"); at != std::string::npos;
       at = r.err.find("krill train: error: --out", at + 1))
    ++n;
  EXPECT_EQ(n, 2u) << describe(r);
}

TEST(DistCli, LaunchDryRunBuildsTheMpirunCommand) {
  CliResult r = krill_bounded({"launch", "-np", "2", "--dry-run", "--", "krill", "train", "--help"});
  ASSERT_EQ(r.rc, 0) << describe(r);
  EXPECT_NE(r.out.find(" -np 2 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-x OMP_NUM_THREADS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" train --help"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mpirun"), std::string::npos) << r.out;

  r = krill_bounded({"launch", "--nodes", "2", "--processes-per-node", "3", "-H", "a:3,b:3", "--bind-to", "core",
                     "--dry-run", "--", "krill", "train"});
  ASSERT_EQ(r.rc, 0) << describe(r);
  EXPECT_NE(r.out.find(" -np 6 -H a:3,b:3 --map-by ppr:3:node --bind-to core"), std::string::npos) << r.out;

  // More ranks than cores here: oversubscribed, unbound.
  r = krill_bounded({"launch", "-np", "1000", "--dry-run", "--", "true"});
  ASSERT_EQ(r.rc, 0) << describe(r);
  EXPECT_NE(r.out.find("OMPI_MCA_rmaps_base_oversubscribe=1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--bind-to none"), std::string::npos) << r.out;
}

TEST(DistCli, LaunchCommandLineErrorsExitTwo) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"launch", "-np", "2"}, "no command"},
      {{"launch", "-np", "2", "--"}, "no command"},
      {{"launch", "-np", "0", "--", "true"}, "-np must be a positive integer"},
      {{"launch", "--", "true"}, "-np: give the number of processes"},
      {{"launch", "-np", "2", "-H", "host1:x", "--", "true"}, "the slots of 'host1'"},
      {{"launch", "-np", "2", "-H", "host1:2,,host2", "--", "true"}, "host 2 is ''"},
      {{"launch", "-np", "2", "--bind-to", "socket", "--", "true"}, "--bind-to must be core or none"},
      {{"launch", "--nodes", "2", "--", "true"}, "go together"},
      {{"launch", "-np", "2", "--frobnicate", "--", "true"}, "unknown option '--frobnicate'"},
  };
  for (const auto& [args, expect] : cases) {
    const CliResult r = krill_bounded(args);
    EXPECT_EQ(r.rc, 2) << describe(r);
    EXPECT_NE(r.err.find("krill launch: error: "), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find(expect), std::string::npos) << describe(r);
  }
}

TEST(DistCli, LaunchPassesTheExitCodeThrough) {
  EXPECT_EQ(krill_bounded({"launch", "-np", "2", "--", "true"}).rc, 0);
  const CliResult f = krill_bounded({"launch", "-np", "2", "--", "false"});
  EXPECT_NE(f.rc, 0) << describe(f);
  EXPECT_NE(f.rc, 124) << describe(f);
  // A failing training (an unknown label column) fails the launch.
  const std::string dir = make_temp_dir("dist-cli-fail");
  std::vector<std::string> args{"launch", "-np", "2", "--", "krill"};
  for (const auto& a : train_args(source_dir() + "/data/penguins_train.csv", dir + "/m", "10")) args.push_back(a);
  set_flag(args, "--label", "NoSuchColumn");
  const CliResult r = krill_bounded(args);
  EXPECT_NE(r.rc, 0) << describe(r);
  EXPECT_NE(r.rc, 124) << describe(r);
  EXPECT_NE(r.err.find("NoSuchColumn"), std::string::npos) << describe(r);
  EXPECT_EQ(list_dir(dir), std::vector<std::string>{});
}

}  // namespace
