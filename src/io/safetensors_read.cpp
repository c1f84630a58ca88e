// safetensors reader: byte sources (file, memory), header parsing and validation, load. Files and
// memory share one code path; the header is fully validated (dtypes, shapes, offsets, overlaps,
// holes, duplicates) before any tensor is allocated, and each tensor is read straight into its storage.
#include "krill/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "krill/tensor/tensor.hpp"
#include "krill/util/error.hpp"
#include "safetensors_internal.hpp"

namespace krill::io {

namespace {

using json = nlohmann::ordered_json;  // keeps header order: tensors come back in file order
using detail::kMetadataKey;
using detail::printable;
using detail::supported_dtypes;
using detail::sys_error;

constexpr int kMaxJsonDepth = 8;  // the format needs 3 levels; deeper is not a safetensors header

std::string short_dump(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 120) s = s.substr(0, 117) + "...";
  return s;
}

std::string shape_string(const std::vector<std::uint64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

// ---- byte sources ----

class Source {
 public:
  virtual ~Source() = default;
  virtual std::uint64_t size() const = 0;
  // Reads exactly n bytes at offset (the caller has checked the range against size()).
  virtual void read(std::uint64_t offset, void* dst, std::size_t n) const = 0;
  const std::string& name() const { return name_; }

 protected:
  explicit Source(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

class MemorySource final : public Source {
 public:
  MemorySource(const void* data, std::size_t size, std::string name)
      : Source(std::move(name)), data_(static_cast<const char*>(data)), size_(size) {}
  std::uint64_t size() const override { return size_; }
  void read(std::uint64_t offset, void* dst, std::size_t n) const override {
    if (offset > size_ || n > size_ - offset)  // unreachable after validation; kept as a guard
      throw FormatError(name_ + ": internal error: read of " + std::to_string(n) + " bytes at offset " +
                        std::to_string(offset) + " is past the end (" + std::to_string(size_) + " bytes)");
    if (n) std::memcpy(dst, data_ + offset, n);
  }

 private:
  const char* data_;
  std::size_t size_;
};

class FileSource final : public Source {
 public:
  explicit FileSource(const std::string& path) : Source(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      int err = errno;
      throw IOError(path + ": cannot open for reading: " + sys_error(err));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      int err = errno;
      ::close(fd_);
      throw IOError(path + ": cannot stat: " + sys_error(err));
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd_);
      throw IOError(path + ": is a directory, not a safetensors file");
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd_);
      throw IOError(path + ": not a regular file");
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  ~FileSource() override {
    if (fd_ >= 0) ::close(fd_);
  }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  std::uint64_t size() const override { return size_; }
  void read(std::uint64_t offset, void* dst, std::size_t n) const override {
    char* p = static_cast<char*>(dst);
    while (n > 0) {
      std::size_t chunk = std::min<std::size_t>(n, std::size_t{1} << 30);
      ssize_t got = ::pread(fd_, p, chunk, static_cast<off_t>(offset));
      if (got < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        throw IOError(name_ + ": read failed at offset " + std::to_string(offset) + ": " + sys_error(err));
      }
      if (got == 0)
        throw FormatError(name_ + ": file ended at offset " + std::to_string(offset) +
                          " while reading (was it truncated while being read?)");
      p += got;
      n -= static_cast<std::size_t>(got);
      offset += static_cast<std::uint64_t>(got);
    }
  }

 private:
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

// ---- header parsing and validation ----

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  std::uint64_t begin, end;
};

[[noreturn]] void fail(const Source& src, const std::string& msg) { throw FormatError(src.name() + ": " + msg); }
[[noreturn]] void fail_tensor(const Source& src, const std::string& tensor, const std::string& msg) {
  throw FormatError(src.name() + ": tensor '" + printable(tensor) + "': " + msg);
}

// Parses the header JSON, refusing duplicate keys (nlohmann would keep the last silently) and
// absurd nesting.
json parse_header_json(const Source& src, const char* text, std::size_t n) {
  std::vector<std::vector<std::string>> keys_stack;  // keys seen in each open object
  auto cb = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= kMaxJsonDepth)
          fail(src, "header JSON is nested more than " + std::to_string(kMaxJsonDepth) +
                        " levels deep (not a safetensors header)");
        if (event == json::parse_event_t::object_start) keys_stack.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys_stack.empty()) keys_stack.pop_back();
        break;
      case json::parse_event_t::key: {
        if (keys_stack.empty()) break;
        const std::string& key = parsed.get_ref<const std::string&>();
        auto& seen = keys_stack.back();
        if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
          if (keys_stack.size() == 1) fail(src, "tensor name '" + printable(key) + "' appears twice in the header");
          fail(src, "header has the key '" + printable(key) + "' twice in one object");
        }
        seen.push_back(key);
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text, text + n, cb);
  } catch (const json::exception& e) {
    fail(src, std::string("header is not valid JSON: ") + e.what());
  }
}

