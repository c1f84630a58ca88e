// safetensors (https://github.com/huggingface/safetensors): the weights format krill shares
// with PyTorch / Hugging Face. Layout: an 8-byte little-endian header length N, N bytes of
// JSON header {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..],
// "data_offsets": [begin, end]}, ...}, then the raw little-endian data buffer (offsets are
// relative to its start).
//
// Writing keeps the StateDict's insertion order, writes non-contiguous tensors contiguously,
// pads the header with spaces to a multiple of 8 bytes (so the data buffer is 8-byte aligned)
// and replaces `path` atomically (temp file, fsync, rename): a crash never leaves a
// half-written file under `path`.
//
// Reading validates everything before touching the data and never reads out of bounds: a
// malformed file throws FormatError naming the file, the tensor and the problem; a missing
// or unreadable file throws IOError with the system's reason. Tensors come back in header
// order (for files krill or the reference library wrote, that is the order of their data).
//
// dtypes: F32 F64 F16 BF16 I64 I32 U8 BOOL (krill's DType). Other safetensors dtypes (I8, I16,
// U16, U32, U64, F8_*) are refused with a FormatError that says so.
#pragma once
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "krill/tensor/dtype.hpp"
#include "krill/tensor/state_dict.hpp"

namespace krill::io {

// Writes `tensors` (and optional string metadata, stored under "__metadata__") to `path`,
// atomically. Throws ValueError for an undefined tensor or the reserved name "__metadata__",
// IOError when the file cannot be written.
void save_safetensors(const StateDict& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata = {});

// Reads a safetensors file. When `metadata` is non-null it receives the "__metadata__" map
// (empty when the file has none).
StateDict load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

// The same, in memory: the bytes of a safetensors file, and parsing such bytes.
// `source_name` is what error messages call the data (a file name, "<memory>", ...).
std::string to_safetensors_bytes(const StateDict& tensors, const std::map<std::string, std::string>& metadata = {});
StateDict from_safetensors_bytes(const void* data, std::size_t size, std::string_view source_name = "<memory>",
                                 std::map<std::string, std::string>* metadata = nullptr);

// The safetensors spelling of a krill dtype ("F32", "I64", ...), and back; nullopt for a
// string krill does not store.
std::string_view safetensors_dtype_name(DType dtype);
std::optional<DType> dtype_from_safetensors(std::string_view name);

// Largest header krill accepts (the reference implementation's limit).
inline constexpr std::size_t kSafetensorsMaxHeaderBytes = 100'000'000;

}  // namespace krill::io
