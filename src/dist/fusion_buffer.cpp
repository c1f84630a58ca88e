// The fusion buffers: see fusion_buffer.hpp.
#include "fusion_buffer.hpp"

#include <cstring>

#include "internal.hpp"
#include "krill/autograd/grad_mode.hpp"

namespace krill::dist::detail {

void FusionBufferManager::build(const std::vector<Tensor>& params, const std::vector<std::string>& names,
                                std::int64_t bucket_bytes) {
  slots_.clear();
  buckets_.clear();
  slots_.resize(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    slots_[i].param = params[i];
    slots_[i].name = names[i];
    slots_[i].numel = params[i].numel();
  }
  // Reverse order: backward produces the last layers' gradients first.
  const std::int64_t cap_elems = std::max<std::int64_t>(1, bucket_bytes / static_cast<std::int64_t>(sizeof(float)));
  for (int s = static_cast<int>(params.size()) - 1; s >= 0; --s) {
    ParamSlot& p = slots_[static_cast<std::size_t>(s)];
    if (buckets_.empty() || (buckets_.back().grad_elems > 0 && buckets_.back().grad_elems + p.numel > cap_elems))
      buckets_.emplace_back();
    Bucket& b = buckets_.back();
    p.bucket = static_cast<int>(buckets_.size()) - 1;
    p.offset = b.grad_elems;
    b.grad_elems += p.numel;
    b.slots.push_back(s);
  }
  for (std::size_t k = 0; k < buckets_.size(); ++k) {
    Bucket& b = buckets_[k];
    const std::int64_t n = b.grad_elems + static_cast<std::int64_t>(b.slots.size());
    b.buffer = zeros(Shape{n}, TensorOptions(DType::Float32));
    b.data = static_cast<float*>(b.buffer.raw_data());
    b.description = "bucket " + std::to_string(k) + " (";
    for (std::size_t j = 0; j < b.slots.size(); ++j) {
      ParamSlot& p = slots_[static_cast<std::size_t>(b.slots[j])];
      p.flag = b.grad_elems + static_cast<std::int64_t>(j);
      p.view = b.buffer.narrow(0, p.offset, p.numel).view(p.param.shape());
      if (j < 6) b.description += (j ? ", " : "") + p.name;
    }
    if (b.slots.size() > 6) b.description += ", ... " + std::to_string(b.slots.size()) + " parameters";
    b.description += ")";
  }
}

void FusionBufferManager::fill(int s) {
  ParamSlot& p = slots_[static_cast<std::size_t>(s)];
  Bucket& b = buckets_[static_cast<std::size_t>(p.bucket)];
  TensorImpl* gi = p.param.impl()->grad.get();
  float* dst = b.data + p.offset;
  if (gi == p.view.impl()) {
    b.data[p.flag] = 1.0f;
    return;
  }
  if (!gi) {
    if (p.numel) std::memset(dst, 0, static_cast<std::size_t>(p.numel) * sizeof(float));
    b.data[p.flag] = 0.0f;
    return;
  }
  Tensor g(p.param.impl()->grad);
  if (g.dtype() != DType::Float32)
    throw DistributedError("DistributedOptimizer: the gradient of " + p.name + " is " + std::string(dtype_name(g.dtype())) +
                           "; float32 expected");
  if (!(g.shape() == p.param.shape()))
    throw DistributedError("DistributedOptimizer: the gradient of " + p.name + " has shape " + g.shape().str() +
                           " but the parameter has shape " + p.param.shape().str());
  if (g.is_contiguous() && g.device().is_cpu()) {
    if (p.numel) std::memcpy(dst, g.raw_data(), static_cast<std::size_t>(p.numel) * sizeof(float));
  } else {
    NoGradGuard ng;
    p.view.copy_(g);
  }
  b.data[p.flag] = 1.0f;
  p.param.impl()->grad = p.view.impl_ref();
}

void FusionBufferManager::average(int b, int size) {
  Bucket& bk = buckets_[static_cast<std::size_t>(b)];
  divide_in_place(bk.data, DType::Float32, bk.grad_elems, size);
}

void FusionBufferManager::publish(int b) {
  Bucket& bk = buckets_[static_cast<std::size_t>(b)];
  for (int s : bk.slots) {
    ParamSlot& p = slots_[static_cast<std::size_t>(s)];
    if (bk.data[p.flag] == 0.0f) continue;  // no rank had a gradient: leave .grad as it is (undefined)
    TensorImpl* impl = p.param.impl();
    if (impl->grad.get() != p.view.impl()) impl->grad = p.view.impl_ref();
    p.view.bump_version();
  }
}

}  // namespace krill::dist::detail
