// Elementwise CPU kernels: binary (broadcasting), unary, copy/convert, fill, in-place updates.
#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/dispatch.hpp"
#include "cpu/kernels.hpp"
#include "cpu/loops.hpp"

namespace krill::cpu {
namespace {

template <typename T>
inline T ipow(T base, T exp) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::pow(base, exp);
  } else {
    if (exp < 0) return base == 1 ? 1 : (base == -1 ? ((exp & 1) ? -1 : 1) : 0);
    T r = 1;
    while (exp) {
      if (exp & 1) r *= base;
      base *= base;
      exp >>= 1;
    }
    return r;
  }
}

// Applies `f(x, y)` over a broadcast pair into `out` (contiguous or strided).
template <typename T, typename R, typename F>
void binary_loop(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const Shape& shape = out.shape();
  const std::int64_t n = out.numel();
  T* pa = static_cast<T*>(a.raw_data());
  T* pb = static_cast<T*>(b.raw_data());
  R* po = static_cast<R*>(out.raw_data());
  // Fast paths: same-shape contiguous, and contiguous op one-element.
  const bool oc = out.is_contiguous();
  if (oc && a.shape() == shape && b.shape() == shape && a.is_contiguous() && b.is_contiguous()) {
    for (std::int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
    return;
  }
  if (oc && a.shape() == shape && a.is_contiguous() && b.numel() == 1) {
    const T y = *pb;
    for (std::int64_t i = 0; i < n; ++i) po[i] = f(pa[i], y);
    return;
  }
  Strides sa = broadcast_strides(a, shape), sb = broadcast_strides(b, shape);
  auto ls = make_loop<3>(shape, {&out.strides(), &sa, &sb},
                         {static_cast<std::int64_t>(sizeof(R)), static_cast<std::int64_t>(sizeof(T)),
                          static_cast<std::int64_t>(sizeof(T))});
  run_loop<3>(ls, {reinterpret_cast<char*>(po), reinterpret_cast<char*>(pa), reinterpret_cast<char*>(pb)},
              [&](std::array<char*, 3> p, std::int64_t len, std::array<std::int64_t, 3> st) {
                R* o = reinterpret_cast<R*>(p[0]);
                const T* x = reinterpret_cast<const T*>(p[1]);
                const T* y = reinterpret_cast<const T*>(p[2]);
                const std::int64_t so = st[0] / sizeof(R), sx = st[1] / sizeof(T), sy = st[2] / sizeof(T);
                if (so == 1 && sx == 1 && sy == 1) {
                  for (std::int64_t i = 0; i < len; ++i) o[i] = f(x[i], y[i]);
                } else if (so == 1 && sx == 1 && sy == 0) {
                  const T yy = *y;
                  for (std::int64_t i = 0; i < len; ++i) o[i] = f(x[i], yy);
                } else if (so == 1 && sx == 0 && sy == 1) {
                  const T xx = *x;
                  for (std::int64_t i = 0; i < len; ++i) o[i] = f(xx, y[i]);
                } else {
                  for (std::int64_t i = 0; i < len; ++i) o[i * so] = f(x[i * sx], y[i * sy]);
                }
              });
}

template <typename T, typename F>
void unary_loop(const Tensor& a, Tensor& out, F f) {
  T* pa = static_cast<T*>(a.raw_data());
  T* po = static_cast<T*>(out.raw_data());
  const std::int64_t n = out.numel();
  if (a.is_contiguous() && out.is_contiguous()) {
    for (std::int64_t i = 0; i < n; ++i) po[i] = f(pa[i]);
    return;
  }
  auto ls = make_loop<2>(out.shape(), {&out.strides(), &a.strides()},
                         {static_cast<std::int64_t>(sizeof(T)), static_cast<std::int64_t>(sizeof(T))});
  run_loop<2>(ls, {reinterpret_cast<char*>(po), reinterpret_cast<char*>(pa)},
              [&](std::array<char*, 2> p, std::int64_t len, std::array<std::int64_t, 2> st) {
                T* o = reinterpret_cast<T*>(p[0]);
                const T* x = reinterpret_cast<const T*>(p[1]);
                const std::int64_t so = st[0] / sizeof(T), sx = st[1] / sizeof(T);
                for (std::int64_t i = 0; i < len; ++i) o[i * so] = f(x[i * sx]);
              });
}

}  // namespace

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out, double alpha) {
  dispatch_arith(a.dtype(), "binary op", [&](auto zero) {
    using T = decltype(zero);
    const T al = static_cast<T>(alpha);
    switch (op) {
      case BinaryOp::Add:
        if (alpha == 1.0) binary_loop<T, T>(a, b, out, [](T x, T y) { return x + y; });
        else binary_loop<T, T>(a, b, out, [al](T x, T y) { return x + al * y; });
        break;
      case BinaryOp::Sub:
        if (alpha == 1.0) binary_loop<T, T>(a, b, out, [](T x, T y) { return x - y; });
        else binary_loop<T, T>(a, b, out, [al](T x, T y) { return x - al * y; });
        break;
      case BinaryOp::Mul: binary_loop<T, T>(a, b, out, [](T x, T y) { return x * y; }); break;
      case BinaryOp::Div:
        if constexpr (std::is_integral_v<T>) throw DTypeError("div: integer division needs a float tensor");
        else binary_loop<T, T>(a, b, out, [](T x, T y) { return x / y; });
        break;
      case BinaryOp::Pow: binary_loop<T, T>(a, b, out, [](T x, T y) { return ipow<T>(x, y); }); break;
      case BinaryOp::Maximum:
        binary_loop<T, T>(a, b, out, [](T x, T y) { return (x != x) ? x : (x > y ? x : y); });
        break;
      case BinaryOp::Minimum:
        binary_loop<T, T>(a, b, out, [](T x, T y) { return (x != x) ? x : (x < y ? x : y); });
        break;
      case BinaryOp::Eq: binary_loop<T, bool>(a, b, out, [](T x, T y) { return x == y; }); break;
      case BinaryOp::Ne: binary_loop<T, bool>(a, b, out, [](T x, T y) { return x != y; }); break;
      case BinaryOp::Lt: binary_loop<T, bool>(a, b, out, [](T x, T y) { return x < y; }); break;
      case BinaryOp::Le: binary_loop<T, bool>(a, b, out, [](T x, T y) { return x <= y; }); break;
      case BinaryOp::Gt: binary_loop<T, bool>(a, b, out, [](T x, T y) { return x > y; }); break;
      case BinaryOp::Ge: binary_loop<T, bool>(a, b, out, [](T x, T y) { return x >= y; }); break;
    }
    return 0;
  });
}

