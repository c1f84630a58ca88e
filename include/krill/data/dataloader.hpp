// Datasets and the DataLoader: batches of (input, target) in order or shuffled.
//
// Shuffling reproduces torch.utils.data.DataLoader(shuffle=True) draw for draw: each epoch's
// iterator takes a base seed from the generator (as _BaseDataLoaderIter does), then
// RandomSampler takes a seed, seeds a fresh generator with it and draws randperm(n). An
// unshuffled loader takes the base seed too. So a krill run and a PyTorch run seeded alike see
// the same batches in the same order.
#pragma once
#include <cstdint>
#include <functional>

#include "krill/tensor/generator.hpp"
#include "krill/tensor/tensor.hpp"

namespace krill::data {

// Rows of an input tensor [N, ...] paired with targets [N] (or [N, ...]).
class TensorDataset {
 public:
  TensorDataset() = default;
  TensorDataset(Tensor inputs, Tensor targets);
  std::int64_t size() const { return inputs_.defined() ? inputs_.shape()[0] : 0; }
  const Tensor& inputs() const { return inputs_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor inputs_, targets_;
};

struct Batch {
  Tensor input;
  Tensor target;
  std::int64_t size() const { return input.defined() ? input.shape()[0] : 0; }
};

struct DataLoaderOptions {
  std::int64_t batch_size_ = 1;
  bool shuffle_ = false;
  bool drop_last_ = false;
  DataLoaderOptions() = default;
  explicit DataLoaderOptions(std::int64_t batch_size) : batch_size_(batch_size) {}
  DataLoaderOptions& batch_size(std::int64_t v) { batch_size_ = v; return *this; }
  DataLoaderOptions& shuffle(bool v) { shuffle_ = v; return *this; }
  DataLoaderOptions& drop_last(bool v) { drop_last_ = v; return *this; }
};

class DataLoader {
 public:
  // `gen` (default: the default generator) supplies the per-epoch seeds, as in PyTorch.
  DataLoader(TensorDataset dataset, DataLoaderOptions options, Generator* gen = nullptr);

  std::int64_t num_batches() const;
  const TensorDataset& dataset() const { return dataset_; }
  const DataLoaderOptions& options() const { return options_; }

  // An index source (e.g. a rank's shard from dist::DistributedSampler): each epoch's rows are
  // sampler(epoch) (int64 [num_samples] row indices, in that order; --shuffle belongs to the
  // sampler then), gathered with index_select. The epoch is set_epoch()'s value, else 0 for
  // the first begin_epoch() and one more for each later one (PyTorch's sampler.set_epoch).
  // num_batches() counts num_samples rows.
  using Sampler = std::function<Tensor(std::int64_t epoch)>;
  void set_sampler(Sampler sampler, std::int64_t num_samples);
  bool has_sampler() const { return static_cast<bool>(sampler_); }
  // The epoch the next begin_epoch() passes to the sampler.
  void set_epoch(std::int64_t epoch) { epoch_ = epoch; }
  // Rows in one epoch: the sampler's num_samples, else the dataset's size.
  std::int64_t epoch_size() const { return sampler_ ? sampler_samples_ : dataset_.size(); }

  // Starts an epoch (draws the seeds); then next() until it returns false.
  void begin_epoch();
  bool next(Batch& batch);

  // Range-for support: `for (auto& batch : loader)` runs one epoch.
  class iterator {
   public:
    iterator(DataLoader* loader, bool end) : loader_(loader), end_(end) {
      if (!end_) advance();
    }
    Batch& operator*() { return batch_; }
    Batch* operator->() { return &batch_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    bool operator!=(const iterator& o) const { return end_ != o.end_; }

   private:
    void advance() { end_ = !loader_->next(batch_); }
    DataLoader* loader_;
    bool end_;
    Batch batch_;
  };
  iterator begin() {
    begin_epoch();
    return iterator(this, false);
  }
  iterator end() { return iterator(this, true); }

 private:
  TensorDataset dataset_;
  DataLoaderOptions options_;
  Generator* gen_;
  Tensor order_;  // int64 permutation of this epoch (shuffle only)
  std::int64_t cursor_ = 0;
  Generator sampler_gen_;
  Sampler sampler_;
  std::int64_t sampler_samples_ = 0;
  std::int64_t epoch_ = 0;
};

}  // namespace krill::data
