// krill train: prepare a CSV (or pre-split CSVs), build the MLP, train with per-epoch
// validation, write the model directory atomically.
#include <unistd.h>

#include <algorithm>
#include <chrono>
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
#include "krill/io/plot.hpp"
#include "krill/train/model_dir.hpp"
#include "krill/train/trainer.hpp"
#include "krill/data/tabular.hpp"
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
    for (const std::string& in : {a.data_csv, a.train_csv, a.validation_csv, a.init_weights}) {
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

std::map<std::string, double> parse_scale(const std::vector<std::string>& items) {
  std::map<std::string, double> out;
  for (const std::string& item : items) {
    const auto eq = item.rfind('=');
    const std::string example = " (e.g. --scale FlipperLength=0.1,BodyMass=0.01)";
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw ValueError("--scale: '" + item + "' is not COLUMN=FACTOR" + example);
    const std::string col = item.substr(0, eq), num = item.substr(eq + 1);
    double v = 0;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (ec != std::errc() || p != num.data() + num.size() || !std::isfinite(v) || v == 0)
      throw ValueError("--scale: the factor of '" + col + "' is '" + num + "', not a finite non-zero number" + example);
    if (out.count(col)) throw ValueError("--scale: column '" + col + "' is given twice");
    out[col] = v;
  }
  return out;
}

namespace {

// One line per epoch like the lab's notebook, or (on a terminal) the same lines with a
// progress bar underneath while an epoch runs.
class EpochPrinter {
 public:
  EpochPrinter(bool quiet, int epochs) : quiet_(quiet), epochs_(epochs), tty_(::isatty(STDOUT_FILENO) == 1) {}

  void batch(int epoch, std::int64_t done, std::int64_t total) {
    if (quiet_ || !tty_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100) && done != total) return;
    last_ = now;
    const int width = 30;
    const int filled = total ? static_cast<int>(width * done / total) : width;
    std::printf("\r  epoch %d/%d [%s%s] %lld/%lld batches", epoch, epochs_, std::string(filled, '#').c_str(),
                std::string(width - filled, '.').c_str(), static_cast<long long>(done), static_cast<long long>(total));
    std::fflush(stdout);
    bar_shown_ = true;
  }

  void epoch(const training::EpochResult& r) {
    if (quiet_) return;
    if (bar_shown_) {
      std::printf("\r\033[K");
      bar_shown_ = false;
    }
    std::printf("Epoch: %d\nTraining set: Average loss: %.6f\nValidation set: Average loss: %.6f, Accuracy: %lld/%lld (%.0f%%)\n\n",
                r.epoch, r.train_loss, r.validation.loss, static_cast<long long>(r.validation.correct),
                static_cast<long long>(r.validation.total), 100.0 * r.validation.accuracy());
    std::fflush(stdout);
  }

 private:
  bool quiet_;
  int epochs_;
  bool tty_;
  bool bar_shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

std::string training_json(const TrainArgs& a) {
  nlohmann::json t = {{"batch_size", a.batch_size}, {"epochs", a.epochs},     {"optimizer", a.optimizer},
                      {"lr", a.lr},                 {"momentum", a.momentum}, {"weight_decay", a.weight_decay},
                      {"shuffle", a.shuffle},       {"seed", a.seed},         {"init_weights", a.init_weights},
                      {"standardize", a.standardize}, {"dropna", a.dropna},  {"oversample", a.oversample}};
  if (!a.data_csv.empty()) {
    t["data"] = a.data_csv;
    t["test_size"] = a.test_size;
  } else {
    t["train"] = a.train_csv;
    t["validation"] = a.validation_csv;
  }
  return t.dump();
}

void write_loss_plot(const std::string& path, const std::vector<training::EpochResult>& history) {
  io::Series tr{"training", {}, {}}, va{"validation", {}, {}};
  for (const auto& r : history) {
    tr.x.push_back(r.epoch);
    tr.y.push_back(r.train_loss);
    va.x.push_back(r.epoch);
    va.y.push_back(r.validation.loss);
  }
  io::LinePlotOptions o;
  o.x_label = "epoch";
  o.y_label = "loss";
  io::write_line_plot(path, {tr, va}, o);
}

}  // namespace

void check_train_args(const TrainArgs& a) {
  const bool presplit = !a.train_csv.empty() || !a.validation_csv.empty();
  if (presplit && !a.data_csv.empty())
    throw ValueError("give either DATA.csv (krill splits it, --test-size) or --train and --validation, not both");
  if (!presplit && a.data_csv.empty())
    throw ValueError("no data: give DATA.csv (e.g. krill train data/penguins.csv --label Species ...) or --train A.csv "
                     "--validation B.csv");
  if (presplit && (a.train_csv.empty() || a.validation_csv.empty()))
    throw ValueError(std::string(a.train_csv.empty() ? "--train" : "--validation") +
                     " is missing: pre-split data needs both --train and --validation");
  if (a.hidden.empty()) throw ValueError("--hidden: give at least one hidden layer width, e.g. --hidden 10,10");
  if (a.optimizer != "sgd" && a.momentum != 0)
    throw ValueError("--momentum applies to --optimizer sgd only (" + a.optimizer + " has no momentum option)");
  if (!(a.test_size > 0 && a.test_size < 1)) {
    char got[64];
    std::snprintf(got, sizeof got, "%g", a.test_size);
    throw ValueError(std::string("--test-size must be a fraction strictly between 0 and 1 (e.g. 0.3), got ") + got);
  }
  if (a.oversample < 1) throw ValueError("--oversample must be at least 1, got " + std::to_string(a.oversample));
  (void)parse_scale(a.scale);
}

std::vector<std::string> split_list(const std::string& flag, const std::vector<std::string>& values) {
  std::vector<std::string> items;
  for (const std::string& v : values) {
    const std::string example = flag == "--scale" ? " (e.g. --scale FlipperLength=0.1,BodyMass=0.01)"
                                                  : " (e.g. " + flag + " Island,Sex)";
    std::size_t i = 0;
    for (int n = 1;; ++n) {
      while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
      std::string item;
      bool quoted = false;
      if (i < v.size() && v[i] == '"') {
        quoted = true;
        for (++i;; ++i) {
          if (i >= v.size()) throw ValueError(flag + ": '" + v + "' has an unterminated quote" + example);
          if (v[i] == '"') {
            if (i + 1 < v.size() && v[i + 1] == '"') {
              item += '"';
              ++i;
              continue;
            }
            ++i;
            break;
          }
          item += v[i];
        }
        while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
        if (i < v.size() && v[i] != ',')
          throw ValueError(flag + ": '" + v + "': text after the closing quote of item " + std::to_string(n) +
                           " (quote whole items" + (flag == "--scale" ? ": \"Flipper, mm=0.1\")" : ")") + example);
      } else {
        while (i < v.size() && v[i] != ',') item += v[i++];
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.pop_back();
      }
      if (item.empty() && !quoted) {
        if (v.find_first_not_of(" \t") == std::string::npos) throw ValueError(flag + " is empty: give one or more items" + example);
        throw ValueError(flag + ": item " + std::to_string(n) + " of '" + v + "' is empty" + example);
      }
      items.push_back(item);
      if (i >= v.size()) break;
      ++i;  // the comma
      if (i >= v.size()) throw ValueError(flag + ": '" + v + "' ends with a comma (an empty item)" + example);
    }
  }
  return items;
}

int run_train(const TrainArgs& a) {
  if (a.verbose) std::cerr << describe_runtime();
  check_train_args(a);
  const bool presplit = !a.train_csv.empty() || !a.validation_csv.empty();
  // Refuse an existing or unwritable output before spending time on training.
  check_output(a);

  // ---- data ----
  data::TabularSpec spec;
  spec.label = a.label;
  spec.features = a.features;
  spec.categorical = a.categorical;
  spec.scale = parse_scale(a.scale);
  spec.standardize = a.standardize;
  spec.dropna = a.dropna;
  spec.oversample = a.oversample;
  spec.test_size = a.test_size;
  spec.seed = a.seed;
  data::PreparedData d;
  std::string source;
  if (presplit) {
    data::CsvTable train_table = data::read_csv(a.train_csv);
    train_table.require_rows();
    data::CsvTable val_table = data::read_csv(a.validation_csv);
    val_table.require_rows();
    d = data::prepare_presplit(train_table, val_table, spec);
    source = a.train_csv + " + " + a.validation_csv;
  } else {
    data::CsvTable table = data::read_csv(a.data_csv);
    table.require_rows();
    d = data::prepare(table, spec);
    source = a.data_csv;
  }
  const data::FeaturePipeline& pipe = d.pipeline;
  const std::int64_t in_features = pipe.num_features();
  const std::int64_t num_classes = pipe.num_classes();
  check_model_size(in_features, a.hidden, num_classes, a.label);

  if (!a.quiet) {
    std::printf("Data: %s: %zu rows", source.c_str(), d.rows_read);
    if (d.rows_dropped) std::printf(", %zu dropped (missing values)", d.rows_dropped);
    if (a.oversample > 1) std::printf(", x%d oversampled = %zu", a.oversample, d.rows_after_oversampling);
    std::printf("; training %lld, validation %lld rows\n", static_cast<long long>(d.train_x.size(0)),
                static_cast<long long>(d.val_x.size(0)));
    std::printf("Features (%lld):", static_cast<long long>(in_features));
    for (const auto& f : pipe.features) {
      std::printf(" %s", f.name.c_str());
      if (f.categorical) std::printf("[%zu categories]", f.categories.size());
      if (f.scale != 1.0) std::printf("*%g", f.scale);
    }
    std::printf("\nClasses (%lld):", static_cast<long long>(num_classes));
    for (const auto& c : pipe.classes) std::printf(" %s", c.c_str());
    std::printf("\n");
  }
  if (d.leaked_validation_rows > 0)
    std::fprintf(stderr,
                 "krill train: warning: %zu of %lld validation rows also appear in the training set (identical "
                 "features and label)%s; validation loss and accuracy overstate how well the model generalises\n",
                 d.leaked_validation_rows, static_cast<long long>(d.val_x.size(0)),
                 a.oversample > 1 ? ": --oversample copies rows before the split, so copies land on both sides" : "");

  // ---- model (seeded like torch.manual_seed(seed) followed by the model's construction) ----
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

  data::DataLoader train_loader(data::TensorDataset(d.train_x, d.train_y),
                                data::DataLoaderOptions(a.batch_size).shuffle(a.shuffle));
  data::DataLoader val_loader(data::TensorDataset(d.val_x, d.val_y), data::DataLoaderOptions(a.batch_size));

  if (!a.quiet) {
    std::cout << "Model: " << *model << "\n";
    std::fflush(stdout);
  }
  EpochPrinter printer(a.quiet, a.epochs);
  training::FitOptions fit_opts;
  fit_opts.epochs = a.epochs;
  fit_opts.on_batch_end = [&](int epoch, std::int64_t done, std::int64_t total) { printer.batch(epoch, done, total); };
  fit_opts.on_epoch_end = [&](const training::EpochResult& r) {
    printer.epoch(r);
    return true;
  };
  std::vector<training::EpochResult> history = training::fit(*model, *optimizer, train_loader, &val_loader, fit_opts);

  // ---- model directory (atomic) ----
  io::ModelDirWriter out(a.out, a.force);
  io::save_safetensors(model->state_dict(), out.file("model.safetensors"), {{"format", "pt"}, {"krill_version", version()}});
  out.write_file("metrics.csv", format_metrics_csv(history));
  training::MlpArchitecture arch{in_features, a.hidden, num_classes};
  out.write_file("config.json", training::model_config_json(arch, pipe, training_json(a)));
  write_loss_plot(out.file("loss.png"), history);
  out.commit();

  const auto& last = history.back();
  std::printf("Done: %d epochs, final training loss %.6f, validation loss %.6f, accuracy %lld/%lld (%.2f%%)\n",
              last.epoch, last.train_loss, last.validation.loss, static_cast<long long>(last.validation.correct),
              static_cast<long long>(last.validation.total), 100.0 * last.validation.accuracy());
  std::printf("Model written to %s: model.safetensors (weights), config.json (architecture, preparation, classes), "
              "metrics.csv, loss.png\n",
              a.out.c_str());
  return 0;
}

}  // namespace krill::cli
