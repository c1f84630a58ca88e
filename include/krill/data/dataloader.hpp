// Datasets and the DataLoader: batches of (input, target) in order or shuffled.
//
// Shuffling reproduces torch.utils.data.DataLoader(shuffle=True) draw for draw: each epoch's
// iterator takes a base seed from the generator (as _BaseDataLoaderIter does), then
// RandomSampler takes a seed, seeds a fresh generator with it and draws randperm(n). An
// unshuffled loader takes the base seed too. So a krill run and a PyTorch run seeded alike see
// the same batches in the same order.
#pragma once
#include <cstdint>

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
};

}  // namespace krill::data
