// `krill predict` and `krill inspect` on bad input: a model directory that is missing, not a
// model, incomplete or corrupt (config.json or model.safetensors), inputs with the wrong number
// of values, non-numbers, unknown categories, missing values or missing columns, and misused
// flags. Each ends with exit code 1 or 2 (2: the command line), one line on stderr
// "krill predict: error: ..." naming the file, flag or column, nothing on stdout, nothing
// written (no --output file, no temporary file, an existing --output file untouched) and the
// model directory unchanged.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "cli/lab_helpers.hpp"
#include "krill/io/safetensors.hpp"
#include "krill/nn/models/mlp.hpp"
#include "support/oracle.hpp"

using krill::test::make_temp_dir;
using namespace krill::test::cli;
using namespace krill::test::lab;
using json = nlohmann::json;

namespace {

// A small lab model (2 epochs), trained once; cases that need a broken model copy it.
const std::string& good_model() {
  static const std::string dir = [] {
    const std::string d = make_temp_dir("predict-err-model") + "/model";
    CliResult r = run_krill(cat(cat({"train", data_path("penguins.csv")}, lab_prep()), {"--epochs", "2", "--out", d, "-q"}));
    EXPECT_EQ(r.rc, 0) << r.err;
    return d;
  }();
  return dir;
}

// A copy of the good model with `edit` applied (to its directory).
std::string broken_model(const std::string& tag, const std::function<void(const std::string&)>& edit) {
  const std::string dir = make_temp_dir("predict-err-" + tag) + "/model";
  fs::copy(good_model(), dir, fs::copy_options::recursive);
  edit(dir);
  return dir;
}

// config.json of the copy, edited as JSON.
std::string broken_config(const std::string& tag, const std::function<void(json&)>& edit) {
  return broken_model(tag, [&](const std::string& dir) {
    json cfg = json::parse(read_text(dir + "/config.json"));
    edit(cfg);
    write_text(dir + "/config.json", cfg.dump(2));
  });
}

struct Expect {
  std::vector<std::string> mentions;
  std::vector<int> codes = {1, 2};
};

// Snapshot of a directory's files (names and bytes), to prove it was not touched.
std::vector<std::pair<std::string, std::string>> contents(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> v;
  for (const auto& name : list_dir(dir)) v.emplace_back(name, read_text(dir + "/" + name));
  return v;
}

std::string expect_failure(const std::string& what, const std::string& command, const std::vector<std::string>& args,
                           const Expect& expect, const std::string& model_dir = "") {
  SCOPED_TRACE(what);
  std::string output;  // --output's file, if any
  for (std::size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--output") output = args[i + 1];
  const bool output_existed = !output.empty() && fs::exists(output);
  const std::string output_before = output_existed ? read_text(output) : "";
  const auto model_before = model_dir.empty() ? decltype(contents("")){} : contents(model_dir);

  std::vector<std::string> full = {command};
  full.insert(full.end(), args.begin(), args.end());
  CliResult r = run_krill(full);
  EXPECT_LT(r.rc, 128) << "killed by signal " << r.rc - 128 << ": " << r.command << "\n" << r.err;
  EXPECT_TRUE(std::find(expect.codes.begin(), expect.codes.end(), r.rc) != expect.codes.end())
      << "exit code " << r.rc << ": " << r.command << "\nstdout: " << r.out << "\nstderr: " << r.err;
  EXPECT_EQ(r.out, "") << "nothing on stdout when failing: " << r.command;
  const auto lines = split_lines(r.err);
  EXPECT_EQ(lines.size(), 1u) << "stderr should be one line:\n" << r.err;
  const std::string line = lines.empty() ? "" : lines.front();
  EXPECT_EQ(line.rfind("krill " + command + ": error: ", 0), 0u) << line;
  for (const auto& m : expect.mentions) EXPECT_NE(line.find(m), std::string::npos) << "'" << m << "' not in: " << line;
  if (!output.empty()) {
    EXPECT_EQ(fs::exists(output), output_existed) << "--output " << output << " written by: " << r.command;
    if (output_existed) EXPECT_EQ(read_text(output), output_before) << "--output " << output << " was changed";
    EXPECT_FALSE(fs::exists(output + ".tmp")) << "temporary file left behind";
  }
  if (!model_dir.empty()) EXPECT_EQ(contents(model_dir), model_before) << "the model directory was changed";
  std::printf("  %-44s exit %d  %s\n", what.c_str(), r.rc, line.c_str());
  return line;
}

std::string predict_failure(const std::string& what, const std::vector<std::string>& args, const Expect& expect,
                            const std::string& model_dir = "") {
  return expect_failure(what, "predict", args, expect, model_dir);
}

const std::vector<std::string> kFeatures = {"--features", "1,50.4,15.3,20,50"};

}  // namespace

TEST(PredictCliErrors, Sanity) {
  // The good model predicts, so every failure below is caused by the one thing changed.
  CliResult r = run_krill(cat({"predict", good_model()}, kFeatures));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("Predicted class:"), std::string::npos);
  ASSERT_EQ(run_krill({"inspect", good_model()}).rc, 0);
}

