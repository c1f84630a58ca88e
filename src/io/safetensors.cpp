// safetensors dtype names (the public safetensors_dtype_name / dtype_from_safetensors) and the
// helpers shared by reading and writing. The reader is safetensors_read.cpp, the writer
// safetensors_write.cpp; see include/krill/io/safetensors.hpp for the format.
#include "krill/io/safetensors.hpp"

#include <algorithm>
#include <iterator>

#include "krill/util/error.hpp"
#include "safetensors_internal.hpp"

namespace krill::io {

namespace detail {

std::string printable(std::string_view s, std::size_t max_len) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace detail

namespace {

struct DTypeName {
  DType dtype;
  std::string_view name;
};
constexpr DTypeName kDTypeNames[] = {
    {DType::Float32, "F32"}, {DType::Int64, "I64"},   {DType::Int32, "I32"},   {DType::Bool, "BOOL"},
    {DType::Float16, "F16"}, {DType::BFloat16, "BF16"}, {DType::Float64, "F64"}, {DType::UInt8, "U8"},
};
// Valid safetensors dtypes that krill has no DType for.
constexpr std::string_view kForeignDTypes[] = {"I8", "I16", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2",
                                               "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"};

}  // namespace

namespace detail {

std::string supported_dtypes() {
  std::string s;
  for (const auto& d : kDTypeNames) {
    if (!s.empty()) s += ", ";
    s += d.name;
  }
  return s;
}

bool is_foreign_dtype(std::string_view name) {
  return std::find(std::begin(kForeignDTypes), std::end(kForeignDTypes), name) != std::end(kForeignDTypes);
}

}  // namespace detail

std::string_view safetensors_dtype_name(DType dtype) {
  for (const auto& d : kDTypeNames)
    if (d.dtype == dtype) return d.name;
  throw DTypeError("safetensors: no safetensors name for dtype " + std::string(dtype_name(dtype)));
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (const auto& d : kDTypeNames)
    if (d.name == name) return d.dtype;
  return std::nullopt;
}

}  // namespace krill::io
