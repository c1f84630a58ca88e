// krill train (numeric CSVs): read, build the MLP, train with per-epoch validation, write the
// model directory atomically.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "krill/data/csv.hpp"
#include "krill/data/dataloader.hpp"
#include "krill/io/model_dir.hpp"
#include "krill/io/safetensors.hpp"
#include "krill/nn/models/mlp.hpp"
#include "krill/optim/adam.hpp"
#include "krill/optim/adamw.hpp"
#include "krill/optim/sgd.hpp"
#include "krill/tensor/generator.hpp"
#include "krill/train/trainer.hpp"
#include "krill/util/runtime_info.hpp"

namespace krill::cli {

void print_error(const std::string& command, const std::string& message) {
  std::cerr << "krill " << command << ": error: " << message << "\n";
}

std::vector<std::int64_t> parse_hidden(const std::string& spec) {
  const std::string example = " (e.g. --hidden 10,10)";
  if (spec.empty()) throw ValueError("give at least one hidden layer width" + example);
  std::vector<std::int64_t> widths;
  std::size_t begin = 0;
  for (int item = 1;; ++item) {
    std::size_t end = spec.find(',', begin);
    if (end == std::string::npos) end = spec.size();
    const std::string w = spec.substr(begin, end - begin);
    if (w.empty()) throw ValueError("'" + spec + "': width " + std::to_string(item) + " is empty" + example);
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
    if (ec != std::errc() || p != w.data() + w.size() || v <= 0 || v > (1 << 24))
      throw ValueError("'" + spec + "': width " + std::to_string(item) + " is '" + w +
                       "', not a positive integer up to 16777216" + example);
    widths.push_back(v);
    if (end == spec.size()) break;
    begin = end + 1;
  }
  return widths;
}

namespace {

namespace fs = std::filesystem;

std::string trim_right(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.pop_back();
  return s;
}

// Refuses, before any work is done, an --out that could not be written or should not be
// replaced: an empty path, ".", a path under a file, a directory that is not a krill model
// (with --force; so a typo never wipes a home directory), or one that holds an input file.
void check_output(const TrainArgs& a) {
  std::string out = a.out;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out.empty()) throw ValueError("--out: give the model directory to write, e.g. --out penguin_model");
  const fs::path p(out);
  if (p.filename() == "." || p.filename() == ".." || p == p.root_path())
    throw ValueError("--out " + a.out + ": give a new directory name, e.g. --out penguin_model");
  try {
    io::check_can_create(out, a.force);
  } catch (const IOError& e) {
    throw IOError(std::string("--out: ") + e.what());
  }
  std::error_code ec;
  if (fs::is_directory(p, ec)) {  // --force: it will be replaced
    if (!fs::is_empty(p, ec) && !fs::exists(p / "model.safetensors", ec) && !fs::exists(p / "config.json", ec))
      throw IOError("--out " + a.out +
                    " exists and is not a krill model directory (no model.safetensors or config.json); --force replaces "
                    "only model directories: remove it yourself or choose another --out");
    const fs::path canon_out = fs::weakly_canonical(p, ec);
    for (const std::string& in : {a.train_csv, a.validation_csv, a.init_weights}) {
      if (in.empty()) continue;
      const fs::path canon_in = fs::weakly_canonical(in, ec);
      auto [mo, mi] = std::mismatch(canon_out.begin(), canon_out.end(), canon_in.begin(), canon_in.end());
      if (mo == canon_out.end())
        throw IOError("--out " + a.out + " contains the input " + in + "; --force would delete it: choose another --out");
    }
  }
  // The nearest existing ancestor must be a writable directory (missing ones are created
  // when the model is written, after training).
  fs::path abs = fs::absolute(p, ec).lexically_normal();
  for (fs::path dir = abs.parent_path();; dir = dir.parent_path()) {
    if (fs::exists(dir, ec)) {
      if (!fs::is_directory(dir, ec)) throw IOError("--out " + a.out + ": " + dir.string() + " is not a directory");
      if (::access(dir.c_str(), W_OK | X_OK) != 0)
        throw IOError("--out " + a.out + ": cannot write in " + dir.string() + ": " + std::strerror(errno));
      break;
    }
    if (dir == dir.root_path() || dir.empty()) break;
  }
}

// Refuses a model whose parameters (with gradients and optimizer state) cannot fit in memory,
// before trying to allocate it.
void check_model_size(std::int64_t in_features, const std::vector<std::int64_t>& hidden, std::int64_t classes,
                      const std::string& label) {
  double params = 0;
  double prev = static_cast<double>(in_features);
  std::string shape = std::to_string(in_features);
  for (auto h : hidden) params += prev * h + h, prev = static_cast<double>(h), shape += "-" + std::to_string(h);
  params += prev * classes + classes;
  shape += "-" + std::to_string(classes);
  const double bytes = params * 4.0 * 4.0;  // weights, gradients, two optimizer moments
  const double mem = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  if (mem > 0 && bytes > mem) {
    char msg[512];
    std::snprintf(msg, sizeof msg,
                  "the model %s (widths from --hidden, %lld classes from the largest id in column '%s') would have "
                  "%.3g parameters, %.3g GB with gradients and optimizer state: more than this machine's %.3g GB of "
                  "memory",
                  shape.c_str(), static_cast<long long>(classes), label.c_str(), params, bytes / 1e9, mem / 1e9);
    throw ValueError(msg);
  }
}

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainArgs& a, const std::vector<Tensor>& params) {
  if (a.optimizer == "adam")
    return std::make_unique<optim::Adam>(params, optim::AdamOptions(a.lr).weight_decay(a.weight_decay));
  if (a.optimizer == "adamw")
    return std::make_unique<optim::AdamW>(params, optim::AdamWOptions(a.lr).weight_decay(a.weight_decay));
  if (a.optimizer == "sgd")
    return std::make_unique<optim::SGD>(params, optim::SGDOptions(a.lr).momentum(a.momentum).weight_decay(a.weight_decay));
  throw ValueError("--optimizer: unknown optimizer '" + a.optimizer + "' (use adam, adamw or sgd)");
}

