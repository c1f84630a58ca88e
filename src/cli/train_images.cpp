// krill train for images (the "Train PyTorch Model" module): an image data set (--data SPEC,
// or --train DIR --validation DIR), a model by name (lenet, resnet18/34/50, densenet121) or a
// model directory to fine-tune, the module's schedule (warm-up, polynomial decay), early
// stopping on the validation loss, a progress line every --print-freq iterations, top-1/top-5,
// images per second, a NaN stop that keeps the last good weights; distributed under mpirun like
// the tabular path (train_command.cpp), with which it shares train_common.cpp.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <future>
#include <optional>
#include <sstream>

#include "commands.hpp"
#include "krill/data/dataloader.hpp"
#include "krill/data/image.hpp"
#include "krill/dist/dist.hpp"
#include "krill/io/model_dir.hpp"
#include "krill/io/safetensors.hpp"
#include "krill/nn/models/registry.hpp"
#include "krill/tensor/generator.hpp"
#include "krill/train/image_model_dir.hpp"
#include "krill/train/trainer.hpp"
#include "krill/util/runtime_info.hpp"
#include "train_common.hpp"
#include "train_tracking.hpp"

namespace krill::cli {

namespace {

namespace fs = std::filesystem;

// "--resize 224" or "--resize 32,48" (height, width).
std::pair<std::int64_t, std::int64_t> parse_resize(const std::string& spec) {
  auto number = [&](const std::string& t) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || p != t.data() + t.size() || v <= 0 || v > 16384)
      throw ValueError("--resize '" + spec + "': give a size in pixels (1 to 16384), e.g. --resize 224 or --resize 32,48");
    return v;
  };
  const auto comma = spec.find(',');
  if (comma == std::string::npos) {
    const auto s = number(spec);
    return {s, s};
  }
  return {number(spec.substr(0, comma)), number(spec.substr(comma + 1))};
}

// "--normalize 0.49,0.48,0.45/0.25,0.24,0.26": per-channel means, then standard deviations.
std::pair<std::vector<float>, std::vector<float>> parse_normalize(const std::string& spec, std::int64_t channels) {
  const std::string example = " (e.g. --normalize 0.4914,0.4822,0.4465/0.247,0.243,0.261, or auto, or none)";
  const auto slash = spec.find('/');
  if (slash == std::string::npos) throw ValueError("--normalize '" + spec + "': give MEANS/STDS" + example);
  auto list = [&](const std::string& text, const char* what) {
    std::vector<float> v;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) {
      double x = 0;
      auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), x);
      if (item.empty() || ec != std::errc() || p != item.data() + item.size() || !std::isfinite(x))
        throw ValueError("--normalize '" + spec + "': " + what + " '" + item + "' is not a number" + example);
      v.push_back(static_cast<float>(x));
    }
    if (static_cast<std::int64_t>(v.size()) != channels)
      throw ValueError(strf("--normalize '%s': %zu %s for images with %lld channel%s", spec.c_str(), v.size(), what,
                            static_cast<long long>(channels), channels == 1 ? "" : "s") + example);
    return v;
  };
  auto mean = list(spec.substr(0, slash), "means");
  auto std = list(spec.substr(slash + 1), "standard deviations");
  for (float s : std)
    if (!(s > 0)) throw ValueError("--normalize '" + spec + "': standard deviations must be positive" + example);
  return {mean, std};
}

std::string format_image_metrics_csv(const std::vector<training::EpochResult>& history) {
  std::ostringstream os;
  os << "epoch,train_loss,val_loss,val_accuracy,val_top5,images_per_s,epoch_seconds,lr,val_correct,val_total\n";
  for (const auto& r : history)
    os << strf("%d,%.9g,%.9g,%.9g,%.9g,%.1f,%.6f,%.9g,%lld,%lld\n", r.epoch, r.train_loss, r.validation.loss,
               r.validation.accuracy(), r.validation.top5_accuracy(), r.samples_per_second, r.seconds, r.lr,
               static_cast<long long>(r.validation.correct), static_cast<long long>(r.validation.total));
  return os.str();
}

