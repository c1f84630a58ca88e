// The Dataset interface the DataLoader reads: tabular rows (TensorDataset) and images
// (image.hpp) alike.
//
// A dataset hands out whole batches, never single samples: fill_batch() writes n samples
// straight into the batch's contiguous buffers, so a loader worker does one call per batch (no
// per-sample or per-pixel virtual calls, no tensor per sample). `seed` drives the random
// augmentation of that batch (sample i of the batch draws from (seed, i)), so a batch's content
// depends on the epoch's base seed and the batch's position only: the same with 0, 1 or 8
// loader threads.
#pragma once
#include <cstdint>

#include "krill/tensor/shape.hpp"
#include "krill/tensor/tensor.hpp"

namespace krill::data {

struct Batch {
  Tensor input;
  Tensor target;
  std::int64_t size() const { return input.defined() ? input.shape()[0] : 0; }
};

class Dataset {
 public:
  virtual ~Dataset() = default;

  virtual std::int64_t size() const = 0;
  // One sample's input shape ({C, H, W} for images, {features} for rows) and element type.
  virtual Shape input_shape() const = 0;
  virtual DType input_dtype() const { return DType::Float32; }
  // One sample's target shape ({} for a class index) and element type; no targets: has_targets().
  virtual Shape target_shape() const { return Shape{}; }
  virtual DType target_dtype() const { return DType::Int64; }
  virtual bool has_targets() const { return true; }

  // Writes samples indices[0..n) into `input` (n * input_shape().numel() elements of
  // input_dtype(), contiguous) and `target` (likewise; null when !has_targets()). Thread-safe:
  // loader workers call it concurrently for different batches. Throws krill::Error subclasses
  // (IndexError for an index out of range, IOError for an unreadable file).
  virtual void fill_batch(const std::int64_t* indices, std::int64_t n, std::uint64_t seed, void* input,
                          void* target) const = 0;

  // Allocates the batch tensors ([n, input_shape...], [n, target_shape...]) and fills them.
  Batch get_batch(const std::int64_t* indices, std::int64_t n, std::uint64_t seed) const;
  // The empty batch tensors fill_batch() writes into.
  Batch allocate_batch(std::int64_t n) const;
};

// The seed of sample `i` of a batch drawn with `batch_seed` (splitmix64 mixing), and of batch
// `b` of an epoch with base seed `epoch_seed`. Public so tests and other datasets derive the
// same streams.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t index);

}  // namespace krill::data
