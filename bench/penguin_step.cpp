// Benchmark: the penguin MLP training step (batch 20, 5->10->10->3, Adam) and per-op
// overhead, krill side. Prints JSON lines; bench/run_bench.py runs this and the PyTorch
// equivalent in one go and prints ratios.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "krill/krill.hpp"
#include "krill/nn/models/mlp.hpp"
#include "krill/optim/adam.hpp"

using namespace krill;
using clk = std::chrono::steady_clock;

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::stoi(argv[1]) : 7;
  manual_seed(0);
  // --- training step ---
  nn::MLP model(5, {10, 10}, 3);
  optim::Adam opt(model.parameters(), optim::AdamOptions(1e-3));
  Tensor x = randn({20, 5});
  Tensor y = randint(0, 3, {20});
  auto step = [&] {
    opt.zero_grad();
    Tensor out = model.forward(x);
    Tensor loss = cross_entropy(out, y);
    volatile float l = loss.item<float>();
    (void)l;
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < 2000; ++i) step();
  std::vector<double> per_step;
  const int n = 20000;
  for (int r = 0; r < reps; ++r) {
    auto t0 = clk::now();
    for (int i = 0; i < n; ++i) step();
    per_step.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count() / n);
  }
  std::printf("{\"bench\": \"penguin_step\", \"impl\": \"krill\", \"us_median\": %.4f, \"us_min\": %.4f}\n",
              median(per_step), *std::min_element(per_step.begin(), per_step.end()));

  // --- per-op overhead: a + b on 1-element tensors with autograd on ---
  Tensor a = randn({1}).set_requires_grad();
  Tensor b = randn({1}).set_requires_grad();
  std::vector<double> per_op;
  const int m = 200000;
  for (int i = 0; i < 10000; ++i) { Tensor c = a + b; }
  for (int r = 0; r < reps; ++r) {
    auto t0 = clk::now();
    for (int i = 0; i < m; ++i) {
      Tensor c = a + b;
    }
    per_op.push_back(std::chrono::duration<double, std::nano>(clk::now() - t0).count() / m);
  }
  std::printf("{\"bench\": \"add_overhead\", \"impl\": \"krill\", \"ns_median\": %.2f}\n", median(per_op));
  return 0;
}
