// A steady-state distributed training step allocates nothing: forward, backward (the hooks fill
// the fusion buffers and hand buckets to the communication thread), step() (the last bucket, the
// wait, the wrapped Adam) and zero_grad() call neither operator new (counted by a global
// replacement in this file) nor the system allocator. The transport is the mirror group (no MPI,
// whose internals are not ours to count).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "dist/dist_test_util.hpp"
#include "krill/krill.hpp"
#include "krill/tensor/allocator.hpp"

#include "support/count_new.hpp"

using namespace krill;

TEST(DistNoAlloc, SteadyStateStep) {
  for (std::int64_t bucket_bytes : {std::int64_t{25} << 20, std::int64_t{64}}) {
    test::MirrorGroup group;
    dist::DistributedOptions o;
    o.process_group = &group;
    o.bucket_bytes = bucket_bytes;
    manual_seed(1);
    nn::MLP model(5, {10, 10}, 3);
    dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters()), model, o);
    Generator g(2);
    auto [x, y] = test::random_batch(g, 20, 5, 3);
    auto step = [&] {
      opt.zero_grad();
      Tensor loss = cross_entropy(model.forward(x), y);
      loss.backward();
      opt.step();
    };
    for (int i = 0; i < 5; ++i) step();
    const AllocatorStats before = host_allocator::stats();
    const std::uint64_t news_before = krill::test::heap_allocations();
    for (int i = 0; i < 20; ++i) step();
    const std::uint64_t news = krill::test::heap_allocations() - news_before;
    const AllocatorStats after = host_allocator::stats();
    EXPECT_EQ(news, 0u) << "operator new in steady-state steps, " << opt.buckets().size() << " buckets";
    EXPECT_EQ(after.system_allocs, before.system_allocs) << opt.buckets().size() << " buckets";
  }
}
