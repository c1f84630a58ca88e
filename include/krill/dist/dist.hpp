// Distributed data-parallel training (Horovod's names): a process group over MPI for CPU
// tensors (NCCL for GPU tensors plugs in as a second ProcessGroup), collectives on tensors,
// start-up broadcasts, a DistributedSampler with PyTorch's semantics, and a
// DistributedOptimizer that averages gradients in fused buckets allreduced on a communication
// thread while the backward pass is still running.
//
//   dist::init(&argc, &argv);                 // a no-op world of 1 outside mpirun
//   dist::broadcast_parameters(*model, 0);
//   dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(...), *model);
//   dist::broadcast_optimizer_state(opt, 0);
//   ... loss.backward(); opt.step(); ...
//   dist::finalize();
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "krill/nn/module.hpp"
#include "krill/optim/optimizer.hpp"
#include "krill/tensor/tensor.hpp"

namespace krill::dist {

// Raised when ranks disagree (model structure, shapes, dataset size), when a peer fails, or
// when MPI reports an error. The message names the rank(s) involved.
struct DistributedError : Error {
  using Error::Error;
};

enum class ReduceOp { Sum, Average, Max, Min };

// ---- the process group (transport) ----
class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;   // rank among the processes on this host
  virtual int local_size() const = 0;
  virtual std::string backend() const = 0;  // "mpi", "single"
  // In-place collectives on contiguous CPU tensors (float32, float64, int64).
  virtual void allreduce(Tensor& t, ReduceOp op) = 0;
  virtual void broadcast(Tensor& t, int root) = 0;
  // Concatenates every rank's tensor along dim 0 (shapes may differ in dim 0 only).
  virtual Tensor allgather(const Tensor& t) = 0;
  virtual void barrier() = 0;
  // Ends the whole job (all ranks) with an error code after printing `message` (MPI_Abort).
  [[noreturn]] virtual void abort(const std::string& message, int code) = 0;
};

// ---- the global world (Horovod-style free functions) ----
// Initialises MPI when the process was started by mpirun/srun (OMPI_COMM_WORLD_SIZE, PMI_SIZE
// ... in the environment), else a single-process world. Safe to call twice.
void init(int* argc = nullptr, char*** argv = nullptr);
void finalize();
bool is_initialized();
// True when launched under an MPI launcher with more than one process.
bool launched_under_mpi();
int rank();
int size();
int local_rank();
int local_size();
ProcessGroup& world();

void allreduce(Tensor& t, ReduceOp op = ReduceOp::Average);
Tensor allreduced(const Tensor& t, ReduceOp op = ReduceOp::Average);
void broadcast(Tensor& t, int root = 0);
Tensor allgather(const Tensor& t);
void barrier();

// Copies rank `root`'s parameters and buffers into every rank's module. Checks first that
// all ranks have the same structure (names, shapes, dtypes: a hash compared across ranks) and
// throws DistributedError naming the first rank that differs.
void broadcast_parameters(nn::Module& module, int root = 0);
// Makes every rank's optimizer state equal to rank `root`'s (state created on all ranks first).
void broadcast_optimizer_state(optim::Optimizer& optimizer, int root = 0);
// Throws DistributedError unless every rank passes the same value (e.g. dataset size), naming
// `what` and the ranks' values.
void check_same_across_ranks(std::int64_t value, const std::string& what);
// Throws DistributedError unless all ranks hold bit-identical parameters (a hash allreduce).
void check_parameters_in_sync(const nn::Module& module);

// ---- sampling: PyTorch's DistributedSampler ----
class DistributedSampler {
 public:
  DistributedSampler(std::int64_t dataset_size, int num_replicas, int rank, bool shuffle = true,
                     std::uint64_t seed = 0, bool drop_last = false);
  void set_epoch(std::int64_t epoch) { epoch_ = epoch; }
  // This rank's indices for the current epoch (int64 [num_samples()]): the (shuffled with
  // seed + epoch, like torch.randperm with a generator seeded so) index list, padded by
  // repeating its head (or truncated with drop_last) to a multiple of num_replicas, then
  // indices[rank::num_replicas].
  Tensor indices() const;
  std::int64_t num_samples() const { return num_samples_; }
  std::int64_t total_size() const { return total_size_; }

 private:
  std::int64_t n_, num_samples_, total_size_;
  int replicas_, rank_;
  bool shuffle_, drop_last_;
  std::uint64_t seed_;
  std::int64_t epoch_ = 0;
};

// ---- gradient averaging ----
struct DistributedOptions {
  std::int64_t bucket_bytes = 25 * 1024 * 1024;  // PyTorch DDP's default bucket size
  bool overlap = true;                            // start allreduces from backward hooks
  std::string timeline_path;                      // Chrome-trace JSON (empty: off)
};

// Wraps an optimizer: gradients of `module`'s parameters are averaged across ranks before
// each step. Parameters are grouped into buckets in reverse registration order (the order
// backward produces them); a bucket is allreduced on the communication thread as soon as all
// its gradients are ready (post-accumulate-grad hooks); step() waits for the remaining
// buckets, then steps the wrapped optimizer. In a world of one process it only forwards.
// It is an optim::Optimizer, so training::fit and schedulers take it as is; its state dict is
// the wrapped optimizer's. (optim::Optimizer's state_dict/load_state_dict/init_state are
// virtual so that wrappers can forward them.)
class DistributedOptimizer : public optim::Optimizer {
 public:
  DistributedOptimizer(std::unique_ptr<optim::Optimizer> inner, nn::Module& module, DistributedOptions options = {});
  ~DistributedOptimizer() override;

  void step() override;
  double lr(std::size_t group = 0) const override;
  void set_lr(std::size_t group, double lr) override;
  std::string_view name() const override;
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  void init_state() override;
  optim::Optimizer& inner() { return *inner_; }

  struct Impl;

 protected:
  // unused: state is the wrapped optimizer's
  void save_param_states(StateDict&) const override {}
  void save_group_options(std::size_t, StateDict&, const std::string&) const override {}
  void load_state_impl(StateReader&) override {}
  void init_param_state(std::size_t, std::size_t) override {}

 private:
  std::unique_ptr<optim::Optimizer> inner_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace krill::dist