void binary_scalar(BinaryOp op, const Tensor& a, double s, Tensor& out, bool reversed) {
  dispatch_arith(a.dtype(), "scalar op", [&](auto zero) {
    using T = decltype(zero);
    const T y = static_cast<T>(s);
    auto run = [&](auto f) { unary_loop<T>(a, out, f); };
    switch (op) {
      case BinaryOp::Add: run([y](T x) { return x + y; }); break;
      case BinaryOp::Sub:
        if (reversed) run([y](T x) { return y - x; });
        else run([y](T x) { return x - y; });
        break;
      case BinaryOp::Mul: run([y](T x) { return x * y; }); break;
      case BinaryOp::Div:
        if (reversed) run([y](T x) { return y / x; });
        else run([y](T x) { return x / y; });
        break;
      case BinaryOp::Pow:
        if constexpr (std::is_floating_point_v<T>) {
          if (reversed) run([y](T x) { return std::pow(y, x); });
          else if (s == 2.0) run([](T x) { return x * x; });
          else if (s == 0.5) run([](T x) { return std::sqrt(x); });
          else if (s == 1.0) run([](T x) { return x; });
          else run([y](T x) { return std::pow(x, y); });
        } else {
          if (reversed) run([y](T x) { return ipow<T>(y, x); });
          else run([y](T x) { return ipow<T>(x, y); });
        }
        break;
      default: throw Error("binary_scalar: unsupported op");
    }
    return 0;
  });
}

