// DataLoader worker threads: batches bit for bit those of the unthreaded loader (augmentation
// included, any worker count and prefetch depth, shuffled or sharded), in order; a worker's
// exception reaches next() as thrown; a loader can be dropped or restarted mid-epoch; batch
// memory is recycled by the consumer's allocator.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "krill/data/dataloader.hpp"
#include "krill/data/image.hpp"
#include "krill/tensor/allocator.hpp"
#include "krill/tensor/ops.hpp"
#include "support/expect.hpp"

using namespace krill;
using krill::test::contains;
using krill::test::error_of;

namespace {

std::shared_ptr<data::ImageDataset> augmented(std::int64_t n) {
  data::ImageData d = data::open_image_data("synthetic:3x12x10:5:" + std::to_string(n));
  return d.train->with_transforms(
      data::Transforms().random_crop(12, 10, 2).random_horizontal_flip().normalize({0.4f, 0.5f, 0.6f}, {0.2f, 0.25f, 0.3f}));
}

bool same(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  if (!(a.shape() == b.shape()) || a.dtype() != b.dtype()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), ca.nbytes()) == 0;
}

std::vector<data::Batch> epoch(data::DataLoader& loader) {
  std::vector<data::Batch> out;
  for (auto& b : loader) out.push_back(b);
  return out;
}

void expect_same_epochs(const std::shared_ptr<const data::Dataset>& ds, data::DataLoaderOptions base, int workers,
                        int prefetch, int epochs = 3) {
  Generator g0(11), g1(11);
  data::DataLoader ref(ds, base, &g0);
  data::DataLoader threaded(ds, data::DataLoaderOptions(base).num_workers(workers).prefetch(prefetch), &g1);
  for (int e = 0; e < epochs; ++e) {
    auto a = epoch(ref), b = epoch(threaded);
    ASSERT_EQ(a.size(), b.size());
    ASSERT_EQ(static_cast<std::int64_t>(a.size()), ref.num_batches());
    for (std::size_t i = 0; i < a.size(); ++i) {
      ASSERT_TRUE(same(a[i].input, b[i].input)) << "workers " << workers << " prefetch " << prefetch << " epoch " << e
                                                << " batch " << i;
      ASSERT_TRUE(same(a[i].target, b[i].target));
    }
  }
}

TEST(LoaderThreads, ThreadedEqualsUnthreadedBitForBit) {
  auto ds = augmented(203);
  for (bool shuffle : {false, true})
    for (bool drop_last : {false, true})
      for (auto [w, p] : {std::pair{1, 1}, {1, 2}, {2, 3}, {3, 8}, {4, 100}})
        expect_same_epochs(ds, data::DataLoaderOptions(16).shuffle(shuffle).drop_last(drop_last), w, p);
}

TEST(LoaderThreads, AugmentationChangesEveryEpoch) {
  auto ds = augmented(8);
  data::DataLoader loader(ds, data::DataLoaderOptions(8).num_workers(1));
  auto a = epoch(loader), b = epoch(loader);
  EXPECT_FALSE(same(a[0].input, b[0].input));
  EXPECT_TRUE(same(a[0].target, b[0].target));  // unshuffled: same images, new crops and flips
}

data::TensorDataset rows(std::int64_t n) {
  std::vector<float> x(static_cast<std::size_t>(n) * 3);
  std::vector<std::int64_t> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) x[3 * i] = static_cast<float>(i), x[3 * i + 1] = 0.5f * i, x[3 * i + 2] = -1.0f * i, y[i] = i % 3;
  return data::TensorDataset(tensor(x, Shape{n, 3}), tensor(y, Shape{n}));
}

TEST(LoaderThreads, TensorDatasetWithWorkersAndASampler) {
  auto ds = std::make_shared<data::TensorDataset>(rows(57));
  for (bool shuffle : {false, true}) expect_same_epochs(ds, data::DataLoaderOptions(10).shuffle(shuffle), 2, 2);
  // the TensorDataset constructor (views / index_select) equals the shared one with workers
  Generator g0(3), g1(3);
  data::DataLoader a(rows(57), data::DataLoaderOptions(10), &g0);
  data::DataLoader b(ds, data::DataLoaderOptions(10).num_workers(1), &g1);
  auto shard = [](std::int64_t epoch) {
    std::vector<std::int64_t> v;
    for (std::int64_t i = epoch % 2; i < 57; i += 2) v.push_back(56 - i);
    return tensor(std::vector<std::int64_t>(v.begin(), v.begin() + 28));
  };
  a.set_sampler(shard, 28);
  b.set_sampler(shard, 28);
  for (int e = 0; e < 3; ++e) {
    auto x = epoch(a), y = epoch(b);
    ASSERT_EQ(x.size(), 3u);
    ASSERT_EQ(y.size(), 3u);
    for (std::size_t i = 0; i < x.size(); ++i) ASSERT_TRUE(same(x[i].input, y[i].input) && same(x[i].target, y[i].target));
  }
}

// A dataset that is slow, counts concurrent calls and fails at a given index.
class Probe : public data::Dataset {
 public:
  explicit Probe(std::int64_t n, std::int64_t fail_at = -1, int sleep_us = 0) : n_(n), fail_at_(fail_at), sleep_us_(sleep_us) {}
  std::int64_t size() const override { return n_; }
  Shape input_shape() const override { return Shape{2}; }
  void fill_batch(const std::int64_t* idx, std::int64_t n, std::uint64_t, void* input, void* target) const override {
    const int now = ++active_;
    int seen = max_active_.load();
    while (now > seen && !max_active_.compare_exchange_weak(seen, now)) {}
    if (sleep_us_) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    ++calls_;
    --active_;
    for (std::int64_t i = 0; i < n; ++i) {
      if (idx[i] == fail_at_) throw FormatError("probe: sample " + std::to_string(idx[i]) + " is damaged");
      static_cast<float*>(input)[2 * i] = static_cast<float>(idx[i]);
      static_cast<float*>(input)[2 * i + 1] = 1.0f;
      static_cast<std::int64_t*>(target)[i] = idx[i];
    }
  }
  mutable std::atomic<int> active_{0}, max_active_{0}, calls_{0};