std::string image_training_json(const TrainArgs& a, int world_size, double effective_lr, const std::string& source) {
  nlohmann::json t = {{"model", a.model},          {"data", source},          {"epochs", a.epochs},
                      {"batch_size", a.batch_size}, {"optimizer", a.optimizer}, {"lr", a.lr},
                      {"momentum", a.momentum},     {"weight_decay", a.weight_decay}, {"seed", a.seed},
                      {"warmup_epochs", a.warmup_epochs}, {"lr_schedule", a.lr_schedule},
                      {"patience", a.patience}, {"print_freq", a.print_freq},
                      {"random_crop_padding", a.random_crop_padding}, {"hflip", a.hflip}};
  if (world_size > 1)
    t["distributed"] = {{"world_size", world_size}, {"scale_lr", a.scale_lr}, {"effective_lr", effective_lr},
                        {"batch_size_per_rank", a.batch_size}, {"global_batch_size", a.batch_size * world_size}};
  return t.dump();
}

// The training and validation sets of --data or --train/--validation, the latter split off the
// training set (--test-size) when the source has none.
data::ImageData open_data(const TrainArgs& a) {
  data::ImageDataOptions opts;
  opts.set_seed(a.seed);
  data::ImageData d;
  if (!a.data.empty()) {
    d = data::open_image_data(a.data, opts);
  } else {
    d = data::open_image_folders(a.train_csv, a.validation_csv, opts);
  }
  if (!d.validation) {
    d = data::random_split(*d.train, a.test_size, a.seed);
  } else {
    data::check_compatible(*d.train, *d.validation);
  }
  if (d.train->size() == 0) throw ValueError("the training set is empty");
  if (d.validation->size() == 0) throw ValueError("the validation set is empty (raise --test-size)");
  return d;
}

}  // namespace

void check_image_args(const TrainArgs& a) {
  const bool presplit = !a.train_csv.empty() || !a.validation_csv.empty();
  if (!a.data.empty() && presplit)
    throw ValueError("give either --data SPEC or --train DIR --validation DIR, not both");
  if (a.data.empty() && !presplit)
    throw ValueError("no image data: give --data (an IDX or CIFAR-10 directory, an image directory of class folders, "
                     "or synthetic:CxHxW:CLASSES[:N]) or --train DIR --validation DIR");
  if (presplit && (a.train_csv.empty() || a.validation_csv.empty()))
    throw ValueError(std::string(a.train_csv.empty() ? "--train" : "--validation") +
                     " is missing: image directories need both --train DIR and --validation DIR");
  if (!a.data_csv.empty())
    throw ValueError("DATA.csv (" + a.data_csv + ") is tabular data; images come with --data or --train/--validation");
  if (!a.data.empty() && a.data.rfind("synthetic:", 0) != 0 && !fs::exists(a.data))
    throw ValueError("--data " + a.data + ": no such file or directory (give an IDX or CIFAR-10 directory, an image "
                     "directory of class folders, or synthetic:CxHxW:CLASSES[:N])");
  if (a.model.empty()) throw ValueError("--data needs --model: " + [] {
    std::string names;
    for (const auto& n : nn::model_names()) names += (names.empty() ? "" : ", ") + n;
    return names;
  }() + ", or a model directory to fine-tune");
  if (a.model == "mlp") throw ValueError("--model mlp takes CSV data (DATA.csv or --train/--validation CSV files), not --data");
  if (!nn::is_model_name(a.model) && !fs::is_directory(a.model)) {
    std::string names;
    for (const auto& n : nn::model_names()) names += (names.empty() ? "" : ", ") + n;
    throw ValueError("--model: unknown model '" + a.model + "' (known models: " + names +
                     "; or a krill model directory to fine-tune)");
  }
  if (a.optimizer != "sgd" && a.momentum != 0)
    throw ValueError("--momentum applies to --optimizer sgd only (" + a.optimizer + " has no momentum option)");
  if (!a.resize.empty()) (void)parse_resize(a.resize);
  if (a.warmup_epochs < 0 || a.patience < 0 || a.print_freq < 0 || a.workers < 0)
    throw ValueError("--warmup-epochs, --patience, --print-freq and --workers take non-negative integers");
}

