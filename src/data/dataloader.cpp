#include "krill/data/dataloader.hpp"

#include "krill/tensor/ops.hpp"

namespace krill::data {

TensorDataset::TensorDataset(Tensor inputs, Tensor targets) : inputs_(std::move(inputs)), targets_(std::move(targets)) {
  if (!inputs_.defined() || inputs_.ndim() == 0)
    throw ValueError("TensorDataset: inputs must have a leading sample dimension");
  if (targets_.defined() && (targets_.ndim() == 0 || targets_.shape()[0] != inputs_.shape()[0]))
    throw ShapeError("TensorDataset: " + std::to_string(inputs_.shape()[0]) + " inputs but targets of shape " +
                     targets_.shape().str());
}

DataLoader::DataLoader(TensorDataset dataset, DataLoaderOptions options, Generator* gen)
    : dataset_(std::move(dataset)), options_(options), gen_(gen ? gen : &default_generator()) {
  if (options_.batch_size_ <= 0)
    throw ValueError("DataLoader: batch_size must be a positive integer, got " + std::to_string(options_.batch_size_));
}

void DataLoader::set_sampler(Sampler sampler, std::int64_t num_samples) {
  if (!sampler) throw ValueError("DataLoader::set_sampler: the sampler is empty");
  if (num_samples < 0) throw ValueError("DataLoader::set_sampler: num_samples must be >= 0, got " + std::to_string(num_samples));
  sampler_ = std::move(sampler);
  sampler_samples_ = num_samples;
}

std::int64_t DataLoader::num_batches() const {
  const std::int64_t n = epoch_size(), b = options_.batch_size_;
  return options_.drop_last_ ? n / b : (n + b - 1) / b;
}

void DataLoader::begin_epoch() {
  cursor_ = 0;
  // _BaseDataLoaderIter: base seed = torch.empty((), int64).random_()
  (void)gen_->random64();
  if (sampler_) {
    order_ = sampler_(epoch_++).contiguous();
    if (order_.dtype() != DType::Int64 || order_.ndim() != 1 || order_.numel() != sampler_samples_)
      throw ValueError("DataLoader: the sampler must return int64 [" + std::to_string(sampler_samples_) +
                       "] row indices, got " + order_.shape().str());
    return;
  }
  if (options_.shuffle_) {
    // RandomSampler: seed = int(torch.empty((), int64).random_()); randperm(n, Generator(seed))
    const std::uint64_t seed = gen_->random64() % (std::uint64_t{1} << 63);
    sampler_gen_.manual_seed(seed);
    order_ = randperm(dataset_.size(), &sampler_gen_);
  }
}

bool DataLoader::next(Batch& batch) {
  const std::int64_t n = epoch_size();
  const std::int64_t b = options_.batch_size_;
  if (cursor_ >= n || (options_.drop_last_ && cursor_ + b > n)) {
    batch = Batch{};
    return false;
  }
  const std::int64_t len = std::min(b, n - cursor_);
  if (options_.shuffle_ || sampler_) {
    Tensor idx = order_.narrow(0, cursor_, len);
    batch.input = index_select(dataset_.inputs(), 0, idx);
    batch.target = dataset_.targets().defined() ? index_select(dataset_.targets(), 0, idx) : Tensor();
  } else {
    // views of consecutive rows: no copy
    batch.input = dataset_.inputs().narrow(0, cursor_, len);
    batch.target = dataset_.targets().defined() ? dataset_.targets().narrow(0, cursor_, len) : Tensor();
  }
  cursor_ += len;
  return true;
}

}  // namespace krill::data
