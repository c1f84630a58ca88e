// The penguin lab from the command line (issue 3): `krill train` on the raw data/penguins.csv
// with the lab's preparation gives the same run as the pre-split form on the bundled
// data/penguins_{train,val}.csv (the same prepared split) and as PyTorch (per-epoch losses
// within 1e-4, 411/411 at the end), warns about the leakage that oversampling before the split
// causes, and is reproduced by examples/penguins.toml (flags override it). `krill predict`
// predicts the lab's new penguin like PyTorch, agrees between --features, --row and --input,
// equals a forward pass of the saved weights computed in-process, and names string classes;
// `krill inspect` shows every layer's shape and, with --full, every weight exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "cli/lab_helpers.hpp"
#include "krill/io/safetensors.hpp"
#include "krill/nn/models/mlp.hpp"
#include "support/oracle.hpp"

using krill::test::make_temp_dir;
using krill::test::source_dir;
using namespace krill::test::cli;
using namespace krill::test::lab;
using json = nlohmann::json;

namespace {

constexpr double kLossTol = 1e-4;  // the bound, absolute per epoch

const std::vector<std::string> kNewPenguinEncoded = {"--features", "1,50.4,15.3,20,50"};
const std::vector<std::string> kNewPenguinRaw = {"--row", "Dream,50.4,15.3,200,5000"};

// The lab, trained once per test program from the raw CSV.
struct Lab {
  std::string dir, model;
  CliResult run;
};

const Lab& lab() {
  static const Lab l = [] {
    Lab l;
    l.dir = make_temp_dir("lab");
    l.model = l.dir + "/model";
    l.run = run_krill(cat(cat({"train", data_path("penguins.csv")}, lab_prep()), {"--out", l.model}));
    return l;
  }();
  return l;
}

// PyTorch on the same prepared split (the lab's DataLoader: batches of 20 in order), once.
const TorchRun& torch_lab() {
  static const TorchRun r = run_torch({"--train", data_path("penguins_train.csv"), "--validation",
                                       data_path("penguins_val.csv"), "--label", "Species", "--hidden", "10,10",
                                       "--batch-size", "20", "--epochs", "100", "--optimizer", "adam", "--lr",
                                       "0.001", "--no-shuffle", "--seed", "0"});
  return r;
}

CliResult krill_ok(const std::vector<std::string>& args, const std::string& prefix = "") {
  CliResult r = run_krill(args, prefix);
  EXPECT_EQ(r.rc, 0) << r.command << "\nstdout: " << r.out << "\nstderr: " << r.err;
  return r;
}

JsonPrediction predict_json(const std::string& model, const std::vector<std::string>& what) {
  CliResult r = krill_ok(cat(cat({"predict", model}, what), {"--format", "json"}));
  const auto lines = split_lines(r.out);
  EXPECT_EQ(lines.size(), 1u) << r.out;
  return lines.empty() ? JsonPrediction{} : parse_prediction(lines[0]);
}

std::string model_dir_listing() { return "config.json loss.png metrics.csv model.safetensors"; }

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace

// The raw CSV with the lab's preparation == the pre-split CSVs == PyTorch.
TEST(LabCli, RawCsvEqualsPresplitAndPyTorch) {
  const Lab& l = lab();
  ASSERT_EQ(l.run.rc, 0) << l.run.command << "\n" << l.run.err;
  EXPECT_EQ(joined(list_dir(l.model)), model_dir_listing());
  EXPECT_EQ(list_dir(l.dir), std::vector<std::string>{"model"}) << "no staging directory left";

  // The preparation, as reported.
  EXPECT_NE(l.run.out.find(": 344 rows, 2 dropped (missing values), x4 oversampled = 1368; training 957, validation 411 rows"),
            std::string::npos)
      << l.run.out;
  // The leakage warning: one line on stderr naming the 395 of 411 validation rows that are
  // copies of training rows, and why.
  const auto err = split_lines(l.run.err);
  ASSERT_EQ(err.size(), 1u) << l.run.err;
  EXPECT_EQ(err[0].rfind("krill train: warning: 395 of 411 validation rows also appear in the training set", 0), 0u)
      << err[0];
  EXPECT_NE(err[0].find("--oversample"), std::string::npos) << err[0];

  // Output like the lab's: "Epoch: N", training and validation loss, accuracy, per epoch.
  int epochs = 0;
  for (const auto& line : split_lines(l.run.out)) epochs += line.rfind("Epoch: ", 0) == 0;
  EXPECT_EQ(epochs, 100);
  EXPECT_NE(l.run.out.find("Validation set: Average loss: "), std::string::npos);
  EXPECT_NE(l.run.out.find("Accuracy: 411/411 (100%)"), std::string::npos);

  const Curve raw = read_metrics(l.model + "/metrics.csv");
  ASSERT_EQ(raw.epoch.size(), 100u);
  EXPECT_EQ(raw.val_correct.back(), 411);
  EXPECT_EQ(raw.val_total.back(), 411);

  // The pre-split form on the bundled split: the same prepared numbers in the same order, so
  // the very same run.
  const std::string dir = make_temp_dir("lab-presplit");
  krill_ok({"train", "--train", data_path("penguins_train.csv"), "--validation", data_path("penguins_val.csv"),
            "--label", "Species", "--seed", "0", "--out", dir + "/model", "-q"});
  const Curve pre = read_metrics(dir + "/model/metrics.csv");
  EXPECT_EQ(raw.train_loss, pre.train_loss);
  EXPECT_EQ(raw.val_loss, pre.val_loss);
  EXPECT_EQ(raw.val_correct, pre.val_correct);
  EXPECT_EQ(weights_of(krill::io::load_safetensors(l.model + "/model.safetensors")),
            weights_of(krill::io::load_safetensors(dir + "/model/model.safetensors")));

  // PyTorch.
  const TorchRun& torch = torch_lab();
  ASSERT_EQ(torch.curve.epoch.size(), 100u);
  double dt = 0, dv = 0;
  for (std::size_t e = 0; e < 100; ++e) {
    dt = std::max(dt, std::abs(raw.train_loss[e] - torch.curve.train_loss[e]));
    dv = std::max(dv, std::abs(raw.val_loss[e] - torch.curve.val_loss[e]));
    EXPECT_LE(std::abs(raw.train_loss[e] - torch.curve.train_loss[e]), kLossTol) << "epoch " << e + 1;
    EXPECT_LE(std::abs(raw.val_loss[e] - torch.curve.val_loss[e]), kLossTol) << "epoch " << e + 1;
    EXPECT_EQ(raw.val_correct[e], std::llround(torch.curve.val_accuracy[e] * 411)) << "epoch " << e + 1;
  }
  EXPECT_DOUBLE_EQ(torch.curve.val_accuracy.back(), 1.0);
  std::printf("[lab] raw CSV vs PyTorch over 100 epochs: max |train loss diff| %.3g, max |val loss diff| %.3g\n", dt, dv);
  ::testing::Test::RecordProperty("lab_max_train_loss_diff", std::to_string(dt));
  ::testing::Test::RecordProperty("lab_max_val_loss_diff", std::to_string(dv));
}

// examples/penguins.toml is the lab: the same numbers as the flags; flags override it.
TEST(LabCli, ConfigFileReproducesTheLab) {
  const Lab& l = lab();
  ASSERT_EQ(l.run.rc, 0) << l.run.err;
  const std::string dir = make_temp_dir("lab-config");
  const std::string in_source = "cd " + shell_quote(source_dir()) + " && ";  // the file's data path is relative
  CliResult r = krill_ok({"train", "--config", "examples/penguins.toml", "--out", dir + "/model", "-q"}, in_source);
  EXPECT_EQ(split_lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("395 of 411 validation rows"), std::string::npos) << r.err;
  const Curve flags = read_metrics(l.model + "/metrics.csv"), file = read_metrics(dir + "/model/metrics.csv");
  EXPECT_EQ(file.train_loss, flags.train_loss);
  EXPECT_EQ(file.val_loss, flags.val_loss);
  EXPECT_EQ(file.val_correct, flags.val_correct);
  EXPECT_TRUE(read_text(dir + "/model/model.safetensors") == read_text(l.model + "/model.safetensors"))
      << "the config file's weights differ from the flags' weights";
  const json a = json::parse(read_text(dir + "/model/config.json")), b = json::parse(read_text(l.model + "/config.json"));
  EXPECT_EQ(a["architecture"], b["architecture"]);
  EXPECT_EQ(a["preparation"], b["preparation"]);
  for (const char* key : {"epochs", "batch_size", "lr", "optimizer", "seed", "shuffle", "oversample", "test_size", "dropna"})
    EXPECT_EQ(a["training"][key], b["training"][key]) << key;

  // Flags on the command line override the file: a number, a switch, the data.
  CliResult three = krill_ok({"train", "--config", "examples/penguins.toml", "--epochs", "3", "--shuffle", "--seed", "5",
                              "--out", dir + "/three", "-q"},
                             in_source);
  EXPECT_EQ(read_metrics(dir + "/three/metrics.csv").epoch.size(), 3u);
  const json t = json::parse(read_text(dir + "/three/config.json"))["training"];
  EXPECT_EQ(t["epochs"], 3);
  EXPECT_EQ(t["shuffle"], true);
  EXPECT_EQ(t["seed"], 5);
  EXPECT_EQ(t["lr"], 0.001);  // still from the file
  CliResult strict = run_krill({"train", "--config", "examples/penguins.toml", "--no-dropna", "--out", dir + "/strict"},
                               in_source);
  EXPECT_EQ(strict.rc, 1) << strict.err;
  EXPECT_NE(strict.err.find("missing value"), std::string::npos) << strict.err;
  EXPECT_FALSE(fs::exists(dir + "/strict"));
  // Another DATA.csv on the command line replaces the file's data ...
  const std::string half = dir + "/half.csv";
  {
    const auto lines = split_lines(read_text(data_path("penguins.csv")));
    std::string text;
    for (std::size_t i = 0; i < lines.size(); ++i)
      if (i == 0 || i % 2 == 1) text += lines[i] + "\n";
    write_text(half, text);
  }
  CliResult other = krill_ok({"train", half, "--config", "examples/penguins.toml", "--epochs", "1", "--out",
                              dir + "/half"},
                             in_source);
  EXPECT_NE(other.out.find("Data: " + half + ": 172 rows"), std::string::npos) << other.out;
  // ... and so does pre-split data (--train/--validation drop the file's DATA.csv).
  const std::string cfg = dir + "/presplit.toml";
  write_text(cfg, "data = \"" + data_path("penguins.csv") + "\"\nlabel = \"Species\"\nepochs = 2\nquiet = true\n");
  krill_ok({"train", "--config", cfg, "--train", data_path("penguins_train.csv"), "--validation",
            data_path("penguins_val.csv"), "--out", dir + "/presplit"});
  EXPECT_EQ(read_metrics(dir + "/presplit/metrics.csv").train_loss,
            std::vector<double>(flags.train_loss.begin(), flags.train_loss.begin() + 2));
}

// The new penguin: class 1 (Gentoo), p ~ 0.98, like PyTorch; --row prepares the raw values
// exactly as training did, so it gives the very same probabilities as --features; and they
// equal exp(model(x)) of the saved weights loaded in-process.
TEST(LabCli, PredictTheNewPenguin) {
  const Lab& l = lab();
  ASSERT_EQ(l.run.rc, 0) << l.run.err;

  CliResult text = krill_ok(cat({"predict", l.model}, kNewPenguinEncoded));
  EXPECT_NE(text.out.find("Predicted class: 1 (id 1, probability 0.98"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Probabilities: 0="), std::string::npos) << text.out;
  EXPECT_TRUE(text.err.empty()) << text.err;

  const JsonPrediction enc = predict_json(l.model, kNewPenguinEncoded);
  const JsonPrediction raw = predict_json(l.model, kNewPenguinRaw);
  EXPECT_EQ(enc.cls, "1");
  EXPECT_EQ(enc.id, 1);
  ASSERT_EQ(enc.probabilities.size(), 3u);
  EXPECT_EQ(raw.cls, enc.cls);
  EXPECT_EQ(raw.id, enc.id);
  EXPECT_EQ(raw.probabilities, enc.probabilities) << "--row and --features disagree";
  double sum = 0;
  for (double p : enc.probabilities) sum += p;
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_GT(enc.probabilities[1], 0.95);
  EXPECT_LT(enc.probabilities[1], 0.995);

  // The loaded model == the trained one: krill's MLP with the weights read back from
  // model.safetensors, in this process ...
  const krill::StateDict sd = krill::io::load_safetensors(l.model + "/model.safetensors");
  krill::nn::MLP net(5, {10, 10}, 3);
  net.load_state_dict(sd);
  net.eval();
  krill::Tensor x = krill::tensor(std::vector<float>{1.0f, 50.4f, 15.3f, 20.0f, 50.0f}, {1, 5});
  krill::Tensor probs;
  {
    krill::NoGradGuard no_grad;
    probs = krill::exp(net.forward(x)).contiguous();
  }
  const float* p = probs.data_ptr<float>();
  for (int c = 0; c < 3; ++c)
    EXPECT_EQ(static_cast<double>(p[c]), enc.probabilities[c]) << "class " << c << ": in-process forward vs krill predict";
  // ... and a plain double-precision forward pass of the same weights.
  const std::vector<double> x64 = {1.0f, 50.4f, 15.3f, 20.0f, 50.0f};
  const std::vector<double> ref = mlp_probabilities(weights_of(sd), x64);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(enc.probabilities[c], ref[c], 1e-6) << "class " << c;

  // PyTorch's model (its final weights, same forward pass) predicts class 1 with the same
  // probabilities, up to the float32 differences of the two training runs.
  const std::vector<double> torch = mlp_probabilities(weights_of(torch_lab()), x64);
  EXPECT_GT(torch[1], 0.95);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(enc.probabilities[c], torch[c], 1e-3) << "class " << c << " vs PyTorch";
  std::printf("[lab] new penguin: krill p = [%.6g, %.6g, %.6g], PyTorch p = [%.6g, %.6g, %.6g]\n", enc.probabilities[0],
              enc.probabilities[1], enc.probabilities[2], torch[0], torch[1], torch[2]);
}

// --input: one prediction per row, each equal to --row on that row's raw values; --output
// writes them as CSV; --format json prints one object per row.
TEST(LabCli, PredictAFile) {
  const Lab& l = lab();
  ASSERT_EQ(l.run.rc, 0) << l.run.err;
  const std::string dir = make_temp_dir("lab-input");
  // Columns in another order, an unused column with quoted commas, the label present (ignored),
  // spaces around a category, CRLF line endings.
  const std::vector<std::vector<std::string>> rows = {
      {"Dream", "50.4", "15.3", "200", "5000"},  {"Torgersen", "39.1", "18.7", "181", "3750"},
      {"Biscoe", "46.1", "13.2", "211", "4500"}, {"Dream", "46.5", "17.9", "192", "3500"},
      {" Biscoe ", "38.8", "17.2", "180", "3800"}};
  std::string csv = "BodyMass,Note,Island,CulmenDepth,Species,FlipperLength,CulmenLength\r\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    csv += r[4] + ",\"seen on day " + std::to_string(i) + ", \"\"late\"\"\"," + r[0] + "," + r[2] + ",," + r[3] + "," +
           r[1] + "\r\n";
  }
  const std::string input = dir + "/new.csv";
  write_text(input, csv);

  CliResult js = krill_ok({"predict", l.model, "--input", input, "--format", "json"});
  const auto lines = split_lines(js.out);
  ASSERT_EQ(lines.size(), rows.size()) << js.out;
  std::vector<JsonPrediction> per_row;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    per_row.push_back(parse_prediction(lines[i]));
    const auto& r = rows[i];
    const JsonPrediction one = predict_json(l.model, {"--row", r[0] + "," + r[1] + "," + r[2] + "," + r[3] + "," + r[4]});
    EXPECT_EQ(per_row[i].cls, one.cls) << "row " << i + 1;
    EXPECT_EQ(per_row[i].id, one.id) << "row " << i + 1;
    ASSERT_EQ(per_row[i].probabilities.size(), 3u);
    for (int c = 0; c < 3; ++c)
      EXPECT_NEAR(per_row[i].probabilities[c], one.probabilities[c], 1e-7) << "row " << i + 1 << " class " << c;
  }
  EXPECT_EQ(per_row[0].id, 1);  // the new penguin
  EXPECT_EQ(per_row[1].id, 0);  // the first Adelie of the file

  // Text: a line per row naming the file's line.
  CliResult text = krill_ok({"predict", l.model, "--input", input});
  EXPECT_NE(text.out.find("row 1 (line 2): Predicted class: 1 (id 1"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("row 5 (line 6): Predicted class:"), std::string::npos) << text.out;

  // --output: row,class,class_id,p_<class>...; the probabilities are the JSON ones (printed with
  // 9 significant digits, enough to give the same float32 back).
  const std::string out = dir + "/predictions.csv";
  CliResult written = krill_ok({"predict", l.model, "--input", input, "--output", out});
  EXPECT_NE(written.out.find("Predicted 5 rows"), std::string::npos) << written.out;
  EXPECT_EQ(list_dir(dir), (std::vector<std::string>{"new.csv", "predictions.csv"})) << "no temporary file left";
  const auto out_lines = split_lines(read_text(out));
  ASSERT_EQ(out_lines.size(), rows.size() + 1) << read_text(out);
  EXPECT_EQ(out_lines[0], "row,class,class_id,p_0,p_1,p_2");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto f = split(out_lines[i + 1], ',');
    ASSERT_EQ(f.size(), 6u) << out_lines[i + 1];
    EXPECT_EQ(f[0], std::to_string(i + 1));
    EXPECT_EQ(f[1], per_row[i].cls);
    EXPECT_EQ(std::stoll(f[2]), per_row[i].id);
    for (int c = 0; c < 3; ++c)
      EXPECT_EQ(static_cast<double>(std::stof(f[3 + c])), per_row[i].probabilities[c]) << out_lines[i + 1];
  }
  // --output with --format json: the file and one object per row on stdout.
  const std::string out2 = dir + "/p2.csv";
  CliResult both = krill_ok({"predict", l.model, "--input", input, "--output", out2, "--format", "json"});
  EXPECT_EQ(read_text(out2), read_text(out));
  EXPECT_EQ(both.out, js.out);
}

// String labels: the classes are the sorted names, and predict prints the name.
TEST(LabCli, StringLabels) {
  const std::string dir = make_temp_dir("lab-names");
  const std::map<std::string, std::string> names = {{"0", "Adelie"}, {"1", "Gentoo"}, {"2", "Chinstrap"}};
  std::string text;
  const auto lines = split_lines(read_text(data_path("penguins.csv")));
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i == 0) {
      text += lines[i] + "\n";
      continue;
    }
    const auto comma = lines[i].rfind(',');
    text += lines[i].substr(0, comma + 1) + names.at(lines[i].substr(comma + 1)) + "\n";
  }
  const std::string csv = dir + "/penguins_named.csv";
  write_text(csv, text);
  krill_ok(cat(cat({"train", csv}, lab_prep()), {"--out", dir + "/model", "-q"}));
  const json cfg = json::parse(read_text(dir + "/model/config.json"));
  EXPECT_EQ(cfg["preparation"]["classes"], json::array({"Adelie", "Chinstrap", "Gentoo"}));
  EXPECT_EQ(cfg["preparation"]["integer_labels"], false);
  const Curve c = read_metrics(dir + "/model/metrics.csv");
  ASSERT_FALSE(c.val_correct.empty());
  EXPECT_GE(c.val_correct.back(), 400) << "the named lab should train as well as the numbered one";

  const JsonPrediction p = predict_json(dir + "/model", kNewPenguinRaw);
  EXPECT_EQ(p.cls, "Gentoo");
  EXPECT_EQ(p.id, 2);
  CliResult t = krill_ok(cat({"predict", dir + "/model"}, kNewPenguinRaw));
  EXPECT_NE(t.out.find("Predicted class: Gentoo (id 2, probability"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("Adelie="), std::string::npos) << t.out;
  CliResult ins = krill_ok({"inspect", dir + "/model"});
  EXPECT_NE(ins.out.find("classes: Adelie=0, Chinstrap=1, Gentoo=2"), std::string::npos) << ins.out;
  // --input on a file with the label column as names (ignored) and --output naming the classes.
  const std::string input = dir + "/new.csv", out = dir + "/out.csv";
  write_text(input, "Island,CulmenLength,CulmenDepth,FlipperLength,BodyMass,Species\nDream,50.4,15.3,200,5000,?\n");
  krill_ok({"predict", dir + "/model", "--input", input, "--output", out});
  const auto out_lines = split_lines(read_text(out));
  ASSERT_EQ(out_lines.size(), 2u);
  EXPECT_EQ(out_lines[0], "row,class,class_id,p_Adelie,p_Chinstrap,p_Gentoo");
  EXPECT_EQ(out_lines[1].rfind("1,Gentoo,2,", 0), 0u) << out_lines[1];
}

