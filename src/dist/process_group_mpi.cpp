// ProcessGroup over MPI (Debian's OpenMPI 4.1): the CPU transport of krill::dist.
//
// Every collective is the blocking MPI call on the group's communicator (OpenMPI's tuned
// algorithms), wrapped in a StallWatch so the stall inspector can report it when it waits too
// long. Communicators use MPI_ERRORS_RETURN: an MPI failure becomes a DistributedError naming
// the op, the rank and MPI's message. Element counts above INT_MAX are split into chunks
// (allreduce, broadcast); allgather refuses them.
#include "process_group_mpi.hpp"

#include <mpi.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "internal.hpp"
#include "stall_inspector.hpp"

namespace krill::dist::detail {
namespace {

int g_thread_level = MPI_THREAD_SINGLE;

const char* level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
    default: return "unknown";
  }
}

bool mpi_is_finalized() {
  int f = 0;
  MPI_Finalized(&f);
  return f != 0;
}

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::Float32: return MPI_FLOAT;
    case DType::Float64: return MPI_DOUBLE;
    case DType::Int64: return MPI_INT64_T;
    default: break;
  }
  return MPI_DATATYPE_NULL;  // (refused by check_collective_tensor before)
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Average: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_SUM;
}

constexpr std::int64_t kMaxChunk = std::int64_t{1} << 30;  // elements per MPI call
constexpr int kMeta = 2 + kMaxDims;                  // allgather: ndim, dtype, dims

class MpiProcessGroup final : public ProcessGroup {
 public:
  MpiProcessGroup(MPI_Comm comm, bool owned, int local_rank, int local_size)
      : comm_(comm), owned_(owned), local_rank_(local_rank), local_size_(local_size) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiProcessGroup() override {
    if (owned_ && !mpi_is_finalized()) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string backend() const override { return "mpi"; }
  bool concurrent_collectives() const override { return g_thread_level == MPI_THREAD_MULTIPLE; }

  void allreduce(Tensor& t, ReduceOp op) override {
    check_collective_tensor(t, "allreduce");
    check_alive("allreduce");
    const std::int64_t n = t.numel();
    char* p = static_cast<char*>(t.raw_data());
    const std::size_t item = itemsize(t.dtype());
    {
      StallWatch watch("allreduce", static_cast<std::int64_t>(t.nbytes()));
      for (std::int64_t done = 0; done < n; done += kMaxChunk) {
        const int count = static_cast<int>(std::min(kMaxChunk, n - done));
        check(MPI_Allreduce(MPI_IN_PLACE, p + done * static_cast<std::int64_t>(item), count, mpi_type(t.dtype()),
                            mpi_op(op), comm_),
              "allreduce");
      }
    }
    if (op == ReduceOp::Average) divide_in_place(p, t.dtype(), n, size_);
    t.bump_version();
  }

  void broadcast(Tensor& t, int root) override {
    check_collective_tensor(t, "broadcast");
    check_root(*this, root, "broadcast");
    check_alive("broadcast");
    const std::int64_t n = t.numel();
    char* p = static_cast<char*>(t.raw_data());
    const std::size_t item = itemsize(t.dtype());
    {
      StallWatch watch("broadcast", static_cast<std::int64_t>(t.nbytes()));
      for (std::int64_t done = 0; done < n; done += kMaxChunk) {
        const int count = static_cast<int>(std::min(kMaxChunk, n - done));
        check(MPI_Bcast(p + done * static_cast<std::int64_t>(item), count, mpi_type(t.dtype()), root, comm_),
              "broadcast");
      }
    }
    t.bump_version();
  }

  Tensor allgather(const Tensor& t) override {
    check_collective_tensor(t, "allgather");
    check_alive("allgather");
    if (t.dim() < 1)
      throw DistributedError("allgather: the tensor is 0-dimensional; allgather concatenates along dim 0 (reshape it to [1])");
    // Every rank's dtype and shape, to check them and size the result.
    std::int64_t mine[kMeta] = {0};
    mine[0] = t.dim();
    mine[1] = static_cast<std::int64_t>(t.dtype());
    for (int d = 0; d < t.dim(); ++d) mine[2 + d] = t.shape()[d];
    std::vector<std::int64_t> all(static_cast<std::size_t>(kMeta) * static_cast<std::size_t>(size_));
    {
      StallWatch watch("allgather", static_cast<std::int64_t>(t.nbytes()));
      check(MPI_Allgather(mine, kMeta, MPI_INT64_T, all.data(), kMeta, MPI_INT64_T, comm_), "allgather");
    }
    auto describe = [&](int r) {
      const std::int64_t* m = &all[static_cast<std::size_t>(r) * kMeta];
      std::string s = std::string(dtype_name(static_cast<DType>(m[1]))) + " [";
      for (int d = 0; d < m[0]; ++d) s += (d ? ", " : "") + std::to_string(m[2 + d]);
      return s + "]";
    };
    std::int64_t rows = 0;
    std::vector<int> counts(static_cast<std::size_t>(size_)), displs(static_cast<std::size_t>(size_));
    std::int64_t row_elems = 1;
    for (int d = 1; d < t.dim(); ++d) row_elems *= t.shape()[d];
    const std::int64_t* m0 = all.data();  // every rank compares with rank 0: the same verdict everywhere
    for (int r = 0; r < size_; ++r) {
      const std::int64_t* m = &all[static_cast<std::size_t>(r) * kMeta];
      bool same = m[0] == m0[0] && m[1] == m0[1];
      for (int d = 1; same && d < m0[0]; ++d) same = m[2 + d] == m0[2 + d];
      if (!same)
        throw DistributedError("allgather: rank 0's tensor is " + describe(0) + " but rank " + std::to_string(r) +
                               "'s is " + describe(r) +
                               "; the ranks' tensors must have the same dtype and the same shape except in dim 0");
      const std::int64_t c = m[2] * row_elems;
      if (rows * row_elems + c > INT_MAX)
        throw DistributedError("allgather: more than 2^31 - 1 elements in all; gather smaller pieces");
      counts[static_cast<std::size_t>(r)] = static_cast<int>(c);
      displs[static_cast<std::size_t>(r)] = static_cast<int>(rows * row_elems);
      rows += m[2];
    }
    Shape out_shape = t.shape();
    out_shape[0] = rows;
    Tensor out = empty(out_shape, TensorOptions(t.dtype()));
    {
      StallWatch watch("allgather", static_cast<std::int64_t>(out.nbytes()));
      check(MPI_Allgatherv(t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), out.raw_data(),
                           counts.data(), displs.data(), mpi_type(t.dtype()), comm_),
            "allgather");
    }
    return out;
  }

