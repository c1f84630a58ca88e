// Products above the small-product loop run on cached oneDNN matmul primitives
// (src/tensor/cpu/matmul.cpp); once the cache holds its limit of distinct shapes, new shapes
// go to OpenBLAS. Both paths against a float64 loop over the same inputs (the ggml-style
// backend-vs-reference check); PyTorch's values for these sizes are in the ops oracle.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "../../src/tensor/cpu/onednn.hpp"
#include "krill/krill.hpp"

using namespace krill;

namespace {

// max |got - want| / max |want|
double normwise_error(const Tensor& got, const Tensor& want) {
  Tensor g = got.contiguous().to(DType::Float64), w = want.contiguous().to(DType::Float64);
  const double* pg = g.data_ptr<double>();
  const double* pw = w.data_ptr<double>();
  double err = 0, mag = 0;
  for (std::int64_t i = 0; i < g.numel(); ++i) {
    err = std::max(err, std::abs(pg[i] - pw[i]));
    mag = std::max(mag, std::abs(pw[i]));
  }
  return err / mag;
}

// a [m, k] @ b [k, n] (+ bias) in float64, by the definition
Tensor reference_mm(const Tensor& a, const Tensor& b, const Tensor& bias = Tensor()) {
  Tensor ad = a.contiguous().to(DType::Float64), bd = b.contiguous().to(DType::Float64);
  const std::int64_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  Tensor out = zeros({m, n}, DType::Float64);
  const double* pa = ad.data_ptr<double>();
  const double* pb = bd.data_ptr<double>();
  double* po = out.data_ptr<double>();
  Tensor biasd = bias.defined() ? bias.to(DType::Float64) : Tensor();
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double s = biasd.defined() ? biasd.data_ptr<double>()[j] : 0.0;
      for (std::int64_t p = 0; p < k; ++p) s += pa[i * k + p] * pb[p * n + j];
      po[i * n + j] = s;
    }
  return out;
}

}  // namespace

TEST(MatmulPaths, EveryTranspositionAndAccumulationMatchesFloat64) {
  manual_seed(3);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      // a [m, k] and b [k, n] as transposed views when asked: the GEMM reads them in place
      const std::int64_t m = 70, k = 96, n = 83;
      Tensor a = ta ? randn({k, m}).t() : randn({m, k});
      Tensor b = tb ? randn({n, k}).t() : randn({k, n});
      EXPECT_LT(normwise_error(mm(a, b), reference_mm(a, b)), 1e-5) << "ta " << ta << " tb " << tb;
    }
  // linear with a bias: the product accumulates into the broadcast bias (beta = 1)
  Tensor x = randn({64, 400}), w = randn({120, 400}), bias = randn({120});
  EXPECT_LT(normwise_error(linear(x, w, bias), reference_mm(x, w.t(), bias)), 1e-5);
}

TEST(MatmulPaths, ShapesPastTheCacheLimitFallBackToBlas) {
  manual_seed(4);
  const std::size_t before = cpu::onednn::primitive_count();
  const int shapes = 600;  // more than the cache's 512 matmul shapes
  Tensor b = randn({80, 64});
  double worst = 0;
  for (int i = 0; i < shapes; ++i) {
    Tensor a = randn({64 + i, 80});
    if (i % 50 == 0 || i == shapes - 1) worst = std::max(worst, normwise_error(mm(a, b), reference_mm(a, b)));
    else mm(a, b);
  }
  const std::size_t created = cpu::onednn::primitive_count() - before;
  EXPECT_LT(worst, 1e-5);
  EXPECT_LE(created, 512u) << "the matmul cache grew past its limit";
  EXPECT_GT(created, 100u) << "products of these sizes should run on oneDNN's matmul";
}
