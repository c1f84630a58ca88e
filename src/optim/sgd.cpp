// SGD: PyTorch 1.13 torch/optim/sgd.py `_single_tensor_sgd`, one fused float32 loop per parameter.
//
// How each PyTorch op rounds (ATen CPU kernels, float32 tensors, Python scalars cast to float):
//   d_p.add(param, alpha=wd)        -> fma(param, float(wd), d_p)      (ufunc add: vec::fmadd)
//   buf.mul_(momentum)              -> buf * float(momentum)
//   .add_(d_p, alpha=1 - dampening) -> fma(d_p, float(1 - dampening), that)
//   d_p.add(buf, alpha=momentum)    -> fma(buf, float(momentum), d_p)
//   param.add_(d_p, alpha=-lr)      -> fma(d_p, float(-lr), param)
// Every other product/sum must round on its own, so this file is compiled without FP contraction.
#include "krill/optim/sgd.hpp"

#include <cmath>
#include <string>
#include <type_traits>

#include "krill/util/error.hpp"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace krill::optim {

namespace {

[[noreturn]] void fail_option(const std::string& msg) { throw ValueError("SGD: " + msg); }

struct SGDArgs {
  float* p;
  const float* g;
  float* buf;
  float wd, momentum, one_minus_dampening, neg_lr;
};

// kMomentum: 0 = none, 1 = first step (buf = d_p), 2 = buf = momentum * buf + (1 - dampening) * d_p
template <bool kMaximize, bool kWeightDecay, int kMomentum, bool kNesterov>
void sgd_kernel(const SGDArgs& a, std::int64_t begin, std::int64_t end) {
  float* __restrict p = a.p;
  const float* __restrict g = a.g;
  float* __restrict buf = a.buf;
  const float wd = a.wd, mom = a.momentum, omd = a.one_minus_dampening, neg_lr = a.neg_lr;
  for (std::int64_t i = begin; i < end; ++i) {
    float d = g[i];
    if constexpr (kMaximize) d = -d;
    if constexpr (kWeightDecay) d = __builtin_fmaf(p[i], wd, d);
    if constexpr (kMomentum != 0) {
      float b;
      if constexpr (kMomentum == 1) b = d;
      else b = __builtin_fmaf(d, omd, buf[i] * mom);
      buf[i] = b;
      if constexpr (kNesterov) d = __builtin_fmaf(b, mom, d);
      else d = b;
    }
    p[i] = __builtin_fmaf(d, neg_lr, p[i]);
  }
}

template <typename F>
void with_bool(bool v, F&& f) {
  if (v) f(std::true_type{});
  else f(std::false_type{});
}

void run_sgd(const SGDArgs& args, std::int64_t n, bool maximize, bool wd, int momentum, bool nesterov) {
  with_bool(maximize, [&](auto mx) {
    with_bool(wd, [&](auto w) {
      with_bool(nesterov, [&](auto nest) {
        auto go = [&](auto mom) {
          auto body = [&](std::int64_t b, std::int64_t e) {
            sgd_kernel<decltype(mx)::value, decltype(w)::value, decltype(mom)::value, decltype(nest)::value>(args, b, e);
          };
          detail::parallel_for(n, body);
        };
        if (momentum == 0) go(std::integral_constant<int, 0>{});
        else if (momentum == 1) go(std::integral_constant<int, 1>{});
        else go(std::integral_constant<int, 2>{});
      });
    });
  });
}

}  // namespace

void SGDOptions::validate() const {
  // Same checks (and order) as torch.optim.SGD.__init__; `!(x >= 0)` also refuses NaN. Messages
  // are built only on failure: step() re-validates and must not allocate.
  if (!(lr_ >= 0.0)) fail_option("invalid learning rate (lr): " + std::to_string(lr_) + "; it must be >= 0");
  if (!(momentum_ >= 0.0)) fail_option("invalid momentum: " + std::to_string(momentum_) + "; it must be >= 0");
  if (!(weight_decay_ >= 0.0))
    fail_option("invalid weight_decay: " + std::to_string(weight_decay_) + "; it must be >= 0");
  if (!std::isfinite(dampening_)) fail_option("invalid dampening: " + std::to_string(dampening_));
  if (nesterov_ && (momentum_ <= 0 || dampening_ != 0))
    fail_option("nesterov momentum requires a momentum > 0 and zero dampening (got momentum " +
                std::to_string(momentum_) + ", dampening " + std::to_string(dampening_) + ")");
}

SGD::SGD(std::vector<Tensor> params, SGDOptions defaults) : OptimizerWithOptions(defaults) {
  add_initial_params(std::move(params));
}

SGD::SGD(std::vector<ParamGroup<SGDOptions>> groups, SGDOptions defaults) : OptimizerWithOptions(defaults) {
  add_initial_groups(std::move(groups));
}