TEST(PredictCliErrors, ModelDirectory) {
  const std::string tmp = make_temp_dir("predict-err-dirs");
  const std::string missing = tmp + "/no-such-model";
  predict_failure("missing model directory", cat({missing}, kFeatures), {{missing, "no such model directory"}, {1}});
  const std::string file = tmp + "/a-file";
  write_text(file, "x");
  predict_failure("a file as model directory", cat({file}, kFeatures), {{file, "not a model directory"}, {1}});
  const std::string empty = tmp + "/empty";
  fs::create_directory(empty);
  predict_failure("empty directory", cat({empty}, kFeatures), {{empty, "config.json is missing"}, {1}}, empty);
  const std::string weights_only = broken_model("weights-only", [](const std::string& d) { fs::remove(d + "/config.json"); });
  predict_failure("no config.json", cat({weights_only}, kFeatures), {{weights_only, "config.json is missing"}, {1}},
                  weights_only);
  const std::string no_weights =
      broken_model("no-weights", [](const std::string& d) { fs::remove(d + "/model.safetensors"); });
  predict_failure("no model.safetensors", cat({no_weights}, kFeatures),
                  {{no_weights, "model.safetensors is missing"}, {1}}, no_weights);
  // metrics.csv and loss.png are not needed to predict.
  const std::string lean = broken_model("lean", [](const std::string& d) {
    fs::remove(d + "/metrics.csv");
    fs::remove(d + "/loss.png");
  });
  EXPECT_EQ(run_krill(cat({"predict", lean}, kFeatures)).rc, 0);
}

