// The caching host allocator: size classes, statistics, per-thread caches, and the key
// property it exists for: a steady-state training step (forward, backward, SGD update) of a
// small MLP performs no heap allocation at all — no system allocation in the caching
// allocator and no call to the global operator new (counted by the replacement below).
#include <execinfo.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "krill/krill.hpp"
#include "krill/tensor/allocator.hpp"

// ---- counting replacement of the global operator new/delete ----
namespace {
std::atomic<std::uint64_t> g_news{0};
// When armed, the first few operator-new call stacks are kept (raw addresses; no allocation)
// so a failing test can show where the allocation came from.
std::atomic<bool> g_trace{false};
constexpr int kMaxTraces = 4;
constexpr int kTraceDepth = 24;
void* g_traces[kMaxTraces][kTraceDepth];
int g_trace_len[kMaxTraces];
std::atomic<int> g_num_traces{0};

void note_new() {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (g_trace.load(std::memory_order_relaxed)) {
    const int i = g_num_traces.fetch_add(1);
    if (i < kMaxTraces) g_trace_len[i] = ::backtrace(g_traces[i], kTraceDepth);
  }
}
void* counted_alloc(std::size_t n) {
  note_new();
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* counted_aligned_alloc(std::size_t n, std::align_val_t a) {
  note_new();
  const std::size_t al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a) { return counted_aligned_alloc(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_aligned_alloc(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace krill;
namespace ha = krill::host_allocator;

namespace {

void print_traces() {
  const int n = std::min(g_num_traces.load(), kMaxTraces);
  for (int i = 0; i < n; ++i) {
    std::fprintf(stderr, "---- operator new call %d ----\n", i);
    ::backtrace_symbols_fd(g_traces[i], g_trace_len[i], 2);
  }
}

// Bytes a request of n bytes really takes (the size class), computed independently of the
// allocator: 64 B minimum, then 2^k * {1.25, 1.5, 1.75, 2}.
std::size_t expected_class_bytes(std::size_t n) {
  if (n <= 64) return 64;
  std::size_t base = 64;
  while (base * 2 < n) base *= 2;
  for (std::size_t q = 1; q <= 4; ++q)
    if (base + q * (base / 4) >= n) return base + q * (base / 4);
  return 2 * base;
}

}  // namespace

// ---------------------------------------------------------------- allocator unit behaviour

TEST(HostAllocator, AlignmentAndReuseFromTheCache) {
  ha::empty_cache();
  const AllocatorStats s0 = ha::stats();
  EXPECT_EQ(s0.bytes_cached, 0u);

  void* p = ha::allocate(100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % ha::kAlignment, 0u);
  std::memset(p, 0xab, 100);
  const AllocatorStats s1 = ha::stats();
  EXPECT_EQ(s1.system_allocs, s0.system_allocs + 1);
  EXPECT_EQ(s1.cache_hits, s0.cache_hits);

  ha::deallocate(p, 100);
  const AllocatorStats s2 = ha::stats();
  EXPECT_EQ(s2.bytes_cached, 112u) << "100 bytes live in the 112-byte class (64 * 1.75)";
  EXPECT_EQ(s2.system_frees, s1.system_frees) << "a freed block stays in the cache";

  // Any request in the same class gets the same block back, without the system.
  void* q = ha::allocate(110);
  EXPECT_EQ(q, p);
  const AllocatorStats s3 = ha::stats();
  EXPECT_EQ(s3.system_allocs, s1.system_allocs);
  EXPECT_EQ(s3.cache_hits, s2.cache_hits + 1);
  EXPECT_EQ(s3.bytes_cached, 0u);

  // A request in another class does not take it.
  ha::deallocate(q, 110);
  void* r = ha::allocate(200);
  EXPECT_NE(r, q);
  EXPECT_EQ(ha::stats().system_allocs, s1.system_allocs + 1);
  ha::deallocate(r, 200);

  // LIFO within a class: the most recently freed block comes back first.
  void* a = ha::allocate(1000);
  void* b = ha::allocate(1000);
  ha::deallocate(a, 1000);
  ha::deallocate(b, 1000);
  EXPECT_EQ(ha::allocate(1000), b);
  EXPECT_EQ(ha::allocate(1000), a);
  ha::deallocate(a, 1000);
  ha::deallocate(b, 1000);

  // Zero bytes still gives a distinct, aligned, freeable block.
  void* z = ha::allocate(0);
  EXPECT_NE(z, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(z) % ha::kAlignment, 0u);
  ha::deallocate(z, 0);
  ha::deallocate(nullptr, 10);  // no-op
  ha::empty_cache();
}

TEST(HostAllocator, SizeClasses) {
  const std::size_t sizes[] = {1, 64, 65, 80, 81, 96, 128, 129, 1000, 1024, 1025, 1280, 1281, 4096, 5000, 1 << 20,
                               (1 << 20) + 1, 3'000'000};
  for (std::size_t n : sizes) {
    ha::empty_cache();
    void* p = ha::allocate(n);
    ha::deallocate(p, n);
    const std::size_t cls = ha::stats().bytes_cached;
    EXPECT_EQ(cls, expected_class_bytes(n)) << "request of " << n << " bytes";
    EXPECT_GE(cls, n);
    if (n > 64) EXPECT_LE(static_cast<double>(cls), 1.25 * static_cast<double>(n) + 1) << n;  // <= 25% waste
  }
  ha::empty_cache();
}

TEST(HostAllocator, EmptyCacheReturnsBlocksToTheSystem) {
  ha::empty_cache();
  std::vector<void*> blocks;
  for (int i = 0; i < 5; ++i) blocks.push_back(ha::allocate(300 + 1000 * static_cast<std::size_t>(i)));
  for (int i = 0; i < 5; ++i) ha::deallocate(blocks[static_cast<std::size_t>(i)], 300 + 1000 * static_cast<std::size_t>(i));
  const AllocatorStats before = ha::stats();
  EXPECT_GT(before.bytes_cached, 0u);
  ha::empty_cache();
  const AllocatorStats after = ha::stats();
  EXPECT_EQ(after.bytes_cached, 0u);
  EXPECT_EQ(after.system_frees, before.system_frees + 5);
}

TEST(HostAllocator, PerThreadCaches) {
  ha::empty_cache();
  void* mine = ha::allocate(4000);
  ha::deallocate(mine, 4000);
  const std::size_t main_cached = ha::stats().bytes_cached;
  ASSERT_GT(main_cached, 0u);

  std::uint64_t thread_hits_start = 99, thread_hits_end = 0, frees_before_exit = 0;
  std::size_t thread_cached = 0;
  void* thread_block = nullptr;
  std::thread t([&] {
    const AllocatorStats s = ha::stats();
    thread_hits_start = s.cache_hits;
    thread_block = ha::allocate(4000);  // not the main thread's cached block
    ha::deallocate(thread_block, 4000);
    void* again = ha::allocate(4000);
    EXPECT_EQ(again, thread_block);
    ha::deallocate(again, 4000);
    thread_hits_end = ha::stats().cache_hits;
    thread_cached = ha::stats().bytes_cached;
    frees_before_exit = ha::stats().system_frees;
  });
  t.join();
  EXPECT_EQ(thread_hits_start, 0u) << "a new thread starts with an empty cache";
  EXPECT_EQ(thread_hits_end, 1u);
  EXPECT_NE(thread_block, mine);
  EXPECT_EQ(thread_cached, expected_class_bytes(4000));
  // The thread's cache went back to the system when it exited; ours is untouched.
  EXPECT_GE(ha::stats().system_frees, frees_before_exit + 1);
  EXPECT_EQ(ha::stats().bytes_cached, main_cached);
  ha::empty_cache();
}

TEST(HostAllocator, TensorsComeFromTheCache) {
  {
    Tensor warm = zeros({1000});
    Tensor warm_view = warm.view({10, 100});
  }
  const AllocatorStats s0 = ha::stats();
  {
    Tensor t = zeros({1000});
    Tensor u = t.view({10, 100});  // a view allocates a TensorImpl, no new storage
    EXPECT_EQ(u.numel(), 1000);
  }
  const AllocatorStats s1 = ha::stats();
  EXPECT_EQ(s1.system_allocs, s0.system_allocs);
  EXPECT_GE(s1.cache_hits, s0.cache_hits + 3) << "storage, TensorImpl and StorageImpl all from the cache";
}

// ---------------------------------------------------------------- steady-state training: no allocation

namespace {

struct Mlp {
  std::shared_ptr<nn::Linear> fc1, fc2, fc3;
  std::vector<Tensor> params;
  Mlp() {
    fc1 = std::make_shared<nn::Linear>(5, 10);
    fc2 = std::make_shared<nn::Linear>(10, 10);
    fc3 = std::make_shared<nn::Linear>(10, 3);
    for (auto* l : {fc1.get(), fc2.get(), fc3.get()}) {
      params.push_back(l->weight);
      params.push_back(l->bias);
    }
  }
  Tensor forward(const Tensor& x) {
    Tensor h = relu(fc1->forward(x));
    h = relu(fc2->forward(h));
    return log_softmax(fc3->forward(h), 1);
  }
};

// One training step: forward, nll_loss, zero the gradients, backward, SGD update.
float train_step(Mlp& m, const Tensor& x, const Tensor& y, float lr, bool set_to_none) {
  Tensor out = m.forward(x);
  Tensor loss = nll_loss(out, y);
  for (auto& p : m.params) p.zero_grad(set_to_none);
  loss.backward();
  {
    NoGradGuard no_grad;
    for (auto& p : m.params) p.sub_(p.grad(), lr);
  }
  return loss.item<float>();
}

void expect_steady_state_without_allocation(bool set_to_none) {
  manual_seed(0);
  Mlp m;
  const Tensor x = randn({20, 5});
  const Tensor y = randint(0, 3, {20});
  float first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {  // warm-up: caches fill, BLAS/OpenMP start
    float l = train_step(m, x, y, 0.1f, set_to_none);
    if (i == 0) first = l;
  }
  const AllocatorStats before = ha::stats();
  const std::uint64_t news_before = g_news.load();
  g_num_traces = 0;
  g_trace = true;
  constexpr int kSteps = 50;
  for (int i = 0; i < kSteps; ++i) last = train_step(m, x, y, 0.1f, set_to_none);
  g_trace = false;
  const std::uint64_t news = g_news.load() - news_before;
  const AllocatorStats after = ha::stats();

  EXPECT_EQ(after.system_allocs, before.system_allocs)
      << "the caching allocator went to the system during steady-state training steps";
  EXPECT_EQ(news, 0u) << "global operator new was called " << news << " times in " << kSteps << " training steps";
  if (news) print_traces();
  EXPECT_GT(after.cache_hits, before.cache_hits) << "the steps' tensors should come from the cache";
  // and the steps really trained
  EXPECT_TRUE(std::isfinite(last));
  EXPECT_LT(last, first);
  for (const auto& p : m.params) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_EQ(p.grad().shape(), p.shape());
  }
}

}  // namespace

TEST(NoAllocation, SteadyStateTrainingStepZeroGradInPlace) { expect_steady_state_without_allocation(false); }

TEST(NoAllocation, SteadyStateTrainingStepGradSetToNone) { expect_steady_state_without_allocation(true); }

TEST(NoAllocation, SequentialModelWithDropoutAndCrossEntropy) {
  manual_seed(1);
  auto model = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(5, 16), std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.2),
      std::make_shared<nn::Linear>(16, 3)});
  const std::vector<Tensor> params = model->parameters();
  const Tensor x = randn({20, 5});
  const Tensor y = randint(0, 3, {20});
  auto step = [&] {
    Tensor loss = cross_entropy((*model)(x), y);
    model->zero_grad();
    loss.backward();
    NoGradGuard no_grad;
    for (const auto& p : params) {
      Tensor w = p;
      w.add_(p.grad(), -0.05);
    }
    return loss.item<float>();
  };
  for (int i = 0; i < 5; ++i) step();
  const AllocatorStats before = ha::stats();
  const std::uint64_t news_before = g_news.load();
  g_num_traces = 0;
  g_trace = true;
  for (int i = 0; i < 30; ++i) step();
  g_trace = false;
  const std::uint64_t news = g_news.load() - news_before;
  EXPECT_EQ(ha::stats().system_allocs, before.system_allocs);
  EXPECT_EQ(news, 0u) << "operator new in steady state (Sequential, Dropout, cross_entropy, Module::zero_grad)";
  if (news) print_traces();
}

TEST(NoAllocation, SteadyStateWithPostAccumulateGradHooks) {
  // Distributed training starts gradient allreduces from post-accumulate-grad hooks; the
  // engine's per-leaf summing for hooked leaves must not allocate either.
  manual_seed(2);
  Mlp m;
  std::vector<int> calls(m.params.size(), 0);
  for (std::size_t i = 0; i < m.params.size(); ++i)
    m.params[i].register_post_accumulate_grad_hook([&calls, i](Tensor&) { ++calls[i]; });
  const Tensor x = randn({20, 5});
  const Tensor y = randint(0, 3, {20});
  for (int i = 0; i < 5; ++i) train_step(m, x, y, 0.05f, false);
  const AllocatorStats before = ha::stats();
  const std::uint64_t news_before = g_news.load();
  g_num_traces = 0;
  g_trace = true;
  for (int i = 0; i < 30; ++i) train_step(m, x, y, 0.05f, false);
  g_trace = false;
  const std::uint64_t news = g_news.load() - news_before;
  EXPECT_EQ(ha::stats().system_allocs, before.system_allocs);
  EXPECT_EQ(news, 0u);
  if (news) print_traces();
  for (int c : calls) EXPECT_EQ(c, 35) << "one hook call per parameter per step";
}

TEST(NoAllocation, CounterSeesAllocations) {
  // The counting operator new is really in use (so the zero counts above mean something).
  const std::uint64_t before = g_news.load();
  auto* v = new std::vector<int>(100);
  delete v;
  EXPECT_GE(g_news.load(), before + 2);
  // and building a graph's first instance does allocate from the system or the cache
  const AllocatorStats s0 = ha::stats();
  { Tensor t = zeros({123457}); }
  EXPECT_TRUE(ha::stats().system_allocs > s0.system_allocs || ha::stats().cache_hits > s0.cache_hits);
}