// A JSON value as a non-negative integer, or nullopt.
std::optional<std::uint64_t> as_uint(const json& j) {
  if (j.is_number_unsigned()) return j.get<std::uint64_t>();
  if (j.is_number_integer()) {
    auto v = j.get<std::int64_t>();
    if (v >= 0) return static_cast<std::uint64_t>(v);
  }
  return std::nullopt;
}

std::vector<Entry> parse_header(const Source& src, const char* text, std::size_t n, std::uint64_t data_size,
                                std::map<std::string, std::string>* metadata) {
  json header = parse_header_json(src, text, n);
  if (!header.is_object())
    fail(src, std::string("header is a JSON ") + header.type_name() + ", expected an object of tensors");

  if (metadata) metadata->clear();
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (const auto& [name, info] : header.items()) {
    if (name == kMetadataKey) {
      if (!info.is_object())
        fail(src, std::string("\"__metadata__\" is a JSON ") + info.type_name() + ", expected an object of strings");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string())
          fail(src, "\"__metadata__\" entry '" + printable(k) + "' is a JSON " + v.type_name() +
                        ", safetensors metadata values must be strings");
        if (metadata) (*metadata)[k] = v.get<std::string>();
      }
      continue;
    }
    if (!info.is_object())
      fail_tensor(src, name, std::string("entry is a JSON ") + info.type_name() +
                                 ", expected an object with dtype, shape and data_offsets");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!info.contains(field)) fail_tensor(src, name, std::string("entry has no \"") + field + "\"");

    Entry e;
    e.name = name;

    // dtype
    const json& jd = info["dtype"];
    if (!jd.is_string()) fail_tensor(src, name, "dtype must be a string, got " + short_dump(jd));
    const std::string& dname = jd.get_ref<const std::string&>();
    auto dt = dtype_from_safetensors(dname);
    if (!dt) {
      bool foreign = detail::is_foreign_dtype(dname);
      fail_tensor(src, name,
                  (foreign ? "dtype '" + dname + "' is not supported by krill"
                           : "unknown dtype '" + printable(dname) + "'") +
                      " (krill reads " + supported_dtypes() + ")");
    }
    e.dtype = *dt;

    // shape
    const json& js = info["shape"];
    if (!js.is_array()) fail_tensor(src, name, "shape must be a list of non-negative integers, got " + short_dump(js));
    if (js.size() > static_cast<std::size_t>(kMaxDims))
      fail_tensor(src, name, "shape " + short_dump(js) + " has " + std::to_string(js.size()) +
                                 " dimensions; krill supports at most " + std::to_string(kMaxDims));
    std::vector<std::uint64_t> dims;
    for (const json& d : js) {
      auto v = as_uint(d);
      if (!v) fail_tensor(src, name, "shape must be a list of non-negative integers, got " + short_dump(js));
      dims.push_back(*v);
    }
    // numel, refusing shapes whose element count (ignoring zeros) overflows int64, so that
    // every product krill later forms from this shape fits.
    std::uint64_t nonzero_product = 1;
    bool has_zero = false;
    for (auto d : dims) {
      if (d == 0) {
        has_zero = true;
        continue;
      }
      if (__builtin_mul_overflow(nonzero_product, d, &nonzero_product) ||
          nonzero_product > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail_tensor(src, name, "shape " + shape_string(dims) + " has too many elements");
    }
    std::uint64_t numel = has_zero ? 0 : nonzero_product;
    std::uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(itemsize(e.dtype)), &nbytes))
      fail_tensor(src, name, "shape " + shape_string(dims) + " has too many elements");
    {
      std::vector<std::int64_t> sdims(dims.begin(), dims.end());
      e.shape = Shape(sdims);
    }

    // data_offsets
    const json& jo = info["data_offsets"];
    std::optional<std::uint64_t> b, en;
    if (jo.is_array() && jo.size() == 2) {
      b = as_uint(jo[0]);
      en = as_uint(jo[1]);
    }
    if (!b || !en)
      fail_tensor(src, name, "data_offsets must be [begin, end] with non-negative integers, got " + short_dump(jo));
    e.begin = *b;
    e.end = *en;
    std::string offs = "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
    if (e.begin > e.end) fail_tensor(src, name, offs + " have begin > end");
    if (e.end > data_size)
      fail_tensor(src, name, offs + " go past the end of the data buffer (" + std::to_string(data_size) +
                                 " bytes; file truncated?)");
    if (e.end - e.begin != nbytes)
      fail_tensor(src, name, offs + " hold " + std::to_string(e.end - e.begin) + " bytes but " +
                                 std::string(dtype_name(e.dtype)) + " " + shape_string(dims) + " needs " +
                                 std::to_string(nbytes) + " bytes");
    entries.push_back(std::move(e));
  }

  // The data buffer must be covered exactly: no overlaps, no holes (the format forbids holes
  // so that a file cannot hide other content; the reference implementation refuses both).
  std::vector<std::size_t> order(entries.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::pair(entries[a].begin, entries[a].end) < std::pair(entries[b].begin, entries[b].end);
  });
  std::uint64_t covered = 0;
  const Entry* last = nullptr;  // the entry that ends at `covered`
  for (std::size_t i : order) {
    const Entry& e = entries[i];
    if (e.begin < covered)
      fail_tensor(src, e.name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                   "] overlap tensor '" + printable(last->name) + "' [" + std::to_string(last->begin) +
                                   ", " + std::to_string(last->end) + "]");
    if (e.begin > covered)
      fail(src, "bytes [" + std::to_string(covered) + ", " + std::to_string(e.begin) +
                    ") of the data buffer belong to no tensor (safetensors forbids holes)");
    if (e.end > covered || !last) {
      covered = e.end;
      last = &e;
    }
  }
  if (covered != data_size)
    fail(src, "bytes [" + std::to_string(covered) + ", " + std::to_string(data_size) +
                  ") at the end of the data buffer belong to no tensor (safetensors forbids trailing data)");
  return entries;
}