TEST(PredictCliErrors, CorruptConfig) {
  auto text = [](const std::string& tag, const std::string& content) {
    return broken_model(tag, [&](const std::string& d) { write_text(d + "/config.json", content); });
  };
  std::string d = text("truncated", read_text(good_model() + "/config.json").substr(0, 100));
  predict_failure("truncated config.json", cat({d}, kFeatures), {{d, "config.json", "not valid JSON"}, {1}}, d);
  d = text("emptycfg", "");
  predict_failure("empty config.json", cat({d}, kFeatures), {{d, "config.json"}, {1}}, d);
  d = text("binarycfg", std::string("\0\x01\xff\xfe", 4));
  predict_failure("binary config.json", cat({d}, kFeatures), {{d, "config.json"}, {1}}, d);
  d = text("notkrill", "{}");
  predict_failure("not a krill config", cat({d}, kFeatures), {{d, "config.json", "krill-model"}, {1}}, d);
  d = text("array", "[1, 2]");
  predict_failure("config.json is an array", cat({d}, kFeatures), {{d, "config.json"}, {1}}, d);

  d = broken_config("version", [](json& c) { c["format_version"] = 2; });
  predict_failure("newer format_version", cat({d}, kFeatures), {{d, "format_version"}, {1}}, d);
  d = broken_config("nohidden", [](json& c) { c["architecture"].erase("hidden"); });
  predict_failure("architecture without hidden", cat({d}, kFeatures), {{d, "config.json", "hidden"}, {1}}, d);
  d = broken_config("noarch", [](json& c) { c.erase("architecture"); });
  predict_failure("no architecture", cat({d}, kFeatures), {{d, "config.json", "architecture"}, {1}}, d);
  d = broken_config("hiddentype", [](json& c) { c["architecture"]["hidden"] = "ten"; });
  predict_failure("hidden is a string", cat({d}, kFeatures), {{d, "config.json"}, {1}}, d);
  d = broken_config("arch-type", [](json& c) { c["architecture"]["type"] = "transformer"; });
  predict_failure("unknown architecture type", cat({d}, kFeatures), {{d, "config.json", "transformer"}, {1}}, d);
  d = broken_config("hugehidden", [](json& c) { c["architecture"]["hidden"] = json::array({100000000000LL}); });
  predict_failure("absurd hidden width", cat({d}, kFeatures), {{d, "config.json"}, {1}}, d);
  d = broken_config("noprep", [](json& c) { c.erase("preparation"); });
  predict_failure("no preparation", cat({d}, kFeatures), {{d, "preparation"}, {1}}, d);
  d = broken_config("unsorted", [](json& c) {
    c["preparation"]["features"][0]["categories"] = json::array({"Dream", "Biscoe", "Torgersen"});
  });
  predict_failure("unsorted categories", cat({d}, kFeatures), {{d, "config.json", "categories"}, {1}}, d);
  d = broken_config("nofeature", [](json& c) { c["preparation"]["features"].erase(4); });
  predict_failure("4 features for a 5-input network", cat({d}, kFeatures), {{d, "config.json", "features"}, {1}}, d);
  d = broken_config("classes", [](json& c) { c["preparation"]["classes"] = json::array({"a", "b"}); });
  predict_failure("2 classes for a 3-output network", cat({d}, kFeatures), {{d, "config.json", "classes"}, {1}}, d);
  d = broken_config("badstd", [](json& c) {
    c["preparation"]["features"][1]["standardized"] = true;
    c["preparation"]["features"][1]["mean"] = 1.0;
    c["preparation"]["features"][1]["std"] = -1.0;
  });
  predict_failure("negative std", cat({d}, kFeatures), {{d, "config.json", "std"}, {1}}, d);
  d = broken_config("scaletype", [](json& c) { c["preparation"]["features"][3]["scale"] = "0.1"; });
  predict_failure("scale is a string", cat({d}, kFeatures), {{d, "config.json", "scale"}, {1}}, d);

  // inspect reads the same way.
  d = text("inspect-truncated", "{\"format\": ");
  expect_failure("inspect: truncated config.json", "inspect", {d}, {{d, "config.json"}, {1}}, d);
  d = broken_config("inspect-noprep", [](json& c) { c.erase("preparation"); });
  expect_failure("inspect: no preparation", "inspect", {d}, {{d, "preparation"}, {1}}, d);
}

