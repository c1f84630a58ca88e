// Adam and AdamW: PyTorch 1.13 torch/optim/adam.py `_single_tensor_adam` and adamw.py
// `_single_tensor_adamw` (capturable=False, differentiable=False), one fused float32 loop per
// parameter.
//
// How each PyTorch op rounds (ATen CPU kernels on float32 tensors; Python floats are cast to
// float; bias corrections and step size are Python (double) arithmetic):
//   grad.add(param, alpha=wd)                    -> fma(param, float(wd), grad)        (vec::fmadd)
//   param.mul_(1 - lr * wd)              (AdamW) -> param * float(1 - lr * wd)
//   exp_avg.mul_(beta1).add_(grad, alpha=1-beta1)
//                                                -> fma(grad, float(1 - beta1), exp_avg * float(beta1))
//   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1-beta2)
//                                                -> fma(float(1 - beta2) * grad, grad, exp_avg_sq * float(beta2))
//                                                   (addcmul's self + value * t1 * t2 is contracted by
//                                                   the compiler in ATen's build, vector and scalar paths)
//   torch.maximum(max_exp_avg_sq, exp_avg_sq)    -> max, NaN-propagating
//   (v.sqrt() / bias_correction2_sqrt).add_(eps) -> sqrt(v) / float(sqrt(bc2)) + float(eps)  (true division)
//   param.addcdiv_(exp_avg, denom, value=-step_size)
//                                                -> param + (float(-step_size) * exp_avg) / denom
// These were checked element by element against torch 1.13 (tests/optim/test_oracle.cpp
// compares whole trajectories). Every other product/sum rounds on its own, so the kernels are
// compiled without FP contraction.
#include "krill/optim/adam.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "krill/optim/adamw.hpp"
#include "krill/util/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace krill::optim {
namespace {

constexpr std::int64_t kBlock = 256;

// x[k] = sqrt(x[k]) (IEEE, correctly rounded). Explicit SIMD because GCC will not vectorize
// sqrt unless the whole build uses -fno-math-errno (a per-file pragma cannot change that).
// Defined before the no-contraction pragma below so the intrinsics inline normally.
inline void sqrt_inplace(float* x, std::int64_t n) {
  std::int64_t k = 0;
#if defined(__AVX__)  // (also on AVX-512: GCC 12's _mm512_sqrt_ps trips -Wmaybe-uninitialized)
  for (; k + 8 <= n; k += 8) _mm256_storeu_ps(x + k, _mm256_sqrt_ps(_mm256_loadu_ps(x + k)));
#elif defined(__SSE__)
  for (; k + 4 <= n; k += 4) _mm_storeu_ps(x + k, _mm_sqrt_ps(_mm_loadu_ps(x + k)));
#elif defined(__aarch64__)
  for (; k + 4 <= n; k += 4) vst1q_f32(x + k, vsqrtq_f32(vld1q_f32(x + k)));
#endif
  for (; k < n; ++k) x[k] = std::sqrt(x[k]);
}

}  // namespace
}  // namespace krill::optim

// ATen's kernels fuse only where noted above; everything else must round on its own.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace krill::optim {

