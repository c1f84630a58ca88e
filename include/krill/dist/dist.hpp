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
//   dist::check_parameters_in_sync(*model);
//   dist::finalize();
//
// Parts (src/dist/, one file each, Horovod's names): process_group_mpi (the MPI transport),
// world (init/finalize, the global group), consistency (structure hashes, start-up broadcasts,
// the end-of-training sync check), sampler, fusion_buffer (bucket layout and the fused
// buffers), controller (which gradients are ready; the communication thread that allreduces
// complete buckets in a fixed order), timeline (Chrome trace), stall_inspector (a watchdog
// that reports collectives waiting on other ranks), distributed_optimizer (the glue).
//
// Threads. init() asks MPI for MPI_THREAD_MULTIPLE (Debian's OpenMPI grants it): the
// DistributedOptimizer's communication thread then allreduces buckets on a duplicate
// communicator of its own while the training thread runs backward and may call collectives on
// the world. If MPI grants less (SERIALIZED or FUNNELED), the optimizer starts no
// communication thread: every bucket is allreduced in step() on the calling thread (as with
// overlap = false), so all MPI calls come from the training thread, which must then be the
// thread that called init(). The stall inspector's watchdog never calls MPI except MPI_Abort
// when a stall shutdown is configured.
//
// Launching. `mpirun -np N prog` (or srun, or a host file) starts the ranks; nothing else is
// needed. Keep each rank bound to its own core (mpirun's default for N <= 2; --bind-to core
// beyond): on this 2-core machine the 2-rank penguin lab took 13 ms bound and 0.2-0.85 s with
// --bind-to none. Oversubscribed jobs (more ranks than cores) need --oversubscribe (OpenMPI
// then yields while waiting) and --bind-to none.
//
// Errors. A DistributedError raised by a check (structure, dataset size, sync) is raised on
// every rank alike. After one, end the process with a non-zero status without calling
// finalize() (mpirun then ends the job) or call world().abort(): finalize() is collective in
// OpenMPI and would wait for ranks that are still running.
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
  // A group over the same processes with a communication channel of its own (MPI_Comm_dup):
  // collectives on it never match collectives on this one, so another thread may use it while
  // this one is in use (the DistributedOptimizer's communication thread does). Collective: every
  // rank calls it, in the same order.
  virtual std::unique_ptr<ProcessGroup> duplicate() = 0;
  // Whether two threads may run collectives at the same time (on different groups): MPI granted
  // MPI_THREAD_MULTIPLE. When false, the DistributedOptimizer keeps all communication on the
  // calling thread.
  virtual bool concurrent_collectives() const { return true; }
};

// ---- the global world (Horovod-style free functions) ----
// Initialises MPI (MPI_Init_thread, asking for MPI_THREAD_MULTIPLE) when the process was
// started by an MPI launcher (mpirun, srun: OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the
// environment), else a single-process world that never touches MPI. Safe to call twice. In a
// world of more than one process it starts the stall inspector (see set_stall_inspector).
// Throws DistributedError when MPI fails to start, or when called again after finalize() of an
// MPI world (MPI cannot be initialised twice).
void init(int* argc = nullptr, char*** argv = nullptr);
// Stops the stall inspector and finalises MPI (collective). No-op when not initialised.
void finalize();
bool is_initialized();
// True when launched under an MPI launcher with more than one process (from the environment
// before init(), from the world after).
bool launched_under_mpi();
// The world's rank, size and the rank/size among the processes on this host
// (MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)). All throw DistributedError before init().
int rank();
int size();
int local_rank();
int local_size();
ProcessGroup& world();

// ---- stall inspector (Horovod's) ----
// A watchdog thread (one per process, started by init() in a world of more than one) looks at
// every collective in flight once a second. One that has waited `warning_seconds` for the other
// ranks is reported on stderr ("krill dist: rank 0: stall: allreduce of bucket 1 (fc2.bias,
// fc2.weight) (444 B) has waited 60 s for the other ranks ..."), again every
// `warning_seconds`. It names what this rank waits in, not which rank is missing (the buckets'
// fixed order needs no negotiation through a coordinator that would know). With
// `shutdown_seconds` > 0, one that has waited that long ends the job (world().abort, exit code
// 1). Defaults: 60 s and 0 (never), like HOROVOD_STALL_CHECK_TIME_SECONDS and
// HOROVOD_STALL_SHUTDOWN_TIME_SECONDS; init() reads KRILL_STALL_CHECK_SECONDS and
// KRILL_STALL_SHUTDOWN_SECONDS from the environment. A warning of 0 turns the inspector off.
void set_stall_inspector(double warning_seconds, double shutdown_seconds = 0);

// Collectives on the world. Tensors must be contiguous CPU float32, float64 or int64 (an error
// names the op and what is wrong); results are written in place. Average is Sum then a
// division by size() (int64: truncated toward zero).
void allreduce(Tensor& t, ReduceOp op = ReduceOp::Average);
Tensor allreduced(const Tensor& t, ReduceOp op = ReduceOp::Average);
void broadcast(Tensor& t, int root = 0);
Tensor allgather(const Tensor& t);
void barrier();

