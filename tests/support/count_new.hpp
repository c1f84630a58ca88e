// Counts every call to the global operator new in a test executable: include this header in
// exactly one source file of the executable (it defines the replacement operators), then
// compare krill::test::heap_allocations() before and after the code under test.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace krill::test {
inline std::atomic<std::uint64_t> g_operator_new_calls{0};
inline std::uint64_t heap_allocations() { return g_operator_new_calls.load(std::memory_order_relaxed); }
}  // namespace krill::test

void* operator new(std::size_t n) {
  krill::test::g_operator_new_calls.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  krill::test::g_operator_new_calls.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  krill::test::g_operator_new_calls.fetch_add(1, std::memory_order_relaxed);
  std::size_t al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
