// The global world: init/finalize, the Horovod-style free functions, and the stall inspector's
// configuration.
//
// init() touches MPI only when an MPI launcher started the process (OMPI_COMM_WORLD_SIZE from
// OpenMPI's mpirun, PMI_SIZE from Hydra/MPICH and Slurm's PMI-2, PMIX_RANK from PMIx launchers
// such as srun --mpi=pmix), so a plain `krill train` never loads an MPI transport or talks to
// a daemon.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "internal.hpp"
#include "process_group_mpi.hpp"
#include "stall_inspector.hpp"

namespace krill::dist {
namespace {

std::mutex g_mu;
std::unique_ptr<ProcessGroup> g_world;
bool g_mpi_used = false;  // MPI was initialised by this process (and cannot be again once finalised)

const char* launcher_env() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return v;
  return nullptr;
}

double env_seconds(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double d = std::strtod(v, &end);
  if (end == v || *end != '\0' || d < 0)
    throw DistributedError(std::string("dist::init: ") + name + "='" + v + "' is not a number of seconds >= 0");
  return d;
}

ProcessGroup& world_or_throw(const char* what) {
  if (!g_world)
    throw DistributedError(std::string("dist::") + what +
                           ": krill::dist is not initialised; call dist::init() first (it makes a world of one "
                           "process outside mpirun)");
  return *g_world;
}

}  // namespace

void init(int* argc, char*** argv) {
  std::lock_guard lk(g_mu);
  if (g_world) return;
  if (launcher_env()) {
    detail::configure_stall_inspector(env_seconds("KRILL_STALL_CHECK_SECONDS", 60.0),
                                      env_seconds("KRILL_STALL_SHUTDOWN_SECONDS", 0.0));
    g_world = detail::mpi_init_world(argc, argv);
    g_mpi_used = true;
    if (g_world->size() > 1) detail::start_stall_inspector(g_world.get(), g_world->rank());
  } else {
    g_world = detail::make_single_process_group();
  }
}

void finalize() {
  std::lock_guard lk(g_mu);
  if (!g_world) return;
  detail::stop_stall_inspector();
  const bool mpi = g_world->backend() == "mpi";
  g_world.reset();
  if (mpi) detail::mpi_finalize();
}

bool is_initialized() {
  std::lock_guard lk(g_mu);
  return g_world != nullptr;
}

bool launched_under_mpi() {
  {
    std::lock_guard lk(g_mu);
    if (g_world) return g_world->backend() == "mpi" && g_world->size() > 1;
  }
  const char* v = launcher_env();
  if (!v) return false;
  const std::string name = v;
  if (name == "PMIX_RANK") return true;  // the size is not in the environment
  return std::atoll(std::getenv(v)) > 1;
}

int rank() { return world_or_throw("rank").rank(); }
int size() { return world_or_throw("size").size(); }
int local_rank() { return world_or_throw("local_rank").local_rank(); }
int local_size() { return world_or_throw("local_size").local_size(); }
ProcessGroup& world() { return world_or_throw("world"); }

void set_stall_inspector(double warning_seconds, double shutdown_seconds) {
  if (!(warning_seconds >= 0) || !(shutdown_seconds >= 0))
    throw ValueError("dist::set_stall_inspector: the times must be >= 0 seconds, got " + std::to_string(warning_seconds) +
                     " and " + std::to_string(shutdown_seconds));
  detail::configure_stall_inspector(warning_seconds, shutdown_seconds);
}

void allreduce(Tensor& t, ReduceOp op) { world_or_throw("allreduce").allreduce(t, op); }

Tensor allreduced(const Tensor& t, ReduceOp op) {
  ProcessGroup& g = world_or_throw("allreduced");
  detail::check_collective_tensor(t, "allreduced");
  Tensor out = empty(t.shape(), TensorOptions(t.dtype()));
  if (t.nbytes()) std::memcpy(out.raw_data(), t.raw_data(), t.nbytes());
  g.allreduce(out, op);
  return out;
}

void broadcast(Tensor& t, int root) { world_or_throw("broadcast").broadcast(t, root); }
Tensor allgather(const Tensor& t) { return world_or_throw("allgather").allgather(t); }
void barrier() { world_or_throw("barrier").barrier(); }

}  // namespace krill::dist