std::uint64_t read_le64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

StateDict load(const Source& src, std::map<std::string, std::string>* metadata) {
  const std::uint64_t size = src.size();
  if (size < 8)
    fail(src, "file is " + std::to_string(size) +
                  " bytes, too short for a safetensors file (it starts with an 8-byte header length)");
  unsigned char prefix[8];
  src.read(0, prefix, 8);
  const std::uint64_t n = read_le64(prefix);
  if (n > kSafetensorsMaxHeaderBytes) {
    std::string hint;
    if (prefix[0] == 'P' && prefix[1] == 'K') hint = " (this looks like a zip archive, e.g. a PyTorch .pt/.bin file)";
    fail(src, "header length " + std::to_string(n) + " is over the " + std::to_string(kSafetensorsMaxHeaderBytes) +
                  "-byte limit: not a safetensors file" + hint);
  }
  if (n > size - 8)
    fail(src, "header length " + std::to_string(n) + " is more than the " + std::to_string(size - 8) +
                  " bytes after the length field (file truncated or not safetensors)");
  std::string text(static_cast<std::size_t>(n), '\0');
  src.read(8, text.data(), text.size());
  const std::uint64_t data_start = 8 + n;
  const std::uint64_t data_size = size - data_start;
  std::map<std::string, std::string> meta;
  std::vector<Entry> entries = parse_header(src, text.data(), text.size(), data_size, &meta);
  text = std::string();

  StateDict out;
  for (const Entry& e : entries) {
    Tensor t = krill::empty(e.shape, e.dtype);
    const std::size_t nbytes = static_cast<std::size_t>(e.end - e.begin);
    if (nbytes) src.read(data_start + e.begin, t.raw_data(), nbytes);
    if (e.dtype == DType::Bool) {
      const auto* p = static_cast<const unsigned char*>(t.raw_data());
      for (std::size_t i = 0; i < nbytes; ++i)
        if (p[i] > 1)
          fail_tensor(src, e.name, "bool element " + std::to_string(i) + " is the byte " + std::to_string(p[i]) +
                                       "; bool bytes must be 0 or 1");
    }
    out.insert(e.name, t);
  }
  if (metadata) *metadata = std::move(meta);  // only on success: a failed load leaves it alone
  return out;
}

}  // namespace

StateDict from_safetensors_bytes(const void* data, std::size_t size, std::string_view source_name,
                                 std::map<std::string, std::string>* metadata) {
  if (!data && size) throw ValueError(std::string(source_name) + ": null data pointer with size " + std::to_string(size));
  MemorySource src(data, size, std::string(source_name));
  return load(src, metadata);
}

StateDict load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  FileSource src(path);
  return load(src, metadata);
}

}  // namespace krill::io