// inspect: every layer's name and shape, the preparation; --full prints every weight exactly.
TEST(LabCli, Inspect) {
  const Lab& l = lab();
  ASSERT_EQ(l.run.rc, 0) << l.run.err;
  CliResult r = krill_ok({"inspect", l.model});
  const std::string& o = r.out;
  EXPECT_NE(o.find("MLP 5-10-10-3"), std::string::npos) << o;
  EXPECT_NE(o.find("203 parameters"), std::string::npos) << o;
  EXPECT_NE(o.find("Label: Species; classes: 0=0, 1=1, 2=2"), std::string::npos) << o;
  EXPECT_NE(o.find("Island: categorical {Biscoe=0, Dream=1, Torgersen=2}"), std::string::npos) << o;
  EXPECT_NE(o.find("CulmenLength: numeric\n"), std::string::npos) << o;
  EXPECT_NE(o.find("FlipperLength: numeric, x 0.1\n"), std::string::npos) << o;
  EXPECT_NE(o.find("BodyMass: numeric, x 0.01\n"), std::string::npos) << o;
  const std::vector<std::string> shapes = {"fc1.weight [10, 5]", "fc1.bias [10]", "fc2.weight [10, 10]",
                                           "fc2.bias [10]",      "fc3.weight [3, 10]", "fc3.bias [3]"};
  std::size_t at = 0;
  for (const auto& s : shapes) {
    const std::size_t found = o.find("\n" + s + "\n", at);
    EXPECT_NE(found, std::string::npos) << "'" << s << "' missing or out of order:\n" << o;
    if (found != std::string::npos) at = found + 1;
  }
  EXPECT_TRUE(r.err.empty()) << r.err;

  // --full: after each "name [shape]" line, one line per row with every value (9 significant
  // digits: the float32 values exactly).
  CliResult full = krill_ok({"inspect", l.model, "--full"});
  const krill::StateDict sd = krill::io::load_safetensors(l.model + "/model.safetensors");
  const auto lines = split_lines(full.out);
  std::size_t values_checked = 0;
  for (const auto& [name, t] : sd) {
    const std::string header = name + " " + t.shape().str();
    const auto it = std::find(lines.begin(), lines.end(), header);
    ASSERT_NE(it, lines.end()) << "no '" << header << "' in:\n" << full.out;
    const std::int64_t rows = t.ndim() == 2 ? t.size(0) : 1, cols = t.ndim() == 2 ? t.size(1) : t.numel();
    krill::Tensor c = t.contiguous();
    const float* p = c.data_ptr<float>();
    for (std::int64_t i = 0; i < rows; ++i) {
      ASSERT_LT(static_cast<std::size_t>(it - lines.begin() + 1 + i), lines.size());
      std::vector<std::string> fields;
      for (const auto& f : split(*(it + 1 + i), ' '))
        if (!f.empty()) fields.push_back(f);
      ASSERT_EQ(fields.size(), static_cast<std::size_t>(cols)) << name << " row " << i << ": " << *(it + 1 + i);
      for (std::int64_t j = 0; j < cols; ++j, ++values_checked)
        EXPECT_EQ(std::stof(fields[j]), p[i * cols + j]) << name << "[" << i << "][" << j << "] printed " << fields[j];
    }
  }
  EXPECT_EQ(values_checked, 203u);
  EXPECT_EQ(full.out.find("..."), std::string::npos) << "--full must not summarise";
}

