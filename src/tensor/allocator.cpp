#include "krill/tensor/allocator.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace krill::host_allocator {
namespace {

// Size classes: 64 B, then every power of two split into four steps (2^k, 1.25*2^k, 1.5*2^k,
// 1.75*2^k), up to kMaxCached; larger blocks go straight to the system. Worst-case waste 25%.
constexpr std::size_t kMinBlock = 64;
constexpr int kMinLog = 6;
constexpr int kMaxLog = 31;  // cache blocks up to 2 GiB
constexpr int kNumClasses = 1 + (kMaxLog - kMinLog + 1) * 4;  // class 0: <= 64 B
constexpr std::size_t kMaxCachedBytesPerThread = std::size_t{4} << 30;

std::atomic<std::uint64_t> g_system_allocs{0};
std::atomic<std::uint64_t> g_system_frees{0};

inline int size_class(std::size_t n, std::size_t* rounded) {
  if (n <= kMinBlock) {
    *rounded = kMinBlock;
    return 0;
  }
  int log = 63 - __builtin_clzll(n - 1);       // 2^log < n <= 2^(log+1)
  std::size_t base = std::size_t{1} << log;    // the class row starts at 2^log
  std::size_t quarter = base >> 2;
  std::size_t steps = (n - base + quarter - 1) / quarter;  // 1..4
  *rounded = base + steps * quarter;
  int cls = 1 + (log - kMinLog) * 4 + static_cast<int>(steps) - 1;
  return cls;
}

struct FreeBlock {
  FreeBlock* next;
};

struct ThreadCache {
  FreeBlock* heads[kNumClasses] = {};
  std::uint64_t cache_hits = 0;
  std::size_t bytes_cached = 0;
  bool alive = true;

  ~ThreadCache() {
    release_all();
    alive = false;
  }
  void release_all() noexcept {
    for (int c = 0; c < kNumClasses; ++c) {
      while (FreeBlock* b = heads[c]) {
        heads[c] = b->next;
        std::free(b);
        g_system_frees.fetch_add(1, std::memory_order_relaxed);
      }
    }
    bytes_cached = 0;
  }
};

thread_local ThreadCache t_cache;

void* system_alloc(std::size_t bytes) {
  void* p = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  if (!p) throw std::bad_alloc();
  g_system_allocs.fetch_add(1, std::memory_order_relaxed);
  return p;
}

}  // namespace

void* allocate(std::size_t nbytes) {
  std::size_t rounded;
  if (nbytes > (std::size_t{1} << kMaxLog)) return system_alloc(nbytes);
  int cls = size_class(nbytes, &rounded);
  ThreadCache& tc = t_cache;
  if (FreeBlock* b = tc.heads[cls]) {
    tc.heads[cls] = b->next;
    tc.bytes_cached -= rounded;
    ++tc.cache_hits;
    return b;
  }
  return system_alloc(rounded);
}

void deallocate(void* p, std::size_t nbytes) noexcept {
  if (!p) return;
  std::size_t rounded;
  if (nbytes > (std::size_t{1} << kMaxLog)) {
    std::free(p);
    g_system_frees.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  int cls = size_class(nbytes, &rounded);
  ThreadCache& tc = t_cache;
  // During thread teardown the cache may already be gone: free directly.
  if (!tc.alive || tc.bytes_cached + rounded > kMaxCachedBytesPerThread) {
    std::free(p);
    g_system_frees.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto* b = static_cast<FreeBlock*>(p);
  b->next = tc.heads[cls];
  tc.heads[cls] = b;
  tc.bytes_cached += rounded;
}

AllocatorStats stats() {
  AllocatorStats s;
  s.system_allocs = g_system_allocs.load(std::memory_order_relaxed);
  s.system_frees = g_system_frees.load(std::memory_order_relaxed);
  s.cache_hits = t_cache.cache_hits;
  s.bytes_cached = t_cache.bytes_cached;
  return s;
}

void empty_cache() noexcept { t_cache.release_all(); }

}  // namespace krill::host_allocator
