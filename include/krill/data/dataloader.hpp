// Datasets and the DataLoader: batches of (input, target) in order or shuffled.
//
// Shuffling reproduces torch.utils.data.DataLoader(shuffle=True) draw for draw: each epoch's
// iterator takes a base seed from the generator (as _BaseDataLoaderIter does), then
// RandomSampler takes a seed, seeds a fresh generator with it and draws randperm(n). An
// unshuffled loader takes the base seed too. So a krill run and a PyTorch run seeded alike see
// the same batches in the same order. The base seed also seeds augmentation: batch b of the
// epoch is filled with seed mix_seed(base_seed, b) (dataset.hpp).
//
// Worker threads (num_workers > 0) fill batches ahead of the consumer (`prefetch` batches in
// flight); batches come out in order and are bitwise those of num_workers = 0. The batch
// tensors are allocated on the consumer's thread and only filled by the workers (raw
// memcpy-like work: no tensor ops, no OpenMP), so the consumer's caching allocator recycles
// them and the model's OpenMP threads keep the cores.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "krill/data/dataset.hpp"
#include "krill/tensor/generator.hpp"
#include "krill/tensor/tensor.hpp"

namespace krill::data {

// Rows of an input tensor [N, ...] paired with targets [N] (or [N, ...]).
class TensorDataset : public Dataset {
 public:
  TensorDataset() = default;
  TensorDataset(Tensor inputs, Tensor targets);
  std::int64_t size() const override { return inputs_.defined() ? inputs_.shape()[0] : 0; }
  const Tensor& inputs() const { return inputs_; }
  const Tensor& targets() const { return targets_; }

  Shape input_shape() const override;
  DType input_dtype() const override { return inputs_.dtype(); }
  Shape target_shape() const override;
  DType target_dtype() const override { return targets_.defined() ? targets_.dtype() : DType::Int64; }
  bool has_targets() const override { return targets_.defined(); }
  // Row gather (memcpy per row); `seed` is unused.
  void fill_batch(const std::int64_t* indices, std::int64_t n, std::uint64_t seed, void* input,
                  void* target) const override;

 private:
  Tensor inputs_, targets_;  // contiguous
};

struct DataLoaderOptions {
  std::int64_t batch_size_ = 1;
  bool shuffle_ = false;
  bool drop_last_ = false;
  int num_workers_ = 0;  // threads filling batches; 0: in the calling thread, inside next()
  int prefetch_ = 2;     // batches in flight with workers (at least 1)
  DataLoaderOptions() = default;
  explicit DataLoaderOptions(std::int64_t batch_size) : batch_size_(batch_size) {}
  DataLoaderOptions& batch_size(std::int64_t v) { batch_size_ = v; return *this; }
  DataLoaderOptions& shuffle(bool v) { shuffle_ = v; return *this; }
  DataLoaderOptions& drop_last(bool v) { drop_last_ = v; return *this; }
  DataLoaderOptions& num_workers(int v) { num_workers_ = v; return *this; }
  DataLoaderOptions& prefetch(int v) { prefetch_ = v; return *this; }
};

class DataLoader {
 public:
  // `gen` (default: the default generator) supplies the per-epoch seeds, as in PyTorch.
  // Without workers a TensorDataset's unshuffled batches are views of its rows (no copy) and
  // shuffled ones index_select, as before; other datasets are filled by fill_batch().
  DataLoader(TensorDataset dataset, DataLoaderOptions options, Generator* gen = nullptr);
  // Any dataset (images: image.hpp). Worker threads start here and live until destruction.
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options, Generator* gen = nullptr);
  ~DataLoader();
  DataLoader(DataLoader&&) noexcept;
  DataLoader& operator=(DataLoader&&) noexcept;
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  std::int64_t num_batches() const;
  const Dataset& dataset() const { return *dataset_; }
  const std::shared_ptr<const Dataset>& dataset_ptr() const { return dataset_; }
  const DataLoaderOptions& options() const { return options_; }

  // An index source (e.g. a rank's shard from dist::DistributedSampler): each epoch's rows are
  // sampler(epoch) (int64 [num_samples] row indices, in that order; --shuffle belongs to the
  // sampler then), gathered by index_select or fill_batch(). The epoch is set_epoch()'s value,
  // else 0 for the first begin_epoch() and one more for each later one (PyTorch's
  // sampler.set_epoch).
  // num_batches() counts num_samples rows.
  using Sampler = std::function<Tensor(std::int64_t epoch)>;
  void set_sampler(Sampler sampler, std::int64_t num_samples);
  bool has_sampler() const { return static_cast<bool>(sampler_); }
  // The epoch the next begin_epoch() passes to the sampler.
  void set_epoch(std::int64_t epoch) { epoch_ = epoch; }
  // Rows in one epoch: the sampler's num_samples, else the dataset's size.
  std::int64_t epoch_size() const { return sampler_ ? sampler_samples_ : dataset_->size(); }

  // Starts an epoch (draws the seeds, hands the first batches to the workers); then next()
  // until it returns false. Calling it mid-epoch drops the rest of that epoch. An exception
  // thrown while filling a batch (in a worker or not) comes out of next(), as thrown, and ends
  // the epoch.
  void begin_epoch();
  bool next(Batch& batch);
  // The augmentation seed of this epoch's batch `b`.
  std::uint64_t batch_seed(std::int64_t b) const;

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
  struct Pool;  // worker threads and batch slots (dataloader.cpp)
  const std::int64_t* batch_indices(std::int64_t b, std::int64_t* len) const;
  void fill_now(std::int64_t b, Batch& batch);
  void submit(std::int64_t b);

  std::shared_ptr<const Dataset> dataset_;
  const TensorDataset* tensor_dataset_ = nullptr;  // set when dataset_ is a TensorDataset
  DataLoaderOptions options_;
  Generator* gen_;
  Tensor order_;  // int64 permutation of this epoch (shuffle / sampler only)
  std::vector<std::int64_t> identity_;  // 0..n-1 for unshuffled epochs read by fill_batch
  std::int64_t cursor_ = 0;             // rows handed out this epoch
  std::int64_t next_batch_ = 0;         // batch number next() returns next
  std::int64_t submitted_ = 0;          // batches handed to the workers this epoch
  std::uint64_t epoch_seed_ = 0;
  bool epoch_failed_ = false;
  std::unique_ptr<Pool> pool_;
  Generator sampler_gen_;
  Sampler sampler_;
  std::int64_t sampler_samples_ = 0;
  std::int64_t epoch_ = 0;
};

}  // namespace krill::data