int run_train_images(const TrainArgs& a) {
  std::optional<track::Run> run;
  std::future<track::Run> pending;   // the run while it is being started
  try {
    check_image_args(a);
    dist::init();
    const int world_size = dist::size();
    const int rank = dist::rank();
    const bool distributed = world_size > 1;
    const bool console = rank == 0 || a.log_verbosity == "all";
    const std::string prefix = distributed && a.log_verbosity == "all" ? "[rank " + std::to_string(rank) + "] " : "";
    std::string rank_log;
    auto say = [&](const std::string& text) {
      if (console && !a.quiet) print_prefixed(stdout, prefix, text);
      if (distributed) rank_log += text;
    };
    if (a.verbose && console) print_prefixed(stderr, prefix, describe_runtime());

    const double effective_lr = distributed && a.scale_lr ? a.lr * world_size : a.lr;
    // Output and store first (rank 0 decides, every rank stops alike), then the data.
    check_output_and_start_run(a, world_size, effective_lr, run, pending);

    // ---- data ----
    data::ImageData d = open_data(a);
    const std::int64_t channels = d.train->channels();
    std::optional<training::SavedImageModel> base;   // --model DIR: fine-tuning
    const bool from_dir = fs::is_directory(a.model);
    if (from_dir) base = training::load_image_model_dir(a.model);

    training::ImageModelConfig cfg;
    cfg.architecture = from_dir ? base->config.architecture : a.model;
    cfg.classes = d.train->classes();
    if (!a.resize.empty()) {
      std::tie(cfg.resize_height, cfg.resize_width) = parse_resize(a.resize);
    } else if (from_dir && base->config.resize_height > 0) {
      cfg.resize_height = base->config.resize_height, cfg.resize_width = base->config.resize_width;
    }
    if (a.normalize == "auto") {
      if (from_dir && !base->config.mean.empty()) {
        cfg.mean = base->config.mean, cfg.std = base->config.std;   // the pretrained model's inputs
      } else {
        std::tie(cfg.mean, cfg.std) = d.train->channel_stats();
      }
    } else if (a.normalize != "none") {
      std::tie(cfg.mean, cfg.std) = parse_normalize(a.normalize, channels);
    }
    data::Transforms eval_t = cfg.eval_transforms();
    data::Transforms train_t;
    if (cfg.resize_height > 0) train_t.resize(cfg.resize_height, cfg.resize_width);
    if (a.random_crop_padding >= 0) {
      const std::int64_t h = cfg.resize_height > 0 ? cfg.resize_height : d.train->height();
      const std::int64_t w = cfg.resize_height > 0 ? cfg.resize_width : d.train->width();
      if (h <= 0 || w <= 0) throw ValueError("--random-crop needs images of one size: add --resize");
      train_t.random_crop(h, w, a.random_crop_padding);
    }
    if (a.hflip) train_t.random_horizontal_flip(0.5);
    if (!cfg.mean.empty()) train_t.normalize(cfg.mean, cfg.std);
    d.train->set_transforms(train_t);
    d.validation->set_transforms(eval_t);
    const Shape in_shape = d.train->input_shape();   // [C, H, W] after the transforms
    cfg.in_channels = in_shape[0], cfg.height = in_shape[1], cfg.width = in_shape[2];
    if (const std::int64_t least = nn::min_image_size(cfg.architecture); cfg.height < least || cfg.width < least)
      throw ValueError(strf("%s needs images of at least %lldx%lld pixels; these are %lldx%lld: enlarge them with "
                            "--resize %lld",
                            cfg.architecture.c_str(), static_cast<long long>(least), static_cast<long long>(least),
                            static_cast<long long>(cfg.height), static_cast<long long>(cfg.width),
                            static_cast<long long>(std::max<std::int64_t>(least, 32))));
    if (from_dir && (base->config.in_channels != cfg.in_channels))
      throw ValueError(strf("--model %s takes %lld-channel images; the data has %lld", a.model.c_str(),
                            static_cast<long long>(base->config.in_channels), static_cast<long long>(cfg.in_channels)));

    say(strf("Data: %s; validation: %s\n", d.train->describe().c_str(), d.validation->describe().c_str()));
    say("Transforms: training " + train_t.str() + "; validation " + eval_t.str() + "\n");

    join_run(run, pending);

    // ---- model (seeded like torch.manual_seed(seed) then the model's construction) ----
    manual_seed(a.seed);
    std::shared_ptr<nn::Module> model = training::build_image_model(cfg);
    if (from_dir) {
      // Every weight whose name and shape match; a classifier for another number of classes
      // starts fresh (fine-tuning on new classes).
      StateDict mine = model->state_dict(), theirs = base->model->state_dict(), merged;
      std::vector<std::string> fresh;
      for (const auto& [name, t] : mine) {
        const Tensor* saved = theirs.find(name);
        if (saved && saved->shape() == t.shape()) {
          merged.insert(name, *saved);
        } else {
          merged.insert(name, t);
          fresh.push_back(name);
        }
      }
      model->load_state_dict(merged);
      std::string note = strf("Fine-tuning %s (%s)", a.model.c_str(), cfg.architecture.c_str());
      if (!fresh.empty()) {
        note += "; new layers for " + std::to_string(cfg.classes.size()) + " classes:";
        for (const auto& f : fresh) note += " " + f;
      }
      say(note + "\n");
    }
    TrainArgs opt_args = a;
    opt_args.lr = effective_lr;
    std::unique_ptr<optim::Optimizer> optimizer = make_optimizer(opt_args, model->parameters());
    make_distributed(a, *model, optimizer);

    data::DataLoader train_loader(d.train, data::DataLoaderOptions(a.batch_size).shuffle(true).num_workers(a.workers));
    shard_training_loader(train_loader, d.train->size(), true, a.seed);
    data::DataLoader val_loader(d.validation,
                                data::DataLoaderOptions(a.batch_size * world_size).num_workers(a.workers));
    {
      std::ostringstream os;
      os << "Model: " << cfg.architecture << ", " << [&] {
        std::int64_t n = 0;
        for (const auto& p : model->parameters()) n += p.numel();
        return n;
      }() << " parameters, input " << cfg.in_channels << "x" << cfg.height << "x" << cfg.width << ", "
         << cfg.classes.size() << " classes\n";
      os << strf("Training: %d epochs, batch %lld%s, %s lr %g", a.epochs, static_cast<long long>(a.batch_size),
                 distributed ? strf(" per rank x %d ranks", world_size).c_str() : "", a.optimizer.c_str(), effective_lr);
      if (a.warmup_epochs > 0) os << ", " << a.warmup_epochs << " warm-up epoch(s)";
      os << (a.lr_schedule == "constant" ? ", constant lr" : ", polynomial decay");
      if (a.patience > 0) os << ", early stopping after " << a.patience << " epochs without improvement";
      os << "\n";
      say(os.str());
    }

    // ---- training ----
    EpochPrinter printer(a.quiet || !console, a.epochs, prefix, false);
    std::vector<double> global_train_loss;
    training::FitOptions fit;
    fit.epochs = a.epochs;
    // power 0: the warm-up, then the lr as given (--lr-schedule constant)
    fit.schedule = training::LrSchedule::warmup_poly(a.warmup_epochs, a.lr_schedule == "constant" ? 0.0 : 1.0);
    fit.patience = a.patience;
    fit.print_freq = a.print_freq;
    fit.on_iteration = [&](const training::IterationInfo& it) {
      if (console && !a.quiet)
        print_prefixed(stdout, prefix,
                       strf("Epoch: [%d][%*lld/%lld]  Loss %.4f (batch %.4f)  lr %.6g  %.0f img/s\n", it.epoch,
                            static_cast<int>(std::to_string(it.iterations).size()), static_cast<long long>(it.iteration),
                            static_cast<long long>(it.iterations), it.loss, it.batch_loss, it.lr,
                            it.samples_per_second * world_size));
      if (run) {
        const std::int64_t step = static_cast<std::int64_t>(it.epoch - 1) * it.iterations + it.iteration;
        run->log_metric("train_loss_iter", it.loss, step);
        run->log_metric("lr_iter", it.lr, step);
      }
    };
    if (distributed)
      fit.agree_finite = [](bool finite) {
        Tensor t = full(Shape{1}, finite ? 1.0 : 0.0, TensorOptions(DType::Float64));
        dist::allreduce(t, dist::ReduceOp::Min);
        return t.data_ptr<double>()[0] > 0.5;
      };
    fit.on_epoch_end = [&](const training::EpochResult& r) {
      training::EpochResult g = r;
      if (distributed) {
        Tensor t = full(Shape{1}, r.train_loss, TensorOptions(DType::Float64));
        dist::allreduce(t, dist::ReduceOp::Average);
        g.train_loss = t.data_ptr<double>()[0];
      }
      global_train_loss.push_back(g.train_loss);
      printer.epoch(g, true);
      g.samples_per_second *= world_size;   // the job's throughput
      if (console && !a.quiet)
        print_prefixed(stdout, prefix,
                       strf("Epoch %d: %.0f images/s, %.1f s, lr %.6g%s\n\n", g.epoch, g.samples_per_second, g.seconds,
                            g.lr, g.stopped_early ? strf("; early stop: no improvement for %d epochs (best: epoch %d)",
                                                         g.epochs_without_improvement, g.best_epoch).c_str()
                                                  : ""));
      if (distributed) rank_log += strf("epoch %d: train loss %.6f (this rank), validation loss %.6f\n", r.epoch,
                                        r.train_loss, r.validation.loss);
      if (run) {
        log_epoch_metrics(*run, g, g.lr, "images_per_s");
        run->log_metric("val_top5", g.validation.top5_accuracy(), g.epoch);
      }
      return true;
    };

    std::vector<training::EpochResult> history;
    std::string diverged;   // the NaN stop's message: the last good weights are saved, then it is raised
    try {
      history = training::fit(*model, *optimizer, train_loader, val_loader.dataset().size() ? &val_loader : nullptr, fit);
    } catch (const training::TrainingDivergedError& e) {
      history = e.history;
      diverged = e.what();
      if (history.empty())
        throw training::TrainingDivergedError(diverged + "; nothing was saved (it diverged in the first epoch)");
    }
    to_job_metrics(history, global_train_loss, world_size);

    std::vector<std::string> logs;
    if (distributed) {
      dist::check_parameters_in_sync(*model);
      logs = allgather_strings(rank_log);
    }

    // ---- model directory (atomic; rank 0 alone) ----
    std::string failure;
    if (rank == 0) {
      try {
        io::ModelDirWriter out(a.out, a.force);
        io::save_safetensors(model->state_dict(), out.file("model.safetensors"),
                             {{"format", "pt"}, {"krill_version", version()}});
        out.write_file("metrics.csv", format_image_metrics_csv(history));
        out.write_file("config.json",
                       training::image_model_config_json(cfg, image_training_json(a, world_size, effective_lr,
                                                                                  a.data.empty() ? a.train_csv : a.data)));
        write_loss_plot(out.file("loss.png"), history);
        if (distributed) {
          fs::create_directories(out.file("logs"));
          for (std::size_t r = 0; r < logs.size(); ++r) out.write_file("logs/rank-" + std::to_string(r) + ".log", logs[r]);
        }
        out.commit();
        if (run) log_model_artifacts(*run, fs::absolute(a.out).lexically_normal().string());
      } catch (const std::exception& e) {
        if (!distributed) throw;
        failure = e.what();
      }
    }
    if (distributed) {
      failure = broadcast_string(failure, 0);
      if (!failure.empty())
        throw IOError(rank == 0 ? failure : "rank 0 could not write the model directory " + a.out + ": " + failure);
    }
    if (!diverged.empty()) {
      const auto& last = history.back();
      throw training::TrainingDivergedError(
          diverged + strf("; %s holds the weights of epoch %d (validation loss %.6f)", a.out.c_str(),
                          last.best_epoch > 0 && a.patience > 0 ? last.best_epoch : last.epoch,
                          a.patience > 0 ? last.best_loss : last.validation.loss));
    }
    const auto& last = history.back();
    if (console) {
      const int kept = a.patience > 0 ? last.best_epoch : last.epoch;
      print_prefixed(stdout, prefix,
                     strf("Done: %zu epochs, final training loss %.6f, validation loss %.6f, accuracy %lld/%lld (%.2f%%), "
                          "top-%d %.2f%%; weights of epoch %d kept\n",
                          history.size(), last.train_loss, last.validation.loss,
                          static_cast<long long>(last.validation.correct), static_cast<long long>(last.validation.total),
                          100.0 * last.validation.accuracy(), last.validation.top_k,
                          100.0 * last.validation.top5_accuracy(), kept));
    }
    if (rank == 0)
      std::printf("Model written to %s: model.safetensors, config.json (architecture, classes, transforms), metrics.csv, "
                  "loss.png%s\n",
                  a.out.c_str(), distributed ? ", logs/rank-<r>.log (one per rank)" : "");
    finish_training(a, run, optimizer);
    return 0;
  } catch (const std::exception& e) {
    record_failure(run, pending, e);
    throw;
  }
}

}  // namespace krill::cli
