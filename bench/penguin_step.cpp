// krill side of the in-process benchmarks (bench/README.md). Each has a PyTorch twin in
// bench/torch_side.py that does exactly the same work:
//
//   penguin_step  the lab's training step: MLP 5->10->10->3 (ReLU, ReLU, log_softmax), batch 20
//                 (the first 20 rows of data/penguins_train.csv), cross_entropy on the
//                 log_softmax output, Adam(1e-3): zero_grad + forward + loss + item() +
//                 backward + step
//   add           c = a + b on 1-element float tensors with requires_grad (graph recorded)
//   gemm_tiny     matmul [20,5] x [5,10] (no grad)
//   gemm_256      matmul [256,256] x [256,256] (no grad)
//
// Usage:
//   bench_penguin_step [--reps N] [--threads T] [--data DIR]
//                                               standalone: N timed blocks per benchmark, one JSON
//                                               line each (medians); T OpenMP threads (default 1,
//                                               like torch_side.py; 0 = krill's default)
//   bench_penguin_step --serve [--data DIR]     for bench/run_bench.py: reads commands on stdin,
//                                               answers one JSON line per command:
//       calibrate <bench> <seconds>  warm up, then pick the iteration count of a ~<seconds> block
//       run <bench> <iters>          one timed block of <iters> iterations
//       threads <n>                  omp_set_num_threads(n) (OpenMP runs krill's BLAS and oneDNN too)
//       quit
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <omp.h>

#include "krill/krill.hpp"

#ifndef KRILL_SOURCE_DIR
#define KRILL_SOURCE_DIR "."
#endif

using namespace krill;
using clk = std::chrono::steady_clock;

namespace {

// Keeps the optimiser from discarding a result.
template <typename T> void keep(const T& v) { asm volatile("" : : "g"(&v) : "memory"); }

// The first `rows` rows of the lab's numeric training CSV (header; 5 features then Species).
void read_penguin_batch(const std::string& path, int rows, std::vector<float>& x, std::vector<std::int64_t>& y) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::string line;
  std::getline(in, line);  // header
  while (static_cast<int>(y.size()) < rows && std::getline(in, line)) {
    std::stringstream ss(line);
    std::string field;
    for (int c = 0; c < 5; ++c) {
      std::getline(ss, field, ',');
      x.push_back(std::stof(field));
    }
    std::getline(ss, field, ',');
    y.push_back(std::stoll(field));
  }
  if (static_cast<int>(y.size()) != rows) throw std::runtime_error(path + ": fewer than " + std::to_string(rows) + " rows");
}

// One benchmark: `run(n)` does n iterations of the workload.
struct Bench {
  std::function<void(std::int64_t)> run;
  std::function<std::string()> check;  // a value printed with the result (sanity, not timed)
};

struct PenguinStep {
  nn::MLP model{5, {10, 10}, 3};
  optim::Adam opt{model.parameters(), optim::AdamOptions(1e-3)};
  Tensor x, y;
  float last_loss = 0;
  explicit PenguinStep(const std::string& data_dir) {
    std::vector<float> xv;
    std::vector<std::int64_t> yv;
    read_penguin_batch(data_dir + "/penguins_train.csv", 20, xv, yv);
    x = tensor(xv, {20, 5});
    y = tensor(yv, {20});
  }
  void step() {
    opt.zero_grad();
    Tensor out = model.forward(x);
    Tensor loss = cross_entropy(out, y);
    last_loss = loss.item<float>();
    loss.backward();
    opt.step();
  }
};

std::map<std::string, Bench> make_benches(const std::string& data_dir) {
  std::map<std::string, Bench> b;
  manual_seed(0);
  auto ps = std::make_shared<PenguinStep>(data_dir);
  b["penguin_step"] = {[ps](std::int64_t n) {
                         for (std::int64_t i = 0; i < n; ++i) ps->step();
                       },
                       [ps] { char s[32]; std::snprintf(s, sizeof s, "%.6g", ps->last_loss); return std::string(s); }};

  auto a = std::make_shared<Tensor>(randn({1}).set_requires_grad());
  auto bb = std::make_shared<Tensor>(randn({1}).set_requires_grad());
  b["add"] = {[a, bb](std::int64_t n) {
                for (std::int64_t i = 0; i < n; ++i) {
                  Tensor c = *a + *bb;
                  keep(c);
                }
              },
              [a, bb] { Tensor c = *a + *bb; return std::string(c.grad_fn() ? "graph" : "no-graph"); }};

  for (auto [name, m, k, n] : {std::tuple<const char*, int, int, int>{"gemm_tiny", 20, 5, 10},
                               std::tuple<const char*, int, int, int>{"gemm_256", 256, 256, 256}}) {
    auto A = std::make_shared<Tensor>(randn({m, k}));
    auto B = std::make_shared<Tensor>(randn({k, n}));
    b[name] = {[A, B](std::int64_t iters) {
                 for (std::int64_t i = 0; i < iters; ++i) {
                   Tensor c = matmul(*A, *B);
                   keep(c);
                 }
               },
               [A, B] { return std::to_string(sum(matmul(*A, *B)).item<float>()); }};
  }
  return b;
}

