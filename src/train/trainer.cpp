#include "krill/train/trainer.hpp"

#include <chrono>
#include <cmath>

#include "krill/autograd/grad_mode.hpp"
#include "krill/tensor/ops.hpp"

namespace krill::training {

double train_epoch(nn::Module& model, optim::Optimizer& optimizer, data::DataLoader& loader,
                   const std::function<void(std::int64_t, std::int64_t)>& on_batch) {
  const std::int64_t total_batches = loader.num_batches();
  model.train();
  double total = 0;
  std::int64_t batches = 0;
  data::Batch batch;
  loader.begin_epoch();
  while (loader.next(batch)) {
    optimizer.zero_grad();
    Tensor out = model.forward(batch.input);
    Tensor loss = cross_entropy(out, batch.target);
    const double value = loss.item<float>();
    if (!std::isfinite(value))
      throw TrainingDivergedError("the training loss became " + std::string(std::isnan(value) ? "NaN" : "infinite") +
                                  " at batch " + std::to_string(batches + 1) +
                                  "; try a lower learning rate (--lr) or standardised features");
    total += value;
    loss.backward();
    optimizer.step();
    ++batches;
    if (on_batch) on_batch(batches, total_batches);
  }
  return batches ? total / static_cast<double>(batches) : 0.0;
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
    r.total += batch.size();
    ++batches;
  }
  r.loss = batches ? total / static_cast<double>(batches) : 0.0;
  return r;
}

std::vector<EpochResult> fit(nn::Module& model, optim::Optimizer& optimizer, data::DataLoader& train_loader,
                             data::DataLoader* validation_loader, const FitOptions& options) {
  std::vector<EpochResult> history;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    EpochResult r;
    r.epoch = epoch;
    std::function<void(std::int64_t, std::int64_t)> on_batch;
    if (options.on_batch_end)
      on_batch = [&](std::int64_t done, std::int64_t total) { options.on_batch_end(epoch, done, total); };
    r.train_loss = train_epoch(model, optimizer, train_loader, on_batch);
    const auto t1 = std::chrono::steady_clock::now();
    if (validation_loader) r.validation = evaluate(model, *validation_loader);
    const auto t2 = std::chrono::steady_clock::now();
    r.seconds = std::chrono::duration<double>(t2 - t0).count();
    const double train_s = std::chrono::duration<double>(t1 - t0).count();
    r.samples_per_second = train_s > 0 ? static_cast<double>(train_loader.epoch_size()) / train_s : 0.0;
    history.push_back(r);
    if (options.on_epoch_end && !options.on_epoch_end(r)) break;
  }
  return history;
}

}  // namespace krill::training
