// `krill train` and `krill predict` for images (issue 6): LeNet on Fashion-MNIST reaches the
// issue's accuracy, the model directory scores new image files (PNG written here from the test
// set) as well as it validates, the module's schedule and progress lines, fine-tuning on new
// classes, tracking, and the module's errors (NotLabeledDatasetError, InvalidDatasetError,
// InvalidModelDirectoryError, the NaN stop).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

#include "cli/cli_helpers.hpp"
#include "krill/data/image.hpp"
#include "krill/track/store.hpp"
#include "support/oracle.hpp"

using krill::test::make_temp_dir;
using namespace krill::test::cli;
namespace fs = std::filesystem;

namespace {

const std::string kFashion = "/usr/share/datasets/fashion-mnist";

std::string describe(const CliResult& r) { return r.command + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err; }

// metrics.csv as column -> values.
std::map<std::string, std::vector<double>> read_metrics(const std::string& path) {
  const auto lines = split_lines(read_text(path));
  std::map<std::string, std::vector<double>> out;
  if (lines.empty()) return out;
  std::vector<std::string> header;
  std::stringstream hs(lines[0]);
  for (std::string c; std::getline(hs, c, ',');) header.push_back(c);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::stringstream ls(lines[i]);
    std::size_t col = 0;
    for (std::string c; std::getline(ls, c, ',') && col < header.size(); ++col) out[header[col]].push_back(std::stod(c));
  }
  return out;
}

// A PNG of `pixels` (uint8, H x W x C interleaved).
void write_png(const std::string& path, int h, int w, int c, const std::vector<std::uint8_t>& pixels) {
  ASSERT_NE(stbi_write_png(path.c_str(), w, h, c, pixels.data(), w * c), 0) << path;
}

// root/<class>/<i>.png: `per_class` small RGB images per class, each class a different colour.
void write_image_folder(const std::string& root, const std::vector<std::string>& classes, int per_class, int size = 20) {
  for (std::size_t k = 0; k < classes.size(); ++k) {
    fs::create_directories(root + "/" + classes[k]);
    for (int i = 0; i < per_class; ++i) {
      std::vector<std::uint8_t> px(static_cast<std::size_t>(size * size * 3));
      for (std::size_t p = 0; p < px.size(); ++p)
        px[p] = static_cast<std::uint8_t>((p % 3 == k % 3 ? 200 : 30) + (p * 7 + i * 13) % 40);
      write_png(root + "/" + classes[k] + "/" + std::to_string(i) + ".png", size, size, 3, px);
    }
  }
}

}  // namespace