  void barrier() override {
    check_alive("barrier");
    StallWatch watch("barrier", 0);
    check(MPI_Barrier(comm_), "barrier");
  }

  [[noreturn]] void abort(const std::string& message, int code) override {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
    std::fflush(stdout);
    if (!mpi_is_finalized()) MPI_Abort(comm_, code);
    std::_Exit(code);
  }

  std::unique_ptr<ProcessGroup> duplicate() override {
    check_alive("duplicate");
    MPI_Comm dup = MPI_COMM_NULL;
    {
      StallWatch watch("MPI_Comm_dup", 0);
      check(MPI_Comm_dup(comm_, &dup), "duplicate (MPI_Comm_dup)");
    }
    return std::make_unique<MpiProcessGroup>(dup, true, local_rank_, local_size_);
  }

 private:
  void check(int rc, const char* op) const {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw DistributedError(std::string(op) + " failed on rank " + std::to_string(rank_) + ": " +
                           std::string(text, static_cast<std::size_t>(len)) +
                           " (another rank may have failed or left the job)");
  }
  void check_alive(const char* op) const {
    if (mpi_is_finalized())
      throw DistributedError(std::string(op) + ": MPI was finalised (dist::finalize() was called)");
  }

  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};

}  // namespace

std::unique_ptr<ProcessGroup> mpi_init_world(int* argc, char*** argv) {
  if (mpi_is_finalized())
    throw DistributedError("dist::init: MPI was already finalised in this process and cannot be initialised again");
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = MPI_THREAD_SINGLE;
    const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS)
      throw DistributedError("dist::init: MPI_Init_thread failed (error " + std::to_string(rc) +
                             "); was the program started by a working mpirun?");
    g_thread_level = provided;
  } else {
    MPI_Query_thread(&g_thread_level);
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm local = MPI_COMM_NULL;
  int local_rank = 0, local_size = 1;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
    MPI_Comm_rank(local, &local_rank);
    MPI_Comm_size(local, &local_size);
    MPI_Comm_free(&local);
  }
  return std::make_unique<MpiProcessGroup>(MPI_COMM_WORLD, false, local_rank, local_size);
}

void mpi_finalize() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized && !mpi_is_finalized()) MPI_Finalize();
}

const char* mpi_thread_level_name() { return level_name(g_thread_level); }

}  // namespace krill::dist::detail
