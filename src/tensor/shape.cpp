#include "krill/tensor/shape.hpp"

#include "krill/tensor/device.hpp"
#include "krill/util/error.hpp"

namespace krill {

static void check_rank(std::size_t n) {
  if (n > static_cast<std::size_t>(kMaxDims))
    throw ShapeError("shape with " + std::to_string(n) + " dimensions: krill supports at most " +
                     std::to_string(kMaxDims));
}

Shape::Shape(std::initializer_list<std::int64_t> dims) {
  check_rank(dims.size());
  for (auto d : dims) d_[n_++] = d;
}

Shape::Shape(std::span<const std::int64_t> dims) {
  check_rank(dims.size());
  for (auto d : dims) d_[n_++] = d;
}

void Shape::push_back(std::int64_t v) {
  check_rank(static_cast<std::size_t>(n_) + 1);
  d_[n_++] = v;
}

void Shape::insert(int pos, std::int64_t v) {
  check_rank(static_cast<std::size_t>(n_) + 1);
  for (int i = n_; i > pos; --i) d_[i] = d_[i - 1];
  d_[pos] = v;
  ++n_;
}

void Shape::erase(int pos) {
  for (int i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
  --n_;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < n_; ++i) {
    if (i) s += ", ";
    s += std::to_string(d_[i]);
  }
  return s + "]";
}

Strides contiguous_strides(const Shape& s) {
  Strides st;
  st.resize(s.ndim());
  std::int64_t acc = 1;
  for (int i = s.ndim() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i] > 0 ? s[i] : 1;
  }
  return st;
}

int wrap_dim(std::int64_t dim, int ndim, const char* op) {
  int n = ndim == 0 ? 1 : ndim;  // 0-d tensors accept dim 0 / -1 like PyTorch
  if (dim < -n || dim >= n)
    throw IndexError(std::string(op) + ": dimension " + std::to_string(dim) + " is out of range for a tensor with " +
                     std::to_string(ndim) + " dimensions (expected in [" + std::to_string(-n) + ", " +
                     std::to_string(n - 1) + "])");
  return static_cast<int>(dim < 0 ? dim + n : dim);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  if (a == b) return a;
  int n = std::max(a.ndim(), b.ndim());
  Shape out;
  out.resize(n);
  for (int i = 0; i < n; ++i) {
    int ia = a.ndim() - n + i, ib = b.ndim() - n + i;
    std::int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1)
      throw ShapeError(std::string(op) + ": shapes " + a.str() + " and " + b.str() +
                       " cannot be broadcast together (dimension " + std::to_string(i) + ": " + std::to_string(da) +
                       " vs " + std::to_string(db) + ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return Device(DeviceType::CPU);
  if (s.rfind("cuda", 0) == 0) {
    int idx = 0;
    if (s.size() > 5 && s[4] == ':') idx = std::stoi(s.substr(5));
    else if (s.size() != 4) throw ValueError("unknown device '" + s + "' (expected cpu, cuda or cuda:N)");
    return Device(DeviceType::CUDA, idx);
  }
  throw ValueError("unknown device '" + s + "' (expected cpu, cuda or cuda:N)");
}

std::string Device::str() const {
  if (is_cpu()) return "cpu";
  return "cuda:" + std::to_string(index);
}

}  // namespace krill
