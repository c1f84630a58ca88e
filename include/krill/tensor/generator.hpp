// Seeded random numbers. The CPU generator is the same MT19937 as PyTorch's, and
// uniform_/rand draw from it the way PyTorch's CPU kernels do, so `manual_seed(s)` followed by
// the same sequence of uniform draws (e.g. nn::Linear initialisation) gives PyTorch's values.
#pragma once
#include <cstdint>
#include <random>

#include "krill/tensor/tensor.hpp"

namespace krill {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 67280421310721ULL) { manual_seed(seed); }
  void manual_seed(std::uint64_t seed);
  std::uint64_t initial_seed() const { return seed_; }
  std::uint32_t random() { return static_cast<std::uint32_t>(engine_()); }
  std::uint64_t random64() {
    std::uint64_t hi = random(), lo = random();
    return (hi << 32) | lo;
  }
  // Uniform float in [from, to) drawn like PyTorch's uniform_ for float32 (24 random bits).
  float uniform_float(float from, float to);
  // Uniform double in [0, 1) (53 random bits).
  double uniform_double();
  // Standard normal (Box-Muller, double precision).
  double normal();

 private:
  std::mt19937 engine_;
  std::uint64_t seed_ = 0;
  bool has_next_normal_ = false;
  double next_normal_ = 0.0;
};

// The process-wide default CPU generator (PyTorch's torch.manual_seed target).
Generator& default_generator();
void manual_seed(std::uint64_t seed);

// In-place fills; `gen` defaults to the default generator.
Tensor& uniform_(Tensor& t, double from = 0.0, double to = 1.0, Generator* gen = nullptr);
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
Tensor& bernoulli_(Tensor& t, double p, Generator* gen = nullptr);

Tensor rand(const Shape& shape, TensorOptions opts = {}, Generator* gen = nullptr);
Tensor randn(const Shape& shape, TensorOptions opts = {}, Generator* gen = nullptr);
// Integers in [low, high), int64 unless opts say otherwise.
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, TensorOptions opts = DType::Int64,
               Generator* gen = nullptr);
// A random permutation of 0..n-1 (int64).
Tensor randperm(std::int64_t n, Generator* gen = nullptr);

}  // namespace krill