 private:
  std::int64_t n_, fail_at_;
  int sleep_us_;
};

TEST(LoaderThreads, InOrderWithManySlowWorkers) {
  auto probe = std::make_shared<Probe>(200, -1, 300);
  data::DataLoader loader(probe, data::DataLoaderOptions(5).num_workers(4).prefetch(8));
  for (int e = 0; e < 2; ++e) {
    std::int64_t expect = 0;
    for (auto& b : loader)
      for (std::int64_t i = 0; i < b.size(); ++i) ASSERT_EQ(b.target.data_ptr<std::int64_t>()[i], expect++);
    EXPECT_EQ(expect, 200);
  }
  EXPECT_GT(probe->max_active_.load(), 1);  // the workers did run side by side
}

TEST(LoaderThreads, WorkerExceptionReachesNextAsThrown) {
  for (int workers : {0, 1, 3}) {
    auto probe = std::make_shared<Probe>(100, 47);
    data::DataLoader loader(probe, data::DataLoaderOptions(10).num_workers(workers));
    loader.begin_epoch();
    data::Batch b;
    int good = 0;
    std::string msg = error_of<FormatError>([&] {
      while (loader.next(b)) ++good;
    });
    EXPECT_EQ(msg, "probe: sample 47 is damaged") << workers;
    EXPECT_EQ(good, 4);
    EXPECT_FALSE(loader.next(b));  // the epoch ended with the error
    // a new epoch starts cleanly and fails at the same place
    loader.begin_epoch();
    EXPECT_TRUE(loader.next(b));
    EXPECT_EQ(b.target.data_ptr<std::int64_t>()[0], 0);
  }
}

TEST(LoaderThreads, ADatasetThatCannotStartFailsInBeginEpoch) {
  // like images of different sizes without a Resize: no input shape to allocate batches with
  class Unsized : public data::Dataset {
   public:
    std::int64_t size() const override { return 4; }
    Shape input_shape() const override { throw InvalidDatasetError("no single input shape"); }
    void fill_batch(const std::int64_t*, std::int64_t, std::uint64_t, void*, void*) const override {}
  };
  for (int workers : {0, 2}) {
    data::DataLoader loader(std::make_shared<Unsized>(), data::DataLoaderOptions(2).num_workers(workers));
    data::Batch b;
    if (workers) {
      EXPECT_THROW(loader.begin_epoch(), InvalidDatasetError);
      EXPECT_FALSE(loader.next(b));
    } else {
      loader.begin_epoch();
      EXPECT_THROW(loader.next(b), InvalidDatasetError);
      EXPECT_FALSE(loader.next(b));
    }
  }
}

TEST(LoaderThreads, DropOrRestartMidEpoch) {
  auto probe = std::make_shared<Probe>(1000, -1, 200);
  {
    data::DataLoader loader(probe, data::DataLoaderOptions(4).num_workers(3).prefetch(16));
    loader.begin_epoch();
    data::Batch b;
    ASSERT_TRUE(loader.next(b));
  }  // joins with batches queued and running
  data::DataLoader loader(probe, data::DataLoaderOptions(4).num_workers(2).prefetch(4));
  data::Batch b;
  for (int restart = 0; restart < 5; ++restart) {
    loader.begin_epoch();
    ASSERT_TRUE(loader.next(b));
    ASSERT_TRUE(loader.next(b));
    EXPECT_EQ(b.target.data_ptr<std::int64_t>()[0], 4);
  }
  // moved while batches are in flight
  data::DataLoader moved(std::move(loader));
  std::int64_t n = 0;
  while (moved.next(b)) n += b.size();
  EXPECT_EQ(n, 1000 - 8);
  // never started
  data::DataLoader idle(probe, data::DataLoaderOptions(4).num_workers(2));
}

TEST(LoaderThreads, BatchMemoryIsRecycled) {
  auto ds = augmented(256);
  data::DataLoader loader(ds, data::DataLoaderOptions(32).shuffle(true).num_workers(2).prefetch(3));
  for (int e = 0; e < 3; ++e) epoch(loader);
  const auto before = host_allocator::stats().system_allocs;
  for (int e = 0; e < 5; ++e) {
    data::Batch b;
    loader.begin_epoch();
    while (loader.next(b)) {
    }
  }
  EXPECT_EQ(host_allocator::stats().system_allocs, before);
}

TEST(LoaderThreads, Options) {
  auto probe = std::make_shared<Probe>(10);
  EXPECT_THROW(data::DataLoader(probe, data::DataLoaderOptions(2).num_workers(-1)), ValueError);
  EXPECT_THROW(data::DataLoader(probe, data::DataLoaderOptions(2).prefetch(0)), ValueError);
  EXPECT_THROW(data::DataLoader(std::shared_ptr<const data::Dataset>(), data::DataLoaderOptions(2)), ValueError);
  std::string msg = error_of<IndexError>([] {
    auto ds = augmented(4);
    const std::int64_t idx[] = {4};
    ds->get_batch(idx, 1, 0);
  });
  EXPECT_TRUE(contains(msg, "index 4 is out of range for 4 images")) << msg;
}

}  // namespace
