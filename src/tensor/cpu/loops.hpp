// Strided N-operand loops (internal). Dimensions that are contiguous for every operand are
// merged first, so most calls become one flat loop; the body sees one innermost row at a time.
#pragma once
#include <array>
#include <cstdint>

#include "krill/tensor/tensor.hpp"

namespace krill::cpu {

template <int N>
struct LoopShape {
  int ndim = 0;
  std::int64_t size[kMaxDims];
  std::int64_t stride[N][kMaxDims];  // in bytes
};

// Builds the merged iteration space of `shape` for operands with the given element strides.
template <int N>
LoopShape<N> make_loop(const Shape& shape, const std::array<const Strides*, N>& strides,
                       const std::array<std::int64_t, N>& itemsize) {
  LoopShape<N> ls;
  for (int d = 0; d < shape.ndim(); ++d) {
    if (shape[d] == 1) continue;
    int k = ls.ndim;
    ls.size[k] = shape[d];
    for (int j = 0; j < N; ++j) ls.stride[j][k] = (*strides[j])[d] * itemsize[j];
    // merge with the previous kept dim when contiguous for all operands
    if (k > 0) {
      bool merge = true;
      for (int j = 0; j < N; ++j)
        if (ls.stride[j][k - 1] != ls.stride[j][k] * ls.size[k]) merge = false;
      if (merge) {
        ls.size[k - 1] *= ls.size[k];
        for (int j = 0; j < N; ++j) ls.stride[j][k - 1] = ls.stride[j][k];
        continue;
      }
    }
    ++ls.ndim;
  }
  return ls;
}

// Calls body(ptrs, n, inner_byte_strides) for every innermost row.
template <int N, typename Body>
void run_loop(const LoopShape<N>& ls, std::array<char*, N> ptrs, Body&& body) {
  if (ls.ndim == 0) {
    std::array<std::int64_t, N> st{};
    body(ptrs, std::int64_t{1}, st);
    return;
  }
  const int inner = ls.ndim - 1;
  std::array<std::int64_t, N> inner_stride;
  for (int j = 0; j < N; ++j) inner_stride[j] = ls.stride[j][inner];
  if (ls.ndim == 1) {
    body(ptrs, ls.size[0], inner_stride);
    return;
  }
  std::int64_t idx[kMaxDims] = {};
  std::int64_t outer = 1;
  for (int d = 0; d < inner; ++d) outer *= ls.size[d];
  for (std::int64_t o = 0; o < outer; ++o) {
    body(ptrs, ls.size[inner], inner_stride);
    // advance the outer odometer
    for (int d = inner - 1; d >= 0; --d) {
      ++idx[d];
      for (int j = 0; j < N; ++j) ptrs[j] += ls.stride[j][d];
      if (idx[d] < ls.size[d]) break;
      for (int j = 0; j < N; ++j) ptrs[j] -= ls.stride[j][d] * ls.size[d];
      idx[d] = 0;
    }
  }
}

// Strides of `t` as seen from a broadcast `shape` (0 where t is broadcast).
inline Strides broadcast_strides(const Tensor& t, const Shape& shape) {
  Strides s;
  s.resize(shape.ndim());
  int off = shape.ndim() - t.ndim();
  for (int d = 0; d < shape.ndim(); ++d) {
    int td = d - off;
    s[d] = (td < 0 || t.shape()[td] == 1) ? 0 : t.strides()[td];
  }
  return s;
}

}  // namespace krill::cpu