namespace {

struct AdamArgs {
  float* p;
  const float* g;
  float* m;
  float* v;
  float* vmax;
  float wd, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size;
};

template <bool kMaximize, bool kWeightDecay, bool kDecoupled, bool kAmsgrad>
void adam_kernel(const AdamArgs& a, std::int64_t begin, std::int64_t end) {
  float* __restrict p = a.p;
  const float* __restrict g = a.g;
  float* __restrict m = a.m;
  float* __restrict v = a.v;
  float* __restrict vmax = a.vmax;
  const float wd = a.wd, decay = a.decay, b1 = a.beta1, omb1 = a.one_minus_beta1, b2 = a.beta2,
              omb2 = a.one_minus_beta2, bc2s = a.bc2_sqrt, eps = a.eps, nss = a.neg_step_size;
  // Blocks of kBlock elements in three passes, each a loop the compiler vectorizes: the moments,
  // the square roots (explicit SIMD: see sqrt_inplace), the parameter update.
  alignas(64) float root[kBlock];
  for (std::int64_t b0 = begin; b0 < end; b0 += kBlock) {
    const std::int64_t nb = std::min<std::int64_t>(kBlock, end - b0);
    float* __restrict pb = p + b0;
    const float* __restrict gb = g + b0;
    float* __restrict mb = m + b0;
    float* __restrict vb = v + b0;
    for (std::int64_t k = 0; k < nb; ++k) {
      float gi = gb[k];
      if constexpr (kMaximize) gi = -gi;
      if constexpr (kWeightDecay && !kDecoupled) gi = __builtin_fmaf(pb[k], wd, gi);
      mb[k] = __builtin_fmaf(gi, omb1, mb[k] * b1);
      const float vi = __builtin_fmaf(omb2 * gi, gi, vb[k] * b2);
      vb[k] = vi;
      if constexpr (kAmsgrad) {
        const float mx = vmax[b0 + k];
        const float vv = (vi > mx || vi != vi) ? vi : mx;  // torch.maximum propagates NaN
        vmax[b0 + k] = vv;
        root[k] = vv;
      } else {
        root[k] = vi;
      }
    }
    sqrt_inplace(root, nb);
    for (std::int64_t k = 0; k < nb; ++k) {
      float pi = pb[k];
      if constexpr (kWeightDecay && kDecoupled) pi = pi * decay;
      const float denom = root[k] / bc2s + eps;
      pb[k] = pi + (nss * mb[k]) / denom;
    }
  }
}

template <typename F>
void with_bool(bool v, F&& f) {
  if (v) f(std::true_type{});
  else f(std::false_type{});
}

template <bool kDecoupled>
void run_adam(const AdamArgs& args, std::int64_t n, bool maximize, bool wd, bool amsgrad) {
  with_bool(maximize, [&](auto mx) {
    with_bool(wd, [&](auto w) {
      with_bool(amsgrad, [&](auto ams) {
        auto body = [&](std::int64_t b, std::int64_t e) {
          adam_kernel<decltype(mx)::value, decltype(w)::value, kDecoupled, decltype(ams)::value>(args, b, e);
        };
        detail::parallel_for(n, body);
      });
    });
  });
}

template <typename Options>
void validate_adam(const Options& o, const char* who) {
  auto fail = [&](const std::string& msg) { throw ValueError(std::string(who) + ": " + msg); };
  // torch.optim.Adam/AdamW.__init__'s checks, in its order; `!(0 <= x)` also refuses NaN.
  if (!(0.0 <= o.lr())) fail("invalid learning rate (lr): " + std::to_string(o.lr()) + "; it must be >= 0");
  if (!(0.0 <= o.eps())) fail("invalid epsilon value (eps): " + std::to_string(o.eps()) + "; it must be >= 0");
  if (!(0.0 <= o.betas().first && o.betas().first < 1.0))
    fail("invalid beta parameter at index 0 (betas.first): " + std::to_string(o.betas().first) + "; it must be in [0, 1)");
  if (!(0.0 <= o.betas().second && o.betas().second < 1.0))
    fail("invalid beta parameter at index 1 (betas.second): " + std::to_string(o.betas().second) +
         "; it must be in [0, 1)");
  if (!(0.0 <= o.weight_decay()))
    fail("invalid weight_decay value: " + std::to_string(o.weight_decay()) + "; it must be >= 0");
}

// The shared body of Adam and AdamW.
template <bool kDecoupled, typename Options>
void adam_step(Optimizer& opt, const std::vector<Options>& options, std::vector<detail::AdamParamState>& state) {
  for (std::size_t g = 0; g < opt.num_param_groups(); ++g) {
    const Options& o = options[g];
    validate_adam(o, kDecoupled ? "AdamW" : "Adam");
    const double lr = o.lr(), wd = o.weight_decay();
    const double beta1 = o.betas().first, beta2 = o.betas().second;
    AdamArgs args{};
    args.wd = static_cast<float>(wd);
    args.decay = static_cast<float>(1.0 - lr * wd);
    args.beta1 = static_cast<float>(beta1);
    args.one_minus_beta1 = static_cast<float>(1.0 - beta1);
    args.beta2 = static_cast<float>(beta2);
    args.one_minus_beta2 = static_cast<float>(1.0 - beta2);
    args.eps = static_cast<float>(o.eps());
    // AdamW always multiplies by (1 - lr * wd); with wd == 0 that is * 1.0f, exact, so skip it.
    const bool use_wd = wd != 0;
    float last_step = -1.0f;
    const auto& ps = opt.params(g);
    for (std::size_t j = 0; j < ps.size(); ++j) {
      const Tensor& p = ps[j];
      const float* grad = opt.grad_data(p, g, j);
      if (!grad) continue;
      detail::AdamParamState& st = state[opt.param_index(g, j)];
      if (!st.initialized()) {
        st.step = 0;
        st.exp_avg = Optimizer::zeros_f32(p.shape());
        st.exp_avg_sq = Optimizer::zeros_f32(p.shape());
      }
      if (o.amsgrad() && !st.max_exp_avg_sq.defined()) st.max_exp_avg_sq = Optimizer::zeros_f32(p.shape());
      // step_t += 1 on a float32 tensor, then step_t.item() as a Python float.
      st.step = st.step + 1.0f;
      if (st.step != last_step) {  // parameters of a group usually share the step: compute once
        last_step = st.step;
        const double step = st.step;
        const double bias_correction1 = 1.0 - std::pow(beta1, step);
        const double bias_correction2 = 1.0 - std::pow(beta2, step);
        const double step_size = lr / bias_correction1;
        args.bc2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
        args.neg_step_size = static_cast<float>(-step_size);
      }
      args.p = static_cast<float*>(p.raw_data());
      args.g = grad;
      args.m = static_cast<float*>(st.exp_avg.raw_data());
      args.v = static_cast<float*>(st.exp_avg_sq.raw_data());
      args.vmax = o.amsgrad() ? static_cast<float*>(st.max_exp_avg_sq.raw_data()) : nullptr;
      run_adam<kDecoupled>(args, p.numel(), o.maximize(), use_wd, o.amsgrad());
      p.bump_version();
    }
  }
}

template <typename Options>
void adam_save_group(const Options& o, StateDict& sd, const std::string& prefix) {
  sd.insert(prefix + "lr", Optimizer::scalar_f64(o.lr()));
  sd.insert(prefix + "betas", Optimizer::vector_f64({o.betas().first, o.betas().second}));
  sd.insert(prefix + "eps", Optimizer::scalar_f64(o.eps()));
  sd.insert(prefix + "weight_decay", Optimizer::scalar_f64(o.weight_decay()));
  sd.insert(prefix + "amsgrad", Optimizer::scalar_f64(o.amsgrad() ? 1.0 : 0.0));
  sd.insert(prefix + "maximize", Optimizer::scalar_f64(o.maximize() ? 1.0 : 0.0));
}

void adam_save_states(const std::vector<detail::AdamParamState>& state, StateDict& sd) {
  for (std::size_t i = 0; i < state.size(); ++i) {
    const auto& st = state[i];
    if (!st.initialized()) continue;
    const std::string pre = Optimizer::state_prefix(i);
    sd.insert(pre + "step", Optimizer::scalar_f32(st.step));
    sd.insert(pre + "exp_avg", Optimizer::copy_of(st.exp_avg));
    sd.insert(pre + "exp_avg_sq", Optimizer::copy_of(st.exp_avg_sq));
    if (st.max_exp_avg_sq.defined()) sd.insert(pre + "max_exp_avg_sq", Optimizer::copy_of(st.max_exp_avg_sq));
  }
}

template <typename Options>
void adam_load(Optimizer& opt, Optimizer::StateReader& r, std::vector<Options>& options,
               std::vector<detail::AdamParamState>& state, const char* who) {
  std::vector<Options> opts;
  for (std::size_t g = 0; g < opt.num_param_groups(); ++g) {
    const std::string pre = Optimizer::group_prefix(g);
    Options o(r.scalar(pre + "lr"));
    const std::vector<double> betas = r.vector(pre + "betas", 2);
    o.betas({betas[0], betas[1]})
        .eps(r.scalar(pre + "eps"))
        .weight_decay(r.scalar(pre + "weight_decay"))
        .amsgrad(r.flag(pre + "amsgrad"))
        .maximize(r.flag(pre + "maximize"));
    try {
      validate_adam(o, who);
    } catch (const ValueError& e) {
      r.fail("group " + std::to_string(g) + ": " + e.what());
    }
    opts.push_back(o);
  }
  std::vector<detail::AdamParamState> loaded(opt.num_params());
  for (std::size_t g = 0; g < opt.num_param_groups(); ++g) {
    const auto& ps = opt.params(g);
    for (std::size_t j = 0; j < ps.size(); ++j) {
      const std::size_t i = opt.param_index(g, j);
      const std::string pre = Optimizer::state_prefix(i);
      const bool any = r.has(pre + "step") || r.has(pre + "exp_avg") || r.has(pre + "exp_avg_sq") ||
                       r.has(pre + "max_exp_avg_sq");
      if (!any) continue;
      auto& st = loaded[i];
      const double step = r.scalar(pre + "step");
      if (!(step >= 0) || step != std::floor(step))
        r.fail("'" + pre + "step' must be a non-negative whole number, got " + std::to_string(step));
      st.step = static_cast<float>(step);
      st.exp_avg = r.buffer(pre + "exp_avg", ps[j].shape());
      st.exp_avg_sq = r.buffer(pre + "exp_avg_sq", ps[j].shape());
      if (r.has(pre + "max_exp_avg_sq")) st.max_exp_avg_sq = r.buffer(pre + "max_exp_avg_sq", ps[j].shape());
      else if (opts[g].amsgrad() && step > 0)
        r.fail("group " + std::to_string(g) + " uses amsgrad but the state of parameter " + std::to_string(i) +
               " has no 'max_exp_avg_sq'");
    }
  }
  r.finish();
  for (auto& st : loaded) {
    if (st.exp_avg.defined()) st.exp_avg = Optimizer::copy_of(st.exp_avg);
    if (st.exp_avg_sq.defined()) st.exp_avg_sq = Optimizer::copy_of(st.exp_avg_sq);
    if (st.max_exp_avg_sq.defined()) st.max_exp_avg_sq = Optimizer::copy_of(st.max_exp_avg_sq);
  }
  options = std::move(opts);
  state = std::move(loaded);
}

void adam_init_param(const Tensor& p, bool amsgrad, detail::AdamParamState& st) {
  if (!st.initialized()) {
    st.step = 0;
    st.exp_avg = Optimizer::zeros_f32(p.shape());
    st.exp_avg_sq = Optimizer::zeros_f32(p.shape());
  }
  if (amsgrad && !st.max_exp_avg_sq.defined()) st.max_exp_avg_sq = Optimizer::zeros_f32(p.shape());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Adam

void AdamOptions::validate() const { validate_adam(*this, "Adam"); }

Adam::Adam(std::vector<Tensor> params, AdamOptions defaults) : OptimizerWithOptions(defaults) {
  add_initial_params(std::move(params));
}

Adam::Adam(std::vector<ParamGroup<AdamOptions>> groups, AdamOptions defaults) : OptimizerWithOptions(defaults) {
  add_initial_groups(std::move(groups));
}

void Adam::params_added() { state_.resize(num_params()); }

const detail::AdamParamState& Adam::param_state(std::size_t group, std::size_t j) const {
  if (j >= params(group).size()) throw IndexError("Adam: parameter " + std::to_string(j) + " out of range in group " + std::to_string(group));
  return state_[param_index(group, j)];
}

void Adam::step() { adam_step<false>(*this, options_, state_); }
void Adam::save_param_states(StateDict& sd) const { adam_save_states(state_, sd); }
void Adam::save_group_options(std::size_t group, StateDict& sd, const std::string& prefix) const {
  adam_save_group(options_[group], sd, prefix);
}
void Adam::load_state_impl(StateReader& r) { adam_load(*this, r, options_, state_, "Adam"); }
void Adam::init_param_state(std::size_t group, std::size_t j) {
  adam_init_param(params(group)[j], options_[group].amsgrad(), state_[param_index(group, j)]);
}

// ---------------------------------------------------------------------------------------------
// AdamW

void AdamWOptions::validate() const { validate_adam(*this, "AdamW"); }

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions defaults) : OptimizerWithOptions(defaults) {
  add_initial_params(std::move(params));
}

AdamW::AdamW(std::vector<ParamGroup<AdamWOptions>> groups, AdamWOptions defaults) : OptimizerWithOptions(defaults) {
  add_initial_groups(std::move(groups));
}

void AdamW::params_added() { state_.resize(num_params()); }

const detail::AdamParamState& AdamW::param_state(std::size_t group, std::size_t j) const {
  if (j >= params(group).size()) throw IndexError("AdamW: parameter " + std::to_string(j) + " out of range in group " + std::to_string(group));
  return state_[param_index(group, j)];
}

void AdamW::step() { adam_step<true>(*this, options_, state_); }
void AdamW::save_param_states(StateDict& sd) const { adam_save_states(state_, sd); }
void AdamW::save_group_options(std::size_t group, StateDict& sd, const std::string& prefix) const {
  adam_save_group(options_[group], sd, prefix);
}
void AdamW::load_state_impl(StateReader& r) { adam_load(*this, r, options_, state_, "AdamW"); }
void AdamW::init_param_state(std::size_t group, std::size_t j) {
  adam_init_param(params(group)[j], options_[group].amsgrad(), state_[param_index(group, j)]);
}

}  // namespace krill::optim
