// The training loop for classifiers: one epoch of training, an evaluation pass, and fit()
// which runs epochs and reports each through a callback. The loss is cross-entropy on the
// model's output (a model ending in log_softmax gets PyTorch's CrossEntropyLoss-on-log-probs,
// as the lab does).
#pragma once
#include <functional>
#include <vector>

#include "krill/data/dataloader.hpp"
#include "krill/nn/module.hpp"
#include "krill/optim/optimizer.hpp"

namespace krill::training {

struct EvalResult {
  double loss = 0;            // mean of the batch losses (like the lab)
  std::int64_t correct = 0;   // top-1 hits
  std::int64_t total = 0;
  double accuracy() const { return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0; }
};

struct EpochResult {
  int epoch = 0;
  double train_loss = 0;      // mean of the batch losses
  EvalResult validation;
  double seconds = 0;         // wall time of the epoch (train + validation)
  double samples_per_second = 0;
};

// Raised when the loss becomes NaN or infinite.
struct TrainingDivergedError : Error {
  using Error::Error;
};

// One pass over `loader` with gradient updates; returns the mean batch loss.
double train_epoch(nn::Module& model, optim::Optimizer& optimizer, data::DataLoader& loader,
                   const std::function<void(std::int64_t done, std::int64_t total)>& on_batch = {});
// Loss and accuracy over `loader` without gradients, in eval mode.
EvalResult evaluate(nn::Module& model, data::DataLoader& loader);

struct FitOptions {
  int epochs = 1;
  // Called after each training batch (epoch, batches done, batches in the epoch).
  std::function<void(int, std::int64_t, std::int64_t)> on_batch_end;
  // Called after each epoch; return false to stop early.
  std::function<bool(const EpochResult&)> on_epoch_end;
};

std::vector<EpochResult> fit(nn::Module& model, optim::Optimizer& optimizer, data::DataLoader& train_loader,
                             data::DataLoader* validation_loader, const FitOptions& options);

}  // namespace krill::training
