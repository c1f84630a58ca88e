// krill::dist benchmarks, run under mpirun by bench/run_bench.py (--only dist):
//
//   dist_bench allreduce [--mb 100] [--tensors 5] [--runs 7]      (mpirun -np 2)
//       DistributedOptimizer::step() over a synthetic model whose gradients total MB megabytes
//       in TENSORS float32 parameters (default buckets of 25 MB, overlap off, a wrapped optimizer
//       that does nothing, so step() is the fused allreduce: sum of each bucket's fusion buffer
//       and the division by the size) vs one raw MPI_Allreduce (sum, in place) of the same
//       bytes. Rounds alternate the two, each timed between barriers (the slowest rank counts).
//       Rank 0 prints one JSON line: medians, all samples, ratio = raw / fused (>= 0.9 wanted),
//       and, for reference, raw MPI_Allreduce calls of the buckets' sizes one after another.
//   dist_bench penguin [--epochs 100] [--batch 20] [--csv data/penguins_train.csv]
//       the penguin lab's training loop with the dist engine directly: every rank trains
//       nn::MLP(5,{10,10},3) with Adam(1e-3) inside a DistributedOptimizer on its
//       DistributedSampler shard (shuffle, set_epoch), BATCH rows per rank per step, EPOCHS
//       epochs; ends with check_parameters_in_sync. Without mpirun it is the 1-rank run. Rank 0
//       prints one JSON line with the loop's wall time (the slowest rank) and the final loss.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "krill/krill.hpp"

using namespace krill;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string join(const std::vector<double>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    char b[32];
    std::snprintf(b, sizeof b, "%s%.6f", i ? ", " : "", v[i]);
    s += b;
  }
  return s + "]";
}

