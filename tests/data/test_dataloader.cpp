// DataLoader with an index source (DataLoader::set_sampler): each epoch's rows come from the
// sampler, called with the epoch (0, 1, ... or set_epoch's), as with PyTorch's
// DataLoader(sampler=DistributedSampler) and sampler.set_epoch.
#include <gtest/gtest.h>

#include <vector>

#include "krill/data/dataloader.hpp"
#include "krill/dist/dist.hpp"
#include "krill/tensor/ops.hpp"

using namespace krill;

namespace {

data::TensorDataset rows(std::int64_t n) {
  std::vector<float> x(static_cast<std::size_t>(n) * 2);
  std::vector<std::int64_t> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) x[2 * i] = static_cast<float>(i), x[2 * i + 1] = -static_cast<float>(i), y[i] = i;
  return data::TensorDataset(tensor(x, Shape{n, 2}), tensor(y, Shape{n}));
}

std::vector<std::int64_t> epoch_targets(data::DataLoader& loader) {
  std::vector<std::int64_t> out;
  for (auto& b : loader) {
    Tensor t = b.target.contiguous();
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      out.push_back(t.data_ptr<std::int64_t>()[i]);
      EXPECT_EQ(b.input.contiguous().data_ptr<float>()[2 * i], static_cast<float>(out.back()));
    }
  }
  return out;
}

std::vector<std::int64_t> values(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::vector<std::int64_t>(c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel());
}

TEST(DataLoaderSampler, BatchesFollowTheShardOfEachEpoch) {
  dist::DistributedSampler sampler(11, 2, 1, /*shuffle=*/true, /*seed=*/7);
  data::DataLoader loader(rows(11), data::DataLoaderOptions(4));
  std::vector<std::int64_t> epochs_seen;
  loader.set_sampler(
      [&](std::int64_t epoch) {
        epochs_seen.push_back(epoch);
        sampler.set_epoch(epoch);
        return sampler.indices();
      },
      sampler.num_samples());
  EXPECT_EQ(sampler.num_samples(), 6);
  EXPECT_EQ(loader.epoch_size(), 6);
  EXPECT_EQ(loader.num_batches(), 2);
  for (std::int64_t e = 0; e < 3; ++e) {
    dist::DistributedSampler ref(11, 2, 1, true, 7);
    ref.set_epoch(e);
    EXPECT_EQ(epoch_targets(loader), values(ref.indices())) << "epoch " << e;
  }
  loader.set_epoch(1);
  dist::DistributedSampler ref(11, 2, 1, true, 7);
  ref.set_epoch(1);
  EXPECT_EQ(epoch_targets(loader), values(ref.indices()));
  EXPECT_EQ(epochs_seen, (std::vector<std::int64_t>{0, 1, 2, 1}));
}

TEST(DataLoaderSampler, UnshuffledShardsTakeEveryNthRow) {
  data::DataLoader loader(rows(8), data::DataLoaderOptions(3));
  dist::DistributedSampler sampler(8, 2, 0, /*shuffle=*/false);
  loader.set_sampler([&](std::int64_t) { return sampler.indices(); }, sampler.num_samples());
  EXPECT_EQ(epoch_targets(loader), (std::vector<std::int64_t>{0, 2, 4, 6}));
}

TEST(DataLoaderSampler, RejectsABadSampler) {
  data::DataLoader loader(rows(4), data::DataLoaderOptions(2));
  EXPECT_THROW(loader.set_sampler({}, 2), ValueError);
  loader.set_sampler([](std::int64_t) { return tensor(std::vector<std::int64_t>{0, 1, 2}); }, 2);
  EXPECT_THROW(loader.begin_epoch(), ValueError);
}

}  // namespace