// --standardize: mean/std fitted on the training split are saved, shown, and applied to --row
// exactly as in training (the same probabilities as --features given the standardised values).
TEST(LabCli, StandardizedModelPreparesRowsLikeTraining) {
  const std::string dir = make_temp_dir("lab-std");
  krill_ok(cat(cat({"train", data_path("penguins.csv")}, lab_prep()), {"--standardize", "--epochs", "20", "--out",
                                                                        dir + "/model", "-q"}));
  const json prep = json::parse(read_text(dir + "/model/config.json"))["preparation"];
  std::vector<double> mean, sd_, scale;
  for (const auto& f : prep["features"]) {
    EXPECT_EQ(f["standardized"], true) << f.dump();
    mean.push_back(f["mean"].get<double>());
    sd_.push_back(f["std"].get<double>());
    scale.push_back(f["scale"].get<double>());
  }
  ASSERT_EQ(mean.size(), 5u);
  CliResult ins = krill_ok({"inspect", dir + "/model"});
  EXPECT_NE(ins.out.find("standardised (mean "), std::string::npos) << ins.out;

  // The raw new penguin, prepared by hand the documented way: category index or number as
  // float32, * scale (in double; the lab's /10 and /100 as divisions), back to float32, then
  // float32(float32(x - mean) / std).
  const double raw[5] = {1, 50.4, 15.3, 200, 5000};
  std::string encoded;
  for (int i = 0; i < 5; ++i) {
    float v = static_cast<float>(raw[i]);
    if (scale[i] == 0.1) v = static_cast<float>(static_cast<double>(v) / 10);
    else if (scale[i] == 0.01) v = static_cast<float>(static_cast<double>(v) / 100);
    else if (scale[i] != 1.0) v = static_cast<float>(static_cast<double>(v) * scale[i]);
    const float centred = static_cast<float>(static_cast<double>(v) - mean[i]);
    const float z = static_cast<float>(static_cast<double>(centred) / sd_[i]);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%.9g", i ? "," : "", z);
    encoded += buf;
  }
  const JsonPrediction row = predict_json(dir + "/model", kNewPenguinRaw);
  const JsonPrediction enc = predict_json(dir + "/model", {"--features", encoded});
  EXPECT_EQ(row.id, enc.id);
  ASSERT_EQ(row.probabilities.size(), 3u);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(row.probabilities[c], enc.probabilities[c], 1e-6) << "class " << c;
}

