// Helpers shared by the safetensors reader (safetensors_read.cpp) and writer
// (safetensors_write.cpp): the metadata key, message text, dtype name lists (internal; defined in
// safetensors.cpp unless inline here).
#pragma once
#include <bit>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

static_assert(std::endian::native == std::endian::little,
              "krill's safetensors code copies raw little-endian data: big-endian hosts need byte swaps");

namespace krill::io::detail {

inline constexpr std::string_view kMetadataKey = "__metadata__";

inline std::string sys_error(int err) { return std::generic_category().message(err); }

// A name as it appears in messages: control characters escaped, long names shortened.
std::string printable(std::string_view s, std::size_t max_len = 200);

// "F32, I64, ...": the safetensors dtypes krill reads.
std::string supported_dtypes();
// True for a valid safetensors dtype that krill has no DType for ("I8", "U16", "F8_E4M3", ...).
bool is_foreign_dtype(std::string_view name);

}  // namespace krill::io::detail
