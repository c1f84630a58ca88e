// DistributedSampler: torch.utils.data.distributed.DistributedSampler (PyTorch 1.13), index
// for index:
//   num_samples = ceil((n - R) / R) if drop_last and n % R != 0 else ceil(n / R)
//   total_size  = num_samples * R
//   indices     = randperm(n, generator seeded with seed + epoch) if shuffle else 0..n-1
//   not drop_last: pad to total_size by repeating the list from its head (as many times as needed)
//   drop_last:     truncate to total_size
//   this rank's:   indices[rank : total_size : R]
// krill's randperm with a krill::Generator seeded alike draws the same permutation as torch's.
#include <cstring>

#include "krill/dist/dist.hpp"
#include "krill/tensor/generator.hpp"

namespace krill::dist {
namespace {

// ceil(a / b) for b > 0 and any a (Python's math.ceil of a true division).
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

}  // namespace

DistributedSampler::DistributedSampler(std::int64_t dataset_size, int num_replicas, int rank, bool shuffle,
                                       std::uint64_t seed, bool drop_last)
    : n_(dataset_size), replicas_(num_replicas), rank_(rank), shuffle_(shuffle), drop_last_(drop_last), seed_(seed) {
  if (dataset_size < 0)
    throw ValueError("DistributedSampler: the dataset size must be >= 0, got " + std::to_string(dataset_size));
  if (num_replicas < 1)
    throw ValueError("DistributedSampler: num_replicas must be >= 1, got " + std::to_string(num_replicas));
  if (rank < 0 || rank >= num_replicas)
    throw ValueError("DistributedSampler: invalid rank " + std::to_string(rank) + ", rank should be in the interval [0, " +
                     std::to_string(num_replicas - 1) + "]");
  const std::int64_t R = num_replicas;
  num_samples_ = (drop_last && n_ % R != 0) ? ceil_div(n_ - R, R) : ceil_div(n_, R);
  total_size_ = num_samples_ * R;
}

Tensor DistributedSampler::indices() const {
  std::vector<std::int64_t> all;
  if (shuffle_) {
    Generator g(seed_ + static_cast<std::uint64_t>(epoch_));
    Tensor perm = randperm(n_, &g);
    const auto* p = perm.data_ptr<std::int64_t>();
    all.assign(p, p + n_);
  } else {
    all.resize(static_cast<std::size_t>(n_));
    for (std::int64_t i = 0; i < n_; ++i) all[static_cast<std::size_t>(i)] = i;
  }
  if (!drop_last_) {
    const std::int64_t padding = total_size_ - n_;
    for (std::int64_t k = 0; k < padding; ++k) all.push_back(all[static_cast<std::size_t>(k % n_)]);
  } else {
    all.resize(static_cast<std::size_t>(total_size_));
  }
  Tensor out = empty(Shape{num_samples_}, TensorOptions(DType::Int64));
  auto* o = static_cast<std::int64_t*>(out.raw_data());
  std::int64_t j = 0;
  for (std::int64_t i = rank_; i < total_size_; i += replicas_) o[j++] = all[static_cast<std::size_t>(i)];
  return out;
}

}  // namespace krill::dist