double time_ns(const Bench& b, std::int64_t n) {
  auto t0 = clk::now();
  b.run(n);
  return std::chrono::duration<double, std::nano>(clk::now() - t0).count();
}

// Warm up (at least 0.1 s and 200 iterations), then the iteration count of a `seconds` block.
std::int64_t calibrate(const Bench& b, double seconds) {
  std::int64_t n = 1;
  double t = 0, warm = 0;
  std::int64_t warm_iters = 0;
  while (warm < 0.1e9 || warm_iters < 200) {
    t = time_ns(b, n);
    warm += t;
    warm_iters += n;
    if (t < 0.02e9) n *= 2;
  }
  t = time_ns(b, n);
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(seconds * 1e9 / (t / n)));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

int serve(std::map<std::string, Bench>& benches) {
  std::printf("{\"ready\": true, \"impl\": \"krill\", \"version\": \"%s\", \"omp_max_threads\": %d}\n", version(),
              omp_get_max_threads());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, name;
    in >> cmd;
    if (cmd == "quit" || cmd.empty()) break;
    if (cmd == "threads") {
      int n = 1;
      in >> n;
      omp_set_num_threads(n);
      std::printf("{\"threads\": %d}\n", omp_get_max_threads());
      std::fflush(stdout);
      continue;
    }
    in >> name;
    auto it = benches.find(name);
    if (it == benches.end()) {
      std::printf("{\"error\": \"unknown benchmark '%s'\"}\n", name.c_str());
    } else if (cmd == "calibrate") {
      double seconds = 0.2;
      in >> seconds;
      std::printf("{\"bench\": \"%s\", \"iters\": %lld}\n", name.c_str(),
                  static_cast<long long>(calibrate(it->second, seconds)));
    } else if (cmd == "run") {
      long long iters = 1;
      in >> iters;
      double ns = time_ns(it->second, iters);
      std::printf("{\"bench\": \"%s\", \"iters\": %lld, \"ns_total\": %.0f, \"ns_per_iter\": %.3f, \"check\": \"%s\"}\n",
                  name.c_str(), iters, ns, ns / iters, it->second.check().c_str());
    } else {
      std::printf("{\"error\": \"unknown command '%s'\"}\n", cmd.c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 7;
  int threads = 1;
  bool serve_mode = false;
  std::string data_dir = std::string(KRILL_SOURCE_DIR) + "/data";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--serve") serve_mode = true;
    else if (a == "--reps" && i + 1 < argc) reps = std::stoi(argv[++i]);
    else if (a == "--data" && i + 1 < argc) data_dir = argv[++i];
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_penguin_step [--reps N] [--threads T] [--data DIR] [--serve]\n");
      return 2;
    }
  }
  if (threads > 0 && !serve_mode) omp_set_num_threads(threads);
  try {
    auto benches = make_benches(data_dir);
    if (serve_mode) return serve(benches);
    for (const char* name : {"penguin_step", "add", "gemm_tiny", "gemm_256"}) {
      const Bench& b = benches.at(name);
      std::int64_t n = calibrate(b, 0.2);
      std::vector<double> per;
      for (int r = 0; r < reps; ++r) per.push_back(time_ns(b, n) / n);
      std::printf("{\"bench\": \"%s\", \"impl\": \"krill\", \"ns_median\": %.3f, \"ns_min\": %.3f, \"iters\": %lld, "
                  "\"reps\": %d, \"check\": \"%s\"}\n",
                  name, median(per), *std::min_element(per.begin(), per.end()), static_cast<long long>(n), reps,
                  b.check().c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_penguin_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