TEST(PredictCliErrors, CorruptWeights) {
  const std::string bytes = read_text(good_model() + "/model.safetensors");
  auto weights = [](const std::string& tag, const std::string& content) {
    return broken_model(tag, [&](const std::string& d) { write_text(d + "/model.safetensors", content); });
  };
  std::string d = weights("trunc", bytes.substr(0, bytes.size() - 40));
  predict_failure("truncated weights", cat({d}, kFeatures), {{d, "model.safetensors"}, {1}}, d);
  d = weights("trunc-header", bytes.substr(0, 40));
  predict_failure("truncated header", cat({d}, kFeatures), {{d, "model.safetensors"}, {1}}, d);
  d = weights("empty", "");
  predict_failure("empty weights", cat({d}, kFeatures), {{d, "model.safetensors"}, {1}}, d);
  d = weights("text", "these are not weights\n");
  predict_failure("text as weights", cat({d}, kFeatures), {{d, "model.safetensors"}, {1}}, d);
  std::string corrupt = bytes;
  corrupt[8] = '[';
  d = weights("corrupt", corrupt);
  predict_failure("corrupt header", cat({d}, kFeatures), {{d, "model.safetensors"}, {1}}, d);

  // Well-formed files that do not fit config.json.
  auto state = [&](const std::string& tag, const krill::StateDict& sd) {
    return broken_model(tag, [&](const std::string& dir) { krill::io::save_safetensors(sd, dir + "/model.safetensors"); });
  };
  d = state("other-net", krill::nn::MLP(5, {16}, 3).state_dict());
  predict_failure("weights of another network", cat({d}, kFeatures), {{d, "model.safetensors", "fc1.weight"}, {1}}, d);
  d = state("wider", krill::nn::MLP(5, {10, 12}, 3).state_dict());
  predict_failure("wrong shape", cat({d}, kFeatures), {{d, "model.safetensors", "fc2.weight", "[12, 10]", "[10, 10]"}, {1}},
                  d);
  {
    krill::StateDict sd = krill::io::load_safetensors(good_model() + "/model.safetensors");
    krill::StateDict fewer;
    for (const auto& [k, v] : sd)
      if (k != "fc3.bias") fewer.insert(k, v);
    d = state("missing-tensor", fewer);
    predict_failure("a tensor missing", cat({d}, kFeatures), {{d, "model.safetensors", "fc3.bias"}, {1}}, d);
    krill::StateDict more;
    for (const auto& [k, v] : sd) more.insert(k, v);
    more.insert("fc4.weight", krill::zeros({3, 3}));
    d = state("extra-tensor", more);
    predict_failure("an extra tensor", cat({d}, kFeatures), {{d, "model.safetensors", "fc4.weight"}, {1}}, d);
  }
  // config.json describing another shape than the weights.
  d = broken_config("cfg-shape", [](json& c) { c["architecture"]["hidden"] = json::array({10, 7}); });
  predict_failure("config.json shape differs", cat({d}, kFeatures), {{d, "model.safetensors", "config.json", "fc2.weight"}, {1}},
                  d);
  expect_failure("inspect: wrong shape", "inspect", {d}, {{d, "fc2.weight"}, {1}}, d);
  d = weights("inspect-trunc", bytes.substr(0, 30));
  expect_failure("inspect: truncated weights", "inspect", {d}, {{d, "model.safetensors"}, {1}}, d);
}

TEST(PredictCliErrors, Values) {
  const std::string m = good_model();
  auto features = [&](const std::string& v) { return std::vector<std::string>{m, "--features", v}; };
  auto row = [&](const std::string& v) { return std::vector<std::string>{m, "--row", v}; };
  predict_failure("--features with 4 values", features("1,50.4,15.3,20"),
                  {{"--features", "5", "Island, CulmenLength, CulmenDepth, FlipperLength, BodyMass", "got 4"}, {1}}, m);
  predict_failure("--features with 6 values", features("1,50.4,15.3,20,50,7"), {{"--features", "got 6"}, {1}}, m);
  predict_failure("--features with a word", features("1,50.4,x,20,50"), {{"--features", "'x'", "CulmenDepth", "--row"}, {1}}, m);
  predict_failure("--features with a category name", features("Dream,50.4,15.3,20,50"),
                  {{"--features", "'Dream'", "Island", "--row"}, {1}}, m);
  predict_failure("--features with inf", features("1,50.4,15.3,20,inf"), {{"--features", "'inf'", "BodyMass"}, {1}}, m);
  predict_failure("--features with nan", features("1,50.4,15.3,nan,50"), {{"--features", "'nan'", "FlipperLength"}, {1}}, m);
  predict_failure("--features with an empty value", features("1,50.4,,20,50"), {{"--features", "CulmenDepth"}, {1}}, m);
  predict_failure("--features with 1e999", features("1,50.4,15.3,20,1e999"), {{"--features", "BodyMass"}, {1}}, m);
  predict_failure("--features empty", features(""), {{"--features", "empty"}, {2}}, m);

  predict_failure("--row unknown category", row("Dreamy,50.4,15.3,200,5000"),
                  {{"--row", "'Dreamy'", "Island", "Biscoe, Dream, Torgersen"}, {1}}, m);
  predict_failure("--row wrong count", row("Dream,50.4,15.3,200"), {{"--row", "5", "got 4"}, {1}}, m);
  predict_failure("--row non-number", row("Dream,50.4,abc,200,5000"), {{"--row", "'abc'", "CulmenDepth"}, {1}}, m);
  predict_failure("--row missing value", row("Dream,50.4,NA,200,5000"), {{"--row", "CulmenDepth", "missing"}, {1}}, m);
  predict_failure("--row infinite value", row("Dream,50.4,15.3,200,-inf"), {{"--row", "BodyMass"}, {1}}, m);
  predict_failure("--row unterminated quote", row("\"Dream,50.4,15.3,200,5000"), {{"--row"}, {1}}, m);
  predict_failure("--row empty", row(""), {{"--row", "empty"}, {2}}, m);
}

