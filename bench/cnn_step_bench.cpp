// krill side of the per-step image-classification benchmarks (bench/README.md, "Image
// classification"); bench/torch_cnn.py does exactly the same work in PyTorch. Every workload is one
// SGD training step through the public API: zero_grad + forward + cross_entropy (log_softmax +
// nll_loss on the logits, as src/train/trainer.cpp computes the loss) + item() + backward + step,
// on random data, with the model from nn::make_model (the `krill train --model` registry):
//
//   lenet_b4      LeNet, the PyTorch CIFAR-10 tutorial net (3x32x32, 10 classes), batch 4,
//                 SGD(lr 0.001, momentum 0.9); cycles through 32 random batches (randn images,
//                 randint labels), like shared/bench/peers/lenet_pytorch.py
//   resnet50_b8   torchvision's ResNet-50 (1000 classes) at 3x224x224, batch 8, SGD(0.01, 0.9),
//                 one fixed random batch (shared/bench/peers/resnet_pytorch.py)
//   resnet18_b32  torchvision's ResNet-18 (10 classes) at 3x32x32, batch 32, SGD(0.01, 0.9), one
//                 fixed random batch
//
// Models are built (manual_seed(0) first) when a workload is first used, so a worker that only
// times LeNet never allocates ResNet-50. krill's default threads (OpenMP: all cores) unless
// --threads or the `threads` command says otherwise.
//
// Usage:
//   bench_cnn_step [--reps N] [--threads T] [--only a,b]
//                       standalone: N timed blocks of ~1 s per workload (default 5), one JSON line
//                       each (median and minimum time per step)
//   bench_cnn_step --serve    for bench/image_bench.py: reads commands on stdin, answers one JSON
//                             line per command:
//       calibrate <name> <seconds>  build and warm up the workload, then pick the step count of a
//                                   ~<seconds> block (at least 1)
//       run <name> <steps> [max_s]  one timed block of <steps> steps, cut short after max_s seconds
//                                   (a machine that got busy); answers the steps it did
//       threads <n>                 omp_set_num_threads(n) (OpenMP runs krill's BLAS and oneDNN too)
//       quit
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <omp.h>

#include "krill/krill.hpp"

using namespace krill;
using clk = std::chrono::steady_clock;

namespace {

struct Spec {
  const char* model;
  std::int64_t classes, px, batch;
  double lr;
  int pool;          // distinct random batches cycled through
  int warmup_steps;  // at least this many untimed steps before calibrating (and >= 0.2 s)
};

const std::map<std::string, Spec>& specs() {
  static const std::map<std::string, Spec> s = {
      {"lenet_b4", {"lenet", 10, 32, 4, 0.001, 32, 20}},
      {"resnet50_b8", {"resnet50", 1000, 224, 8, 0.01, 1, 3}},
      {"resnet18_b32", {"resnet18", 10, 32, 32, 0.01, 1, 3}},
  };
  return s;
}
const char* kOrder[] = {"lenet_b4", "resnet18_b32", "resnet50_b8"};

struct Workload {
  Spec spec;
  std::shared_ptr<nn::Module> model;
  std::unique_ptr<optim::SGD> opt;
  std::vector<Tensor> xs, ys;
  std::int64_t i = 0;
  float last_loss = 0;

  explicit Workload(const Spec& s) : spec(s) {
    manual_seed(0);
    model = nn::make_model(s.model, 3, s.px, s.px, s.classes);
    model->train();
    opt = std::make_unique<optim::SGD>(model->parameters(), optim::SGDOptions(s.lr).momentum(0.9));
    for (int k = 0; k < s.pool; ++k) {
      xs.push_back(randn({s.batch, 3, s.px, s.px}));
      ys.push_back(randint(0, s.classes, {s.batch}));
    }
  }
  void step() {
    const std::size_t k = static_cast<std::size_t>(i++ % spec.pool);
    opt->zero_grad();
    Tensor loss = cross_entropy(model->forward(xs[k]), ys[k]);
    last_loss = loss.item<float>();
    loss.backward();
    opt->step();
  }
  double time_ns(std::int64_t n) {
    auto t0 = clk::now();
    for (std::int64_t k = 0; k < n; ++k) step();
    return std::chrono::duration<double, std::nano>(clk::now() - t0).count();
  }
  // Up to n steps, stopping once max_ns have passed; returns {steps done, ns}.
  std::pair<std::int64_t, double> time_ns_capped(std::int64_t n, double max_ns) {
    auto t0 = clk::now();
    double ns = 0;
    std::int64_t k = 0;
    while (k < n) {
      step();
      ++k;
      ns = std::chrono::duration<double, std::nano>(clk::now() - t0).count();
      if (ns > max_ns) break;
    }
    return {k, ns};
  }
  // Warm up (at least spec.warmup_steps steps and 0.2 s), then the step count of a `seconds` block
  // from the median of the last three warm-up steps (so one slow step does not halve the block).
  std::int64_t calibrate(double seconds) {
    double warm = 0;
    std::vector<double> t;
    while (static_cast<int>(t.size()) < std::max(3, spec.warmup_steps) || warm < 0.2e9) {
      t.push_back(time_ns(1));
      warm += t.back();
    }
    std::vector<double> last(t.end() - 3, t.end());
    std::sort(last.begin(), last.end());
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(seconds * 1e9 / last[1] + 0.5));
  }
};