std::string format_metrics_csv(const std::vector<training::EpochResult>& history) {
  std::ostringstream os;
  os << "epoch,train_loss,val_loss,val_accuracy,val_correct,val_total,epoch_seconds,samples_per_s\n";
  char line[256];
  for (const auto& r : history) {
    std::snprintf(line, sizeof line, "%d,%.9g,%.9g,%.9g,%lld,%lld,%.6f,%.1f\n", r.epoch, r.train_loss,
                  r.validation.loss, r.validation.accuracy(), static_cast<long long>(r.validation.correct),
                  static_cast<long long>(r.validation.total), r.seconds, r.samples_per_second);
    os << line;
  }
  return os.str();
}

}  // namespace

int run_train(const TrainArgs& a) {
  if (a.verbose) std::cerr << describe_runtime();
  if (a.hidden.empty()) throw ValueError("--hidden: give at least one hidden layer width, e.g. --hidden 10,10");
  for (auto h : a.hidden)
    if (h <= 0) throw ValueError("--hidden: layer widths must be positive, got " + std::to_string(h));
  if (a.optimizer != "sgd" && a.momentum != 0)
    throw ValueError("--momentum applies to --optimizer sgd only (" + a.optimizer + " has no momentum option)");
  // Refuse an existing or unwritable output before spending time on training.
  check_output(a);

  // ---- data ----
  data::CsvTable train_table = data::read_csv(a.train_csv);
  train_table.require_rows();
  data::CsvTable val_table = data::read_csv(a.validation_csv);
  val_table.require_rows();
  train_table.column_index(a.label);  // names the available columns when the label is unknown
  val_table.column_index(a.label);
  data::NumericMatrix train_m = data::numeric_matrix(train_table, {}, a.label);
  // validation must have the training features, in the training order
  data::NumericMatrix val_m = data::numeric_matrix(val_table, train_m.feature_names, a.label);

  const std::int64_t in_features = train_m.features.shape()[1];
  constexpr std::int64_t kMaxClasses = std::int64_t{1} << 24;
  const std::int64_t max_label = train_m.labels.max().item<std::int64_t>();
  if (max_label >= kMaxClasses) {
    const auto* y = train_m.labels.data_ptr<std::int64_t>();
    std::size_t row = 0;
    while (y[row] != max_label) ++row;
    throw ValueError(a.train_csv + " line " + std::to_string(train_table.line(train_m.rows[row])) + ", column '" +
                     a.label + "': class id " + std::to_string(max_label) + " is too large (class ids are 0..C-1 for C " +
                     "classes, C at most " + std::to_string(kMaxClasses) + ")");
  }
  const std::int64_t num_classes = max_label + 1;
  if (num_classes < 2)
    throw ValueError(a.train_csv + ": column '" + a.label + "' has a single class; a classifier needs at least two");
  {
    const auto* v = val_m.labels.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < val_m.labels.numel(); ++i)
      if (v[i] >= num_classes)
        throw ValueError(a.validation_csv + " line " + std::to_string(val_table.line(val_m.rows[i])) + ": class " +
                         std::to_string(v[i]) + " in column '" + a.label + "' never occurs in the training data (classes 0.." +
                         std::to_string(num_classes - 1) + ")");
  }

  // ---- model (seeded like torch.manual_seed(seed) followed by the model's construction) ----
  check_model_size(in_features, a.hidden, num_classes, a.label);
  manual_seed(a.seed);
  auto model = std::make_shared<nn::MLP>(in_features, a.hidden, num_classes);
  if (!a.init_weights.empty()) {
    StateDict init;
    try {
      init = io::load_safetensors(a.init_weights);
    } catch (const Error& e) {  // the message starts with the file name
      throw IOError("--init-weights " + trim_right(e.what()));
    }
    try {
      model->load_state_dict(init);
    } catch (const Error& e) {
      throw ValueError("--init-weights " + a.init_weights + ": " + trim_right(e.what()));
    }
  }
  auto optimizer = make_optimizer(a, model->parameters());

  data::DataLoader train_loader(data::TensorDataset(train_m.features, train_m.labels),
                                data::DataLoaderOptions(a.batch_size).shuffle(a.shuffle));
  data::DataLoader val_loader(data::TensorDataset(val_m.features, val_m.labels), data::DataLoaderOptions(a.batch_size));

  if (!a.quiet) {
    std::cout << "Training " << model->type_name() << " " << in_features;
    for (auto h : a.hidden) std::cout << "-" << h;
    std::cout << "-" << num_classes << " on " << train_m.features.shape()[0] << " rows (" << a.train_csv << "), validating on "
              << val_m.features.shape()[0] << " rows (" << a.validation_csv << ")\n";
  }

  training::FitOptions fit_opts;
  fit_opts.epochs = a.epochs;
  fit_opts.on_epoch_end = [&](const training::EpochResult& r) {
    if (!a.quiet) {
      std::printf("Epoch: %d\nTraining set: Average loss: %.6f\nValidation set: Average loss: %.6f, Accuracy: %lld/%lld (%.0f%%)\n\n",
                  r.epoch, r.train_loss, r.validation.loss, static_cast<long long>(r.validation.correct),
                  static_cast<long long>(r.validation.total), 100.0 * r.validation.accuracy());
      std::fflush(stdout);
    }
    return true;
  };
  std::vector<training::EpochResult> history = training::fit(*model, *optimizer, train_loader, &val_loader, fit_opts);

  // ---- model directory (atomic) ----
  io::ModelDirWriter out(a.out, a.force);
  io::save_safetensors(model->state_dict(), out.file("model.safetensors"), {{"format", "pt"}, {"krill_version", version()}});
  out.write_file("metrics.csv", format_metrics_csv(history));
  nlohmann::json cfg;
  cfg["format"] = "krill-model";
  cfg["format_version"] = 1;
  cfg["krill_version"] = version();
  cfg["architecture"] = {{"type", "mlp"},
                         {"in_features", in_features},
                         {"hidden", a.hidden},
                         {"num_classes", num_classes},
                         {"activation", "relu"},
                         {"output", "log_softmax"}};
  cfg["features"] = train_m.feature_names;
  cfg["label"] = a.label;
  std::vector<std::string> classes;
  for (std::int64_t c = 0; c < num_classes; ++c) classes.push_back(std::to_string(c));
  cfg["classes"] = classes;
  cfg["training"] = {{"train", a.train_csv},     {"validation", a.validation_csv}, {"batch_size", a.batch_size},
                     {"epochs", a.epochs},       {"optimizer", a.optimizer},       {"lr", a.lr},
                     {"momentum", a.momentum},   {"weight_decay", a.weight_decay}, {"shuffle", a.shuffle},
                     {"seed", a.seed},           {"init_weights", a.init_weights}};
  out.write_file("config.json", cfg.dump(2) + "\n");
  out.commit();

  const auto& last = history.back();
  std::printf("Done: %d epochs, final training loss %.6f, validation loss %.6f, accuracy %lld/%lld (%.2f%%)\n",
              last.epoch, last.train_loss, last.validation.loss, static_cast<long long>(last.validation.correct),
              static_cast<long long>(last.validation.total), 100.0 * last.validation.accuracy());
  std::printf("Model written to %s (model.safetensors, config.json, metrics.csv)\n", a.out.c_str());
  return 0;
}

int run_inspect(const InspectArgs& a) {
  StateDict sd = io::load_safetensors(a.model_dir + "/model.safetensors");
  for (const auto& [name, t] : sd) {
    std::cout << name << " " << t.shape().str() << " " << dtype_name(t.dtype()) << "\n" << t << "\n\n";
  }
  return 0;
}

}  // namespace krill::cli
