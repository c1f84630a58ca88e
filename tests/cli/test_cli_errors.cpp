// `krill train` on bad input: every misuse (unknown or missing flags, bad flag values,
// unreadable / empty / binary / malformed CSVs, unknown columns, bad labels, bad initial
// weights, an existing output directory; on raw CSVs: text in numeric columns, unknown
// --categorical / --scale / --features columns, malformed --scale, bad --test-size /
// --oversample, too few rows, DATA.csv and --train together; bad --config files) ends with exit
// code 1 or 2 — never a signal — and one line on stderr, "krill train: error: ...", that names
// the flag, file, line or column; and leaves no output directory (nor a hidden staging
// directory) behind. Exit code 2 is a bad command line (or config file), 1 bad data.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "krill/io/safetensors.hpp"
#include "krill/nn/models/mlp.hpp"
#include "support/oracle.hpp"

using krill::test::make_temp_dir;
using krill::test::source_dir;
using namespace krill::test::cli;

namespace {

// Input files for the cases, made once per test program.
struct Inputs {
  std::string dir;
  // Valid penguin CSVs: a slice of the bundled split, so runs are short, whose validation rows
  // do not occur in the training slice (else krill rightly warns about leakage on stderr).
  std::string train, val;
  std::string header;      // the header line
  std::vector<std::string> train_rows, val_rows;