void unary(UnaryOp op, const Tensor& a, Tensor& out) {
  dispatch_arith(a.dtype(), "unary op", [&](auto zero) {
    using T = decltype(zero);
    auto run = [&](auto f) { unary_loop<T>(a, out, f); };
    switch (op) {
      case UnaryOp::Neg: run([](T x) { return -x; }); break;
      case UnaryOp::Abs: run([](T x) { return x < 0 ? -x : x; }); break;
      case UnaryOp::Relu: run([](T x) { return x > 0 ? x : (x != x ? x : T(0)); }); break;
      case UnaryOp::ReluGradMask: run([](T x) { return x > 0 ? T(1) : T(0); }); break;
      default:
        if constexpr (std::is_floating_point_v<T>) {
          switch (op) {
            case UnaryOp::Exp: run([](T x) { return std::exp(x); }); break;
            case UnaryOp::Log: run([](T x) { return std::log(x); }); break;
            case UnaryOp::Sqrt: run([](T x) { return std::sqrt(x); }); break;
            case UnaryOp::Sigmoid: run([](T x) { return T(1) / (T(1) + std::exp(-x)); }); break;
            case UnaryOp::Tanh: run([](T x) { return std::tanh(x); }); break;
            default: break;
          }
        } else {
          throw DTypeError("this op needs a floating-point tensor, got int64");
        }
    }
    return 0;
  });
}

void clamp(const Tensor& a, double lo, double hi, Tensor& out) {
  dispatch_arith(a.dtype(), "clamp", [&](auto zero) {
    using T = decltype(zero);
    const T l = static_cast<T>(lo), h = static_cast<T>(hi);
    unary_loop<T>(a, out, [l, h](T x) { return x != x ? x : (x < l ? l : (x > h ? h : x)); });
    return 0;
  });
}

void copy(const Tensor& src, Tensor& dst) {
  if (src.dtype() == dst.dtype() && src.shape() == dst.shape() && src.is_contiguous() && dst.is_contiguous()) {
    if (dst.raw_data() != src.raw_data()) std::memcpy(dst.raw_data(), src.raw_data(), dst.nbytes());
    return;
  }
  if (dst.numel() == 0) return;
  if (src.dtype() == dst.dtype()) {
    // same dtype: move items as raw bits (works for every dtype, 16-bit floats included)
    auto move_bits = [&](auto zero) {
      using U = decltype(zero);
      Strides ss = broadcast_strides(src, dst.shape());
      auto ls = make_loop<2>(dst.shape(), {&dst.strides(), &ss},
                             {static_cast<std::int64_t>(sizeof(U)), static_cast<std::int64_t>(sizeof(U))});
      run_loop<2>(ls, {static_cast<char*>(dst.raw_data()), static_cast<char*>(src.raw_data())},
                  [&](std::array<char*, 2> p, std::int64_t len, std::array<std::int64_t, 2> st) {
                    U* o = reinterpret_cast<U*>(p[0]);
                    const U* x = reinterpret_cast<const U*>(p[1]);
                    const std::int64_t so = st[0] / sizeof(U), sx = st[1] / sizeof(U);
                    for (std::int64_t i = 0; i < len; ++i) o[i * so] = x[i * sx];
                  });
    };
    switch (itemsize(dst.dtype())) {
      case 1: move_bits(std::uint8_t{}); return;
      case 2: move_bits(std::uint16_t{}); return;
      case 4: move_bits(std::uint32_t{}); return;
      case 8: move_bits(std::uint64_t{}); return;
      default: break;
    }
  }
  dispatch_all(dst.dtype(), "copy", [&](auto dzero) {
    using D = decltype(dzero);
    dispatch_all(src.dtype(), "copy", [&](auto szero) {
      using S = decltype(szero);
      Strides ss = broadcast_strides(src, dst.shape());
      auto ls = make_loop<2>(dst.shape(), {&dst.strides(), &ss},
                             {static_cast<std::int64_t>(sizeof(D)), static_cast<std::int64_t>(sizeof(S))});
      run_loop<2>(ls, {static_cast<char*>(dst.raw_data()), static_cast<char*>(src.raw_data())},
                  [&](std::array<char*, 2> p, std::int64_t len, std::array<std::int64_t, 2> st) {
                    D* o = reinterpret_cast<D*>(p[0]);
                    const S* x = reinterpret_cast<const S*>(p[1]);
                    const std::int64_t so = st[0] / sizeof(D), sx = st[1] / sizeof(S);
                    for (std::int64_t i = 0; i < len; ++i) o[i * so] = static_cast<D>(x[i * sx]);
                  });
      return 0;
    });
    return 0;
  });
}

