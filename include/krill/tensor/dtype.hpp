// Element types. Kernels exist for Float32 and Int64 (and Bool for masks); the 16-bit
// float types are storable now (safetensors interop) and get kernels with the GPU backend.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace krill {

enum class DType : std::uint8_t { Float32, Int64, Int32, Bool, Float16, BFloat16, Float64, UInt8 };

constexpr std::size_t itemsize(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Int64: return 8;
    case DType::Int32: return 4;
    case DType::Bool: return 1;
    case DType::Float16: return 2;
    case DType::BFloat16: return 2;
    case DType::Float64: return 8;
    case DType::UInt8: return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Int64: return "int64";
    case DType::Int32: return "int32";
    case DType::Bool: return "bool";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float64: return "float64";
    case DType::UInt8: return "uint8";
  }
  return "?";
}

constexpr bool is_floating(DType t) {
  return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16 || t == DType::Float64;
}

// C++ type -> DType
template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::Int64; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::UInt8; };
template <typename T> inline constexpr DType dtype_v = dtype_of<T>::value;

inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kBool = DType::Bool;

}  // namespace krill
