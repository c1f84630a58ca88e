// Reductions, softmax and indexing kernels.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu/dispatch.hpp"
#include "cpu/kernels.hpp"
#include "cpu/vmath.hpp"
#include "cpu/loops.hpp"

namespace krill::cpu {
namespace {

// (outer, n, inner) view of a contiguous tensor around `dim`.
struct Around {
  std::int64_t outer = 1, n = 1, inner = 1;
};
Around around(const Shape& s, int dim) {
  Around r;
  for (int d = 0; d < dim; ++d) r.outer *= s[d];
  r.n = s.ndim() ? s[dim] : 1;
  for (int d = dim + 1; d < s.ndim(); ++d) r.inner *= s[d];
  return r;
}

template <typename Acc, typename T>
void sum_impl(const Tensor& a, Tensor& out) {
  const std::int64_t on = out.numel();
  T* po = static_cast<T*>(out.raw_data());
  const T* pa = static_cast<const T*>(a.raw_data());
  // Full reduction of a contiguous tensor: one pass with several accumulators.
  if (on == 1 && a.is_contiguous()) {
    const std::int64_t n = a.numel();
    Acc acc[8] = {};
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; ++j) acc[j] += static_cast<Acc>(pa[i + j]);
    Acc s = 0;
    for (int j = 0; j < 8; ++j) s += acc[j];
    for (; i < n; ++i) s += static_cast<Acc>(pa[i]);
    *po = static_cast<T>(s);
    return;
  }
  // Rows reduced over the leading dims (bias gradients): out[j] = sum_i a[i, j].
  if (a.is_contiguous() && out.is_contiguous() && on > 1) {
    bool leading = true;  // reduced dims form a prefix
    int d = 0;
    const Shape& os = out.shape();
    while (d < os.ndim() && os[d] == 1 && a.shape()[d] != 1) ++d;
    for (int e = d; e < os.ndim(); ++e)
      if (os[e] != a.shape()[e]) leading = false;
    if (leading) {
      const std::int64_t rows = a.numel() / on;
      Acc* acc = static_cast<Acc*>(host_allocator::allocate(on * sizeof(Acc)));
      for (std::int64_t j = 0; j < on; ++j) acc[j] = 0;
      for (std::int64_t r = 0; r < rows; ++r) {
        const T* row = pa + r * on;
        for (std::int64_t j = 0; j < on; ++j) acc[j] += static_cast<Acc>(row[j]);
      }
      for (std::int64_t j = 0; j < on; ++j) po[j] = static_cast<T>(acc[j]);
      host_allocator::deallocate(acc, on * sizeof(Acc));
      return;
    }
  }
  // General: accumulate in a buffer with the output's layout (stride 0 on reduced dims).
  Acc* acc = static_cast<Acc*>(host_allocator::allocate(on * sizeof(Acc)));
  for (std::int64_t j = 0; j < on; ++j) acc[j] = 0;
  Strides acc_strides = contiguous_strides(out.shape());
  for (int d = 0; d < out.ndim(); ++d)
    if (out.shape()[d] == 1) acc_strides[d] = 0;
  auto ls = make_loop<2>(a.shape(), {&acc_strides, &a.strides()},
                         {static_cast<std::int64_t>(sizeof(Acc)), static_cast<std::int64_t>(sizeof(T))});
  run_loop<2>(ls, {reinterpret_cast<char*>(acc), static_cast<char*>(a.raw_data())},
              [&](std::array<char*, 2> p, std::int64_t len, std::array<std::int64_t, 2> st) {
                Acc* o = reinterpret_cast<Acc*>(p[0]);
                const T* x = reinterpret_cast<const T*>(p[1]);
                const std::int64_t so = st[0] / sizeof(Acc), sx = st[1] / sizeof(T);
                if (so == 0) {
                  Acc s = 0;
                  for (std::int64_t i = 0; i < len; ++i) s += static_cast<Acc>(x[i * sx]);
                  *o += s;
                } else {
                  for (std::int64_t i = 0; i < len; ++i) o[i * so] += static_cast<Acc>(x[i * sx]);
                }
              });
  for (std::int64_t j = 0; j < on; ++j) po[j] = static_cast<T>(acc[j]);
  host_allocator::deallocate(acc, on * sizeof(Acc));
}

}  // namespace

void sum_into(const Tensor& a, Tensor& out) {
  switch (a.dtype()) {
    case DType::Float32: sum_impl<double, float>(a, out); break;
    case DType::Float64: sum_impl<double, double>(a, out); break;
    case DType::Int64: sum_impl<std::int64_t, std::int64_t>(a, out); break;
    default: throw DTypeError("sum: dtype " + std::string(dtype_name(a.dtype())) + " is not supported");
  }
}

