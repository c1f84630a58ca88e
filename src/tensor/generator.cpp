// Random number generation, following PyTorch's CPU kernels draw for draw where it matters
// (uniform_, randperm, randint, normal_) so seeded krill and PyTorch programs agree.
#include "krill/tensor/generator.hpp"

#include <cmath>
#include <numbers>

#include "internal.hpp"

namespace krill {

void Generator::manual_seed(std::uint64_t seed) {
  seed_ = seed;
  engine_.seed(static_cast<std::mt19937::result_type>(seed & 0xffffffffULL));
  has_next_normal_ = false;
}

float Generator::uniform_float(float from, float to) {
  // PyTorch: uniform_real<float>(random(), from, to), accumulated in double on CPU.
  const std::uint32_t v = random();
  const double x = static_cast<double>(v & ((1u << 24) - 1)) * (1.0 / 16777216.0);
  const float diff = to - from;
  return static_cast<float>(x * static_cast<double>(diff) + static_cast<double>(from));
}

double Generator::uniform_double() {
  const std::uint64_t v = random64();
  return static_cast<double>(v & ((std::uint64_t{1} << 53) - 1)) * (1.0 / 9007199254740992.0);
}

double Generator::normal() {
  if (has_next_normal_) {
    has_next_normal_ = false;
    return next_normal_;
  }
  const double u1 = uniform_double();
  const double u2 = uniform_double();
  const double r = std::sqrt(-2.0 * std::log(1.0 - u2));
  const double theta = 2.0 * std::numbers::pi * u1;
  next_normal_ = r * std::sin(theta);
  has_next_normal_ = true;
  return r * std::cos(theta);
}

Generator& default_generator() {
  static Generator g(67280421310721ULL);
  return g;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

static Generator& pick(Generator* g) { return g ? *g : default_generator(); }

// Uniform [0, 1) draw of PyTorch's uniform_real_distribution<T>: 24 random bits for float, 53 for double.
static float uniform01(Generator& g, float*) { return g.uniform_float(0.f, 1.f); }
static double uniform01(Generator& g, double*) { return g.uniform_double(); }

template <typename T>
static void normal_fill(T* data, std::int64_t n, T mean, T std, Generator& g) {
  for (std::int64_t i = 0; i < n; ++i) data[i] = uniform01(g, static_cast<T*>(nullptr));
  auto fill16 = [&](T* d) {
    for (int j = 0; j < 8; ++j) {
      const T u1 = 1 - d[j];  // [0, 1) -> (0, 1] for log
      const T u2 = d[j + 8];
      const T radius = std::sqrt(-2 * std::log(u1));
      // float: like PyTorch's AVX2 kernel (2*pi rounded to float, product in float)
      const T theta = static_cast<T>(2.0 * std::numbers::pi) * u2;
      d[j] = radius * std::cos(theta) * std + mean;
      d[j + 8] = radius * std::sin(theta) * std + mean;
    }
  };
  for (std::int64_t i = 0; i + 16 <= n; i += 16) fill16(data + i);
  if (n % 16 != 0) {
    T* d = data + n - 16;
    for (int i = 0; i < 16; ++i) d[i] = uniform01(g, static_cast<T*>(nullptr));
    fill16(d);
  }
}

static void check_fillable(const Tensor& t, const char* op) {
  detail::check_defined(t, op, "self");
  detail::check_cpu(t, op);
  if (!t.is_contiguous())
    throw ValueError(std::string(op) + ": needs a contiguous tensor (call .contiguous() first)");
}

Tensor& uniform_(Tensor& t, double from, double to, Generator* gen) {
  check_fillable(t, "uniform_");
  if (from > to) throw ValueError("uniform_: from " + std::to_string(from) + " is greater than to " + std::to_string(to));
  Generator& g = pick(gen);
  const std::int64_t n = t.numel();
  if (t.dtype() == DType::Float32) {
    float* p = t.data_ptr<float>();
    const float f = static_cast<float>(from), e = static_cast<float>(to);
    for (std::int64_t i = 0; i < n; ++i) p[i] = g.uniform_float(f, e);
  } else if (t.dtype() == DType::Float64) {
    double* p = t.data_ptr<double>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = g.uniform_double() * (to - from) + from;
  } else {
    throw DTypeError("uniform_: needs a floating-point tensor, got " + std::string(dtype_name(t.dtype())));
  }
  t.bump_version();
  return t;
}

Tensor& normal_(Tensor& t, double mean, double std, Generator* gen) {
  check_fillable(t, "normal_");
  if (std < 0) throw ValueError("normal_: std must be non-negative, got " + std::to_string(std));
  Generator& g = pick(gen);
  const std::int64_t n = t.numel();
  if (t.dtype() != DType::Float32 && t.dtype() != DType::Float64)
    throw DTypeError("normal_: needs a floating-point tensor, got " + std::string(dtype_name(t.dtype())));
  if (n >= 16) {
    // PyTorch's normal_fill (contiguous tensors of >= 16 elements, float32 and float64): all
    // uniforms first, then Box-Muller on blocks of 16, the last block recomputed from fresh
    // uniforms when n is not a multiple of 16. (PyTorch's float32 path is the AVX2 version of
    // the same computation, so float32 values agree to float rounding.)
    if (t.dtype() == DType::Float32) normal_fill(t.data_ptr<float>(), n, static_cast<float>(mean), static_cast<float>(std), g);
    else normal_fill(t.data_ptr<double>(), n, mean, std, g);
  } else if (t.dtype() == DType::Float32) {
    // Fewer than 16: one double-precision Box-Muller sample per element (the second is cached).
    float* p = t.data_ptr<float>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(g.normal() * std + mean);
  } else {
    double* p = t.data_ptr<double>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = g.normal() * std + mean;
  }
  t.bump_version();
  return t;
}

Tensor& bernoulli_(Tensor& t, double prob, Generator* gen) {
  check_fillable(t, "bernoulli_");
  if (prob < 0 || prob > 1) throw ValueError("bernoulli_: p must be in [0, 1], got " + std::to_string(prob));
  Generator& g = pick(gen);
  const std::int64_t n = t.numel();
  if (t.dtype() == DType::Float32) {
    float* p = t.data_ptr<float>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = g.uniform_double() < prob ? 1.f : 0.f;
  } else if (t.dtype() == DType::Float64) {
    double* p = t.data_ptr<double>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = g.uniform_double() < prob ? 1.0 : 0.0;
  } else {
    throw DTypeError("bernoulli_: needs a floating-point tensor, got " + std::string(dtype_name(t.dtype())));
  }
  t.bump_version();
  return t;
}

Tensor rand(const Shape& shape, TensorOptions opts, Generator* gen) {
  Tensor t = detail::make_tensor(shape, opts.dtype_, opts.device_);
  uniform_(t, 0.0, 1.0, gen);
  if (opts.requires_grad_) t.set_requires_grad(true);
  return t;
}

Tensor randn(const Shape& shape, TensorOptions opts, Generator* gen) {
  Tensor t = detail::make_tensor(shape, opts.dtype_, opts.device_);
  normal_(t, 0.0, 1.0, gen);
  if (opts.requires_grad_) t.set_requires_grad(true);
  return t;
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, TensorOptions opts, Generator* gen) {
  if (high <= low)
    throw ValueError("randint: high (" + std::to_string(high) + ") must be greater than low (" + std::to_string(low) + ")");
  Generator& g = pick(gen);
  Tensor t = detail::make_tensor(shape, DType::Int64, opts.device_);
  std::int64_t* p = t.data_ptr<std::int64_t>();
  const auto range = static_cast<std::uint64_t>(high - low);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const std::uint64_t v = range >= (std::uint64_t{1} << 32) ? g.random64() : g.random();
    p[i] = static_cast<std::int64_t>(v % range) + low;
  }
  return opts.dtype_ == DType::Int64 ? t : t.to(opts.dtype_);
}

Tensor randperm(std::int64_t n, Generator* gen) {
  if (n < 0) throw ValueError("randperm: n must be non-negative, got " + std::to_string(n));
  Generator& g = pick(gen);
  Tensor t = detail::make_tensor({n}, DType::Int64);
  std::int64_t* p = t.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) p[i] = i;
  for (std::int64_t i = 0; i + 1 < n; ++i) {
    const std::int64_t z = static_cast<std::int64_t>(g.random() % static_cast<std::uint64_t>(n - i));
    std::swap(p[i], p[z + i]);
  }
  return t;
}

}  // namespace krill
