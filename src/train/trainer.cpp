#include "krill/train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "krill/autograd/grad_mode.hpp"
#include "krill/tensor/ops.hpp"

namespace krill::training {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::string format_lr(double lr) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", lr);
  return buf;
}

TrainingDivergedError diverged(const char* what, double value, bool elsewhere, int epoch, std::int64_t iteration,
                               double lr) {
  std::string msg = std::string("the ") + what + " became " +
                    (elsewhere ? "NaN or infinite on another rank" : std::isnan(value) ? "NaN" : "infinite");
  if (iteration > 0) {
    msg += " at ";
    if (epoch > 0) msg += "epoch " + std::to_string(epoch) + ", ";
    msg += "iteration " + std::to_string(iteration);
  } else if (epoch > 0) {
    msg += " after epoch " + std::to_string(epoch);
  }
  msg += " (lr " + format_lr(lr) + "): lower the learning rate (--lr) or add warm-up (--warmup-epochs)";
  TrainingDivergedError e(msg);
  e.epoch = epoch;
  e.iteration = iteration;
  e.lr = lr;
  return e;
}

// What one training pass needs beyond the model, optimizer and loader.
struct PassContext {
  int epoch = 0;                                  // 1-based; 0 = unknown (train_epoch alone)
  LrScheduler* scheduler = nullptr;               // null or constant: lr untouched
  const FitOptions* options = nullptr;            // callbacks, print_freq, agree_finite
  const std::function<void(std::int64_t, std::int64_t)>* on_batch = nullptr;
};

double train_pass(nn::Module& model, optim::Optimizer& optimizer, data::DataLoader& loader, const PassContext& ctx) {
  const std::int64_t total_batches = loader.num_batches();
  const bool scheduled = ctx.scheduler && !ctx.scheduler->schedule().is_constant();
  const FitOptions* o = ctx.options;
  const int print_freq = o && o->on_iteration ? o->print_freq : 0;
  model.train();
  double total = 0;
  std::int64_t batches = 0;
  // The window since the last on_iteration report.
  double window_loss = 0;
  std::int64_t window_batches = 0, window_samples = 0;
  Clock::time_point window_start = print_freq > 0 ? Clock::now() : Clock::time_point();
  double lr = 0;  // group 0's lr of the current step (read from the optimizer only when needed)
  data::Batch batch;
  loader.begin_epoch();
  while (loader.next(batch)) {
    if (scheduled) lr = ctx.scheduler->apply(ctx.epoch - 1, batches);
    optimizer.zero_grad();
    Tensor out = model.forward(batch.input);
    Tensor loss = cross_entropy(out, batch.target);
    const double value = loss.item<float>();
    bool finite = std::isfinite(value);
    if (o && o->agree_finite) {
      const bool all = o->agree_finite(finite);
      if (!all && finite) throw diverged("training loss", value, true, ctx.epoch, batches + 1, scheduled ? lr : optimizer.lr(0));
      finite = finite && all;
    }
    if (!finite) throw diverged("training loss", value, false, ctx.epoch, batches + 1, scheduled ? lr : optimizer.lr(0));
    total += value;
    loss.backward();
    optimizer.step();
    ++batches;
    if (ctx.on_batch && *ctx.on_batch) (*ctx.on_batch)(batches, total_batches);
    if (print_freq > 0) {
      window_loss += value;
      ++window_batches;
      window_samples += batch.size();
      if (batches % print_freq == 0) {
        const Clock::time_point now = Clock::now();
        const double s = seconds_between(window_start, now);
        IterationInfo info;
        info.epoch = ctx.epoch;
        info.iteration = batches;
        info.iterations = total_batches;
        info.loss = window_loss / static_cast<double>(window_batches);
        info.batch_loss = value;
        info.lr = scheduled ? lr : optimizer.lr(0);
        info.samples_per_second = s > 0 ? static_cast<double>(window_samples) / s : 0.0;
        o->on_iteration(info);
        window_loss = 0;
        window_batches = window_samples = 0;
        window_start = Clock::now();  // the callback's own time (printing) is not training time
      }
    }
  }
  return batches ? total / static_cast<double>(batches) : 0.0;
}

// A copy of a model's state dict (parameters and buffers), taken into the same tensors each time.
class WeightSnapshot {
 public:
  void take(const nn::Module& model, int epoch) {
    NoGradGuard no_grad;
    StateDict now = model.state_dict();
    if (sd_.empty()) {
      for (const auto& [name, t] : now) sd_.insert(name, t.clone());
    } else {
      for (std::size_t i = 0; i < now.size(); ++i) {
        Tensor dst = sd_.items()[i].second;
        dst.copy_(now.items()[i].second);
      }
    }
    epoch_ = epoch;
  }
  void restore(nn::Module& model) const { model.load_state_dict(sd_); }
  int epoch() const { return epoch_; }
  bool empty() const { return sd_.empty(); }

 private:
  StateDict sd_;
  int epoch_ = -1;
};

}  // namespace

double train_epoch(nn::Module& model, optim::Optimizer& optimizer, data::DataLoader& loader,
                   const std::function<void(std::int64_t, std::int64_t)>& on_batch) {
  PassContext ctx;
  ctx.on_batch = &on_batch;
  return train_pass(model, optimizer, loader, ctx);
}