template <typename T>
static void max_min_impl(const Tensor& a, int dim, bool is_max, Tensor& values, Tensor* indices) {
  Around r = around(a.shape(), dim);
  const T* pa = static_cast<const T*>(a.raw_data());
  T* pv = static_cast<T*>(values.raw_data());
  std::int64_t* pi = indices ? indices->data_ptr<std::int64_t>() : nullptr;
  for (std::int64_t o = 0; o < r.outer; ++o) {
    for (std::int64_t in = 0; in < r.inner; ++in) {
      const T* base = pa + o * r.n * r.inner + in;
      T best = base[0];
      std::int64_t bi = 0;
      bool nan = best != best;
      for (std::int64_t k = 1; k < r.n && !nan; ++k) {
        T v = base[k * r.inner];
        if (v != v) {
          best = v;
          bi = k;
          nan = true;
        } else if (is_max ? v > best : v < best) {
          best = v;
          bi = k;
        }
      }
      pv[o * r.inner + in] = best;
      if (pi) pi[o * r.inner + in] = bi;
    }
  }
}

void max_min_dim(const Tensor& a, int dim, bool is_max, Tensor& values, Tensor* indices) {
  switch (a.dtype()) {
    case DType::Float32: max_min_impl<float>(a, dim, is_max, values, indices); break;
    case DType::Float64: max_min_impl<double>(a, dim, is_max, values, indices); break;
    case DType::Int64: max_min_impl<std::int64_t>(a, dim, is_max, values, indices); break;
    default: throw DTypeError("max/min: dtype " + std::string(dtype_name(a.dtype())) + " is not supported");
  }
}

// Rows along the last dimension (the common case: class scores [N, C]) run with vectorised
// exp over the whole tensor; other dims take the strided per-element path.
void softmax(const Tensor& a, int dim, bool log, Tensor& out) {
  a.check_dtype(DType::Float32, log ? "log_softmax" : "softmax");
  Around r = around(a.shape(), dim);
  const float* pa = a.data_ptr<float>();
  float* po = out.data_ptr<float>();
  if (r.inner == 1) {
    const std::int64_t rows = r.outer, n = r.n, total = rows * n;
    for (std::int64_t i = 0; i < rows; ++i) {  // shift by the row max
      const float* x = pa + i * n;
      float mx = -std::numeric_limits<float>::infinity();
      for (std::int64_t k = 0; k < n; ++k) mx = std::max(mx, x[k]);
      float* y = po + i * n;
      for (std::int64_t k = 0; k < n; ++k) y[k] = x[k] - mx;
    }
    if (log) {
      thread_local std::vector<float> e;
      if (e.size() < static_cast<std::size_t>(total)) e.resize(static_cast<std::size_t>(total));
      vexp(po, e.data(), total);
      for (std::int64_t i = 0; i < rows; ++i) {
        double sum = 0.0;  // double: rows can be long (class scores of big vocabularies)
        for (std::int64_t k = 0; k < n; ++k) sum += e[static_cast<std::size_t>(i * n + k)];
        const float lse = static_cast<float>(std::log(sum));
        float* y = po + i * n;
        for (std::int64_t k = 0; k < n; ++k) y[k] -= lse;
      }
    } else {
      vexp(po, po, total);
      for (std::int64_t i = 0; i < rows; ++i) {
        float* y = po + i * n;
        double sum = 0.0;
        for (std::int64_t k = 0; k < n; ++k) sum += y[k];
        const float inv = static_cast<float>(1.0 / sum);
        for (std::int64_t k = 0; k < n; ++k) y[k] *= inv;
      }
    }
    return;
  }
  for (std::int64_t o = 0; o < r.outer; ++o) {
    for (std::int64_t in = 0; in < r.inner; ++in) {
      const float* x = pa + o * r.n * r.inner + in;
      float* y = po + o * r.n * r.inner + in;
      const std::int64_t s = r.inner;
      float mx = -std::numeric_limits<float>::infinity();
      for (std::int64_t k = 0; k < r.n; ++k) mx = std::max(mx, x[k * s]);
      if (log) {
        double sum = 0.0;
        for (std::int64_t k = 0; k < r.n; ++k) sum += std::exp(x[k * s] - mx);
        const float lse = static_cast<float>(std::log(sum));
        for (std::int64_t k = 0; k < r.n; ++k) y[k * s] = x[k * s] - mx - lse;
      } else {
        double sum = 0.0;
        for (std::int64_t k = 0; k < r.n; ++k) {
          y[k * s] = std::exp(x[k * s] - mx);
          sum += y[k * s];
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (std::int64_t k = 0; k < r.n; ++k) y[k * s] *= inv;
      }
    }
  }
}

void softmax_backward(const Tensor& grad, const Tensor& out, int dim, bool log, Tensor& grad_in) {
  Around r = around(out.shape(), dim);
  const float* pg = grad.data_ptr<float>();
  const float* py = out.data_ptr<float>();
  float* pr = grad_in.data_ptr<float>();
  if (log && r.inner == 1) {
    // grad_in = g - exp(y) * sum(g) per row, with exp(y) vectorised over the whole tensor
    const std::int64_t rows = r.outer, n = r.n;
    vexp(py, pr, rows * n);
    for (std::int64_t i = 0; i < rows; ++i) {
      const float* g = pg + i * n;
      float* gi = pr + i * n;
      double sum = 0.0;
      for (std::int64_t k = 0; k < n; ++k) sum += g[k];
      // in double: g and exp(y) * sum nearly cancel where the gradient is small
      for (std::int64_t k = 0; k < n; ++k) gi[k] = static_cast<float>(g[k] - static_cast<double>(gi[k]) * sum);
    }
    return;
  }
  for (std::int64_t o = 0; o < r.outer; ++o) {
    for (std::int64_t in = 0; in < r.inner; ++in) {
      const std::int64_t base = o * r.n * r.inner + in, s = r.inner;
      const float* g = pg + base;
      const float* y = py + base;
      float* gi = pr + base;
      if (log) {
        double sum = 0.0;
        for (std::int64_t k = 0; k < r.n; ++k) sum += g[k * s];
        for (std::int64_t k = 0; k < r.n; ++k)
          gi[k * s] = static_cast<float>(g[k * s] - static_cast<double>(std::exp(y[k * s])) * sum);
      } else {
        // g - dot in double: they nearly cancel where the gradient is small (a float dot lost
        // ~3x torch's accuracy on a 2-element row)
        double dot = 0.0;
        for (std::int64_t k = 0; k < r.n; ++k) dot += static_cast<double>(g[k * s]) * y[k * s];
        for (std::int64_t k = 0; k < r.n; ++k)
          gi[k * s] = static_cast<float>(static_cast<double>(y[k * s]) * (g[k * s] - dot));
      }
    }
  }
}

// a, out contiguous; index contiguous int64 (validated by the op).
void index_select(const Tensor& a, int dim, const Tensor& index, Tensor& out) {
  Around r = around(a.shape(), dim);
  const std::int64_t* idx = index.data_ptr<std::int64_t>();
  const std::int64_t m = index.numel();
  const std::size_t row = static_cast<std::size_t>(r.inner) * itemsize(a.dtype());
  const char* pa = static_cast<const char*>(a.raw_data());
  char* po = static_cast<char*>(out.raw_data());
  for (std::int64_t o = 0; o < r.outer; ++o)
    for (std::int64_t k = 0; k < m; ++k)
      std::memcpy(po + (o * m + k) * row, pa + (o * r.n + idx[k]) * row, row);
}

void index_add(Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  Around r = around(out.shape(), dim);
  const std::int64_t* idx = index.data_ptr<std::int64_t>();
  const std::int64_t m = index.numel();
  dispatch_all(out.dtype(), "indexing", [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      throw DTypeError("index_add: bool is not supported");
    } else {
      T* po = static_cast<T*>(out.raw_data());
      const T* ps = static_cast<const T*>(src.raw_data());
      for (std::int64_t o = 0; o < r.outer; ++o)
        for (std::int64_t k = 0; k < m; ++k) {
          T* d = po + (o * r.n + idx[k]) * r.inner;
          const T* s = ps + (o * m + k) * r.inner;
          for (std::int64_t i = 0; i < r.inner; ++i) d[i] += s[i];
        }
    }
    return 0;
  });
}

