// A downstream program: forward and backward through krill's public API, checked by hand.
// Exits non-zero on any mismatch.
#include <krill/krill.hpp>

#include <cmath>
#include <cstdio>
#include <exception>
#include <vector>

namespace {

int failures = 0;

void expect_near(const char* what, const std::vector<float>& got, const std::vector<float>& want) {
  bool ok = got.size() == want.size();
  for (std::size_t i = 0; ok && i < got.size(); ++i)
    ok = std::fabs(got[i] - want[i]) <= 1e-5f * (1.0f + std::fabs(want[i]));
  std::printf("%s %s:", ok ? "ok  " : "FAIL", what);
  for (float v : got) std::printf(" %g", v);
  if (!ok) {
    std::printf("  (expected");
    for (float v : want) std::printf(" %g", v);
    std::printf(")");
    ++failures;
  }
  std::printf("\n");
}

}  // namespace

int main() try {
  const std::vector<float> xs = {-1.5f, 0.0f, 0.5f, 2.0f, 3.25f, -4.0f};  // 2x3
  const std::vector<float> ws = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f};  // 3x2
  const auto grad = krill::TensorOptions().requires_grad();

  // y = sum(x * x): dy/dx = 2x.
  krill::Tensor x = krill::tensor(xs, {2, 3}, grad);
  krill::Tensor y = (x * x).sum();
  y.backward();
  float sum_sq = 0;
  std::vector<float> two_x;
  for (float v : xs) sum_sq += v * v, two_x.push_back(2 * v);
  expect_near("sum(x*x)", {y.item<float>()}, {sum_sq});
  expect_near("d sum(x*x) / dx", x.grad().to_vector<float>(), two_x);

  // z = sum(relu(a @ w)): dz/dw = a^T @ m, where m is 1 where a @ w > 0 (exercises the GEMM path).
  krill::Tensor a = krill::tensor(xs, {2, 3});
  krill::Tensor w = krill::tensor(ws, {3, 2}, grad);
  krill::Tensor z = a.matmul(w).relu().sum();
  z.backward();
  float z_want = 0;
  std::vector<float> dw(6, 0.0f);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      float h = 0;
      for (int k = 0; k < 3; ++k) h += xs[i * 3 + k] * ws[k * 2 + j];
      if (h > 0) {
        z_want += h;
        for (int k = 0; k < 3; ++k) dw[k * 2 + j] += xs[i * 3 + k];
      }
    }
  expect_near("sum(relu(a@w))", {z.item<float>()}, {z_want});
  expect_near("d sum(relu(a@w)) / dw", w.grad().to_vector<float>(), dw);

  if (failures) {
    std::printf("krill_consumer: %d check(s) failed\n", failures);
    return 1;
  }
  std::printf("krill_consumer: all checks passed\n");
  return 0;
} catch (const std::exception& e) {
  std::printf("krill_consumer: exception: %s\n", e.what());
  return 2;
}
