// Intrusive reference counting: one atomic counter inside the object, no control block.
#pragma once
#include <atomic>
#include <cstdint>
#include <utility>

namespace krill {

// Base for intrusively counted objects. Derived classes decide how they are freed
// through a static `release(T*)` found by ADL-free lookup on the type.
struct RefCounted {
  mutable std::atomic<std::int32_t> refs_{1};
  void ref() const { refs_.fetch_add(1, std::memory_order_relaxed); }
  bool unref() const { return refs_.fetch_sub(1, std::memory_order_acq_rel) == 1; }
  std::int32_t use_count() const { return refs_.load(std::memory_order_relaxed); }
};

// Owning pointer to a RefCounted T; deletes through `delete` (T may overload operator delete
// to return memory to a pool).
template <typename T>
class Ref {
 public:
  Ref() = default;
  Ref(std::nullptr_t) {}
  // Adopts a fresh object (refcount already 1).
  static Ref adopt(T* p) { Ref r; r.p_ = p; return r; }
  // Shares an existing object.
  static Ref share(T* p) { if (p) p->ref(); Ref r; r.p_ = p; return r; }
  Ref(const Ref& o) : p_(o.p_) { if (p_) p_->ref(); }
  Ref(Ref&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  ~Ref() { reset(); }
  Ref& operator=(const Ref& o) { Ref(o).swap(*this); return *this; }
  Ref& operator=(Ref&& o) noexcept { Ref(std::move(o)).swap(*this); return *this; }
  void reset() { if (p_ && p_->unref()) delete p_; p_ = nullptr; }
  void swap(Ref& o) noexcept { std::swap(p_, o.p_); }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  T* release() { T* p = p_; p_ = nullptr; return p; }
  friend bool operator==(const Ref& a, const Ref& b) { return a.p_ == b.p_; }

 private:
  T* p_ = nullptr;
};

}  // namespace krill