// --dropna looks only at the columns used: a missing value in an unused column keeps the row.
TEST(LabCli, DropnaLooksOnlyAtUsedColumns) {
  const std::string dir = make_temp_dir("lab-dropna");
  const auto lines = split_lines(read_text(data_path("penguins.csv")));
  std::string text;
  for (std::size_t i = 0; i < lines.size(); ++i)
    text += lines[i] + (i == 0 ? ",Comment" : (i % 3 == 0 ? ",NA" : ",\"ok, measured\"")) + "\n";
  const std::string csv = dir + "/with_comment.csv";
  write_text(csv, text);
  CliResult r = krill_ok(cat(cat({"train", csv}, lab_prep()), {"--features",
                                                               "Island,CulmenLength,CulmenDepth,FlipperLength,BodyMass",
                                                               "--epochs", "1", "--out", dir + "/model"}));
  EXPECT_NE(r.out.find(": 344 rows, 2 dropped (missing values), x4 oversampled = 1368"), std::string::npos) << r.out;
  // Without --features the text column is a feature: it must be declared categorical, and its
  // NA rows are dropped too.
  CliResult all = run_krill(cat(cat({"train", csv}, lab_prep()), {"--epochs", "1", "--out", dir + "/all"}));
  EXPECT_EQ(all.rc, 1);
  EXPECT_NE(all.err.find("'Comment'"), std::string::npos) << all.err;
  EXPECT_NE(all.err.find("--categorical"), std::string::npos) << all.err;
}