TEST(TrainImages, LeNetOnFashionMnistReachesTheIssuesAccuracyAndScoresImageFiles) {
  ASSERT_TRUE(fs::exists(kFashion + "/train-images-idx3-ubyte.gz"))
      << "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist (scripts/setup-deps.sh --tests)";
  const std::string dir = make_temp_dir("train-images-fashion");
  const std::string store = dir + "/runs.db";
  // The issue's protocol: LeNet, 2 epochs, batch 64, Adam 0.001 (PyTorch reaches 0.856-0.862).
  const CliResult r = run_krill({"train", "--model", "lenet", "--data", kFashion, "--epochs", "2", "--batch-size", "64",
                                 "--optimizer", "adam", "--lr", "0.001", "--print-freq", "300", "--out", dir + "/m",
                                 "--tracking-uri", store});
  ASSERT_EQ(r.rc, 0) << describe(r);
  EXPECT_NE(r.out.find("Epoch: [1][300/938]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Top-5:"), std::string::npos) << r.out;
  auto m = read_metrics(dir + "/m/metrics.csv");
  for (const char* col : {"epoch", "train_loss", "val_loss", "val_accuracy", "val_top5", "images_per_s"})
    ASSERT_EQ(m[col].size(), 2u) << col;
  EXPECT_GE(m["val_accuracy"].back(), 0.85);
  EXPECT_GE(m["val_top5"].back(), m["val_accuracy"].back());
  EXPECT_LT(m["val_loss"].back(), m["val_loss"].front() + 1e-9 + 0.05);
  for (double ips : m["images_per_s"]) EXPECT_GT(ips, 0.0);

  // The run: per-epoch metrics (with top-5 and images/s) and per-print-freq points.
  krill::track::Store s(store);
  const auto runs = s.list_runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, krill::track::RunStatus::Finished);
  EXPECT_EQ(s.params(runs[0].id).at("model"), "lenet");
  EXPECT_EQ(s.metric_history(runs[0].id, "val_top5").size(), 2u);
  EXPECT_EQ(s.metric_history(runs[0].id, "images_per_s").size(), 2u);
  EXPECT_EQ(s.metric_history(runs[0].id, "train_loss_iter").size(), 6u);   // iterations 300, 600, 900 of 2 epochs

  // Score 40 test images written as PNG files: as accurate as validation says (within noise),
  // probabilities summing to 1.
  auto test = krill::data::read_idx(kFashion + "/t10k-images-idx3-ubyte.gz", kFashion + "/t10k-labels-idx1-ubyte.gz");
  fs::create_directories(dir + "/images");
  std::vector<std::int64_t> labels;
  for (int i = 0; i < 40; ++i) {
    krill::Tensor img = test->image(i).contiguous();
    std::vector<std::uint8_t> px(img.data_ptr<std::uint8_t>(), img.data_ptr<std::uint8_t>() + 28 * 28);
    char name[64];
    std::snprintf(name, sizeof name, "/images/%02d.png", i);
    write_png(dir + name, 28, 28, 1, px);
    labels.push_back(test->label(i));
  }
  const CliResult p = run_krill({"predict", dir + "/m", "--input", dir + "/images", "--format", "json"});
  ASSERT_EQ(p.rc, 0) << describe(p);
  const auto lines = split_lines(p.out);
  ASSERT_EQ(lines.size(), 40u) << p.out;
  int correct = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto j = nlohmann::json::parse(lines[i]);
    double sum = 0;
    for (double v : j["probabilities"]) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-4);
    correct += j["class_id"].get<std::int64_t>() == labels[i];
  }
  EXPECT_GE(correct, 30) << p.out;   // ~0.85 expected; 30 of 40 leaves room for sampling noise
  // One file, as text: the class name and its probability.
  const CliResult one = run_krill({"predict", dir + "/m", "--image", dir + "/images/00.png"});
  ASSERT_EQ(one.rc, 0) << describe(one);
  EXPECT_NE(one.out.find("probability"), std::string::npos) << one.out;
  // inspect shows the architecture and the preprocessing saved with it
  const CliResult ins = run_krill({"inspect", dir + "/m"});
  ASSERT_EQ(ins.rc, 0) << describe(ins);
  EXPECT_NE(ins.out.find("lenet, input 1x28x28, 10 classes"), std::string::npos) << ins.out;
  EXPECT_NE(ins.out.find("Ankle boot"), std::string::npos) << ins.out;
}

TEST(TrainImages, ScheduleProgressLinesAndFineTuningOnNewClasses) {
  const std::string dir = make_temp_dir("train-images-synthetic");
  // 64 training images, batch 16: 4 iterations per epoch; 1 warm-up epoch of 3.
  CliResult r = run_krill({"train", "--model", "lenet", "--data", "synthetic:1x28x28:4:64", "--epochs", "3",
                           "--batch-size", "16", "--warmup-epochs", "1", "--lr", "0.01", "--print-freq", "2",
                           "--patience", "0", "--out", dir + "/base", "--no-track"});
  ASSERT_EQ(r.rc, 0) << describe(r);
  EXPECT_NE(r.out.find("Epoch: [1][2/4]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Epoch: [3][4/4]"), std::string::npos) << r.out;
  auto m = read_metrics(dir + "/base/metrics.csv");
  ASSERT_EQ(m["lr"].size(), 3u);
  // warm-up reaches the base lr at the last step of epoch 1, then decays linearly to 1/8 of it
  // (steps 5..12 of 12: lr * (1 - (s - 4) / 8))
  EXPECT_NEAR(m["lr"][0], 0.01, 1e-9);
  EXPECT_NEAR(m["lr"][1], 0.01 * (1 - 3.0 / 8), 1e-9);
  EXPECT_NEAR(m["lr"][2], 0.01 * (1 - 7.0 / 8), 1e-9);

  // Fine-tuning on 3 classes: every layer but the classifier starts from the saved weights.
  r = run_krill({"train", "--model", dir + "/base", "--data", "synthetic:1x28x28:3:48", "--epochs", "1",
                 "--batch-size", "16", "--out", dir + "/tuned", "--no-track"});
  ASSERT_EQ(r.rc, 0) << describe(r);
  EXPECT_NE(r.out.find("new layers for 3 classes: fc3.weight fc3.bias"), std::string::npos) << r.out;
  const std::string cfg = read_text(dir + "/tuned/config.json");
  EXPECT_NE(cfg.find("\"num_classes\": 3"), std::string::npos) << cfg;
  EXPECT_NE(cfg.find("\"type\": \"lenet\""), std::string::npos) << cfg;
}

