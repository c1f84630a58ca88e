// The fusion buffers (Horovod's "fusion buffer manager", PyTorch DDP's buckets): the wrapped
// optimizer's parameters in reverse order, cut into buckets of about `bucket_bytes` of
// gradients, each with one float32 buffer allocated once:
//   [ gradients of the bucket's parameters, back to back | one "had a gradient" flag each ]
// A parameter's .grad becomes a view of its slice (DDP's gradient_as_bucket_view), so backward
// accumulates into the buffer and nothing is copied in steady state; the flags, summed by the
// allreduce, tell whether any rank had a gradient for the parameter.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "krill/tensor/tensor.hpp"

namespace krill::dist::detail {

struct ParamSlot {
  Tensor param;
  std::string name;
  int bucket = 0;
  std::int64_t offset = 0;  // first element of the gradient in the bucket's buffer
  std::int64_t numel = 0;
  std::int64_t flag = 0;    // element index of the "had a gradient" flag
  Tensor view;              // the slice, shaped like the parameter
};

struct Bucket {
  std::vector<int> slots;        // parameter slots, in fill order
  std::int64_t grad_elems = 0;   // gradient elements (the flags follow)
  Tensor buffer;                 // float32 [grad_elems + slots.size()]
  float* data = nullptr;
  std::string description;       // "bucket 1 (fc2.bias, fc2.weight)"
};

class FusionBufferManager {
 public:
  // `params` in the wrapped optimizer's order; buckets are filled from the last one backwards.
  void build(const std::vector<Tensor>& params, const std::vector<std::string>& names, std::int64_t bucket_bytes);

  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  int num_slots() const { return static_cast<int>(slots_.size()); }
  const Bucket& bucket(int b) const { return buckets_[static_cast<std::size_t>(b)]; }
  Bucket& bucket(int b) { return buckets_[static_cast<std::size_t>(b)]; }
  const ParamSlot& slot(int s) const { return slots_[static_cast<std::size_t>(s)]; }

  // Puts slot `s`'s gradient into its bucket: nothing to copy when .grad is already the slot's
  // view; a copy (then .grad becomes the view) when it is another tensor; zeros when .grad is
  // undefined. Sets the slot's flag to 1 / 0 accordingly.
  void fill(int s);
  // After the allreduce (sum) of bucket `b`: divides the gradients by `size`.
  void average(int b, int size);
  // Training thread, after the allreduce: a parameter that some rank had a gradient for gets
  // .grad = its view (the average); one that no rank had keeps an undefined .grad.
  void publish(int b);

 private:
  std::vector<ParamSlot> slots_;
  std::vector<Bucket> buckets_;
};

}  // namespace krill::dist::detail
