// Argument checking shared by the CNN ops (ops_conv.cpp, ops_pool.cpp, ops_norm.cpp); internal.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "internal.hpp"

namespace krill::detail {

inline std::string pair_str(std::array<std::int64_t, 2> p) {
  return "[" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + "]";
}

// Checks that `t` is a defined float32 CPU tensor.
inline void check_float32(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  check_cpu(t, op);
  if (t.dtype() != DType::Float32)
    throw DTypeError(std::string(op) + ": argument '" + arg + "' is " + std::string(dtype_name(t.dtype())) +
                     "; only float32 is supported (the CPU kernels are oneDNN's float32 primitives)");
}

// Checks a 3-D [C, H, W] or 4-D [N, C, H, W] input.
inline void check_image_input(const Tensor& t, const char* op) {
  check_float32(t, op, "input");
  if (t.ndim() != 3 && t.ndim() != 4)
    throw ValueError(std::string(op) + ": argument 'input' must be 4-D [N, C, H, W] or 3-D [C, H, W], got " +
                     t.shape().str());
  for (int d = 0; d < t.ndim(); ++d)
    if (t.shape()[d] == 0)
      throw ValueError(std::string(op) + ": argument 'input' " + t.shape().str() + " has a zero-sized dimension");
}

inline void check_positive(std::array<std::int64_t, 2> p, const char* op, const char* arg) {
  if (p[0] <= 0 || p[1] <= 0)
    throw ValueError(std::string(op) + ": argument '" + arg + "' must be positive, got " + pair_str(p));
}

inline void check_non_negative(std::array<std::int64_t, 2> p, const char* op, const char* arg) {
  if (p[0] < 0 || p[1] < 0)
    throw ValueError(std::string(op) + ": argument '" + arg + "' must be non-negative, got " + pair_str(p));
}

// The window of a 2-D pooling over a 4-D input of shape `input` (checked, `op` naming it in
// errors; stride {0, 0} means the kernel size): PyTorch's output size, and the right padding
// that gives oneDNN that size (more than `padding` in ceil_mode).
struct PoolGeometry {
  std::int64_t kh, kw, sh, sw, ph, pw, prh, prw, dh, dw, OH, OW;
};
PoolGeometry pool_geometry(const char* op, const Shape& input, std::array<std::int64_t, 2> kernel,
                           std::array<std::int64_t, 2> stride, std::array<std::int64_t, 2> padding,
                           std::array<std::int64_t, 2> dilation, bool ceil_mode);

}  // namespace krill::detail
