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
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <cstdarg>
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
#include "krill/dist/dist.hpp"
#include "krill/util/runtime_info.hpp"
#include "train_common.hpp"
#include "train_tracking.hpp"

namespace krill::cli {

void print_error(const std::string& command, const std::string& message) {
  // One write(2): the ranks of an MPI job share stderr, and their lines must not interleave.
  std::cerr.flush();
  const std::string line = "krill " + command + ": error: " + message + "\n";
  for (std::size_t done = 0; done < line.size();) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
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

std::string training_json(const TrainArgs& a, int world_size = 1, double effective_lr = 0) {
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
  if (world_size > 1)
    t["distributed"] = {{"world_size", world_size}, {"scale_lr", a.scale_lr}, {"effective_lr", effective_lr},
                        {"batch_size_per_rank", a.batch_size}, {"global_batch_size", a.batch_size * world_size},
                        {"backend", dist::world().backend()}};
  return t.dump();
}

}  // namespace

void check_train_args(const TrainArgs& a) {
  if (a.image_mode()) return check_image_args(a);
  if (a.label.empty()) throw ValueError("--label is required: the CSV column holding the class (e.g. --label Species)");
  for (const auto& [flag, path] : {std::pair{"--train", &a.train_csv}, std::pair{"--validation", &a.validation_csv}})
    if (!path->empty() && fs::is_directory(*path))
      throw ValueError(std::string(flag) + " " + *path + " is a directory: CSV data takes a file; to train on an image "
                       "directory give --model (e.g. --model lenet)");
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

namespace {

int train(const TrainArgs& a, std::optional<track::Run>& run, std::future<track::Run>& pending) {
  // Under mpirun -np N: a data-parallel job (a world of one process otherwise, which changes
  // nothing below).
  dist::init();
  const int world_size = dist::size();
  const int rank = dist::rank();
  const bool distributed = world_size > 1;
  // What reaches the console: rank 0 alone (default), or every rank with a "[rank r] " prefix.
  const bool all_ranks = a.log_verbosity == "all";
  const bool console = rank == 0 || all_ranks;
  const std::string prefix = distributed && all_ranks ? "[rank " + std::to_string(rank) + "] " : "";
  std::string rank_log;  // this rank's log (MODEL_DIR/logs/rank-<r>.log in a distributed job)
  auto say = [&](const std::string& text) {
    if (console && !a.quiet) print_prefixed(stdout, prefix, text);
  };
  auto log = [&](const std::string& text) {
    if (distributed) rank_log += text;
  };
  log(strf("krill train: rank %d of %d (local rank %d of %d), backend %s\n", rank, world_size, dist::local_rank(),
           dist::local_size(), dist::world().backend().c_str()));

  if (a.verbose && console) print_prefixed(stderr, prefix, describe_runtime());
  check_train_args(a);
  const bool presplit = !a.train_csv.empty() || !a.validation_csv.empty();
  // Refuse an existing or unwritable output (or an unusable run store) before spending time on
  // training. From here on a failure is recorded in the run as FAILED with its message.
  const double effective_lr = distributed && a.scale_lr ? a.lr * world_size : a.lr;
  check_output_and_start_run(a, world_size, effective_lr, run, pending);

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
  const std::int64_t train_rows = d.train_x.size(0);
  if (distributed) {
    // Every rank must see the same data (a different file or preparation would silently train
    // on something else): the sizes, then the model's structure in broadcast_parameters.
    dist::check_same_across_ranks(train_rows, "the training set size");
    dist::check_same_across_ranks(d.val_x.size(0), "the validation set size");
  }

  {
    std::string text = strf("Data: %s: %zu rows", source.c_str(), d.rows_read);
    if (d.rows_dropped) text += strf(", %zu dropped (missing values)", d.rows_dropped);
    if (a.oversample > 1) text += strf(", x%d oversampled = %zu", a.oversample, d.rows_after_oversampling);
    text += strf("; training %lld, validation %lld rows\n", static_cast<long long>(train_rows),
                 static_cast<long long>(d.val_x.size(0)));
    text += strf("Features (%lld):", static_cast<long long>(in_features));
    for (const auto& f : pipe.features) {
      text += " " + f.name;
      if (f.categorical) text += strf("[%zu categories]", f.categories.size());
      if (f.scale != 1.0) text += strf("*%g", f.scale);
    }
    text += strf("\nClasses (%lld):", static_cast<long long>(num_classes));
    for (const auto& c : pipe.classes) text += " " + c;
    text += "\n";
    say(text);
    log(text);
  }
  if (d.leaked_validation_rows > 0 && console)
    print_prefixed(stderr, prefix,
                   strf("krill train: warning: %zu of %lld validation rows also appear in the training set (identical "
                        "features and label)%s; validation loss and accuracy overstate how well the model generalises\n",
                        d.leaked_validation_rows, static_cast<long long>(d.val_x.size(0)),
                        a.oversample > 1 ? ": --oversample copies rows before the split, so copies land on both sides" : ""));

  join_run(run, pending);

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
  // Horovod's recipe: rank 0's weights everywhere, lr scaled by the number of ranks (the
  // global batch is N times larger), gradients averaged by the DistributedOptimizer, rank 0's
  // optimizer state everywhere.
  const double lr = effective_lr;
  TrainArgs opt_args = a;
  opt_args.lr = lr;
  std::unique_ptr<optim::Optimizer> optimizer = make_optimizer(opt_args, model->parameters());
  make_distributed(a, *model, optimizer);

  data::DataLoader train_loader(data::TensorDataset(d.train_x, d.train_y),
                                data::DataLoaderOptions(a.batch_size).shuffle(a.shuffle));
  shard_training_loader(train_loader, train_rows, a.shuffle, a.seed);
  // Validation: every rank evaluates the full validation set (same model, same numbers), in
  // batches of the global batch size, so the metrics are those of one process with that batch.
  data::DataLoader val_loader(data::TensorDataset(d.val_x, d.val_y),
                              data::DataLoaderOptions(a.batch_size * world_size));

  {
    std::ostringstream os;
    os << "Model: " << *model << "\n";
    say(os.str());
    log(os.str());
  }
  if (distributed) {
    const std::string text =
        strf("Distributed: %d ranks, %lld training rows per rank, batch %lld per rank (%lld global), lr %g%s\n",
             world_size, static_cast<long long>(train_loader.epoch_size()), static_cast<long long>(a.batch_size),
             static_cast<long long>(a.batch_size * world_size), lr,
             a.scale_lr ? strf(" (%g x %d ranks)", a.lr, world_size).c_str() : " (--no-scale-lr)");
    say(text);
    log(text);
  }
  EpochPrinter printer(a.quiet || !console, a.epochs, prefix, !distributed);
  std::vector<double> global_train_loss;
  training::FitOptions fit_opts;
  fit_opts.epochs = a.epochs;
  fit_opts.on_batch_end = [&](int epoch, std::int64_t done, std::int64_t total) { printer.batch(epoch, done, total); };
  fit_opts.on_epoch_end = [&](const training::EpochResult& r) {
    training::EpochResult g = r;
    if (distributed) {  // the mean over ranks of their mean batch losses (equal step counts)
      Tensor t = zeros(Shape{1}, TensorOptions(DType::Float64));
      t.data_ptr<double>()[0] = r.train_loss;
      dist::allreduce(t, dist::ReduceOp::Average);
      g.train_loss = t.data_ptr<double>()[0];
      log(strf("epoch %d: train loss %.6f (this rank), %.6f (all ranks); validation loss %.6f, accuracy %lld/%lld; "
               "%.3f s\n",
               r.epoch, r.train_loss, g.train_loss, r.validation.loss, static_cast<long long>(r.validation.correct),
               static_cast<long long>(r.validation.total), r.seconds));
    }
    global_train_loss.push_back(g.train_loss);
    printer.epoch(g);
    if (run) {
      g.samples_per_second *= world_size;   // the job's throughput (every rank trains its shard at once)
      log_epoch_metrics(*run, g, optimizer->lr(), "rows_per_s");
    }
    return true;
  };
  std::vector<training::EpochResult> history = training::fit(*model, *optimizer, train_loader, &val_loader, fit_opts);
  to_job_metrics(history, global_train_loss, world_size);

  std::vector<std::string> logs;
  if (distributed) {
    // All ranks must end with bit-identical weights (a cheap hash allreduce).
    dist::check_parameters_in_sync(*model);
    log("parameters in sync across ranks\n");
    logs = allgather_strings(rank_log);
  }

  // ---- model directory (atomic; rank 0 alone) ----
  std::string failure;  // rank 0's error, told to every rank
  if (rank == 0) {
    try {
      io::ModelDirWriter out(a.out, a.force);
      io::save_safetensors(model->state_dict(), out.file("model.safetensors"),
                           {{"format", "pt"}, {"krill_version", version()}});
      out.write_file("metrics.csv", format_metrics_csv(history));
      training::MlpArchitecture arch{in_features, a.hidden, num_classes};
      out.write_file("config.json", training::model_config_json(arch, pipe, training_json(a, world_size, lr)));
      write_loss_plot(out.file("loss.png"), history);
      if (distributed) {
        std::filesystem::create_directories(out.file("logs"));
        for (std::size_t r = 0; r < logs.size(); ++r) out.write_file("logs/rank-" + std::to_string(r) + ".log", logs[r]);
      }
      out.commit();
      if (run) log_model_artifacts(*run, std::filesystem::absolute(a.out).lexically_normal().string());
    } catch (const Error& e) {
      if (!distributed) throw;
      failure = e.what();
    } catch (const std::exception& e) {
      if (!distributed) throw;
      failure = std::string("unexpected failure: ") + e.what();
    }
  }
  if (distributed) {
    failure = broadcast_string(failure, 0);
    if (!failure.empty())
      throw IOError(rank == 0 ? failure : "rank 0 could not write the model directory " + a.out + ": " + failure);
  }

  const auto& last = history.back();
  if (console) {
    print_prefixed(stdout, prefix,
                   strf("Done: %d epochs, final training loss %.6f, validation loss %.6f, accuracy %lld/%lld (%.2f%%)\n",
                        last.epoch, last.train_loss, last.validation.loss, static_cast<long long>(last.validation.correct),
                        static_cast<long long>(last.validation.total), 100.0 * last.validation.accuracy()));
  }
  if (rank == 0)
    std::printf("Model written to %s: model.safetensors (weights), config.json (architecture, preparation, classes), "
                "metrics.csv, loss.png%s\n",
                a.out.c_str(), distributed ? ", logs/rank-<r>.log (one per rank)" : "");
  finish_training(a, run, optimizer);
  return 0;
}

}  // namespace

int run_train(const TrainArgs& a) {
  if (a.threads > 0) set_num_threads(a.threads);  // before any kernel creates its primitives
  if (a.image_mode()) return run_train_images(a);
  std::optional<track::Run> run;   // rank 0's record of this training run (--no-track: none)
  std::future<track::Run> pending;  // the run while it is being started
  try {
    return train(a, run, pending);
  } catch (const std::exception& e) {
    record_failure(run, pending, e);
    throw;
  }
}

}  // namespace krill::cli