TEST(TrainImages, ModuleErrors) {
  const std::string dir = make_temp_dir("train-images-errors");
  // Images directly in the directory, no class folders.
  fs::create_directories(dir + "/flat");
  write_image_folder(dir + "/tmp", {"a"}, 3);
  for (const auto& e : fs::directory_iterator(dir + "/tmp/a")) fs::copy(e.path(), dir + "/flat/" + e.path().filename().string());
  CliResult r = run_krill({"train", "--model", "lenet", "--data", dir + "/flat", "--out", dir + "/m1", "--no-track"});
  EXPECT_EQ(r.rc, 1) << describe(r);
  EXPECT_NE(r.err.find("NotLabeledDatasetError"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("<class>"), std::string::npos) << r.err;   // says what layout it expects
  EXPECT_FALSE(fs::exists(dir + "/m1"));

  // Training and validation with different classes.
  write_image_folder(dir + "/train", {"cat", "dog"}, 4);
  write_image_folder(dir + "/val", {"cat", "fox"}, 2);
  r = run_krill({"train", "--model", "lenet", "--train", dir + "/train", "--validation", dir + "/val", "--out",
                 dir + "/m2", "--no-track"});
  EXPECT_EQ(r.rc, 1) << describe(r);
  EXPECT_NE(r.err.find("InvalidDatasetError"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fox"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/m2"));

  // --model DIR that is not a model directory.
  fs::create_directories(dir + "/not-a-model");
  write_text(dir + "/not-a-model/notes.txt", "hello");
  r = run_krill({"train", "--model", dir + "/not-a-model", "--data", "synthetic:3x32x32:2:16", "--out", dir + "/m3",
                 "--no-track"});
  EXPECT_EQ(r.rc, 1) << describe(r);
  EXPECT_NE(r.err.find("InvalidModelDirectoryError"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;

  // An unknown model name lists the known ones; --data needs a model.
  r = run_krill({"train", "--model", "resnet19", "--data", "synthetic:3x32x32:2:16", "--out", dir + "/m4"});
  EXPECT_EQ(r.rc, 2) << describe(r);
  EXPECT_NE(r.err.find("resnet18, resnet34"), std::string::npos) << r.err;
  r = run_krill({"train", "--data", "synthetic:3x32x32:2:16", "--out", dir + "/m5"});
  EXPECT_EQ(r.rc, 2) << describe(r);
  EXPECT_NE(r.err.find("--data needs --model"), std::string::npos) << r.err;

  // NaN: a learning rate that blows the loss up stops training with advice, and records FAILED.
  r = run_krill({"train", "--model", "lenet", "--data", "synthetic:1x28x28:4:64", "--optimizer", "sgd", "--lr", "1e12",
                 "--epochs", "2", "--out", dir + "/m6", "--tracking-uri", dir + "/runs.db"});
  EXPECT_EQ(r.rc, 1) << describe(r);
  EXPECT_NE(r.err.find("lower the learning rate"), std::string::npos) << r.err;
  krill::track::Store s(dir + "/runs.db");
  ASSERT_EQ(s.list_runs().size(), 1u);
  EXPECT_EQ(s.list_runs()[0].status, krill::track::RunStatus::Failed);
}
