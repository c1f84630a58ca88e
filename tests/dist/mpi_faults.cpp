// krill::dist faults and the 2-host network test, under a real MPI launcher. tests/dist_faults.cmake
// runs this program through tests/dist/faults_run.sh (every job bounded by a timeout: a hang
// fails), tests/dist_netns.cmake through tests/dist/netns_2host.sh. One mode per run:
//
//   train FAULT RANK STEP [PIDDIR]
//       every rank trains an MLP with a DistributedOptimizer (many small buckets, so the
//       communication thread allreduces while backward runs) for at most 60 s; rank RANK, at
//       step STEP, does FAULT while the others go on into the next step's allreduces:
//         abort     std::abort() (SIGABRT)
//         segv      a write through a null pointer (SIGSEGV)
//         sigkill   raise(SIGKILL)
//         external  nothing: every rank writes PIDDIR/rank<r>.pid after step STEP and goes on;
//                   the test kills RANK's process with SIGKILL from outside
//         throw     throws a DistributedError; main() reports it and exits 3 without finalize()
//                   (what dist.hpp tells programs to do after one)
//         stall     sleeps for 10 minutes: stops participating (the stall inspector's case)
//       If the fault never ends the job, rank 0 prints "no fault ended the job" and all exit 0.
//   netcheck MB
//       allreduces an MB-megabyte float32 tensor (sum and average, rank-dependent values,
//       checked exactly), then a few DistributedOptimizer steps (in sync at the end); prints
//       "rank <r>: OK netcheck <bytes> bytes" with the bytes allreduced.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "krill/krill.hpp"

using namespace krill;

namespace {

[[noreturn]] void do_fault(const std::string& fault, int r) {
  std::fprintf(stderr, "rank %d: fault '%s' now (pid %d)\n", r, fault.c_str(), static_cast<int>(getpid()));
  std::fflush(stderr);
  if (fault == "abort") std::abort();
  if (fault == "segv") {
    volatile int* p = nullptr;
    *p = 1;
  }
  if (fault == "sigkill") raise(SIGKILL);
  if (fault == "throw")
    throw dist::DistributedError("rank " + std::to_string(r) + ": a simulated check failure in the middle of training");
  if (fault == "stall") {
    std::this_thread::sleep_for(std::chrono::minutes(10));
    std::_Exit(0);
  }
  std::fprintf(stderr, "mpi_faults: unknown fault %s\n", fault.c_str());
  std::_Exit(2);
}

int train(const std::string& fault, int fault_rank, int fault_step, const std::string& piddir) {
  const int r = dist::rank();
  manual_seed(1);
  nn::MLP model(5, {64, 64}, 3);
  dist::broadcast_parameters(model, 0);
  dist::DistributedOptions o;
  o.bucket_bytes = 1024;  // several buckets: the communication thread allreduces during backward
  dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters(), optim::AdamOptions(1e-3)), model, o);
  Generator g(10 + r);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (int step = 0; std::chrono::steady_clock::now() < deadline; ++step) {
    if (step == fault_step) {
      if (fault == "external") {
        const std::string file = piddir + "/rank" + std::to_string(r) + ".pid";
        std::ofstream(file + ".tmp") << getpid() << "\n";
        std::rename((file + ".tmp").c_str(), file.c_str());
        if (r == 0) std::fprintf(stderr, "rank 0: pid files written at step %d\n", step);
      } else if (r == fault_rank) {
        do_fault(fault, r);
      }
    }
    Tensor x = rand({32, 5}, {}, &g);
    Tensor y = randint(0, 3, {32}, DType::Int64, &g);
    opt.zero_grad();
    cross_entropy(model.forward(x), y).backward();
    opt.step();
  }
  if (r == 0) std::printf("rank 0: no fault ended the job\n");
  return 0;
}

int netcheck(double mb) {
  const int r = dist::rank(), n = dist::size();
  const std::int64_t numel = static_cast<std::int64_t>(mb * 1024 * 1024 / 4);
  int failures = 0;
  Tensor t = full({numel}, static_cast<float>(r + 1));
  dist::allreduce(t, dist::ReduceOp::Sum);
  const float want = static_cast<float>(n * (n + 1) / 2);
  const std::vector<float> v = t.to_vector<float>();
  for (std::int64_t i = 0; i < numel; ++i)
    if (v[static_cast<std::size_t>(i)] != want) {
      std::fprintf(stderr, "rank %d: FAILED element %lld is %g, want %g\n", r, static_cast<long long>(i), v[i], want);
      ++failures;
      break;
    }
  Tensor a = full({numel}, static_cast<float>(2 * r));
  dist::allreduce(a, dist::ReduceOp::Average);
  if (a.to_vector<float>()[0] != static_cast<float>(n - 1)) {
    std::fprintf(stderr, "rank %d: FAILED average\n", r);
    ++failures;
  }
  // A few steps of data-parallel training across the hosts.
  manual_seed(1000 + r);
  nn::MLP model(5, {10, 10}, 3);
  dist::broadcast_parameters(model, 0);
  dist::DistributedOptions o;
  o.bucket_bytes = 64;
  {
    dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters()), model, o);
    Generator g(3 + r);
    for (int step = 0; step < 10; ++step) {
      Tensor x = rand({8, 5}, {}, &g);
      Tensor y = randint(0, 3, {8}, DType::Int64, &g);
      opt.zero_grad();
      cross_entropy(model.forward(x), y).backward();
      opt.step();
    }
  }
  dist::check_parameters_in_sync(model);
  Tensor f = tensor(std::vector<std::int64_t>{failures});
  dist::allreduce(f, dist::ReduceOp::Sum);
  if (f.item<std::int64_t>() != 0) return 1;
  std::printf("rank %d: OK netcheck %lld bytes (%d ranks, %d local)\n", r, static_cast<long long>(2 * numel * 4), n,
              dist::local_size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: mpirun -np N %s MODE [ARGS]   (see the top of mpi_faults.cpp)\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  dist::init(&argc, &argv);
  const int r = dist::rank();
  int status = 0;
  try {
    if (mode == "train" && argc >= 5) {
      status = train(argv[2], std::atoi(argv[3]), std::atoi(argv[4]), argc >= 6 ? argv[5] : ".");
    } else if (mode == "netcheck" && argc >= 3) {
      status = netcheck(std::atof(argv[2]));
    } else {
      std::fprintf(stderr, "mpi_faults: unknown mode or missing argument: %s\n", mode.c_str());
      dist::world().abort("mpi_faults: bad usage", 2);
    }
  } catch (const dist::DistributedError& e) {
    // As dist.hpp says: report, then end with a non-zero status without finalize(); the
    // launcher ends the other ranks.
    std::fprintf(stderr, "rank %d: DistributedError: %s\n", r, e.what());
    return 3;
  } catch (const std::exception& e) {
    dist::world().abort("rank " + std::to_string(r) + ": unexpected error: " + e.what(), 2);
  }
  if (status != 0) return status;
  dist::finalize();
  return 0;
}