TEST(PredictCliErrors, InputFiles) {
  const std::string m = good_model();
  const std::string dir = make_temp_dir("predict-err-input");
  const std::string header = "Island,CulmenLength,CulmenDepth,FlipperLength,BodyMass\n";
  std::vector<std::string> made;
  auto file = [&](const std::string& name, const std::string& content) {
    made.push_back(name);
    write_text(dir + "/" + name, content);
    return dir + "/" + name;
  };
  const std::string out = dir + "/out.csv";
  auto input = [&](const std::string& path) { return std::vector<std::string>{m, "--input", path, "--output", out}; };

  std::string f = file("nomass.csv", "Island,CulmenLength,CulmenDepth,FlipperLength\nDream,40,18,190\n");
  predict_failure("--input without a feature column", input(f), {{f, "'BodyMass'"}, {1}}, m);
  f = file("na.csv", header + "Dream,40,18,190,3800\nDream,41,,191,3900\n");
  predict_failure("--input with a missing value", input(f), {{f, "line 3", "'CulmenDepth'", "missing"}, {1}}, m);
  f = file("nan.csv", header + "Dream,40,18,190,NaN\n");
  predict_failure("--input with NaN", input(f), {{f, "line 2", "'BodyMass'"}, {1}}, m);
  f = file("unknown.csv", header + "Dream,40,18,190,3800\nAtlantis,41,17,191,3900\n");
  predict_failure("--input with an unknown category", input(f),
                  {{f, "line 3", "'Island'", "'Atlantis'", "Biscoe, Dream, Torgersen"}, {1}}, m);
  f = file("text.csv", header + "Dream,forty,18,190,3800\n");
  predict_failure("--input with text in a numeric column", input(f), {{f, "line 2", "'CulmenLength'", "'forty'"}, {1}}, m);
  f = file("inf.csv", header + "Dream,40,18,190,inf\n");
  predict_failure("--input with an infinite value", input(f), {{f, "line 2", "'BodyMass'"}, {1}}, m);
  f = file("ragged.csv", header + "Dream,40,18,190,3800\nDream,40,18\n");
  predict_failure("--input with a ragged row", input(f), {{f, "line 3"}, {1}}, m);
  f = file("quote.csv", header + "Dream,40,18,190,3800\n\"Dream,40,18,190,3800\n");
  predict_failure("--input with an unterminated quote", input(f), {{f, "line 3", "quote"}, {1}}, m);
  f = file("header.csv", header);
  predict_failure("--input header only", input(f), {{f, "no data rows"}, {1}}, m);
  f = file("empty.csv", "");
  predict_failure("--input empty", input(f), {{f, "empty"}, {1}}, m);
  f = file("binary.csv", std::string("\x7f" "ELF\x02\x01\x01\0\0\0\xff\xfe", 13));
  predict_failure("--input binary", input(f), {{f}, {1}}, m);
  predict_failure("--input missing", input(dir + "/nope.csv"), {{"--input", dir + "/nope.csv"}, {2}}, m);
  predict_failure("--input a directory", input(dir), {{"--input", dir}, {1, 2}}, m);

  // An existing --output file is left as it was when predicting fails.
  write_text(out, "keep me\n");
  f = file("na2.csv", header + "Dream,40,,190,3800\n");
  predict_failure("failure keeps an existing --output", input(f), {{f, "line 2"}, {1}}, m);
  EXPECT_EQ(read_text(out), "keep me\n");
  fs::remove(out);

  // --output that would destroy something.
  const std::string good = file("good.csv", header + "Dream,50.4,15.3,200,5000\n");
  predict_failure("--output is the --input", {m, "--input", good, "--output", good}, {{"--output", good, "--input"}, {1, 2}}, m);
  EXPECT_EQ(read_text(good), header + "Dream,50.4,15.3,200,5000\n");
  predict_failure("--output inside the model", {m, "--input", good, "--output", m + "/metrics.csv"},
                  {{"--output", "model directory"}, {1, 2}}, m);
  predict_failure("--output is a directory", {m, "--input", good, "--output", dir}, {{"--output", dir, "directory"}, {1, 2}}, m);
  predict_failure("--output in a missing directory", {m, "--input", good, "--output", dir + "/no/such/dir/p.csv"},
                  {{"--output", dir + "/no/such/dir/p.csv"}, {1}}, m);
  predict_failure("--output empty", {m, "--input", good, "--output", ""}, {{"--output", "empty"}, {2}}, m);
  std::sort(made.begin(), made.end());
  EXPECT_EQ(list_dir(dir), made) << "a file was written into " << dir;
}