void fill(Tensor& t, double value) {
  dispatch_all(t.dtype(), "fill", [&](auto zero) {
    using T = decltype(zero);
    const T v = static_cast<T>(value);
    if (t.is_contiguous()) {
      T* p = static_cast<T*>(t.raw_data());
      const std::int64_t n = t.numel();
      if (value == 0.0) std::memset(p, 0, n * sizeof(T));
      else
        for (std::int64_t i = 0; i < n; ++i) p[i] = v;
      return 0;
    }
    unary_loop<T>(t, t, [v](T) { return v; });
    return 0;
  });
}

void add_inplace(Tensor& a, const Tensor& b, double alpha) {
  dispatch_arith(a.dtype(), "add_", [&](auto zero) {
    using T = decltype(zero);
    const T al = static_cast<T>(alpha);
    if (alpha == 1.0) binary_loop<T, T>(a, b, a, [](T x, T y) { return x + y; });
    else binary_loop<T, T>(a, b, a, [al](T x, T y) { return x + al * y; });
    return 0;
  });
}

void mul_inplace(Tensor& a, const Tensor& b) {
  dispatch_arith(a.dtype(), "mul_", [&](auto zero) {
    using T = decltype(zero);
    binary_loop<T, T>(a, b, a, [](T x, T y) { return x * y; });
    return 0;
  });
}

void div_inplace(Tensor& a, const Tensor& b) {
  dispatch_arith(a.dtype(), "div_", [&](auto zero) {
    using T = decltype(zero);
    binary_loop<T, T>(a, b, a, [](T x, T y) { return x / y; });
    return 0;
  });
}

void scale_inplace(Tensor& a, double s) {
  dispatch_arith(a.dtype(), "mul_", [&](auto zero) {
    using T = decltype(zero);
    const T v = static_cast<T>(s);
    unary_loop<T>(a, a, [v](T x) { return x * v; });
    return 0;
  });
}

void add_scalar_inplace(Tensor& a, double s) {
  dispatch_arith(a.dtype(), "add_", [&](auto zero) {
    using T = decltype(zero);
    const T v = static_cast<T>(s);
    unary_loop<T>(a, a, [v](T x) { return x + v; });
    return 0;
  });
}

// Small products (the penguin MLP's 20x5x10) cost more in a BLAS call's packing and dispatch
// than in arithmetic: below this many multiply-adds a plain loop that the compiler vectorises
// over the contiguous dimension is several times faster.
static constexpr std::int64_t kSmallGemmFlops = 64 * 64 * 64;

