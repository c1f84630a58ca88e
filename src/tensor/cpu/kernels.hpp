// CPU kernels (internal). Ops in src/tensor/ops*.cpp check arguments, allocate outputs and
// record autograd; these functions only compute. Outputs are contiguous unless stated.
#pragma once
#include <cstdint>

#include "krill/tensor/tensor.hpp"

namespace krill::cpu {

enum class BinaryOp : std::uint8_t { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge };
enum class UnaryOp : std::uint8_t {
  Neg, Abs, Exp, Log, Sqrt, Relu, Sigmoid, Tanh,
  ReluGradMask,  // 1 where x > 0 else 0
};

// out = a op (alpha * b) for Add/Sub, a op b otherwise; a, b broadcast to out's shape.
// a, b and out share one dtype except for comparisons (out is Bool).
void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out, double alpha = 1.0);
// out = a op s (or s op a when `reversed`).
void binary_scalar(BinaryOp op, const Tensor& a, double s, Tensor& out, bool reversed = false);
void unary(UnaryOp op, const Tensor& a, Tensor& out);
void clamp(const Tensor& a, double lo, double hi, Tensor& out);
// dst[...] = src[...] with broadcasting and dtype conversion; dst may be strided.
void copy(const Tensor& src, Tensor& dst);
void fill(Tensor& t, double value);
// out = a + alpha * b in place on `a` (a strided ok, b broadcast to a).
void add_inplace(Tensor& a, const Tensor& b, double alpha);
void mul_inplace(Tensor& a, const Tensor& b);
void div_inplace(Tensor& a, const Tensor& b);
void scale_inplace(Tensor& a, double s);
void add_scalar_inplace(Tensor& a, double s);

// C = alpha * op(A) op(B) + beta * C, row-major float32: a register-blocked loop for small
// products, oneDNN's matmul above (onednn_sgemm), OpenBLAS when that declines.
void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
           std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);
// The same through a cached oneDNN matmul primitive (cpu/matmul.cpp); false (nothing done) when
// the cache of matmul shapes is full.
bool onednn_sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                  const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                  std::int64_t ldc);

// Sum of `a` into out, whose shape is a's shape with reduced dims of size 1 (keepdim layout).
void sum_into(const Tensor& a, Tensor& out_keepdim);
// Max/min along dim of contiguous a: values and int64 indices (keepdim layout, contiguous).
void max_min_dim(const Tensor& a, int dim, bool is_max, Tensor& values, Tensor* indices);
void softmax(const Tensor& a, int dim, bool log, Tensor& out);
// grad_in = grad - exp(out) * sum(grad) (log) / out * (grad - sum(grad*out)) (softmax)
void softmax_backward(const Tensor& grad, const Tensor& out, int dim, bool log, Tensor& grad_in);

void index_select(const Tensor& a, int dim, const Tensor& index, Tensor& out);
// out (zeros, shape of the source) += grad rows at index along dim
void index_add(Tensor& out, int dim, const Tensor& index, const Tensor& src);
void gather(const Tensor& a, int dim, const Tensor& index, Tensor& out);
void scatter_add(Tensor& out, int dim, const Tensor& index, const Tensor& src);

}  // namespace krill::cpu
