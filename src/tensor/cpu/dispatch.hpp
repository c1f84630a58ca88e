// dtype -> C++ type dispatch for the CPU kernels (internal): f is called with a value of the
// element type, e.g. `dispatch_arith(t.dtype(), "add", [&](auto zero) { using T = decltype(zero); ... })`.
#pragma once
#include <cstdint>
#include <string>

#include "krill/tensor/dtype.hpp"
#include "krill/util/error.hpp"

namespace krill::cpu {

[[noreturn]] inline void unsupported_dtype(DType t, const char* op) {
  throw DTypeError(std::string(op) + ": dtype " + std::string(dtype_name(t)) + " is not supported");
}

// The dtypes arithmetic kernels compute in.
template <typename F>
decltype(auto) dispatch_arith(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Int64: return f(std::int64_t{});
    default: unsupported_dtype(t, op);
  }
}

// Every dtype with a C++ element type (copies, fills, indexing).
template <typename F>
decltype(auto) dispatch_all(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::Float32: return f(float{});
    case DType::Float64: return f(double{});
    case DType::Int64: return f(std::int64_t{});
    case DType::Int32: return f(std::int32_t{});
    case DType::Bool: return f(bool{});
    case DType::UInt8: return f(std::uint8_t{});
    default: unsupported_dtype(t, op);
  }
}

}  // namespace krill::cpu
