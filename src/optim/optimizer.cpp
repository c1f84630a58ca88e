// Optimizer base: parameter groups, zero_grad, state-dict plumbing, parallel loop helper.
#include "krill/optim/optimizer.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "krill/util/error.hpp"

namespace krill::optim {

namespace {

std::string where(std::size_t g, std::size_t j) {
  return "parameter " + std::to_string(j) + " of group " + std::to_string(g);
}

// Value of element `k` of a tensor of any numeric dtype (contiguous assumed by the caller).
double element_as_double(const Tensor& t, std::int64_t k) {
  const void* p = t.raw_data();
  switch (t.dtype()) {
    case DType::Float32: return static_cast<const float*>(p)[k];
    case DType::Float64: return static_cast<const double*>(p)[k];
    case DType::Int64: return static_cast<double>(static_cast<const std::int64_t*>(p)[k]);
    case DType::Int32: return static_cast<const std::int32_t*>(p)[k];
    case DType::Bool: return static_cast<const bool*>(p)[k] ? 1.0 : 0.0;
    case DType::UInt8: return static_cast<const std::uint8_t*>(p)[k];
    default: break;
  }
  throw DTypeError("element_as_double: unsupported dtype " + std::string(dtype_name(t.dtype())));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// parameter groups

std::size_t Optimizer::add_group_params(std::vector<Tensor> params) {
  const std::string opt(name());
  const std::size_t g = groups_.size();
  for (std::size_t j = 0; j < params.size(); ++j) {
    const Tensor& p = params[j];
    const std::string at = opt + ": " + where(g, j);
    if (!p.defined()) throw ValueError(at + " is an undefined tensor");
    if (!p.is_leaf())
      throw ValueError(at + " is not a leaf tensor (it was computed by an op that autograd recorded); "
                       "optimize leaves such as module parameters, or pass t.detach().requires_grad_()");
    if (p.dtype() != DType::Float32)
      throw DTypeError(at + " is " + std::string(dtype_name(p.dtype())) + "; " + opt + " updates float32 parameters");
    if (!p.device().is_cpu())
      throw ValueError(at + " is on " + p.device().str() + "; " + opt + " runs on CPU parameters only for now");
    if (!p.is_contiguous())
      throw ValueError(at + " (shape " + p.shape().str() + ") is not contiguous; " + opt +
                       " needs contiguous parameters (make them with .contiguous() before training)");
    // A parameter may appear once (PyTorch: "some parameters appear in more than one parameter group").
    auto same = [&](const Tensor& q) { return q.impl() == p.impl(); };
    for (std::size_t k = 0; k < j; ++k)
      if (same(params[k]))
        throw ValueError(at + " appears twice in the group (it is also parameter " + std::to_string(k) + ")");
    for (std::size_t h = 0; h < groups_.size(); ++h)
      for (std::size_t k = 0; k < groups_[h].size(); ++k)
        if (same(groups_[h][k]))
          throw ValueError(at + " is already in the optimizer as " + where(h, k) +
                           "; a parameter may belong to one group only");
  }
  offsets_.push_back(num_params_);
  num_params_ += params.size();
  groups_.push_back(std::move(params));
  return g;
}

void Optimizer::check_group(std::size_t group) const {
  if (group >= groups_.size())
    throw IndexError(std::string(name()) + ": parameter group " + std::to_string(group) + " out of range (the optimizer has " +
                     std::to_string(groups_.size()) + " group" + (groups_.size() == 1 ? "" : "s") + ")");
}

const std::vector<Tensor>& Optimizer::params(std::size_t group) const {
  check_group(group);
  return groups_[group];
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> all;
  all.reserve(num_params_);
  for (const auto& g : groups_) all.insert(all.end(), g.begin(), g.end());
  return all;
}

void Optimizer::set_lr(double lr) {
  for (std::size_t g = 0; g < groups_.size(); ++g) set_lr(g, lr);
}

// ---------------------------------------------------------------------------------------------
// gradients

void Optimizer::zero_grad(bool set_to_none) {
  for (const auto& group : groups_) {
    for (const Tensor& p : group) {
      TensorImpl* impl = p.impl();
      if (!impl->grad) continue;
      if (set_to_none) {
        impl->grad.reset();
        continue;
      }
      Tensor g(impl->grad);
      // PyTorch: a gradient with a graph (create_graph=True) is detached, otherwise it stops
      // requiring grad; then it is zeroed in place.
      if (g.grad_fn()) g.detach_();
      else if (g.requires_grad()) g.set_requires_grad(false);
      if (g.device().is_cpu() && g.is_contiguous()) {
        std::memset(g.raw_data(), 0, g.nbytes());
        g.bump_version();
      } else {
        g.zero_();
      }
    }
  }
}

namespace {
// Row-major contiguity straight from the impl (no handle copy: step() runs this per parameter).
bool impl_is_contiguous(const TensorImpl* t) {
  std::int64_t expected = 1;
  for (int d = t->shape.ndim() - 1; d >= 0; --d) {
    if (t->shape[d] != 1 && t->strides[d] != expected) return false;
    expected *= t->shape[d];
  }
  return true;
}
}  // namespace

const float* Optimizer::grad_data(const Tensor& param, std::size_t group, std::size_t j) const {
  const TensorImpl* gi = param.impl()->grad.get();
  if (!gi) return nullptr;
  if (gi->dtype != DType::Float32) [[unlikely]]
    throw DTypeError(std::string(name()) + ": the gradient of " + where(group, j) + " is " +
                     std::string(dtype_name(gi->dtype)) + "; float32 expected");
  if (!(gi->shape == param.impl()->shape)) [[unlikely]]
    throw ShapeError(std::string(name()) + ": the gradient of " + where(group, j) + " has shape " + gi->shape.str() +
                     " but the parameter has shape " + param.shape().str());
  if (!gi->storage->device.is_cpu()) [[unlikely]]
    throw ValueError(std::string(name()) + ": the gradient of " + where(group, j) + " is on " +
                     gi->storage->device.str() + "; CPU expected");
  if (!impl_is_contiguous(gi)) [[unlikely]]
    throw ValueError(std::string(name()) + ": the gradient of " + where(group, j) +
                     " is not contiguous; set .grad to a contiguous tensor");
  return reinterpret_cast<const float*>(static_cast<const char*>(gi->storage->data) +
                                        gi->offset * static_cast<std::int64_t>(sizeof(float)));
}

// ---------------------------------------------------------------------------------------------
// state dict

std::string Optimizer::group_prefix(std::size_t g) { return "param_groups." + std::to_string(g) + "."; }
std::string Optimizer::state_prefix(std::size_t i) { return "state." + std::to_string(i) + "."; }

Tensor Optimizer::scalar_f64(double v) {
  Tensor t = empty(Shape{}, TensorOptions(DType::Float64));
  *static_cast<double*>(t.raw_data()) = v;
  return t;
}

Tensor Optimizer::vector_f64(const std::vector<double>& v) {
  Tensor t = empty(Shape{static_cast<std::int64_t>(v.size())}, TensorOptions(DType::Float64));
  if (!v.empty()) std::memcpy(t.raw_data(), v.data(), v.size() * sizeof(double));
  return t;
}

Tensor Optimizer::scalar_f32(float v) {
  Tensor t = empty(Shape{}, TensorOptions(DType::Float32));
  *static_cast<float*>(t.raw_data()) = v;
  return t;
}

Tensor Optimizer::zeros_f32(const Shape& shape) {
  Tensor t = empty(shape, TensorOptions(DType::Float32));
  if (t.numel() > 0) std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Tensor Optimizer::copy_of(const Tensor& t) {
  Tensor src = t.is_contiguous() ? t : t.contiguous();
  Tensor c = empty(t.shape(), TensorOptions(t.dtype()));
  if (c.nbytes() > 0) std::memcpy(c.raw_data(), src.raw_data(), c.nbytes());
  return c;
}

StateDict Optimizer::state_dict() const {
  StateDict sd;
  save_param_states(sd);
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const std::string prefix = group_prefix(g);
    save_group_options(g, sd, prefix);
    const auto n = static_cast<std::int64_t>(groups_[g].size());
    Tensor idx = empty(Shape{n}, TensorOptions(DType::Int64));
    auto* d = static_cast<std::int64_t*>(idx.raw_data());
    for (std::int64_t j = 0; j < n; ++j) d[j] = static_cast<std::int64_t>(offsets_[g]) + j;
    sd.insert(prefix + "params", idx);
  }
  return sd;
}

void Optimizer::load_state_dict(const StateDict& state) {
  StateReader r(state, name());
  std::size_t saved_groups = 0;
  while (r.has(group_prefix(saved_groups) + "params")) ++saved_groups;
  if (saved_groups != groups_.size())
    r.fail("the state has " + std::to_string(saved_groups) + " parameter group" + (saved_groups == 1 ? "" : "s") +
           " but the optimizer has " + std::to_string(groups_.size()) +
           " (load a state saved from an optimizer built over the same parameter groups)");
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const std::string key = group_prefix(g) + "params";
    // Size check first for a clear message, then the indices themselves.
    const Tensor* t = state.find(key);
    if (t->dim() != 1)
      r.fail("'" + key + "' must be a 1-D tensor of parameter indices, got shape " + t->shape().str());
    if (t->numel() != static_cast<std::int64_t>(groups_[g].size()))
      r.fail("group " + std::to_string(g) + " of the state has " + std::to_string(t->numel()) +
             " parameters but the optimizer's group " + std::to_string(g) + " has " + std::to_string(groups_[g].size()));
    std::vector<double> idx = r.vector(key, t->numel());
    for (std::size_t j = 0; j < idx.size(); ++j)
      if (idx[j] != static_cast<double>(offsets_[g] + j))
        r.fail("'" + key + "' lists parameter " + std::to_string(static_cast<long long>(idx[j])) + " at position " +
               std::to_string(j) + "; expected " + std::to_string(offsets_[g] + j) +
               " (parameters are numbered over all groups in order)");
  }
  load_state_impl(r);
}

void Optimizer::init_state() {
  for (std::size_t g = 0; g < groups_.size(); ++g)
    for (std::size_t j = 0; j < groups_[g].size(); ++j) init_param_state(g, j);
}

// ---------------------------------------------------------------------------------------------
// StateReader

Optimizer::StateReader::StateReader(const StateDict& sd, std::string_view optimizer)
    : sd_(sd), opt_(optimizer), used_(sd.size(), false) {
  index_.reserve(sd.size());
  std::size_t k = 0;
  for (const auto& item : sd) index_.emplace_back(item.first, k++);
  std::sort(index_.begin(), index_.end());
}

bool Optimizer::StateReader::has(const std::string& key) const {
  auto it = std::lower_bound(index_.begin(), index_.end(), std::make_pair(key, std::size_t{0}));
  return it != index_.end() && it->first == key;
}

void Optimizer::StateReader::fail(const std::string& msg) const {
  throw ValueError(opt_ + ".load_state_dict: " + msg);
}

const Tensor& Optimizer::StateReader::get(const std::string& key) {
  auto it = std::lower_bound(index_.begin(), index_.end(), std::make_pair(key, std::size_t{0}));
  if (it == index_.end() || it->first != key) fail("the state has no '" + key + "'");
  used_[it->second] = true;
  const Tensor& t = sd_.items()[it->second].second;
  if (!t.defined()) fail("'" + key + "' is an undefined tensor");
  return t;
}

double Optimizer::StateReader::scalar(const std::string& key) {
  const Tensor& t = get(key);
  if (t.numel() != 1) fail("'" + key + "' must hold one value, got shape " + t.shape().str());
  return element_as_double(t, 0);
}

bool Optimizer::StateReader::flag(const std::string& key) {
  double v = scalar(key);
  if (v != 0.0 && v != 1.0) fail("'" + key + "' must be 0 or 1, got " + std::to_string(v));
  return v != 0.0;
}

std::vector<double> Optimizer::StateReader::vector(const std::string& key, std::int64_t n) {
  const Tensor& t0 = get(key);
  if (t0.dim() != 1 || t0.numel() != n)
    fail("'" + key + "' must be a 1-D tensor of " + std::to_string(n) + " values, got shape " + t0.shape().str());
  Tensor t = t0.is_contiguous() ? t0 : t0.contiguous();
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t k = 0; k < n; ++k) v[static_cast<std::size_t>(k)] = element_as_double(t, k);
  return v;
}

Tensor Optimizer::StateReader::buffer(const std::string& key, const Shape& shape) {
  const Tensor& t = get(key);
  if (t.dtype() != DType::Float32)
    throw DTypeError(opt_ + ".load_state_dict: '" + key + "' is " + std::string(dtype_name(t.dtype())) +
                     "; float32 expected");
  if (!(t.shape() == shape))
    throw ShapeError(opt_ + ".load_state_dict: '" + key + "' has shape " + t.shape().str() + " but its parameter has shape " +
                     shape.str());
  if (!t.device().is_cpu()) fail("'" + key + "' is on " + t.device().str() + "; CPU expected");
  return t;
}

void Optimizer::StateReader::finish() const {
  std::vector<std::string> unused;
  for (std::size_t k = 0; k < used_.size(); ++k)
    if (!used_[k]) unused.push_back(sd_.items()[k].first);
  if (unused.empty()) return;
  std::ostringstream os;
  os << unused.size() << " unexpected key" << (unused.size() == 1 ? "" : "s") << " in the state (";
  for (std::size_t k = 0; k < unused.size() && k < 8; ++k) os << (k ? ", " : "") << "'" << unused[k] << "'";
  if (unused.size() > 8) os << ", ...";
  os << "); was it saved from a different optimizer or over different parameters?";
  fail(os.str());
}

// ---------------------------------------------------------------------------------------------
// parallel loop

namespace detail {

void parallel_for(std::int64_t n, void (*fn)(void* ctx, std::int64_t begin, std::int64_t end), void* ctx) {
  // At least 64k elements (256 KiB per buffer) per thread: below that one core streams the update
  // about as fast as a fork/join costs, and a busy machine makes waking threads far costlier.
  constexpr std::int64_t kGrain = 1 << 16;
  int threads = 1;
  if (n >= 2 * kGrain && !omp_in_parallel())
    threads = static_cast<int>(std::min<std::int64_t>(omp_get_max_threads(), n / kGrain));
  if (threads <= 1) {
    fn(ctx, 0, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num();
    const std::int64_t nt = omp_get_num_threads();
    const std::int64_t chunk = ((n + nt - 1) / nt + 15) / 16 * 16;
    const std::int64_t b = t * chunk;
    const std::int64_t e = std::min(n, b + chunk);
    if (b < e) fn(ctx, b, e);
  }
}

}  // namespace detail

}  // namespace krill::optim