std::map<std::string, std::unique_ptr<Workload>> g_workloads;

Workload* get(const std::string& name) {
  auto it = g_workloads.find(name);
  if (it != g_workloads.end()) return it->second.get();
  auto s = specs().find(name);
  if (s == specs().end()) return nullptr;
  return (g_workloads[name] = std::make_unique<Workload>(s->second)).get();
}

int serve() {
  std::printf("{\"ready\": true, \"impl\": \"krill\", \"version\": \"%s\", \"omp_max_threads\": %d}\n", version(),
              omp_get_max_threads());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, name;
    in >> cmd;
    if (cmd == "quit" || cmd.empty()) break;
    try {
      if (cmd == "threads") {
        int n = 0;
        in >> n;
        if (n > 0) omp_set_num_threads(n);
        std::printf("{\"threads\": %d}\n", omp_get_max_threads());
        std::fflush(stdout);
        continue;
      }
      in >> name;
      Workload* w = get(name);
      if (!w) {
        std::printf("{\"error\": \"unknown benchmark '%s'\"}\n", name.c_str());
      } else if (cmd == "calibrate") {
        double seconds = 1.0;
        in >> seconds;
        std::printf("{\"bench\": \"%s\", \"iters\": %lld}\n", name.c_str(),
                    static_cast<long long>(w->calibrate(seconds)));
      } else if (cmd == "run") {
        long long iters = 1;
        double max_s = 0;
        in >> iters;
        if (!(in >> max_s) || max_s <= 0) max_s = 1e9;
        const auto [done, ns] = w->time_ns_capped(iters, max_s * 1e9);
        iters = done;
        std::printf("{\"bench\": \"%s\", \"iters\": %lld, \"ns_total\": %.0f, \"ns_per_iter\": %.1f, \"check\": "
                    "\"%.6g\"}\n",
                    name.c_str(), iters, ns, ns / iters, w->last_loss);
      } else {
        std::printf("{\"error\": \"unknown command '%s'\"}\n", cmd.c_str());
      }
    } catch (const std::exception& e) {
      std::string msg = e.what();
      for (char& c : msg)
        if (c == '"' || c == '\\' || c == '\n') c = ' ';
      std::printf("{\"error\": \"%s\"}\n", msg.c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  int threads = 0;
  bool serve_mode = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--serve") serve_mode = true;
    else if (a == "--reps" && i + 1 < argc) reps = std::stoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--only" && i + 1 < argc) only = std::string(",") + argv[++i] + ",";
    else {
      std::fprintf(stderr, "usage: bench_cnn_step [--reps N] [--threads T] [--only lenet_b4,resnet18_b32,resnet50_b8] "
                           "[--serve]\n");
      return 2;
    }
  }
  if (threads > 0) omp_set_num_threads(threads);
  try {
    if (serve_mode) return serve();
    for (const char* name : kOrder) {
      if (!only.empty() && only.find(std::string(",") + name + ",") == std::string::npos) continue;
      Workload* w = get(name);
      const std::int64_t n = w->calibrate(1.0);
      std::vector<double> per;
      for (int r = 0; r < reps; ++r) per.push_back(w->time_ns(n) / n);
      std::sort(per.begin(), per.end());
      const double med = per.size() % 2 ? per[per.size() / 2] : 0.5 * (per[per.size() / 2 - 1] + per[per.size() / 2]);
      std::printf("{\"bench\": \"%s\", \"impl\": \"krill\", \"threads\": %d, \"ms_per_step_median\": %.3f, "
                  "\"ms_per_step_min\": %.3f, \"steps_per_s\": %.1f, \"images_per_s\": %.1f, \"steps_per_block\": "
                  "%lld, \"reps\": %d, \"check\": \"%.6g\"}\n",
                  name, omp_get_max_threads(), med / 1e6, per.front() / 1e6, 1e9 / med, 1e9 / med * w->spec.batch,
                  static_cast<long long>(n), reps, w->last_loss);
      std::fflush(stdout);
      g_workloads.erase(name);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cnn_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