  std::string path(const std::string& name) const { return dir + "/" + name; }
  // A training-like CSV whose `row`-th data row (0-based) is replaced by `replacement`.
  std::string train_with(const std::string& name, std::size_t row, const std::string& replacement) const {
    std::string text = header + "\n";
    for (std::size_t i = 0; i < train_rows.size(); ++i) text += (i == row ? replacement : train_rows[i]) + "\n";
    write_text(path(name), text);
    return path(name);
  }
  std::string file(const std::string& name, const std::string& content) const {
    write_text(path(name), content);
    return path(name);
  }
};

const Inputs& inputs() {
  static const Inputs in = [] {
    Inputs in;
    in.dir = make_temp_dir("cli-err-inputs");
    auto train_lines = split_lines(read_text(source_dir() + "/data/penguins_train.csv"));
    auto val_lines = split_lines(read_text(source_dir() + "/data/penguins_val.csv"));
    in.header = train_lines.at(0);
    in.train_rows.assign(train_lines.begin() + 1, train_lines.begin() + 121);
    const std::set<std::string> in_train(in.train_rows.begin(), in.train_rows.end());
    for (std::size_t i = 1; i < val_lines.size() && in.val_rows.size() < 60; ++i)
      if (!in_train.count(val_lines[i])) in.val_rows.push_back(val_lines[i]);
    std::string t = in.header + "\n", v = in.header + "\n";
    for (const auto& r : in.train_rows) t += r + "\n";
    for (const auto& r : in.val_rows) v += r + "\n";
    in.train = in.file("train.csv", t);
    in.val = in.file("val.csv", v);
    return in;
  }();
  return in;
}

// Safetensors files for --init-weights, built from a real 5-10-10-3 MLP state dict.
krill::StateDict good_weights() {
  krill::nn::MLP model(5, {10, 10}, 3);
  return model.state_dict();
}

struct Expect {
  std::vector<std::string> mentions;  // substrings the error line must contain
  std::vector<int> codes = {1, 2};    // accepted exit codes
};

// Runs `krill train <args> --out <fresh>/model` and checks the failure contract. Returns the
// error line.
struct How {
  std::string prefix;   // e.g. "setpriv ... " to run unprivileged
  std::string binary;   // another copy of krill ("" = the built one)
  bool add_out = true;  // add --out <fresh dir>/model unless the arguments have --out
};

std::string expect_failure(const std::string& what, std::vector<std::string> args, const Expect& expect,
                           const How& how = {}) {
  SCOPED_TRACE(what);
  const std::string parent = make_temp_dir("cli-err-out");
  ::chmod(parent.c_str(), 0777);  // writable for the unprivileged runs too
  bool has_out = false;
  for (const auto& a : args) has_out |= a == "--out";
  if (!has_out && how.add_out) args.insert(args.end(), {"--out", parent + "/model"});
  args.insert(args.begin(), "train");
  CliResult r = run_krill(args, how.prefix, how.binary);

  EXPECT_LT(r.rc, 128) << "killed by signal " << r.rc - 128 << ": " << r.command << "\n" << r.err;
  EXPECT_TRUE(std::find(expect.codes.begin(), expect.codes.end(), r.rc) != expect.codes.end())
      << "exit code " << r.rc << ": " << r.command << "\nstdout: " << r.out << "\nstderr: " << r.err;
  auto lines = split_lines(r.err);
  EXPECT_EQ(lines.size(), 1u) << "stderr should be one line:\n" << r.err;
  const std::string line = lines.empty() ? "" : lines.front();
  EXPECT_EQ(line.rfind("krill train: error: ", 0), 0u) << line;
  for (const auto& m : expect.mentions) EXPECT_NE(line.find(m), std::string::npos) << "'" << m << "' not in: " << line;
  EXPECT_EQ(list_dir(parent), std::vector<std::string>{}) << "output left behind by: " << r.command;
  std::printf("  %-38s exit %d  %s\n", what.c_str(), r.rc, line.c_str());
  return line;
}

std::vector<std::string> base_args() {
  const Inputs& in = inputs();
  return {"--train", in.train, "--validation", in.val, "--label", "Species", "--epochs", "2", "-q"};
}

// The lab's preparation of the raw data/penguins.csv, without oversampling (so no leakage
// warning): every raw-CSV failure below changes one thing.
std::vector<std::string> raw_args(const std::string& data = source_dir() + "/data/penguins.csv") {
  return {data, "--label", "Species", "--categorical", "Island", "--scale", "FlipperLength=0.1,BodyMass=0.01",
          "--epochs", "2", "-q"};
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

}  // namespace

TEST(TrainCliErrors, Sanity) {
  // The base arguments work, so every failure below is caused by the one thing changed.
  const std::string parent = make_temp_dir("cli-err-ok");
  CliResult r = run_krill(with(with({"train"}, base_args()), {"--out", parent + "/model"}));
  ASSERT_EQ(r.rc, 0) << r.command << "\n" << r.err;
  EXPECT_EQ(r.err, "") << "the inputs must not leak (a warning would make every error two lines)";
  EXPECT_EQ(list_dir(parent + "/model"),
            (std::vector<std::string>{"config.json", "loss.png", "metrics.csv", "model.safetensors"}));
  // ... and so do the raw data's base arguments.
  CliResult raw = run_krill(with(with({"train"}, raw_args()), {"--out", parent + "/raw"}));
  ASSERT_EQ(raw.rc, 0) << raw.command << "\n" << raw.err;
  EXPECT_EQ(raw.err, "");
}

TEST(TrainCliErrors, Flags) {
  const Inputs& in = inputs();
  const auto b = base_args();
  expect_failure("unknown flag", with(b, {"--bogus"}), {{"unknown option '--bogus'"}, {2}});
  expect_failure("unknown flag, nothing else", {"--bogus"}, {{"--bogus"}, {2}});
  expect_failure("mistyped flag", with(b, {"--epoch", "3"}), {{"'--epoch'", "did you mean '--epochs'"}, {2}});
  expect_failure("flag=value typo", with(b, {"--lr=0.1", "--optimiser=sgd"}), {{"--optimiser", "--optimizer"}, {2}});
  expect_failure("stray argument", with(b, {"extra.csv"}), {{"extra.csv"}, {2}});
  expect_failure("missing --train", {"--validation", in.val, "--label", "Species"}, {{"--train"}, {2}});
  expect_failure("missing --label", {"--train", in.train, "--validation", in.val}, {{"--label"}, {2}});
  expect_failure("missing --out", {"--train", in.train, "--validation", in.val, "--label", "Species"},
                 {{"--out"}, {2}}, How{.add_out = false});
  expect_failure("--out without a value", {"--train", in.train, "--validation", in.val, "--label", "Species", "--out"},
                 {{"--out"}, {2}});
  expect_failure("flag given twice", with(b, {"--train", in.train}), {{"--train", "more than once"}, {2}});

  expect_failure("--batch-size 0", with(b, {"--batch-size", "0"}), {{"--batch-size", "'0'"}, {2}});
  expect_failure("--batch-size -5", with(b, {"--batch-size", "-5"}), {{"--batch-size", "'-5'"}, {2}});
  expect_failure("--batch-size abc", with(b, {"--batch-size", "abc"}), {{"--batch-size", "'abc'"}, {2}});
  expect_failure("--batch-size 2.5", with(b, {"--batch-size", "2.5"}), {{"--batch-size", "'2.5'"}, {2}});
  expect_failure("--epochs -1", with(b, {"--epochs", "-1"}), {{"--epochs", "'-1'"}, {2}});
  expect_failure("--epochs 0", with(b, {"--epochs", "0"}), {{"--epochs", "'0'"}, {2}});
  expect_failure("--epochs abc", with(b, {"--epochs", "abc"}), {{"--epochs", "'abc'"}, {2}});
  expect_failure("--epochs too large", with(b, {"--epochs", "99999999999"}), {{"--epochs", "99999999999"}, {2}});
  expect_failure("--lr -1", with(b, {"--lr", "-1"}), {{"--lr", "'-1'"}, {2}});
  expect_failure("--lr nan", with(b, {"--lr", "nan"}), {{"--lr", "'nan'"}, {2}});
  expect_failure("--lr inf", with(b, {"--lr", "inf"}), {{"--lr", "'inf'"}, {2}});
  expect_failure("--lr abc", with(b, {"--lr", "abc"}), {{"--lr", "'abc'"}, {2}});
  expect_failure("--momentum -1", with(b, {"--optimizer", "sgd", "--momentum", "-1"}), {{"--momentum", "'-1'"}, {2}});
  expect_failure("--momentum with adam", with(b, {"--optimizer", "adam", "--momentum", "0.9"}),
                 {{"--momentum", "sgd"}, {1, 2}});
  expect_failure("--weight-decay -0.1", with(b, {"--weight-decay", "-0.1"}), {{"--weight-decay", "'-0.1'"}, {2}});
  expect_failure("--optimizer foo", with(b, {"--optimizer", "foo"}), {{"--optimizer", "foo", "adam"}, {2}});
  expect_failure("--hidden 0", with(b, {"--hidden", "0"}), {{"--hidden", "'0'"}, {2}});
  expect_failure("--hidden a,b", with(b, {"--hidden", "a,b"}), {{"--hidden", "'a'"}, {2}});
  expect_failure("--hidden 10,,10", with(b, {"--hidden", "10,,10"}), {{"--hidden", "empty"}, {2}});
  expect_failure("--hidden empty", with(b, {"--hidden", ""}), {{"--hidden"}, {2}});
  expect_failure("--hidden 10,-3", with(b, {"--hidden", "10,-3"}), {{"--hidden", "'-3'"}, {2}});
  expect_failure("--hidden without value", with(b, {"--hidden"}), {{"--hidden", "needs a value"}, {2}});
  expect_failure("--label followed by a flag", {"--train", in.train, "--validation", in.val, "--label", "--epochs", "2"},
                 {{"--label needs a value", "--epochs"}, {2}});
  expect_failure("--hidden too large for memory", with(b, {"--hidden", "4000000,4000000"}),
                 {{"--hidden", "memory"}, {1, 2}});
  expect_failure("--seed -1", with(b, {"--seed", "-1"}), {{"--seed", "'-1'"}, {2}});
  expect_failure("--seed abc", with(b, {"--seed", "abc"}), {{"--seed", "'abc'"}, {2}});
  expect_failure("--seed 2^64", with(b, {"--seed", "18446744073709551616"}), {{"--seed"}, {2}});
}

TEST(TrainCliErrors, Files) {
  const Inputs& in = inputs();
  auto b = [&](const std::string& train, const std::string& val = "") {
    return std::vector<std::string>{"--train", train, "--validation", val.empty() ? in.val : val,
                                    "--label", "Species", "--epochs", "2", "-q"};
  };
  const std::string missing = in.path("no-such-file.csv");
  expect_failure("nonexistent --train", b(missing), {{"--train", missing}});
  expect_failure("nonexistent --validation", b(in.train, missing), {{"--validation", missing}});
  expect_failure("directory as --train", b(in.dir), {{"--train", in.dir}});
  expect_failure("empty file", b(in.file("empty.csv", "")), {{in.path("empty.csv"), "empty"}, {1}});
  expect_failure("blank lines only", b(in.file("blank.csv", "\n\n  \n")), {{in.path("blank.csv")}, {1}});
  std::string binary = "\x7f" "ELF\x02\x01\x01";
  binary += std::string(64, '\0') + "\x01\x02\xff\xfe";
  expect_failure("binary file", b(in.file("binary.csv", binary)), {{in.path("binary.csv")}, {1}});
  expect_failure("invalid UTF-8", b(in.file("latin1.csv", in.header + "\n0,\xe9\xe8,1,2,3,1\n")),
                 {{in.path("latin1.csv")}, {1}});
  expect_failure("header only", b(in.file("header.csv", in.header + "\n")), {{in.path("header.csv"), "no data rows"}, {1}});
  expect_failure("header only, validation", b(in.train, in.file("vheader.csv", in.header + "\n")),
                 {{in.path("vheader.csv"), "no data rows"}, {1}});
  expect_failure("ragged row", b(in.train_with("ragged.csv", 4, "0,40.1,18.2,19.5")),
                 {{in.path("ragged.csv"), "line 6", "4 fields"}, {1}});
  expect_failure("too many fields", b(in.train_with("long.csv", 0, "0,40.1,18.2,19.5,40,1,7")),
                 {{in.path("long.csv"), "line 2"}, {1}});
  expect_failure("unterminated quote", b(in.train_with("quote.csv", 9, "0,\"40.1,18.2,19.5,40,1")),
                 {{in.path("quote.csv"), "line 11", "quote"}, {1}});
  expect_failure("text in a numeric column", b(in.train_with("text.csv", 2, "0,forty,18.2,19.5,40,1")),
                 {{in.path("text.csv"), "line 4", "CulmenLength", "'forty'", "--categorical"}, {1}});
  expect_failure("text in validation", b(in.train, in.train_with("vtext.csv", 0, "Dream,40,18.2,19.5,40,1")),
                 {{in.path("vtext.csv"), "line 2", "Island", "--categorical"}, {1}});
  expect_failure("infinite value", b(in.train_with("inf.csv", 7, "0,inf,18.2,19.5,40,1")),
                 {{in.path("inf.csv"), "line 9", "CulmenLength", "inf"}, {1}});
  expect_failure("-Infinity", b(in.train_with("ninf.csv", 7, "0,40,-Infinity,19.5,40,1")),
                 {{in.path("ninf.csv"), "line 9", "CulmenDepth"}, {1}});
  expect_failure("overflowing number", b(in.train_with("huge.csv", 1, "0,40,18,1e999,40,1")),
                 {{in.path("huge.csv"), "line 3", "FlipperScaled", "1e999"}, {1}});
  // Missing values (NaN, NA, empty) are dropped by default (--dropna, the lab's dropna()); with
  // --no-dropna they are an error naming the line and column and suggesting --dropna.
  auto no_dropna = [&](const std::string& train) { return with(b(train), {"--no-dropna"}); };
  expect_failure("NaN value, --no-dropna", no_dropna(in.train_with("nan.csv", 3, "0,40,18,NaN,40,1")),
                 {{in.path("nan.csv"), "line 5", "FlipperScaled", "--dropna"}, {1}});
  expect_failure("missing value, --no-dropna", no_dropna(in.train_with("na.csv", 3, "0,40,18,,40,1")),
                 {{in.path("na.csv"), "line 5", "FlipperScaled", "--dropna"}, {1}});
  expect_failure("NA value, --no-dropna", no_dropna(in.train_with("na2.csv", 3, "0,40,18,NA,40,1")),
                 {{in.path("na2.csv"), "line 5", "FlipperScaled", "--dropna"}, {1}});
  expect_failure("missing value in validation, --no-dropna",
                 with(b(in.train, in.file("vna.csv", in.header + "\n0,40,18,19,40,1\n1,,17,20,38,2\n")), {"--no-dropna"}),
                 {{in.path("vna.csv"), "line 3", "CulmenLength", "--dropna"}, {1}});
  {
    const std::string parent = make_temp_dir("cli-err-dropna");
    CliResult r = run_krill(with(with({"train"}, b(in.path("nan.csv"))), {"--out", parent + "/m"}));
    EXPECT_EQ(r.rc, 0) << r.command << "\n" << r.err;
    CliResult loud = run_krill({"train", "--train", in.path("na.csv"), "--validation", in.val, "--label", "Species",
                                "--epochs", "1", "--out", parent + "/loud"});
    EXPECT_EQ(loud.rc, 0) << loud.err;
    EXPECT_NE(loud.out.find("1 dropped (missing values)"), std::string::npos) << loud.out;
    EXPECT_NE(loud.out.find("training 119, validation " + std::to_string(in.val_rows.size())), std::string::npos) << loud.out;
  }
  // Every row incomplete: nothing left to train on.
  std::string all_na = in.header + "\n0,40,18,,40,1\n1,41,,20,38,2\n";
  expect_failure("every row has a missing value", b(in.file("allna.csv", all_na)), {{in.path("allna.csv"), "missing"}, {1}});
}

TEST(TrainCliErrors, ColumnsAndLabels) {
  const Inputs& in = inputs();
  auto b = [&](const std::string& train, const std::string& val, const std::string& label = "Species") {
    return std::vector<std::string>{"--train", train, "--validation", val, "--label", label, "--epochs", "2", "-q"};
  };
  expect_failure("unknown label column", b(in.train, in.val, "species"),
                 {{in.train, "'species'", "Island", "did you mean 'Species'"}, {1}});
  expect_failure("label column absent", b(in.train, in.val, "Weight"), {{in.train, "'Weight'", "CulmenLength"}, {1}});
  // validation without the label column / without a feature column
  std::string no_label = "Island,CulmenLength,CulmenDepth,FlipperScaled,MassScaled\n0,40,18,19,40\n1,41,17,20,38\n";
  expect_failure("validation lacks the label", b(in.train, in.file("vnolabel.csv", no_label)),
                 {{in.path("vnolabel.csv"), "'Species'"}, {1}});
  std::string no_feature = "Island,CulmenLength,FlipperScaled,MassScaled,Species\n0,40,19,40,1\n1,41,20,38,2\n";
  expect_failure("validation lacks a feature", b(in.train, in.file("vnofeat.csv", no_feature)),
                 {{in.path("vnofeat.csv"), "CulmenDepth"}, {1}});
  std::string dup = "Island,CulmenLength,CulmenLength,FlipperScaled,MassScaled,Species\n0,40,18,19,40,1\n";
  expect_failure("duplicate column names", b(in.file("dup.csv", dup), in.val), {{in.path("dup.csv"), "CulmenLength"}, {1}});

  // A label column that is not all small non-negative integers holds class *names* (sorted in
  // byte order; the issue: "string labels become classes in sorted order"): a 1.5, a -1, a huge
  // id or a word among 0/1/2 make every value a name. Not an error; the classes say so.
  const std::vector<std::pair<std::string, std::string>> odd_labels = {
      {"1.5", R"(["0","1","1.5","2"])"},
      {"-1", R"(["-1","0","1","2"])"},
      {"Adelie", R"(["0","1","2","Adelie"])"},
      {"1000000000", R"(["0","1","1000000000","2"])"},
      {"9223372036854775807", R"(["0","1","2","9223372036854775807"])"}};
  for (std::size_t i = 0; i < odd_labels.size(); ++i) {
    const auto& [value, classes] = odd_labels[i];
    SCOPED_TRACE("label " + value);
    const std::string parent = make_temp_dir("cli-err-labels");
    const std::string file = in.train_with("label" + std::to_string(i) + ".csv", 5, "0,40,18,19,40," + value);
    CliResult r = run_krill(with(with({"train"}, b(file, in.val)), {"--out", parent + "/m"}));
    ASSERT_EQ(r.rc, 0) << r.command << "\n" << r.err;
    const auto cfg = nlohmann::json::parse(read_text(parent + "/m/config.json"));
    EXPECT_EQ(cfg["preparation"]["classes"], nlohmann::json::parse(classes));
    EXPECT_EQ(cfg["preparation"]["integer_labels"], false);
    EXPECT_EQ(cfg["architecture"]["num_classes"], 4);
  }
  expect_failure("missing label, --no-dropna", with(b(in.train_with("nolab.csv", 5, "0,40,18,19,40,"), in.val), {"--no-dropna"}),
                 {{in.path("nolab.csv"), "line 7", "Species", "--dropna"}, {1}});
  std::string one_class = in.header + "\n0,40,18,19,40,0\n1,41,17,20,38,0\n";
  expect_failure("a single class", b(in.file("oneclass.csv", one_class), in.val), {{in.path("oneclass.csv"), "Species"}, {1}});
  std::string label_only = "Species\n0\n1\n2\n";
  expect_failure("no feature columns", b(in.file("labelonly.csv", label_only), in.file("vlabelonly.csv", label_only)),
                 {{in.path("labelonly.csv"), "Species"}, {1}});
  std::string unseen = in.header + "\n0,40,18,19,40,1\n1,41,17,20,38,7\n";
  expect_failure("validation class unseen in training", b(in.train, in.file("unseen.csv", unseen)),
                 {{in.path("unseen.csv"), "line 3", "Species", "'7'", "training classes: 0, 1, 2"}, {1}});
  // ... also with class names.
  std::string named_train = "x,Species\n1,Adelie\n2,Gentoo\n3,Adelie\n4,Gentoo\n";
  std::string named_val = "x,Species\n1,Adelie\n5,Chinstrap\n";
  expect_failure("validation class name unseen in training",
                 b(in.file("named_train.csv", named_train), in.file("named_val.csv", named_val)),
                 {{in.path("named_val.csv"), "line 3", "'Chinstrap'", "Adelie, Gentoo"}, {1}});
}

TEST(TrainCliErrors, InitWeights) {
  const Inputs& in = inputs();
  const auto b = base_args();
  const krill::StateDict good = good_weights();
  const std::string good_path = in.path("good.safetensors");
  krill::io::save_safetensors(good, good_path);
  {  // the good file is accepted (so the failures below are about what was changed)
    const std::string parent = make_temp_dir("cli-err-ok");
    CliResult r = run_krill(with(with({"train"}, b), {"--init-weights", good_path, "--out", parent + "/m"}));
    ASSERT_EQ(r.rc, 0) << r.err;
  }
  auto variant = [&](const std::string& name, const std::function<void(krill::StateDict&)>& edit) {
    krill::StateDict sd;
    for (const auto& [k, v] : good) sd.insert(k, v);
    edit(sd);
    krill::StateDict out;  // rebuilt so removed entries really go
    for (const auto& [k, v] : sd)
      if (v.defined()) out.insert(k, v);
    krill::io::save_safetensors(out, in.path(name));
    return in.path(name);
  };
  auto init = [&](const std::string& path) { return with(b, {"--init-weights", path}); };

  expect_failure("wrong shape", init(variant("shape.safetensors", [](krill::StateDict& sd) {
                   sd.insert("fc2.weight", krill::zeros({10, 7}));
                 })),
                 {{"--init-weights", "fc2.weight", "[10, 7]", "[10, 10]"}, {1}});
  expect_failure("missing tensor", init(variant("missing.safetensors", [](krill::StateDict& sd) {
                   sd.insert("fc3.bias", krill::Tensor());
                 })),
                 {{"--init-weights", "fc3.bias"}, {1}});
  expect_failure("unexpected tensor", init(variant("extra.safetensors", [](krill::StateDict& sd) {
                   sd.insert("fc4.weight", krill::zeros({3, 3}));
                 })),
                 {{"--init-weights", "fc4.weight"}, {1}});
  expect_failure("wrong dtype", init(variant("dtype.safetensors", [](krill::StateDict& sd) {
                   sd.insert("fc1.bias", krill::zeros({10}, krill::DType::Int64));
                 })),
                 {{"--init-weights", "fc1.bias"}, {1}});
  expect_failure("weights for another model", init(variant("other.safetensors", [](krill::StateDict& sd) {
                   sd = krill::nn::MLP(5, {16}, 3).state_dict();
                 })),
                 {{"--init-weights", "fc1.weight"}, {1}});

  const std::string bytes = krill::io::to_safetensors_bytes(good);
  expect_failure("truncated file", init(in.file("trunc.safetensors", bytes.substr(0, bytes.size() - 40))),
                 {{"--init-weights", in.path("trunc.safetensors")}, {1}});
  expect_failure("truncated header", init(in.file("trunc2.safetensors", bytes.substr(0, 40))),
                 {{"--init-weights", in.path("trunc2.safetensors")}, {1}});
  expect_failure("5-byte file", init(in.file("tiny.safetensors", bytes.substr(0, 5))),
                 {{"--init-weights", in.path("tiny.safetensors")}, {1}});
  expect_failure("empty file", init(in.file("empty.safetensors", "")), {{"--init-weights", in.path("empty.safetensors")}, {1}});
  std::string corrupt = bytes;
  corrupt[8] = '[';  // the JSON header no longer parses
  expect_failure("corrupt header", init(in.file("corrupt.safetensors", corrupt)),
                 {{"--init-weights", in.path("corrupt.safetensors")}, {1}});
  expect_failure("a CSV as weights", init(in.train), {{"--init-weights", in.train}, {1}});
  expect_failure("nonexistent weights", init(in.path("nope.safetensors")), {{"--init-weights", in.path("nope.safetensors")}});
  expect_failure("directory as weights", init(in.dir), {{"--init-weights", in.dir}});
}

TEST(TrainCliErrors, OutputDirectory) {
  const Inputs& in = inputs();
  const auto b = base_args();

  // An existing directory is refused without --force and left exactly as it was.
  const std::string parent = make_temp_dir("cli-err-existing");
  const std::string existing = parent + "/model";
  fs::create_directory(existing);
  write_text(existing + "/model.safetensors", "old weights");
  write_text(existing + "/notes.txt", "keep me");
  expect_failure("existing --out", with(b, {"--out", existing}), {{existing, "--force"}, {1}});
  EXPECT_EQ(list_dir(existing), (std::vector<std::string>{"model.safetensors", "notes.txt"}));
  EXPECT_EQ(read_text(existing + "/model.safetensors"), "old weights");
  EXPECT_EQ(list_dir(parent), std::vector<std::string>{"model"}) << "no staging directory beside it";

  // --force replaces only a model directory, never an arbitrary one (a typo must not wipe $HOME).
  const std::string other = parent + "/photos";
  fs::create_directory(other);
  write_text(other + "/cat.jpg", "meow");
  expect_failure("--force on a non-model directory", with(b, {"--out", other, "--force"}), {{other}, {1}});
  EXPECT_EQ(read_text(other + "/cat.jpg"), "meow");
  // ... nor one that holds the input data.
  const std::string data_dir = make_temp_dir("cli-err-data");
  write_text(data_dir + "/config.json", "{}");
  const std::string data_train = data_dir + "/train.csv";
  fs::copy_file(in.train, data_train);
  expect_failure("--force on the input's directory",
                 {"--train", data_train, "--validation", in.val, "--label", "Species", "--epochs", "2", "--out", data_dir,
                  "--force"},
                 {{data_dir, data_train}, {1}});
  EXPECT_TRUE(fs::exists(data_train));

  const std::string file = in.file("a-file", "x");
  expect_failure("--out is a file", with(b, {"--out", file}), {{file}, {1}});
  expect_failure("--out is a file, --force", with(b, {"--out", file, "--force"}), {{file}, {1}});
  EXPECT_EQ(read_text(file), "x");
  expect_failure("--out under a file", with(b, {"--out", file + "/model"}), {{file}, {1}});
  expect_failure("--out empty", with(b, {"--out", ""}), {{"--out"}, {1, 2}});
  expect_failure("--out .", with(b, {"--out", ".", "--force"}), {{"--out"}, {1, 2}});

  // --force with a model directory: replaced (the success path is in test_train_cli).
}

// Unreadable files: tests run as root, who reads anything, so the unreadable cases run krill as
// an unprivileged user (setpriv) when we are root. Everything that user touches (a copy of the
// binary, the inputs, the output parent) lives in a fresh world-traversable directory under
// /tmp, since the build tree may sit under a private home directory.
TEST(TrainCliErrors, Unreadable) {
  const Inputs& in = inputs();
  How how;
  if (::geteuid() == 0) {
    if (krill::test::run_command("command -v setpriv >/dev/null") != 0)
      GTEST_SKIP() << "running as root without setpriv: cannot make a file unreadable";
    how.prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  }
  char tmpl[] = "/tmp/krill-cli-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ::chmod(dir.c_str(), 0755);
  how.binary = dir + "/krill";
  fs::copy_file(krill::test::krill_cli(), how.binary);
  ::chmod(how.binary.c_str(), 0755);
  const std::string out_parent = dir + "/out";
  fs::create_directory(out_parent);
  ::chmod(out_parent.c_str(), 0777);
  // The runs krill records go to a store that user may write (not the suite's, owned by root).
  fs::create_directory(dir + "/runs");
  ::chmod((dir + "/runs").c_str(), 0777);
  how.prefix = "KRILL_TRACKING_URI=" + dir + "/runs/runs.db " + how.prefix;
  auto copy = [&](const std::string& from, const std::string& name, int mode) {
    fs::copy_file(from, dir + "/" + name);
    ::chmod((dir + "/" + name).c_str(), mode);
    return dir + "/" + name;
  };
  const std::string locked = copy(in.train, "locked.csv", 0);
  const std::string train = copy(in.train, "train.csv", 0644);
  const std::string val = copy(in.val, "val.csv", 0644);
  krill::io::save_safetensors(good_weights(), dir + "/w.safetensors");
  ::chmod((dir + "/w.safetensors").c_str(), 0);
  const std::string weights = dir + "/w.safetensors";

  // The unprivileged user can run krill here at all (else the cases below prove nothing).
  CliResult probe = run_krill({"--version"}, how.prefix, how.binary);
  ASSERT_EQ(probe.rc, 0) << probe.command << "\n" << probe.err;

  const std::vector<std::string> out = {"--out", out_parent + "/model"};
  expect_failure("unreadable --train",
                 with({"--train", locked, "--validation", val, "--label", "Species", "--epochs", "2"}, out),
                 {{locked, "ermission denied"}, {1, 2}}, how);
  expect_failure("unreadable --validation",
                 with({"--train", train, "--validation", locked, "--label", "Species", "--epochs", "2"}, out),
                 {{locked, "ermission denied"}, {1, 2}}, how);
  expect_failure("unreadable --init-weights",
                 with({"--train", train, "--validation", val, "--label", "Species", "--epochs", "2", "--init-weights",
                       weights},
                      out),
                 {{weights, "ermission denied"}, {1, 2}}, how);
  EXPECT_EQ(list_dir(out_parent), std::vector<std::string>{});
  // An output parent the user may not write to: refused before training.
  const std::string ro = dir + "/ro";
  fs::create_directory(ro);
  ::chmod(ro.c_str(), 0555);
  if (!how.prefix.empty() || ::geteuid() != 0)
    expect_failure("unwritable --out parent",
                   {"--train", train, "--validation", val, "--label", "Species", "--epochs", "2", "--out", ro + "/model"},
                   {{ro}, {1}}, how);
  EXPECT_EQ(list_dir(ro), std::vector<std::string>{});
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// A run that diverges fails cleanly: a clear message, no model directory.
TEST(TrainCliErrors, Divergence) {
  expect_failure("loss becomes NaN", with(base_args(), {"--optimizer", "sgd", "--lr", "1e30"}), {{"NaN", "--lr"}, {1}});
}

// `krill train DATA.csv` on raw data (the lab's form): columns, preparation flags, the split.
TEST(TrainCliErrors, RawCsv) {
  const Inputs& in = inputs();
  const std::string penguins = source_dir() + "/data/penguins.csv";
  const auto b = raw_args();
  auto without = [](std::vector<std::string> a, const std::string& flag) {  // drops a flag and its value
    auto it = std::find(a.begin(), a.end(), flag);
    if (it != a.end()) a.erase(it, it + 2);
    return a;
  };

  // Columns.
  expect_failure("text in a numeric column", without(b, "--categorical"),
                 {{penguins, "line 2", "Island", "'Torgersen'", "--categorical Island"}, {1}});
  expect_failure("unknown --label", with(without(b, "--label"), {"--label", "species"}),
                 {{penguins, "'species'", "did you mean 'Species'"}, {1}});
  expect_failure("unknown --categorical", with(without(b, "--categorical"), {"--categorical", "Islnd"}),
                 {{penguins, "categorical", "'Islnd'", "did you mean 'Island'"}, {1}});
  expect_failure("unknown --scale column", with(without(b, "--scale"), {"--scale", "FlipperLen=0.1"}),
                 {{penguins, "scale", "'FlipperLen'", "did you mean 'FlipperLength'"}, {1}});
  expect_failure("unknown --features column", with(b, {"--features", "Island,Culmen"}),
                 {{penguins, "feature", "'Culmen'", "did you mean 'CulmenLength'"}, {1}});
  expect_failure("--features lists the label", with(b, {"--features", "Island,Species"}), {{penguins, "'Species'", "label"}, {1}});
  expect_failure("--features lists a column twice", with(without(b, "--scale"), {"--features", "Island,Island"}),
                 {{penguins, "'Island'", "twice"}, {1}});
  expect_failure("--scale of a column not in --features",
                 with(b, {"--features", "Island,CulmenLength"}),
                 {{penguins, "--scale column", "not one of the features (Island, CulmenLength)", "--features"}, {1}});
  expect_failure("--scale of the label", with(without(b, "--scale"), {"--scale", "Species=2"}),
                 {{penguins, "'Species'", "label"}, {1}});
  expect_failure("--categorical not a feature", with(b, {"--features", "CulmenLength,FlipperLength,BodyMass"}),
                 {{penguins, "'Island'", "not one of the features"}, {1}});

  // --scale items.
  for (const char* bad : {"A=", "=2", "FlipperLength"})
    expect_failure(std::string("--scale ") + bad, with(without(b, "--scale"), {"--scale", bad}),
                   {{"--scale", std::string("'") + bad + "'", "COLUMN=FACTOR"}, {1, 2}});
  for (const char* bad : {"x", "0", "inf", "nan", "1e999", "0.1x"})
    expect_failure(std::string("--scale FlipperLength=") + bad,
                   with(without(b, "--scale"), {"--scale", std::string("FlipperLength=") + bad}),
                   {{"--scale", "FlipperLength", std::string("'") + bad + "'"}, {1, 2}});
  expect_failure("--scale with an empty item", with(without(b, "--scale"), {"--scale", "FlipperLength=0.1,,BodyMass=0.01"}),
                 {{"--scale", "empty"}, {2}});
  expect_failure("--scale ending with a comma", with(without(b, "--scale"), {"--scale", "FlipperLength=0.1,"}),
                 {{"--scale", "empty"}, {2}});
  expect_failure("--scale empty", with(without(b, "--scale"), {"--scale", ""}), {{"--scale", "empty"}, {2}});
  expect_failure("--scale column twice", with(without(b, "--scale"), {"--scale", "FlipperLength=0.1,FlipperLength=0.2"}),
                 {{"--scale", "'FlipperLength'", "twice"}, {1, 2}});
  expect_failure("--features with an empty item", with(b, {"--features", "Island,,CulmenLength"}),
                 {{"--features", "empty"}, {2}});
  expect_failure("--categorical empty", with(without(b, "--categorical"), {"--categorical", ""}),
                 {{"--categorical", "empty"}, {2}});

  // The split.
  for (const char* bad : {"1.5", "0", "-0.1", "1", "abc", "nan", "inf", ""})
    expect_failure(std::string("--test-size ") + bad, with(b, {"--test-size", bad}), {{"--test-size"}, {2}});
  expect_failure("--test-size 1.5 says what it got", with(b, {"--test-size", "1.5"}), {{"--test-size", "'1.5'", "between 0 and 1"}, {2}});
  for (const char* bad : {"0", "-1", "abc", "2.5"})
    expect_failure(std::string("--oversample ") + bad, with(b, {"--oversample", bad}),
                   {{"--oversample", std::string("'") + bad + "'"}, {2}});
  const std::string two = in.file("two.csv", "a,b,Species\n1,2,x\n3,4,y\n");
  expect_failure("too few rows for the split", {two, "--label", "Species"}, {{two, "too few rows", "--test-size"}, {1}});
  const std::string three = in.file("three.csv", "a,b,Species\n1,2,x\n3,4,y\n5,6,x\n");
  expect_failure("too few training rows", {three, "--label", "Species", "--test-size", "0.01"},
                 {{three, "too few rows", "0.01"}, {1}});
  const std::string rare = in.file("rare.csv", "a,b,Species\n1,2,x\n3,4,y\n5,6,x\n7,8,x\n9,9,x\n");
  expect_failure("a class only in the validation split", {rare, "--label", "Species", "--seed", "1"},
                 {{rare, "'y'", "no rows in the training split", "--seed"}, {1}});
  const std::string one_class = in.file("oneclass_raw.csv", "a,b,Species\n1,2,x\n3,4,x\n5,6,x\n7,8,x\n");
  expect_failure("a single class", {one_class, "--label", "Species"}, {{one_class, "Species"}, {1}});

  // Raw data problems.
  expect_failure("--no-dropna with incomplete rows", with(b, {"--no-dropna"}),
                 {{penguins, "line 5", "'CulmenLength'", "--dropna"}, {1}});
  const std::string header = "Island,CulmenLength,CulmenDepth,FlipperLength,BodyMass,Species\n";
  const std::string good_rows = "Dream,41,17,190,3100,0\nBiscoe,45,15,210,5000,1\nDream,49,19,195,3700,2\n";
  const std::string inf = in.file("inf_raw.csv", header + "Dream,40,18,200,3000,1\nDream,40,18,inf,3000,1\n" + good_rows);
  expect_failure("infinite value", raw_args(inf), {{inf, "line 3", "'FlipperLength'", "inf"}, {1}});
  const std::string hdr = in.file("header_raw.csv", header);
  expect_failure("header only", raw_args(hdr), {{hdr, "no data rows"}, {1}});
  const std::string text = in.file("text_raw.csv", header + "Dream,40,18,200,3000,1\nDream,40,18,two hundred,3000,1\n" + good_rows);
  expect_failure("text in a numeric column, line 3", raw_args(text), {{text, "line 3", "'FlipperLength'", "--categorical"}, {1}});

  // DATA.csv and the pre-split form.
  expect_failure("DATA.csv with --train and --validation", with(b, {"--train", in.train, "--validation", in.val}),
                 {{"DATA.csv", "--train", "not both"}, {2}});
  expect_failure("DATA.csv with --train", with(b, {"--train", in.train}), {{"DATA.csv", "--train"}, {2}});
  expect_failure("neither DATA.csv nor --train", {"--label", "Species", "--epochs", "2"}, {{"DATA.csv", "--train"}, {2}});
  expect_failure("--train without --validation", {"--train", in.train, "--label", "Species"}, {{"--validation"}, {2}});
  expect_failure("two DATA.csv", with(b, {penguins}), {{penguins}, {2}});
  expect_failure("nonexistent DATA.csv", raw_args(in.path("nope.csv")), {{in.path("nope.csv")}, {2}});
}

// `krill train --config FILE`: every problem names the file and line (exit 2, like the flag it
// stands for), and nothing is written.
TEST(TrainCliErrors, ConfigFile) {
  const Inputs& in = inputs();
  const std::string penguins = source_dir() + "/data/penguins.csv";
  auto config = [&](const std::string& name, const std::string& body) {
    return in.file(name, "data = \"" + penguins + "\"\nlabel = \"Species\"\ncategorical = [\"Island\"]\n" + body);
  };
  auto run = [&](const std::string& file) { return std::vector<std::string>{"--config", file, "-q"}; };

  std::string f = config("unknown.toml", "epoch = 3\n");
  expect_failure("unknown key", run(f), {{"--config " + f + " line 4", "'epoch'", "did you mean '--epochs'"}, {2}});
  f = config("badtoml.toml", "epochs = = 3\n");
  expect_failure("bad TOML", run(f), {{"--config " + f + " line 4"}, {2}});
  f = config("unterminated.toml", "optimizer = \"adam\n");
  expect_failure("unterminated string", run(f), {{"--config " + f + " line 4"}, {2}});
  f = config("switch.toml", "shuffle = \"yes\"\n");
  expect_failure("a switch given a string", run(f), {{"--config " + f + " line 4", "'shuffle'", "true or false"}, {2}});
  f = config("switch1.toml", "standardize = 1\n");
  expect_failure("a switch given a number", run(f), {{"--config " + f + " line 4", "'standardize'", "true or false"}, {2}});
  f = config("valuebool.toml", "epochs = true\n");
  expect_failure("a value given a boolean", run(f), {{"--config " + f + " line 4", "'epochs'"}, {2}});
  f = config("badvalue.toml", "epochs = 0\n");
  expect_failure("a bad value", run(f), {{"--epochs", "'0'", "--config " + f + " line 4"}, {2}});
  f = config("badsize.toml", "test-size = 1.5\n");
  expect_failure("a bad --test-size", run(f), {{"--test-size", "'1.5'", "--config " + f + " line 4"}, {2}});
  f = config("badscale.toml", "scale = [\"FlipperLength=x\"]\n");
  expect_failure("a bad --scale item", run(f), {{"--scale", "'x'", "--config " + f + " line 4"}, {2}});
  f = config("section.toml", "[training]\nepochs = 3\n");
  expect_failure("a [section]", run(f), {{"--config " + f + " line 4", "[training]"}, {2}});
  f = config("table.toml", "hidden = { a = 1 }\n");
  expect_failure("an inline table", run(f), {{"--config " + f + " line 4", "hidden"}, {2}});
  f = in.file("nodata.toml", "label = \"Species\"\ndata = \"" + in.path("missing.csv") + "\"\n");
  expect_failure("data that does not exist", run(f), {{in.path("missing.csv"), "--config " + f + " line 2"}, {2}});
  f = in.file("reldata.toml", "label = \"Species\"\ndata = \"no-such-dir/penguins.csv\"\n");
  expect_failure("a relative path that does not exist", run(f),
                 {{"no-such-dir/penguins.csv", "--config " + f + " line 2",
                   "relative paths in a config file are taken from the current directory"},
                  {2}});
  expect_failure("no such config file", run(in.path("nope.toml")), {{"--config " + in.path("nope.toml"), "no such file"}, {2}});
  expect_failure("a directory as config", run(in.dir), {{"--config " + in.dir, "directory"}, {2}});
  expect_failure("binary config", run(in.file("binary.toml", std::string("\x7f" "ELF\x02\x01\x01\0\0\xff\xfe", 12))),
                 {{"--config " + in.path("binary.toml")}, {2}});
  f = config("ok.toml", "");
  expect_failure("--config twice", {"--config", f, "--config", f}, {{"--config", "more than once"}, {2}});
  expect_failure("--config without a value", {"--label", "Species", "--config"}, {{"--config"}, {2}});
}