void SGD::params_added() { momentum_.resize(num_params()); }

const Tensor& SGD::momentum_buffer(std::size_t group, std::size_t j) const {
  check_group(group);
  if (j >= params(group).size()) throw IndexError("SGD: parameter " + std::to_string(j) + " out of range in group " + std::to_string(group));
  return momentum_[param_index(group, j)];
}

void SGD::step() {
  for (std::size_t g = 0; g < num_param_groups(); ++g) {
    const SGDOptions& o = options_[g];
    o.validate();
    SGDArgs args{};
    // Python floats become float32 scalars in ATen's float32 kernels.
    args.wd = static_cast<float>(o.weight_decay());
    args.momentum = static_cast<float>(o.momentum());
    args.one_minus_dampening = static_cast<float>(1.0 - o.dampening());
    args.neg_lr = static_cast<float>(-o.lr());
    const bool wd = o.weight_decay() != 0;
    const bool use_momentum = o.momentum() != 0;
    const auto& ps = params(g);
    for (std::size_t j = 0; j < ps.size(); ++j) {
      const Tensor& p = ps[j];
      const float* grad = grad_data(p, g, j);
      if (!grad) continue;
      const std::int64_t n = p.numel();
      int momentum_mode = 0;
      if (use_momentum) {
        Tensor& buf = momentum_[param_index(g, j)];
        if (!buf.defined()) {
          buf = empty(p.shape(), TensorOptions(DType::Float32));  // first step: buf = clone(d_p)
          momentum_mode = 1;
        } else {
          momentum_mode = 2;
        }
        args.buf = buf.data_ptr<float>();
      } else {
        args.buf = nullptr;
      }
      args.p = static_cast<float*>(p.raw_data());
      args.g = grad;
      run_sgd(args, n, o.maximize(), wd, momentum_mode, o.nesterov());
      p.bump_version();
    }
  }
}

void SGD::init_param_state(std::size_t group, std::size_t j) {
  // A zero buffer, as after a step with a zero gradient. With dampening == 0 (the usual case)
  // the next step computes exactly what PyTorch's lazily created buffer gives
  // (fma(d_p, 1, 0 * momentum) == d_p); with dampening != 0 that step's d_p is scaled by
  // (1 - dampening), as it would be after a zero-gradient step in PyTorch.
  if (options_[group].momentum() == 0) return;
  Tensor& buf = momentum_[param_index(group, j)];
  if (!buf.defined()) buf = zeros_f32(params(group)[j].shape());
}

void SGD::save_param_states(StateDict& sd) const {
  for (std::size_t i = 0; i < momentum_.size(); ++i)
    if (momentum_[i].defined()) sd.insert(state_prefix(i) + "momentum_buffer", copy_of(momentum_[i]));
}

void SGD::save_group_options(std::size_t group, StateDict& sd, const std::string& prefix) const {
  const SGDOptions& o = options_[group];
  sd.insert(prefix + "lr", scalar_f64(o.lr()));
  sd.insert(prefix + "momentum", scalar_f64(o.momentum()));
  sd.insert(prefix + "dampening", scalar_f64(o.dampening()));
  sd.insert(prefix + "weight_decay", scalar_f64(o.weight_decay()));
  sd.insert(prefix + "nesterov", scalar_f64(o.nesterov() ? 1.0 : 0.0));
  sd.insert(prefix + "maximize", scalar_f64(o.maximize() ? 1.0 : 0.0));
}

void SGD::load_state_impl(StateReader& r) {
  std::vector<SGDOptions> opts;
  for (std::size_t g = 0; g < num_param_groups(); ++g) {
    const std::string pre = group_prefix(g);
    SGDOptions o(r.scalar(pre + "lr"));
    o.momentum(r.scalar(pre + "momentum"))
        .dampening(r.scalar(pre + "dampening"))
        .weight_decay(r.scalar(pre + "weight_decay"))
        .nesterov(r.flag(pre + "nesterov"))
        .maximize(r.flag(pre + "maximize"));
    try {
      o.validate();
    } catch (const ValueError& e) {
      r.fail("group " + std::to_string(g) + ": " + e.what());
    }
    opts.push_back(o);
  }
  std::vector<Tensor> bufs(num_params());
  for (std::size_t g = 0; g < num_param_groups(); ++g) {
    const auto& ps = params(g);
    for (std::size_t j = 0; j < ps.size(); ++j) {
      const std::size_t i = param_index(g, j);
      const std::string key = state_prefix(i) + "momentum_buffer";
      if (r.has(key)) bufs[i] = r.buffer(key, ps[j].shape());
    }
  }
  r.finish();
  // Commit: copies, so the optimizer shares nothing with the caller's dict.
  for (auto& b : bufs)
    if (b.defined()) b = copy_of(b);
  options_ = std::move(opts);
  momentum_ = std::move(bufs);
}

}  // namespace krill::optim
