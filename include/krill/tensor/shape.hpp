// Small inline shapes (no heap): up to kMaxDims dimensions.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace krill {

inline constexpr int kMaxDims = 6;

class Shape {
 public:
  constexpr Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(std::span<const std::int64_t> dims);
  Shape(const std::vector<std::int64_t>& dims) : Shape(std::span<const std::int64_t>(dims)) {}

  int ndim() const { return n_; }
  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  std::int64_t operator[](int i) const { return d_[i]; }
  std::int64_t& operator[](int i) { return d_[i]; }
  const std::int64_t* begin() const { return d_; }
  const std::int64_t* end() const { return d_ + n_; }
  const std::int64_t* data() const { return d_; }
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < n_; ++i) n *= d_[i];
    return n;
  }
  void push_back(std::int64_t v);
  void resize(int n) { n_ = static_cast<std::int8_t>(n); }
  void insert(int pos, std::int64_t v);
  void erase(int pos);
  std::vector<std::int64_t> vec() const { return {d_, d_ + n_}; }
  std::string str() const;  // "[2, 3]"

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.n_ != b.n_) return false;
    for (int i = 0; i < a.n_; ++i)
      if (a.d_[i] != b.d_[i]) return false;
    return true;
  }

 private:
  std::int64_t d_[kMaxDims] = {};
  std::int8_t n_ = 0;
};

using Strides = Shape;

// Row-major strides of a shape.
Strides contiguous_strides(const Shape& s);
// Normalises a possibly negative dim for a tensor of `ndim` dims; throws IndexError naming `op`.
int wrap_dim(std::int64_t dim, int ndim, const char* op);
// Broadcast two shapes (numpy rules); throws ShapeError naming `op`.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace krill
