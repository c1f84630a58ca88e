// safetensors writer: dense copies of strided tensors, the header plan (padded JSON), and output
// to memory (to_safetensors_bytes) or to a file replaced atomically (save_safetensors).
#include "krill/io/safetensors.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "fsync_dir.hpp"
#include "krill/tensor/tensor.hpp"
#include "krill/util/error.hpp"
#include "safetensors_internal.hpp"

namespace krill::io {

namespace {

using json = nlohmann::ordered_json;  // keeps insertion order: the header lists tensors in StateDict order
using detail::kMetadataKey;
using detail::printable;
using detail::sys_error;

struct Plan {
  std::string head;             // 8-byte length + padded JSON header
  std::vector<Tensor> tensors;  // contiguous CPU tensors, in order
};

// A contiguous copy of a strided CPU tensor, done on bytes so that it works for every dtype
// (a same-dtype copy is a pure permutation of elements; no kernel per dtype is needed).
Tensor dense_copy(const Tensor& t) {
  Tensor out = krill::empty(t.shape(), t.dtype());
  const auto isz = static_cast<std::int64_t>(itemsize(t.dtype()));
  const int nd = t.dim();
  const char* base = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  if (nd == 0) {
    std::memcpy(dst, base, static_cast<std::size_t>(isz));
    return out;
  }
  const std::int64_t inner = t.size(nd - 1);
  const std::int64_t inner_step = t.stride(nd - 1) * isz;
  const std::int64_t outer = t.numel() / inner;
  std::int64_t idx[kMaxDims] = {};
  for (std::int64_t o = 0; o < outer; ++o) {
    std::int64_t off = 0;
    for (int d = 0; d < nd - 1; ++d) off += idx[d] * t.stride(d) * isz;
    const char* src = base + off;
    if (inner_step == isz) {
      std::memcpy(dst, src, static_cast<std::size_t>(inner * isz));
      dst += inner * isz;
    } else {
      for (std::int64_t i = 0; i < inner; ++i, dst += isz) std::memcpy(dst, src + i * inner_step, static_cast<std::size_t>(isz));
    }
    for (int d = nd - 2; d >= 0; --d) {
      if (++idx[d] < t.size(d)) break;
      idx[d] = 0;
    }
  }
  return out;
}

Plan plan(const StateDict& tensors, const std::map<std::string, std::string>& metadata, const std::string& what) {
  Plan p;
  json header = json::object();
  if (!metadata.empty()) {
    json m = json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header[std::string(kMetadataKey)] = std::move(m);
  }
  std::uint64_t offset = 0;
  for (const auto& [name, t0] : tensors) {
    if (name == kMetadataKey)
      throw ValueError(what + ": '__metadata__' is reserved in safetensors and cannot name a tensor");
    if (!t0.defined()) throw ValueError(what + ": tensor '" + printable(name) + "' is undefined (empty Tensor handle)");
    Tensor t = t0;
    if (!t.device().is_cpu()) t = t.to(kCPU);
    if (t.numel() > 0 && !t.is_contiguous()) t = dense_copy(t);  // empty tensors have no bytes to lay out
    const std::uint64_t nbytes = t.nbytes();
    json shape = json::array();
    for (auto d : t.shape()) shape.push_back(d);
    json entry = json::object();
    entry["dtype"] = std::string(safetensors_dtype_name(t.dtype()));
    entry["shape"] = std::move(shape);
    entry["data_offsets"] = json::array({offset, offset + nbytes});
    header[name] = std::move(entry);
    offset += nbytes;
    p.tensors.push_back(std::move(t));
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw ValueError(what + ": a tensor name or metadata string is not valid UTF-8, which JSON (and safetensors) " +
                     "requires: " + e.what());
  }
  // Pad with spaces so the data buffer starts at a multiple of 8 bytes.
  text.append((8 - text.size() % 8) % 8, ' ');
  std::uint64_t n = text.size();
  p.head.resize(8);
  for (int i = 0; i < 8; ++i) p.head[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  p.head += text;
  return p;
}

void write_all(int fd, const void* data, std::size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    std::size_t chunk = std::min<std::size_t>(n, std::size_t{1} << 30);
    ssize_t w = ::write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      throw IOError(path + ": write failed: " + sys_error(err));
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

std::atomic<unsigned> g_tmp_counter{0};

}  // namespace

std::string to_safetensors_bytes(const StateDict& tensors, const std::map<std::string, std::string>& metadata) {
  Plan p = plan(tensors, metadata, "to_safetensors_bytes");
  std::size_t total = p.head.size();
  for (const auto& t : p.tensors) total += t.nbytes();
  std::string out;
  out.reserve(total);
  out += p.head;
  for (const auto& t : p.tensors)
    if (t.nbytes()) out.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  return out;
}

void save_safetensors(const StateDict& tensors, const std::string& path,
                      const std::map<std::string, std::string>& metadata) {
  Plan p = plan(tensors, metadata, path);

  const std::string tmp =
      path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(g_tmp_counter.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) {
    int err = errno;
    throw IOError(path + ": cannot create temporary file '" + tmp + "': " + sys_error(err));
  }
  try {
    write_all(fd, p.head.data(), p.head.size(), tmp);
    for (const auto& t : p.tensors)
      if (t.nbytes()) write_all(fd, t.raw_data(), t.nbytes(), tmp);
    if (::fsync(fd) != 0) {
      int err = errno;
      throw IOError(tmp + ": fsync failed: " + sys_error(err));
    }
    int rc = ::close(fd);
    fd = -1;
    if (rc != 0) {
      int err = errno;
      throw IOError(tmp + ": close failed: " + sys_error(err));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      throw IOError(path + ": cannot rename '" + tmp + "' over it: " + sys_error(err));
    }
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable.
  std::string dir = ".";
  if (auto slash = path.find_last_of('/'); slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
  detail::fsync_dir(dir);
}

}  // namespace krill::io