// gather / scatter_add on contiguous tensors; index has the output's shape.
void gather(const Tensor& a, int dim, const Tensor& index, Tensor& out) {
  const Shape& is = index.shape();
  Around ri = around(is, dim);
  Around ra = around(a.shape(), dim);
  const std::int64_t* idx = index.data_ptr<std::int64_t>();
  dispatch_all(a.dtype(), "indexing", [&](auto zero) {
    using T = decltype(zero);
    const T* pa = static_cast<const T*>(a.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    // a may be larger than index in non-gathered dims: index its own strides.
    const Strides as = contiguous_strides(a.shape());
    std::int64_t coord[kMaxDims] = {};
    const std::int64_t n = index.numel();
    for (std::int64_t lin = 0; lin < n; ++lin) {
      std::int64_t rem = lin, off = 0;
      for (int d = is.ndim() - 1; d >= 0; --d) {
        coord[d] = rem % is[d];
        rem /= is[d];
      }
      for (int d = 0; d < is.ndim(); ++d) off += (d == dim ? idx[lin] : coord[d]) * as[d];
      po[lin] = pa[off];
    }
    (void)ri;
    (void)ra;
    return 0;
  });
}

void scatter_add(Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  const Shape& is = index.shape();
  const std::int64_t* idx = index.data_ptr<std::int64_t>();
  dispatch_all(out.dtype(), "indexing", [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      throw DTypeError("scatter_add: bool is not supported");
    } else {
      T* po = static_cast<T*>(out.raw_data());
      const T* ps = static_cast<const T*>(src.raw_data());
      const Strides os = contiguous_strides(out.shape());
      const Strides ss = contiguous_strides(src.shape());
      std::int64_t coord[kMaxDims] = {};
      const std::int64_t n = index.numel();
      for (std::int64_t lin = 0; lin < n; ++lin) {
        std::int64_t rem = lin, off = 0, soff = 0;
        for (int d = is.ndim() - 1; d >= 0; --d) {
          coord[d] = rem % is[d];
          rem /= is[d];
        }
        for (int d = 0; d < is.ndim(); ++d) {
          off += (d == dim ? idx[lin] : coord[d]) * os[d];
          soff += coord[d] * ss[d];
        }
        po[off] += ps[soff];
      }
    }
    return 0;
  });
}

}  // namespace krill::cpu
