// step() and zero_grad() allocate nothing in steady state: no operator new (counted by a global
// replacement in this file) and no krill host-allocator traffic.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <new>
#include <vector>

#include "krill/krill.hpp"
#include "krill/optim/adam.hpp"
#include "krill/optim/adamw.hpp"
#include "krill/optim/sgd.hpp"
#include "krill/tensor/allocator.hpp"

#include "support/count_new.hpp"

using namespace krill;
using namespace krill::optim;

namespace {

std::vector<Tensor> make_params() {
  // Small ones, odd sizes, and one large enough for the multi-threaded path.
  std::vector<Shape> shapes = {{10, 5}, {10}, {3, 10}, {3}, {1}, {300000}};
  std::vector<Tensor> ps;
  std::uint32_t s = 12345;
  for (const auto& sh : shapes) {
    Tensor t = empty(sh);
    float* d = t.data_ptr<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      s = s * 1664525u + 1013904223u;
      d[i] = static_cast<float>(s >> 8) / 16777216.0f - 0.5f;
    }
    ps.push_back(t.requires_grad_());
    ps.back().set_grad(zeros(sh));
  }
  return ps;
}

// Writes new gradient values into the existing gradient tensors (as backward() accumulating
// into .grad would), without allocating.
void fill_grads(std::vector<Tensor>& ps, int step) {
  for (std::size_t k = 0; k < ps.size(); ++k) {
    float* g = ps[k].grad().data_ptr<float>();
    const std::int64_t n = ps[k].numel();
    for (std::int64_t i = 0; i < n; ++i) g[i] = static_cast<float>((i * 7 + step * 13 + static_cast<std::int64_t>(k)) % 17) * 0.01f - 0.08f;
  }
}

void expect_no_alloc(Optimizer& opt, std::vector<Tensor>& ps, const char* name) {
  // Warm-up: the first step creates the state; OpenMP starts its threads.
  for (int step = 0; step < 3; ++step) {
    fill_grads(ps, step);
    opt.step();
  }
  const AllocatorStats before = host_allocator::stats();
  const std::uint64_t news_before = krill::test::heap_allocations();
  const auto t0 = std::chrono::steady_clock::now();
  constexpr int kSteps = 20;
  for (int step = 3; step < 3 + kSteps; ++step) {
    opt.zero_grad();
    fill_grads(ps, step);
    opt.step();
  }
  const auto t1 = std::chrono::steady_clock::now();
  const std::uint64_t news = krill::test::heap_allocations() - news_before;
  const AllocatorStats after = host_allocator::stats();
  EXPECT_EQ(news, 0u) << name << ": operator new called in steady-state step()/zero_grad()";
  EXPECT_EQ(after.system_allocs, before.system_allocs) << name;
  EXPECT_EQ(after.cache_hits, before.cache_hits) << name << ": step() took blocks from the caching allocator";
  std::cout << "[optim no-alloc] " << name << ": "
            << std::chrono::duration<double, std::micro>(t1 - t0).count() / kSteps
            << " us per zero_grad+fill+step over 300k parameters\n";
}

}  // namespace

TEST(OptimNoAlloc, SGD) {
  auto ps = make_params();
  SGD plain(ps, SGDOptions(0.01));
  expect_no_alloc(plain, ps, "SGD");
  auto qs = make_params();
  SGD mom(qs, SGDOptions(0.01).momentum(0.9).nesterov(true).weight_decay(1e-4));
  expect_no_alloc(mom, qs, "SGD nesterov");
}

TEST(OptimNoAlloc, Adam) {
  auto ps = make_params();
  Adam opt(ps, AdamOptions(1e-3).weight_decay(1e-4));
  expect_no_alloc(opt, ps, "Adam");
  auto qs = make_params();
  Adam ams(qs, AdamOptions(1e-3).amsgrad(true));
  expect_no_alloc(ams, qs, "Adam amsgrad");
}

TEST(OptimNoAlloc, AdamW) {
  auto ps = make_params();
  AdamW opt({{{ps[0], ps[1]}}, {{ps[2], ps[3], ps[4], ps[5]}, AdamWOptions(1e-4)}});
  expect_no_alloc(opt, ps, "AdamW");
}
