// Printing tensors exactly like PyTorch's repr (torch/_tensor_str.py).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "internal.hpp"
#include "krill/autograd/node.hpp"
#include "krill/tensor/tensor.hpp"

namespace krill {

// ---- printing (PyTorch style) ----
// Follows torch/_tensor_str.py (default print options: precision 4, threshold 1000, edgeitems 3,
// linewidth 80) so str() is character for character what Python's repr(tensor) prints.

namespace {

constexpr int kPrintPrecision = 4;
constexpr std::int64_t kPrintThreshold = 1000;
constexpr std::int64_t kPrintEdgeItems = 3;
constexpr int kPrintLineWidth = 80;

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  std::uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Element at storage offset `off` as a double (floating and integer dtypes).
double element_as_double(const Tensor& t, std::int64_t off) {
  const void* base = t.impl()->storage->data;
  switch (t.dtype()) {
    case DType::Float32: return static_cast<const float*>(base)[off];
    case DType::Float64: return static_cast<const double*>(base)[off];
    case DType::Float16: return half_to_float(static_cast<const std::uint16_t*>(base)[off]);
    case DType::BFloat16: {
      const std::uint32_t bits = static_cast<std::uint32_t>(static_cast<const std::uint16_t*>(base)[off]) << 16;
      float f;
      std::memcpy(&f, &bits, sizeof f);
      return f;
    }
    case DType::Int64: return static_cast<double>(static_cast<const std::int64_t*>(base)[off]);
    case DType::Int32: return static_cast<const std::int32_t*>(base)[off];
    case DType::UInt8: return static_cast<const std::uint8_t*>(base)[off];
    case DType::Bool: return static_cast<const bool*>(base)[off] ? 1.0 : 0.0;
  }
  return 0.0;
}

std::string print_number(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// PyTorch's _Formatter: decides fixed / integer / scientific notation and a common width.
struct Formatter {
  bool floating = false;
  bool int_mode = true;
  bool sci_mode = false;
  std::size_t max_width = 1;

  std::string raw(const Tensor& t, std::int64_t off) const {
    if (!floating) {
      switch (t.dtype()) {
        case DType::Bool: return static_cast<const bool*>(t.impl()->storage->data)[off] ? "True" : "False";
        case DType::Int64: return std::to_string(static_cast<const std::int64_t*>(t.impl()->storage->data)[off]);
        case DType::Int32: return std::to_string(static_cast<const std::int32_t*>(t.impl()->storage->data)[off]);
        case DType::UInt8: return std::to_string(static_cast<const std::uint8_t*>(t.impl()->storage->data)[off]);
        default: return "?";
      }
    }
    const double v = element_as_double(t, off);
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    if (sci_mode) return print_number("%.4e", v);
    if (int_mode) return print_number("%.0f", v) + ".";
    return print_number("%.4f", v);
  }
  std::string format(const Tensor& t, std::int64_t off) const {
    std::string s = raw(t, off);
    if (s.size() < max_width) s.insert(0, max_width - s.size(), ' ');
    return s;
  }
};

// Storage offsets of the elements that get printed (all of them, or the edge items of every
// dimension longer than 2 * edgeitems when summarising): PyTorch's get_summarized_data.
void printed_offsets(const Tensor& t, int dim, std::int64_t off, bool summarize, std::vector<std::int64_t>& out) {
  if (dim == t.ndim()) {
    out.push_back(off);
    return;
  }
  const std::int64_t n = t.shape()[dim];
  const std::int64_t st = t.strides()[dim];
  for (std::int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kPrintEdgeItems && i == kPrintEdgeItems) i = n - kPrintEdgeItems;
    printed_offsets(t, dim + 1, off + i * st, summarize, out);
  }
}

Formatter make_formatter(const Tensor& t, bool summarize) {
  Formatter f;
  f.floating = is_floating(t.dtype());
  std::vector<std::int64_t> offs;
  printed_offsets(t, 0, t.storage_offset(), summarize, offs);
  if (!f.floating) {
    for (auto off : offs) f.max_width = std::max(f.max_width, f.raw(t, off).size());
    return f;
  }
  std::vector<double> vals;
  for (auto off : offs) {
    const double v = element_as_double(t, off);
    if (std::isfinite(v) && v != 0) vals.push_back(v);
  }
  if (vals.empty()) return f;
  double mn = INFINITY, mx = 0;
  for (double v : vals) {
    mn = std::min(mn, std::abs(v));
    mx = std::max(mx, std::abs(v));
    if (v != std::ceil(v)) f.int_mode = false;
  }
  const char* fmt;
  if (f.int_mode) {
    f.sci_mode = mx / mn > 1000.0 || mx > 1e8;
    fmt = f.sci_mode ? "%.4e" : "%.0f";
  } else {
    f.sci_mode = mx / mn > 1000.0 || mx > 1e8 || mn < 1e-4;
    fmt = f.sci_mode ? "%.4e" : "%.4f";
  }
  const std::size_t extra = (f.int_mode && !f.sci_mode) ? 1 : 0;  // the trailing '.'
  for (double v : vals) f.max_width = std::max(f.max_width, print_number(fmt, v).size() + extra);
  return f;
}

std::string format_tensor(const Tensor& t, const Formatter& f, int dim, std::int64_t off, int indent, bool summarize) {
  const int nd = t.ndim();
  if (nd == 0) return f.format(t, off);
  const std::int64_t n = t.shape()[dim];
  const std::int64_t st = t.strides()[dim];
  const bool cut = summarize && n > 2 * kPrintEdgeItems;
  std::vector<std::string> items;
  if (dim == nd - 1) {
    for (std::int64_t i = 0; i < n; ++i) {
      if (cut && i == kPrintEdgeItems) {
        items.emplace_back(" ...");
        i = n - kPrintEdgeItems;
      }
      items.push_back(f.format(t, off + i * st));
    }
    const std::size_t element_length = f.max_width + 2;
    const std::size_t per_line =
        std::max<std::size_t>(1, static_cast<std::size_t>(std::max(0, kPrintLineWidth - indent)) / element_length);
    std::string s = "[";
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i > 0) s += (i % per_line == 0) ? ",\n" + std::string(static_cast<std::size_t>(indent) + 1, ' ') : ", ";
      s += items[i];
    }
    return s + "]";
  }
  for (std::int64_t i = 0; i < n; ++i) {
    if (cut && i == kPrintEdgeItems) {
      items.emplace_back("...");
      i = n - kPrintEdgeItems;
    }
    items.push_back(format_tensor(t, f, dim + 1, off + i * st, indent + 1, summarize));
  }
  const std::string sep =
      "," + std::string(static_cast<std::size_t>(nd - dim - 1), '\n') + std::string(static_cast<std::size_t>(indent) + 1, ' ');
  std::string s = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) s += sep;
    s += items[i];
  }
  return s + "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  const std::string prefix = "tensor(";
  const int indent = static_cast<int>(prefix.size());
  std::vector<std::string> suffixes;
  if (!device().is_cpu()) suffixes.push_back("device='" + device().str() + "'");
  const std::string torch_dtype = "dtype=torch." + std::string(dtype_name(dtype()));
  std::string body;
  if (numel() == 0) {
    body = "[]";
    if (ndim() != 1) {
      std::string size = "size=(";
      for (int d = 0; d < ndim(); ++d) size += (d ? ", " : "") + std::to_string(shape()[d]);
      suffixes.push_back(size + ")");
    }
    if (dtype() != DType::Float32) suffixes.push_back(torch_dtype);
  } else if (!device().is_cpu()) {
    body = "[...]";  // no device backend to read the values from
  } else {
    if (dtype() != DType::Float32 && dtype() != DType::Int64 && dtype() != DType::Bool)
      suffixes.push_back(torch_dtype);
    const bool summarize = numel() > kPrintThreshold;
    const Formatter f = make_formatter(*this, summarize);
    body = format_tensor(*this, f, 0, storage_offset(), indent, summarize);
  }
  if (grad_fn()) suffixes.push_back(std::string("grad_fn=<") + grad_fn()->name + ">");
  else if (requires_grad()) suffixes.push_back("requires_grad=True");

  // PyTorch's _add_suffixes: a suffix that would pass the line width goes on its own line.
  std::string out = prefix + body;
  const auto nl = out.rfind('\n');
  std::size_t last_line_len = nl == std::string::npos ? out.size() + 2 : out.size() - nl + 1;
  for (const auto& sfx : suffixes) {
    if (last_line_len + sfx.size() + 2 > static_cast<std::size_t>(kPrintLineWidth)) {
      out += ",\n" + std::string(static_cast<std::size_t>(indent), ' ') + sfx;
      last_line_len = static_cast<std::size_t>(indent) + sfx.size();
    } else {
      out += ", " + sfx;
      last_line_len += sfx.size() + 2;
    }
  }
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace krill
