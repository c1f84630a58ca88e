// The training loop for classifiers, shared by tabular and image training: one epoch of
// training, an evaluation pass, and fit() which runs epochs and reports each through a callback.
// The loss is cross-entropy on the model's output (a model ending in log_softmax gets PyTorch's
// CrossEntropyLoss-on-log-probs, as the lab does).
//
// fit() adds, each off by default so the tabular lab's runs are unchanged step for step:
//   - a learning-rate schedule (lr_schedule.hpp: linear warm-up, then polynomial decay), set on
//     every parameter group before each optimizer step;
//   - early stopping: `patience` epochs in a row whose validation loss is not strictly lower
//     than the best so far end training, and the model is left with the best epoch's weights;
//   - a progress callback every `print_freq` iterations (mean loss, lr, samples per second);
//   - NaN/inf stop: a non-finite training loss (or validation loss) throws TrainingDivergedError
//     naming the epoch, the iteration and the lr, after putting the last good weights back into
//     the model (the last completed epoch's, or the best epoch's under early stopping, or the
//     initial weights when the first epoch fails); the error carries the completed epochs.
//
// Distributed training calls fit() on every rank. Early stopping decides on the validation loss,
// which every rank computes over the same full validation set with the same weights, so every
// rank stops at the same epoch and restores the same weights without communicating. A
// non-finite loss on one rank only is another matter: that rank would stop while the others wait
// in backward's allreduce. FitOptions::agree_finite lets the caller make the decision collective
// (e.g. an allreduce of the flag); without it each rank decides alone.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "krill/data/dataloader.hpp"
#include "krill/nn/module.hpp"
#include "krill/optim/optimizer.hpp"
#include "krill/train/lr_schedule.hpp"

namespace krill::training {

struct EvalResult {
  double loss = 0;                 // mean of the batch losses (like the lab)
  std::int64_t correct = 0;        // top-1 hits (argmax, first index on ties)
  std::int64_t correct_top5 = 0;   // rows whose target is among the top_k outputs (see top_k)
  std::int64_t total = 0;
  // k of correct_top5: min(5, number of classes) (0 before any batch, or when the outputs are
  // not float32 [rows, classes]). A row counts when fewer than k outputs are strictly greater
  // than the target's (ties count as hits).
  int top_k = 0;
  double accuracy() const { return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0; }
  double top5_accuracy() const {
    return total ? static_cast<double>(correct_top5) / static_cast<double>(total) : 0.0;
  }
};

struct EpochResult {
  int epoch = 0;                   // 1-based
  double train_loss = 0;           // mean of the batch losses
  EvalResult validation;
  double seconds = 0;              // wall time of the epoch (train + validation)
  double samples_per_second = 0;   // training samples (images) per second of the training pass alone
  double train_seconds = 0;        // wall time of the training pass
  double lr = 0;                   // learning rate (group 0) of the epoch's last step
  // With a validation loader (otherwise false / 0):
  bool improved = false;           // validation loss strictly lower than every earlier epoch's
  int best_epoch = 0;              // the epoch with the lowest validation loss so far
  double best_loss = 0;            // its validation loss
  int epochs_without_improvement = 0;  // consecutive epochs up to this one that did not improve
  // Set on the last epoch when early stopping (patience) ended training before `epochs`.
  bool stopped_early = false;
};

// Raised when the loss becomes NaN or infinite. When fit() raises it, the model already holds
// the last good weights (see restored_epoch) and `history` holds the completed epochs.
struct TrainingDivergedError : Error {
  using Error::Error;
  int epoch = 0;                   // 1-based epoch where it happened (0: unknown, train_epoch alone)
  std::int64_t iteration = 0;      // 1-based iteration in that epoch (0: in validation)
  double lr = 0;                   // group 0's lr of that step
  std::vector<EpochResult> history;  // completed epochs (fit only)
  int restored_epoch = -1;         // the epoch whose weights fit() put back (0: the initial ones; -1: none)
};

// One pass over `loader` with gradient updates; returns the mean batch loss. Throws
// TrainingDivergedError on a non-finite loss (the model keeps the weights of the steps done).
double train_epoch(nn::Module& model, optim::Optimizer& optimizer, data::DataLoader& loader,
                   const std::function<void(std::int64_t done, std::int64_t total)>& on_batch = {});
// Loss, top-1 and top-k accuracy over `loader` without gradients, in eval mode.
EvalResult evaluate(nn::Module& model, data::DataLoader& loader);

// What on_iteration gets every print_freq iterations.
struct IterationInfo {
  int epoch = 0;                   // 1-based
  std::int64_t iteration = 0;      // 1-based in the epoch (a multiple of print_freq)
  std::int64_t iterations = 0;     // in the epoch
  double loss = 0;                 // mean batch loss over the iterations since the previous report
  double batch_loss = 0;           // this iteration's loss
  double lr = 0;                   // group 0's lr of this step
  double samples_per_second = 0;   // training samples per second since the previous report
};

struct FitOptions {
  int epochs = 1;
  // Learning rate per step; the default (constant) never touches the optimizer's lr.
  LrSchedule schedule;
  // Early stopping: stop when the validation loss has not been strictly lower than the best so
  // far for `patience` consecutive epochs, and leave the model with the best epoch's weights
  // (also when training runs to the end or on_epoch_end stops it). 0 = off. Needs a validation
  // loader.
  int patience = 0;
  // on_iteration every `print_freq` iterations of an epoch (iterations print_freq, 2*print_freq,
  // ...); 0 = off.
  int print_freq = 0;
  std::function<void(const IterationInfo&)> on_iteration;
  // Called after each training batch (epoch, batches done, batches in the epoch).
  std::function<void(int, std::int64_t, std::int64_t)> on_batch_end;
  // Called after each epoch; return false to stop early.
  std::function<bool(const EpochResult&)> on_epoch_end;
  // Distributed runs: called once per iteration, after the loss is read and before backward, with
  // whether this rank's loss is finite; returns whether every rank's is (e.g. an allreduce(min)
  // of the flag), so that all ranks stop at the same iteration. Unset: each rank decides alone.
  std::function<bool(bool finite)> agree_finite;
};

// Runs options.epochs epochs (fewer when early stopping or on_epoch_end stops) and returns one
// EpochResult per epoch run. Throws ValueError for invalid options (patience or print_freq < 0,
// patience without a validation loader), TrainingDivergedError as described above.
std::vector<EpochResult> fit(nn::Module& model, optim::Optimizer& optimizer, data::DataLoader& train_loader,
                             data::DataLoader* validation_loader, const FitOptions& options);

}  // namespace krill::training