// The slowest rank's value.
double max_over_ranks(double v) {
  if (dist::size() == 1) return v;  // no MPI outside mpirun
  double m = v;
  MPI_Allreduce(MPI_IN_PLACE, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return m;
}

// An optimizer that updates nothing: DistributedOptimizer::step() is then only the gradient
// averaging.
class NoOp : public optim::Optimizer {
 public:
  explicit NoOp(std::vector<Tensor> params) { add_group_params(std::move(params)); }
  void step() override {}
  double lr(std::size_t) const override { return 0; }
  void set_lr(std::size_t, double) override {}
  std::string_view name() const override { return "noop"; }

 protected:
  void save_param_states(StateDict&) const override {}
  void save_group_options(std::size_t, StateDict&, const std::string&) const override {}
  void load_state_impl(StateReader&) override {}
  void init_param_state(std::size_t, std::size_t) override {}
};

struct Big : nn::Module {
  std::vector<Tensor> ps;
  Big(std::int64_t numel_each, int count) {
    for (int i = 0; i < count; ++i) {
      std::string name = "p";
      name += std::to_string(i);
      ps.push_back(register_parameter(name, full({numel_each}, 0.5)));
    }
  }
};

const char* arg(int argc, char** argv, const char* name, const char* def) {
  for (int i = 2; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return def;
}

int bench_allreduce(int argc, char** argv) {
  const int r = dist::rank(), n = dist::size();
  const double mb = std::atof(arg(argc, argv, "--mb", "100"));
  const int count = std::atoi(arg(argc, argv, "--tensors", "5"));
  const int runs = std::atoi(arg(argc, argv, "--runs", "7"));
  const std::int64_t each = static_cast<std::int64_t>(mb * 1e6 / 4 / count);
  const std::int64_t bytes = each * count * 4;

  Big model(each, count);
  dist::DistributedOptions o;
  o.overlap = false;
  dist::DistributedOptimizer opt(std::make_unique<NoOp>(model.parameters()), model, o);
  // Before each fused step an untimed backward gives every parameter its gradient (after the
  // first step a view into its bucket's fusion buffer, so backward accumulates straight into it).
  auto backward = [&] {
    Tensor loss = model.ps[0].sum();
    for (int i = 1; i < count; ++i) loss = loss + model.ps[static_cast<std::size_t>(i)].sum();
    loss.backward();
  };
  std::vector<float> raw(static_cast<std::size_t>(each * count), 1.0f + static_cast<float>(r));

  // Also (for the record, not the ratio) raw MPI_Allreduce calls of the buckets' sizes in turn.
  std::vector<std::int64_t> chunks;
  for (const auto& b : opt.buckets()) chunks.push_back(b.bytes / 4);

  std::vector<double> fused_s, raw_s, chunked_s;
  for (int round = -1; round < runs; ++round) {  // round -1: warm-up
    for (int k = 0; k < 3; ++k) {
      const int which = (round + 1 + k) % 3;  // rotate which goes first
      if (which == 0) backward();
      dist::barrier();
      const double t0 = now_s();
      if (which == 0) {
        opt.step();
      } else if (which == 1) {
        MPI_Allreduce(MPI_IN_PLACE, raw.data(), static_cast<int>(raw.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      } else {
        float* p = raw.data();
        for (std::int64_t c : chunks) {
          const std::int64_t len = std::min<std::int64_t>(c, static_cast<std::int64_t>(raw.data() + raw.size() - p));
          MPI_Allreduce(MPI_IN_PLACE, p, static_cast<int>(len), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
          p += len;
        }
      }
      const double dt = max_over_ranks(now_s() - t0);
      if (round >= 0) (which == 0 ? fused_s : which == 1 ? raw_s : chunked_s).push_back(dt);
    }
  }
  if (r == 0) {
    const auto buckets = opt.buckets();
    const double f = median(fused_s), w = median(raw_s);
    std::printf("{\"bench\": \"dist_allreduce\", \"ranks\": %d, \"bytes\": %lld, \"tensors\": %d, \"buckets\": %zu, "
                "\"fused_s\": %.6f, \"raw_s\": %.6f, \"ratio\": %.4f, \"raw_bucket_sized_s\": %.6f, \"fused_samples\": %s, "
                "\"raw_samples\": %s, \"raw_bucket_sized_samples\": %s}\n",
                n, static_cast<long long>(bytes), count, buckets.size(), f, w, w / f, median(chunked_s),
                join(fused_s).c_str(), join(raw_s).c_str(), join(chunked_s).c_str());
  }
  return 0;
}

int bench_penguin(int argc, char** argv) {
  const int r = dist::rank(), n = dist::size();
  const int epochs = std::atoi(arg(argc, argv, "--epochs", "100"));
  const std::int64_t batch = std::atoll(arg(argc, argv, "--batch", "20"));
  const std::string csv = arg(argc, argv, "--csv", KRILL_SOURCE_DIR "/data/penguins_train.csv");
  auto table = data::read_csv(csv);
  auto m = data::numeric_matrix(table, {"Island", "CulmenLength", "CulmenDepth", "FlipperScaled", "MassScaled"}, "Species");
  const Tensor x = m.features.contiguous(), y = m.labels.contiguous();
  const std::int64_t rows = x.size(0);

  dist::barrier();
  const double t0 = now_s();
  manual_seed(0);
  nn::MLP model(5, {10, 10}, 3);
  dist::broadcast_parameters(model, 0);
  dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters(), optim::AdamOptions(1e-3)), model);
  dist::DistributedSampler sampler(rows, n, r, /*shuffle=*/true, /*seed=*/0);
  float last = 0;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    sampler.set_epoch(epoch);
    const Tensor order = sampler.indices();
    const std::int64_t local = order.size(0);
    for (std::int64_t s = 0; s < local; s += batch) {
      const Tensor idx = order.narrow(0, s, std::min(batch, local - s));
      opt.zero_grad();
      Tensor loss = cross_entropy(model.forward(x.index_select(0, idx)), y.index_select(0, idx));
      last = loss.item<float>();
      loss.backward();
      opt.step();
    }
  }
  dist::check_parameters_in_sync(model);
  const double dt = max_over_ranks(now_s() - t0);
  if (r == 0)
    std::printf("{\"bench\": \"dist_penguin\", \"ranks\": %d, \"rows\": %lld, \"epochs\": %d, \"batch_per_rank\": %lld, "
                "\"loop_s\": %.6f, \"last_loss\": %.6f}\n",
                n, static_cast<long long>(rows), epochs, static_cast<long long>(batch), dt, last);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: [mpirun -np N] %s allreduce|penguin [options]   (see dist_bench.cpp)\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  dist::init(&argc, &argv);
  int status = 2;
  try {
    if (mode == "allreduce") {
      if (dist::size() < 2) {
        std::fprintf(stderr, "dist_bench allreduce: run it under mpirun -np 2 (or more)\n");
        return 2;
      }
      status = bench_allreduce(argc, argv);
    } else if (mode == "penguin") {
      status = bench_penguin(argc, argv);
    } else {
      std::fprintf(stderr, "dist_bench: unknown mode %s\n", mode.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", dist::rank(), e.what());
    if (dist::size() > 1) dist::world().abort(e.what(), 1);
    return 1;
  }
  dist::finalize();
  return status;
}
