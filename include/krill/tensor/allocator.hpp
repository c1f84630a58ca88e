// Caching host allocator. Blocks are binned in size classes (powers of two with four
// sub-steps each) and kept in per-thread free lists, so a training loop in steady state
// never reaches malloc: an op's output takes a block that the previous step freed.
// Tensor, Storage and autograd Node objects come from the same caches.
#pragma once
#include <cstddef>
#include <cstdint>

namespace krill {

struct AllocatorStats {
  std::uint64_t system_allocs = 0;   // blocks obtained from the system (aligned_alloc)
  std::uint64_t system_frees = 0;    // blocks returned to the system
  std::uint64_t cache_hits = 0;      // allocations served from a free list
  std::uint64_t bytes_cached = 0;    // bytes sitting in free lists (this thread)
};

namespace host_allocator {

inline constexpr std::size_t kAlignment = 64;  // one cache line / one AVX-512 register

// Returns at least `nbytes` bytes aligned to kAlignment. Never returns null (throws std::bad_alloc).
void* allocate(std::size_t nbytes);
// Returns a block from allocate(); `nbytes` must be the size that was asked for.
void deallocate(void* p, std::size_t nbytes) noexcept;
// Statistics: process-wide counters for system calls, this thread's cache for the rest.
AllocatorStats stats();
// Frees this thread's cached blocks back to the system.
void empty_cache() noexcept;

}  // namespace host_allocator

// Mix-in that routes `new`/`delete` of small engine objects through the caching allocator.
struct CachedObject {
  static void* operator new(std::size_t n) { return host_allocator::allocate(n); }
  static void operator delete(void* p, std::size_t n) noexcept { host_allocator::deallocate(p, n); }
};

}  // namespace krill