// C = alpha * A B + beta * C with B row-major [k, n]; A(i, p) at a[i*lda + p] (or a[p*lda + i]
// when `ta`). Rows of C are built in registers, 16 columns at a time (masked at the edge).
static void small_sgemm_nn(bool ta, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                           const float* __restrict a, std::int64_t lda, const float* __restrict b, std::int64_t ldb,
                           float beta, float* __restrict c, std::int64_t ldc) {
#if defined(__AVX512F__)
  const __m512 valpha = _mm512_set1_ps(alpha), vbeta = _mm512_set1_ps(beta);
  for (std::int64_t j0 = 0; j0 < n; j0 += 16) {
    const std::int64_t w = std::min<std::int64_t>(16, n - j0);
    const __mmask16 mask = static_cast<__mmask16>(w == 16 ? 0xFFFF : ((1u << w) - 1));
    std::int64_t i = 0;
    for (; i + 4 <= m; i += 4) {  // four rows share each load of B
      __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
      for (std::int64_t p = 0; p < k; ++p) {
        const __m512 bv = _mm512_maskz_loadu_ps(mask, b + p * ldb + j0);
        const float* ap = ta ? a + p * lda + i : a + i * lda + p;
        const std::int64_t as = ta ? 1 : lda;
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(ap[0]), bv, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(ap[as]), bv, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(ap[2 * as]), bv, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(ap[3 * as]), bv, c3);
      }
      __m512 acc[4] = {c0, c1, c2, c3};
      for (int r = 0; r < 4; ++r) {
        float* cr = c + (i + r) * ldc + j0;
        __m512 v = _mm512_mul_ps(valpha, acc[r]);
        if (beta != 0.f) v = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(mask, cr), v);
        _mm512_mask_storeu_ps(cr, mask, v);
      }
    }
    for (; i < m; ++i) {
      __m512 acc = _mm512_setzero_ps();
      for (std::int64_t p = 0; p < k; ++p) {
        const float av = ta ? a[p * lda + i] : a[i * lda + p];
        acc = _mm512_fmadd_ps(_mm512_set1_ps(av), _mm512_maskz_loadu_ps(mask, b + p * ldb + j0), acc);
      }
      float* cr = c + i * ldc + j0;
      __m512 v = _mm512_mul_ps(valpha, acc);
      if (beta != 0.f) v = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(mask, cr), v);
      _mm512_mask_storeu_ps(cr, mask, v);
    }
  }
#else
  for (std::int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    for (std::int64_t j = 0; j < n; ++j) {
      float acc = 0.f;
      for (std::int64_t p = 0; p < k; ++p) acc += (ta ? a[p * lda + i] : a[i * lda + p]) * b[p * ldb + j];
      ci[j] = beta == 0.f ? alpha * acc : alpha * acc + beta * ci[j];
    }
  }
#endif
}

// C = alpha * A B^T + beta * C with A's and B's rows contiguous (a linear layer's x W^T), for a
// few rows of A: one dot product per element, so B needs no packed transpose (packing LeNet
// fc1's 120x400 weight took longer than the batch-4 product itself).
static void small_sgemm_nt_dot(std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* __restrict a,
                               std::int64_t lda, const float* __restrict b, std::int64_t ldb, float beta,
                               float* __restrict c, std::int64_t ldc) {
  for (std::int64_t i = 0; i < m; ++i) {
    const float* ai = a + i * lda;
    for (std::int64_t j = 0; j < n; ++j) {
      const float* bj = b + j * ldb;
#if defined(__AVX512F__)
      __m512 acc = _mm512_setzero_ps();
      std::int64_t p = 0;
      for (; p + 16 <= k; p += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(ai + p), _mm512_loadu_ps(bj + p), acc);
      if (p < k) {
        const __mmask16 tail = static_cast<__mmask16>((1u << (k - p)) - 1);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, ai + p), _mm512_maskz_loadu_ps(tail, bj + p), acc);
      }
      const float dot = _mm512_reduce_add_ps(acc);
#else
      float dot = 0.f;
      for (std::int64_t p = 0; p < k; ++p) dot += ai[p] * bj[p];
#endif
      float& cij = c[i * ldc + j];
      cij = beta == 0.f ? alpha * dot : alpha * dot + beta * cij;
    }
  }
}

static void small_sgemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                        const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                        std::int64_t ldc) {
  if (tb && !ta && m <= 8) {
    small_sgemm_nt_dot(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (!tb) {
    small_sgemm_nn(ta, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Transposed B (B(p, j) = b[j*ldb + p], e.g. x W^T): pack it row-major [k, n] first. The
  // buffer keeps its capacity, so steady state allocates nothing.
  thread_local std::vector<float> packed;
  if (packed.size() < static_cast<std::size_t>(k * n)) packed.resize(static_cast<std::size_t>(k * n));
  float* pb = packed.data();
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t p = 0; p < k; ++p) pb[p * n + j] = b[j * ldb + p];
  small_sgemm_nn(ta, m, n, k, alpha, a, lda, pb, n, beta, c, ldc);
}

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
           std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
    return;
  }
  if (m * n * k <= kSmallGemmFlops) {
    small_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (onednn_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b,
              static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

}  // namespace krill::cpu
