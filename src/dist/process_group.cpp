// Parts shared by the process groups: argument checks, Average's division, and the
// single-process group (a world of one: collectives are identities, no MPI involved).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "internal.hpp"

namespace krill::dist::detail {

void check_collective_tensor(const Tensor& t, const char* op) {
  // (No string is built unless there is an error: this runs on every collective.)
  auto fail = [op](const std::string& msg) { throw DistributedError(std::string("dist::") + op + ": " + msg); };
  if (!t.defined()) fail("the tensor is undefined");
  const DType d = t.dtype();
  if (d != DType::Float32 && d != DType::Float64 && d != DType::Int64)
    fail(std::string(dtype_name(d)) + " tensors are not supported (shape " + t.shape().str() +
         "); use float32, float64 or int64");
  if (!t.device().is_cpu())
    fail("the tensor is on " + t.device().str() +
         "; the MPI process group takes CPU tensors (GPU tensors go through NCCL, not in this build)");
  if (!t.is_contiguous())
    fail("the tensor (shape " + t.shape().str() +
         ") is not contiguous; collectives work in place on contiguous tensors (use .contiguous())");
}

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Average: return "average";
    case ReduceOp::Max: return "max";
    case ReduceOp::Min: return "min";
  }
  return "?";
}

void divide_in_place(void* data, DType dtype, std::int64_t n, std::int64_t divisor) {
  if (divisor == 1) return;
  switch (dtype) {
    case DType::Float32: {
      float* p = static_cast<float*>(data);
      const float d = static_cast<float>(divisor);
      for (std::int64_t i = 0; i < n; ++i) p[i] = p[i] / d;
      break;
    }
    case DType::Float64: {
      double* p = static_cast<double*>(data);
      const double d = static_cast<double>(divisor);
      for (std::int64_t i = 0; i < n; ++i) p[i] = p[i] / d;
      break;
    }
    case DType::Int64: {
      std::int64_t* p = static_cast<std::int64_t*>(data);
      for (std::int64_t i = 0; i < n; ++i) p[i] = p[i] / divisor;
      break;
    }
    default: break;
  }
}

void check_root(ProcessGroup& g, int root, const char* op) {
  if (root < 0 || root >= g.size())
    throw DistributedError(std::string("dist::") + op + ": root rank " + std::to_string(root) +
                           " is out of range (the group has " + std::to_string(g.size()) + " rank" +
                           (g.size() == 1 ? "" : "s") + ")");
}

namespace {

class SingleProcessGroup final : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void allreduce(Tensor& t, ReduceOp) override { check_collective_tensor(t, "allreduce"); }
  void broadcast(Tensor& t, int root) override {
    check_collective_tensor(t, "broadcast");
    check_root(*this, root, "broadcast");
  }
  Tensor allgather(const Tensor& t) override {
    check_collective_tensor(t, "allgather");
    if (t.dim() < 1)
      throw DistributedError("dist::allgather: the tensor is 0-dimensional; allgather concatenates along dim 0 (reshape it to [1])");
    Tensor out = empty(t.shape(), TensorOptions(t.dtype()));
    if (t.nbytes()) std::memcpy(out.raw_data(), t.raw_data(), t.nbytes());
    return out;
  }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message, int code) override {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
    std::fflush(stdout);
    std::_Exit(code);
  }
  std::unique_ptr<ProcessGroup> duplicate() override { return std::make_unique<SingleProcessGroup>(); }
};

}  // namespace

std::unique_ptr<ProcessGroup> make_single_process_group() { return std::make_unique<SingleProcessGroup>(); }

}  // namespace krill::dist::detail