// Copies rank `root`'s parameters and buffers into every rank's module. Checks first that
// all ranks have the same structure (names, shapes, dtypes: a hash compared across ranks) and
// otherwise throws, on every rank, a DistributedError naming the ranks that differ from `root`
// and each one's first differing entry ("entry 1: rank 0 has 'parameter fc1.weight float32
// [10, 5]', rank 1 has 'parameter fc1.weight float32 [12, 5]'").
void broadcast_parameters(nn::Module& module, int root = 0);
// Makes every rank's optimizer state equal to rank `root`'s (state created on all ranks first).
void broadcast_optimizer_state(optim::Optimizer& optimizer, int root = 0);
// Throws DistributedError unless every rank passes the same value (e.g. dataset size), naming
// `what` and the ranks' values.
void check_same_across_ranks(std::int64_t value, const std::string& what);
// Throws DistributedError unless all ranks hold bit-identical parameters (a hash allreduce),
// naming the ranks and the first parameter that differs.
void check_parameters_in_sync(const nn::Module& module);
// All four are collective: every rank calls them, in the same order. In a world of one process
// they check nothing and broadcast nothing.

// ---- sampling: PyTorch's DistributedSampler ----
// (torch/utils/data/distributed.py, 1.13.) Throws ValueError for a negative size,
// num_replicas < 1 or a rank outside [0, num_replicas).
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
  // Start bucket allreduces from post-accumulate-grad hooks on the communication thread while
  // backward runs. false: everything happens in step() on the calling thread (then several
  // backward passes may accumulate gradients before one step()).
  bool overlap = true;
  // Chrome-trace JSON (empty: off). In a world of more than one process every rank writes its
  // own file: "{rank}" in the path is replaced by the rank, else ".rank<r>" is inserted before
  // the extension (timeline.json -> timeline.rank0.json, timeline.rank1.json); events carry
  // pid = rank, so the files' traceEvents lists can be concatenated into one trace.
  std::string timeline_path;
  // The group whose ranks average their gradients (null: the world).
  ProcessGroup* process_group = nullptr;
};

// Wraps an optimizer: the gradients of the wrapped optimizer's parameters are averaged across
// ranks before each step (`module` names them in messages and the timeline). Parameters are
// grouped into buckets of about bucket_bytes in reverse order (the order backward produces
// them), each bucket with one fusion buffer allocated once. A parameter's .grad becomes a view
// into its bucket's buffer (PyTorch DDP's gradient_as_bucket_view), so backward accumulates
// straight into the fusion buffer; a gradient that is not such a view (first step, after
// zero_grad(set_to_none)) is copied in by the post-accumulate-grad hook. When all gradients of
// a bucket are ready it is queued to the communication thread, which allreduces (sum) buckets
// strictly in bucket order (k only after k-1) on every rank and divides by the size; step()
// queues what backward left, waits for the communication thread and steps the wrapped
// optimizer. A model whose gradients fit in one bucket has nothing to overlap (the bucket is
// complete only when backward ends): step() allreduces it on the calling thread, with no
// thread hand-off, as it does every bucket with overlap = false.
//
// A parameter that got no gradient in a backward (unused in forward) is zero-filled at step()
// so that every rank allreduces the same buckets; each bucket also carries one "had a gradient"
// flag per parameter, so a parameter that no rank gave a gradient keeps an undefined .grad
// and the wrapped optimizer skips it, as in one process. With overlap, a second backward before
// step() throws DistributedError (its gradients would race the allreduce): use overlap = false
// to accumulate gradients over several backward passes.
//
// Construction is collective (every rank checks the same parameter layout: DistributedError
// otherwise). In a world of one process it only forwards (bit-identical to the wrapped
// optimizer). It is an optim::Optimizer, so training::fit and schedulers take it as is; its
// state dict and name are the wrapped optimizer's. A steady-state step allocates nothing.
class DistributedOptimizer : public optim::Optimizer {
 public:
  DistributedOptimizer(std::unique_ptr<optim::Optimizer> inner, nn::Module& module, DistributedOptions options = {});
  ~DistributedOptimizer() override;

  void step() override;
  double lr(std::size_t group = 0) const override;
  void set_lr(std::size_t group, double lr) override;
  using optim::Optimizer::set_lr;  // set_lr(double): every group
  std::string_view name() const override;
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  void init_state() override;
  optim::Optimizer& inner() { return *inner_; }

  // The bucket layout: parameter names in bucket order and the bucket's gradient bytes.
  struct BucketInfo {
    std::vector<std::string> params;
    std::int64_t bytes = 0;
  };
  std::vector<BucketInfo> buckets() const;
  // The file this rank's timeline goes to (empty when off).
  std::string timeline_file() const;

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
