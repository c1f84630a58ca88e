// Helpers shared by the dist parts (internal).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "krill/dist/dist.hpp"

namespace krill::dist::detail {

// Throws unless `t` is a defined, contiguous CPU tensor of a dtype the collectives support
// (float32, float64, int64); the message names the op.
void check_collective_tensor(const Tensor& t, const char* op);
// "float32", ..., and the MPI-independent element count check of a collective.
const char* reduce_op_name(ReduceOp op);

// In-place division of `n` elements by `divisor` (Average = Sum then divide; int64 truncates).
void divide_in_place(void* data, DType dtype, std::int64_t n, std::int64_t divisor);

// Microseconds on the steady clock (timeline, stall inspector).
inline std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// 64-bit hashes (FNV-1a over bytes for strings; four interleaved multiply-xor lanes over
// 64-bit words for tensor contents). Not cryptographic: they detect accidental differences.
std::uint64_t hash_string(const std::string& s, std::uint64_t h = 14695981039346656037ULL);
std::uint64_t hash_bytes(const void* data, std::size_t n);

// "param fc1.weight float32 [10, 5]".
std::string describe_tensor(const char* kind, const std::string& name, const Tensor& t);

// Small collectives built on the tensor ones (any ProcessGroup).
std::vector<std::int64_t> allgather_int64(ProcessGroup& g, const std::vector<std::int64_t>& values);
std::string broadcast_string(ProcessGroup& g, const std::string& s, int root);
std::vector<std::string> allgather_strings(ProcessGroup& g, const std::string& s);

// Compares `entries` (one line per tensor: name, dtype, shape) across the ranks of `g`: a
// hash allgather; when they differ, rank `root`'s entries are broadcast, every rank finds its
// first difference, the differences are gathered and every rank throws the same
// DistributedError, "<what>: ...", naming the ranks and entries.
void check_same_structure(ProcessGroup& g, const std::vector<std::string>& entries, const std::string& what, int root);

// Validates a root rank for `g`.
void check_root(ProcessGroup& g, int root, const char* op);

}  // namespace krill::dist::detail

namespace krill::dist::detail {
// A world of one process (no MPI).
std::unique_ptr<ProcessGroup> make_single_process_group();
}  // namespace krill::dist::detail