TEST(PredictCliErrors, CommandLine) {
  const std::string m = good_model();
  const std::string dir = make_temp_dir("predict-err-flags");
  const std::string in = dir + "/in.csv";
  write_text(in, "Island,CulmenLength,CulmenDepth,FlipperLength,BodyMass\nDream,50.4,15.3,200,5000\n");
  predict_failure("none of --features/--row/--input", {m}, {{"--features", "--row", "--input"}, {1, 2}}, m);
  predict_failure("--features and --row", {m, "--features", "1,50.4,15.3,20,50", "--row", "Dream,50.4,15.3,200,5000"},
                  {{"only one", "--features", "--row"}, {1, 2}}, m);
  predict_failure("--row and --input", {m, "--row", "Dream,50.4,15.3,200,5000", "--input", in},
                  {{"only one"}, {1, 2}}, m);
  predict_failure("--output without --input", {m, "--features", "1,50.4,15.3,20,50", "--output", dir + "/p.csv"},
                  {{"--output", "--input"}, {1, 2}}, m);
  EXPECT_FALSE(fs::exists(dir + "/p.csv"));
  predict_failure("--format xml", {m, "--features", "1,50.4,15.3,20,50", "--format", "xml"}, {{"--format", "xml"}, {2}}, m);
  predict_failure("unknown flag", {m, "--featurs", "1,50.4,15.3,20,50"}, {{"'--featurs'", "did you mean '--features'"}, {2}}, m);
  predict_failure("no model directory", {"--features", "1,50.4,15.3,20,50"}, {{"model_dir"}, {2}});
  predict_failure("two model directories", {m, m, "--features", "1,50.4,15.3,20,50"}, {{"unexpected argument"}, {2}}, m);
  predict_failure("--features without a value", {m, "--features"}, {{"--features"}, {2}}, m);
  predict_failure("--features given twice", {m, "--features", "1,2,3,4,5", "--features", "1,2,3,4,5"},
                  {{"--features", "more than once"}, {2}}, m);
  expect_failure("inspect: no model directory", "inspect", {}, {{"model_dir"}, {2}});
  expect_failure("inspect: missing directory", "inspect", {dir + "/nope"}, {{dir + "/nope", "no such model directory"}, {1}});
  expect_failure("inspect: unknown flag", "inspect", {m, "--ful"}, {{"'--ful'", "did you mean '--full'"}, {2}}, m);
  EXPECT_EQ(list_dir(dir), std::vector<std::string>{"in.csv"});
}