// Column names with spaces, parentheses and commas can be named in --features, --categorical
// and --scale (a name with a comma in double quotes) and in a config file's arrays.
TEST(LabCli, ColumnNamesWithCommas) {
  const std::string dir = make_temp_dir("lab-names-commas");
  const auto lines = split_lines(read_text(data_path("penguins.csv")));
  std::string text = "\"Island, where\",Culmen Length (mm),CulmenDepth,\"Flipper, mm\",BodyMass,Species,Unused\n";
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto f = split(lines[i], ',');
    text += f[0] + "," + f[1] + "," + f[2] + "," + f[3] + "," + f[4] + "," + f[5] + ",x\n";
  }
  const std::string csv = dir + "/odd.csv";
  write_text(csv, text);
  const std::vector<std::string> features = {
      "--features", "\"Island, where\",Culmen Length (mm), CulmenDepth ,\"Flipper, mm\",BodyMass", "--categorical",
      "\"Island, where\"", "--scale", "\"Flipper, mm=0.1\",BodyMass=0.01"};
  const std::vector<std::string> rest = {"--label", "Species", "--oversample", "4", "--seed", "0", "-q"};
  krill_ok(cat(cat(cat({"train", csv}, features), rest), {"--out", dir + "/flags"}));
  CliResult misquoted = run_krill(cat(cat({"train", csv, "--scale", "\"Flipper, mm\"=0.1"}, rest), {"--out", dir + "/x"}));
  EXPECT_EQ(misquoted.rc, 2);
  EXPECT_NE(misquoted.err.find("quote whole items: \"Flipper, mm=0.1\""), std::string::npos) << misquoted.err;
  // The same numbers as the lab (only the names differ).
  const Lab& l = lab();
  ASSERT_EQ(l.run.rc, 0);
  EXPECT_EQ(read_metrics(dir + "/flags/metrics.csv").train_loss, read_metrics(l.model + "/metrics.csv").train_loss);
  const json prep = json::parse(read_text(dir + "/flags/config.json"))["preparation"];
  EXPECT_EQ(prep["features"][0]["name"], "Island, where");
  EXPECT_EQ(prep["features"][1]["name"], "Culmen Length (mm)");
  EXPECT_EQ(prep["features"][3]["name"], "Flipper, mm");
  EXPECT_EQ(prep["features"][3]["scale"], 0.1);

  // A config file's arrays: each item is one name, commas and all.
  const std::string cfg = dir + "/odd.toml";
  write_text(cfg, "data = \"" + csv +
                      "\"\nlabel = \"Species\"\nfeatures = [\"Island, where\", \"Culmen Length (mm)\", \"CulmenDepth\", "
                      "\"Flipper, mm\", \"BodyMass\"]\ncategorical = [\"Island, where\"]\nscale = [\"Flipper, mm=0.1\", "
                      "\"BodyMass=0.01\"]\noversample = 4\nquiet = true\n");
  krill_ok({"train", "--config", cfg, "--out", dir + "/config"});
  EXPECT_TRUE(read_text(dir + "/config/model.safetensors") == read_text(dir + "/flags/model.safetensors"))
      << "the config file's run differs from the flags' run";
  CliResult ins = krill_ok({"inspect", dir + "/config"});
  EXPECT_NE(ins.out.find("Island, where: categorical {Biscoe=0, Dream=1, Torgersen=2}"), std::string::npos) << ins.out;
}