EvalResult evaluate(nn::Module& model, data::DataLoader& loader) {
  model.eval();
  NoGradGuard no_grad;
  EvalResult r;
  double total = 0;
  std::int64_t batches = 0;
  data::Batch batch;
  loader.begin_epoch();
  while (loader.next(batch)) {
    Tensor out = model.forward(batch.input);
    total += cross_entropy(out, batch.target).item<float>();
    Tensor pred = argmax(out, 1);
    const std::int64_t* p = pred.data_ptr<std::int64_t>();
    Tensor t = batch.target.contiguous();
    const std::int64_t* y = t.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < pred.numel(); ++i) r.correct += p[i] == y[i];
    // Top-k: the target is a hit when fewer than k outputs of its row are strictly greater.
    if (out.dim() == 2 && out.dtype() == DType::Float32) {
      Tensor logits = out.contiguous();
      const std::int64_t rows = logits.shape()[0], classes = logits.shape()[1];
      const int k = static_cast<int>(std::min<std::int64_t>(5, classes));
      r.top_k = k;
      const float* x = logits.data_ptr<float>();
      for (std::int64_t i = 0; i < rows; ++i) {
        const float* row = x + i * classes;
        const std::int64_t target = y[i];
        if (target < 0 || target >= classes) continue;  // cross_entropy has rejected it already
        const float v = row[target];
        int greater = 0;
        for (std::int64_t c = 0; c < classes && greater < k; ++c) greater += row[c] > v;
        r.correct_top5 += greater < k;
      }
    }
    r.total += batch.size();
    ++batches;
  }
  r.loss = batches ? total / static_cast<double>(batches) : 0.0;
  return r;
}

std::vector<EpochResult> fit(nn::Module& model, optim::Optimizer& optimizer, data::DataLoader& train_loader,
                             data::DataLoader* validation_loader, const FitOptions& options) {
  if (options.patience < 0)
    throw ValueError("fit: patience is " + std::to_string(options.patience) + "; it must be >= 0 (0: no early stopping)");
  if (options.patience > 0 && !validation_loader)
    throw ValueError("fit: early stopping (patience " + std::to_string(options.patience) +
                     ") watches the validation loss, but there is no validation set");
  if (options.print_freq < 0)
    throw ValueError("fit: print_freq is " + std::to_string(options.print_freq) + "; it must be >= 0 (0: off)");
  const bool early_stopping = options.patience > 0;
  LrScheduler scheduler(optimizer, options.schedule, train_loader.num_batches(), std::max(options.epochs, 0));

  // The weights to fall back on when the loss diverges: the last completed epoch's (taken after
  // each epoch), or under early stopping the best epoch's (every epoch that improved is the best
  // so far, and the first completed epoch always improves, so both start from the initial ones).
  WeightSnapshot good, best;
  good.take(model, 0);
  double best_loss = std::numeric_limits<double>::infinity();
  int best_epoch = 0, bad_epochs = 0;

  std::vector<EpochResult> history;
  try {
    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
      const auto t0 = Clock::now();
      EpochResult r;
      r.epoch = epoch;
      std::function<void(std::int64_t, std::int64_t)> on_batch;
      if (options.on_batch_end)
        on_batch = [&](std::int64_t done, std::int64_t total) { options.on_batch_end(epoch, done, total); };
      PassContext ctx;
      ctx.epoch = epoch;
      ctx.scheduler = &scheduler;
      ctx.options = &options;
      ctx.on_batch = &on_batch;
      r.train_loss = train_pass(model, optimizer, train_loader, ctx);
      r.lr = optimizer.lr(0);
      const auto t1 = Clock::now();
      if (validation_loader) {
        r.validation = evaluate(model, *validation_loader);
        // Weights that overflowed in the epoch's last steps show here first; they are not good.
        if (!std::isfinite(r.validation.loss))
          throw diverged("validation loss", r.validation.loss, false, epoch, 0, r.lr);
        // Every rank computes the same validation loss (same weights, same full validation
        // set), so these decisions agree across ranks without communication.
        r.improved = r.validation.loss < best_loss;
        if (r.improved) {
          best_loss = r.validation.loss;
          best_epoch = epoch;
          bad_epochs = 0;
          if (early_stopping) best.take(model, epoch);
        } else {
          ++bad_epochs;
        }
        r.best_epoch = best_epoch;
        r.best_loss = best_loss;
        r.epochs_without_improvement = bad_epochs;
        r.stopped_early = early_stopping && bad_epochs >= options.patience && epoch < options.epochs;
      }
      if (!early_stopping) good.take(model, epoch);
      const auto t2 = Clock::now();
      r.seconds = seconds_between(t0, t2);
      r.train_seconds = seconds_between(t0, t1);
      r.samples_per_second = r.train_seconds > 0 ? static_cast<double>(train_loader.epoch_size()) / r.train_seconds : 0.0;
      history.push_back(r);
      if (options.on_epoch_end && !options.on_epoch_end(r)) break;
      if (r.stopped_early) break;
    }
  } catch (TrainingDivergedError& e) {
    const WeightSnapshot& back = early_stopping && !best.empty() ? best : good;
    back.restore(model);
    e.restored_epoch = back.epoch();
    e.history = history;
    throw;
  }
  if (early_stopping && !best.empty() && best.epoch() != history.back().epoch) best.restore(model);
  return history;
}

}  // namespace krill::training
