#include "train_tracking.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "krill/util/error.hpp"
#include "krill/util/runtime_info.hpp"

namespace krill::cli {

namespace {

std::string number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);   // shortest text that reads back exactly
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

std::map<std::string, std::string> train_params(const TrainArgs& a, int world_size, double effective_lr) {
  std::map<std::string, std::string> p;
  if (a.image_mode()) {
    p["model"] = a.model;
    if (!a.data.empty()) p["data"] = a.data;
    else p["train"] = a.train_csv, p["validation"] = a.validation_csv;
    p["warmup_epochs"] = std::to_string(a.warmup_epochs);
    p["lr_schedule"] = a.lr_schedule;
    p["patience"] = std::to_string(a.patience);
    p["print_freq"] = std::to_string(a.print_freq);
    p["workers"] = std::to_string(a.workers);
    if (!a.resize.empty()) p["resize"] = a.resize;
    if (a.random_crop_padding >= 0) p["random_crop_padding"] = std::to_string(a.random_crop_padding);
    p["hflip"] = a.hflip ? "true" : "false";
    p["normalize"] = a.normalize;
    p["test_size"] = number(a.test_size);
  } else if (!a.data_csv.empty()) {
    p["data"] = a.data_csv;
    p["test_size"] = number(a.test_size);
  } else {
    p["train"] = a.train_csv;
    p["validation"] = a.validation_csv;
  }
  if (!a.image_mode()) {
    p["label"] = a.label;
    p["features"] = a.features.empty() ? "(all but the label)" : join(a.features);
    if (!a.categorical.empty()) p["categorical"] = join(a.categorical);
    if (!a.scale.empty()) p["scale"] = join(a.scale);
    p["standardize"] = a.standardize ? "true" : "false";
    p["dropna"] = a.dropna ? "true" : "false";
    p["oversample"] = std::to_string(a.oversample);
    p["model"] = "mlp";
    std::string hidden;
    for (auto h : a.hidden) hidden += (hidden.empty() ? "" : ",") + std::to_string(h);
    p["hidden"] = hidden;
  }
  p["batch_size"] = std::to_string(a.batch_size);
  p["epochs"] = std::to_string(a.epochs);
  p["optimizer"] = a.optimizer;
  p["lr"] = number(a.lr);
  if (a.optimizer == "sgd") p["momentum"] = number(a.momentum);
  p["weight_decay"] = number(a.weight_decay);
  p["shuffle"] = a.shuffle ? "true" : "false";
  p["seed"] = std::to_string(a.seed);
  p["threads"] = std::to_string(a.threads > 0 ? a.threads : get_num_threads());
  if (!a.init_weights.empty()) p["init_weights"] = a.init_weights;
  p["out"] = a.out;
  p["world_size"] = std::to_string(world_size);
  if (world_size > 1) {
    p["scale_lr"] = a.scale_lr ? "true" : "false";
    p["effective_lr"] = number(effective_lr);
    p["global_batch_size"] = std::to_string(a.batch_size * world_size);
  }
  return p;
}

track::Run start_train_run(const TrainArgs& a, int world_size, double effective_lr) {
  track::RunOptions opts;
  opts.name = a.run_name;
  opts.tracking_uri = a.tracking_uri.empty() ? track::default_tracking_uri() : a.tracking_uri;
  try {
    track::Run run = track::start_run(a.experiment, opts);
    run.log_params(train_params(a, world_size, effective_lr));
    return run;
  } catch (const IOError& e) {
    throw IOError(std::string(e.what()) + " (to train without recording the run, pass --no-track)");
  }
}

void log_epoch_metrics(track::Run& run, const training::EpochResult& r, double lr, const char* rate_key) {
  const std::int64_t step = r.epoch;
  run.log_metric("train_loss", r.train_loss, step);
  run.log_metric("val_loss", r.validation.loss, step);
  run.log_metric("val_accuracy", r.validation.accuracy(), step);
  run.log_metric("lr", lr, step);
  run.log_metric(rate_key, r.samples_per_second, step);
  run.log_metric("epoch_seconds", r.seconds, step);
}

void log_model_artifacts(track::Run& run, const std::string& model_dir) {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::string, std::string>> items{{model_dir, "model"}};
  std::error_code ec;
  for (const char* name : {"model.safetensors", "config.json", "metrics.csv", "loss.png"})
    if (fs::exists(fs::path(model_dir) / name, ec))
      items.emplace_back((fs::path(model_dir) / name).string(), std::string(name) == "loss.png" ? "plot" : "file");
  if (fs::is_directory(fs::path(model_dir) / "logs", ec)) {
    std::vector<fs::path> logs;
    for (const auto& e : fs::directory_iterator(fs::path(model_dir) / "logs", ec)) logs.push_back(e.path());
    std::sort(logs.begin(), logs.end());
    for (const auto& l : logs) items.emplace_back(l.string(), "log");
  }
  run.log_artifacts(items);
}

std::string run_receipt(const track::Run& run, const std::string& experiment) {
  return "Run " + run.id() + " (" + run.name() + ", experiment " + experiment + ") recorded in " +
         run.tracking_uri() + "\n";
}

}  // namespace krill::cli
