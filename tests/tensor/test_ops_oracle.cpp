// Every tensor op against PyTorch (1.13, the oracle): forward values and gradients on fresh
// random inputs. tests/oracle/ops_oracle.py draws the cases from this run's seed (shapes 0-d to
// 4-d, broadcasting patterns, negative dims, keepdim, non-contiguous transposed operands, float32
// and float64), computes PyTorch's outputs and the gradients of sum(out * R) for a random R, and
// writes them as raw little-endian tensors plus a JSON manifest. Each case is replayed here with
// krill and compared.
//
// Tolerance: a float tensor passes when every element has |krill - torch| <= kRelTol *
// max(|torch|, floor), kRelTol = 1e-5, floor = max(1e-3, 1e-3 * max|torch| over the tensor):
// relative error 1e-5 for every element of non-negligible size, and for elements that cancel to
// nearly zero an absolute error of 1e-8 x the tensor's scale.
//
// Two float32 implementations that accumulate in different orders can differ by more than that
// where terms cancel (PyTorch's own float32 70-term dot products are not that close to the exact
// answer either). So for float32 cases the oracle also evaluates each case in float64 on the same
// inputs, and a tensor beyond 1e-5 of torch float32 still passes when krill is accurate:
//  - ops whose results are sums of products (mul, div, add/sub, matmul, mm, linear, sum, mean,
//    cat, stack, index_select, gather): |krill - exact| <= 1e-5 x sum|terms| at every element,
//    sum|terms| being the same computation on |inputs| and |R| (the standard bound for
//    floating-point summation, n u sum|terms|, is below that for n <= 160);
//  - other ops: normwise error max|krill - exact| / max|exact| <= max(1e-6, 2 x torch float32's).
// Each family's summary line counts the tensors that needed this. Integer and bool results
// (indices, comparisons) must be equal. One test per op family; a failure names the case, op,
// parameters, shapes and the worst element.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "krill/krill.hpp"
#include "support/oracle.hpp"

using namespace krill;
using json = nlohmann::json;

namespace {

constexpr double kRelTol = 1e-5;
constexpr double kFloorAbs = 1e-3;
constexpr double kFloorRel = 1e-3;
constexpr double kNormTol = 1e-6;
constexpr double kAccuracySlack = 2.0;

// ---------------------------------------------------------------------------------------------
// Oracle data

struct Oracle {
  std::string dir;
  json manifest;
  std::vector<char> data;
};

DType parse_dtype(const std::string& s) {
  if (s == "float32") return DType::Float32;
  if (s == "float64") return DType::Float64;
  if (s == "int64") return DType::Int64;
  if (s == "bool") return DType::Bool;
  throw std::runtime_error("ops oracle: unknown dtype " + s);
}

Shape parse_shape(const json& j) {
  std::vector<std::int64_t> v = j.get<std::vector<std::int64_t>>();
  return Shape(v);
}

std::string shape_of(const json& desc) { return parse_shape(desc.at("shape")).str(); }

Tensor load(const Oracle& o, const json& desc) {
  const DType dt = parse_dtype(desc.at("dtype"));
  const Shape shape = parse_shape(desc.at("shape"));
  Tensor t = empty(shape, TensorOptions(dt));
  const auto off = desc.at("offset").get<std::size_t>();
  if (off + t.nbytes() > o.data.size()) throw std::runtime_error("ops oracle: data.bin is too short");
  std::memcpy(t.raw_data(), o.data.data() + off, t.nbytes());
  return t;
}

Oracle run_family(const std::string& family) {
  Oracle o;
  o.dir = test::make_temp_dir("ops_oracle_" + family);
  const std::uint64_t seed = test::run_seed();
  test::run_oracle("ops_oracle.py", {"--seed", std::to_string(seed), "--out", o.dir, "--family", family});
  std::ifstream mf(o.dir + "/manifest.json");
  if (!mf) throw std::runtime_error("ops oracle: no manifest in " + o.dir);
  o.manifest = json::parse(mf);
  std::ifstream df(o.dir + "/data.bin", std::ios::binary);
  o.data.assign(std::istreambuf_iterator<char>(df), std::istreambuf_iterator<char>());
  return o;
}

// ---------------------------------------------------------------------------------------------
// The ops, as the manifest names them

using Args = std::vector<Tensor>;
using Outs = std::vector<Tensor>;
using OpFn = std::function<Outs(const Args&, const json&)>;

std::string spelling(const json& p) { return p.contains("spelling") ? p["spelling"].get<std::string>() : "fn"; }

Reduction parse_reduction(const std::string& s) {
  if (s == "mean") return Reduction::Mean;
  if (s == "sum") return Reduction::Sum;
  if (s == "none") return Reduction::None;
  throw std::runtime_error("ops oracle: unknown reduction " + s);
}

std::optional<std::int64_t> opt_int(const json& j) {
  if (j.is_null()) return std::nullopt;
  return j.get<std::int64_t>();
}

Tensor apply_post(const json& post, const Tensor& t) {
  if (post.is_null()) return t;
  const std::string p = post.get<std::string>();
  if (p == "sum0") return t.ndim() > 0 ? t.sum(0) : mul(t, 1.0);
  if (p == "square") return mul(t, t);
  if (p == "exp_mean") return mean(exp(t));
  throw std::runtime_error("ops oracle: unknown post op " + p);
}

const std::map<std::string, OpFn>& op_table() {
  static const std::map<std::string, OpFn> table = [] {
    std::map<std::string, OpFn> m;
    // ---- binary ----
    m["add"] = [](const Args& a, const json& p) -> Outs {
      if (p.contains("alpha")) return {add(a[0], a[1], p["alpha"].get<double>())};
      const auto s = spelling(p);
      if (s == "operator") return {a[0] + a[1]};
      if (s == "method") return {a[0].add(a[1])};
      return {add(a[0], a[1])};
    };
    m["sub"] = [](const Args& a, const json& p) -> Outs {
      if (p.contains("alpha")) return {sub(a[0], a[1], p["alpha"].get<double>())};
      const auto s = spelling(p);
      if (s == "operator") return {a[0] - a[1]};
      if (s == "method") return {a[0].sub(a[1])};
      return {sub(a[0], a[1])};
    };
    m["mul"] = [](const Args& a, const json& p) -> Outs {
      const auto s = spelling(p);
      if (s == "operator") return {a[0] * a[1]};
      if (s == "method") return {a[0].mul(a[1])};
      return {mul(a[0], a[1])};
    };
    m["div"] = [](const Args& a, const json& p) -> Outs {
      const auto s = spelling(p);
      if (s == "operator") return {a[0] / a[1]};
      if (s == "method") return {a[0].div(a[1])};
      return {div(a[0], a[1])};
    };
    m["pow"] = [](const Args& a, const json&) -> Outs { return {pow(a[0], a[1])}; };
    m["maximum"] = [](const Args& a, const json&) -> Outs { return {maximum(a[0], a[1])}; };
    m["minimum"] = [](const Args& a, const json&) -> Outs { return {minimum(a[0], a[1])}; };
    // ---- scalar forms ----
    auto scalar_op = [](auto fn, auto op) {
      return [fn, op](const Args& a, const json& p) -> Outs {
        const double s = p["scalar"].get<double>();
        return {spelling(p) == "operator" ? op(a[0], s) : fn(a[0], s)};
      };
    };
    m["add_scalar"] = scalar_op([](const Tensor& x, double s) { return add(x, s); },
                                [](const Tensor& x, double s) { return x + s; });
    m["sub_scalar"] = scalar_op([](const Tensor& x, double s) { return sub(x, s); },
                                [](const Tensor& x, double s) { return x - s; });
    m["rsub_scalar"] = scalar_op([](const Tensor& x, double s) { return rsub(x, s); },
                                 [](const Tensor& x, double s) { return s - x; });
    m["mul_scalar"] = scalar_op([](const Tensor& x, double s) { return mul(x, s); },
                                [](const Tensor& x, double s) { return x * s; });
    m["div_scalar"] = scalar_op([](const Tensor& x, double s) { return div(x, s); },
                                [](const Tensor& x, double s) { return x / s; });
    m["rdiv_scalar"] = scalar_op([](const Tensor& x, double s) { return rdiv(x, s); },
                                 [](const Tensor& x, double s) { return s / x; });
    m["pow_scalar"] = [](const Args& a, const json& p) -> Outs {
      const double e = p["scalar"].get<double>();
      return {spelling(p) == "method" ? a[0].pow(e) : pow(a[0], e)};
    };
    // ---- comparisons ----
    m["eq"] = [](const Args& a, const json&) -> Outs { return {eq(a[0], a[1])}; };
    m["ne"] = [](const Args& a, const json&) -> Outs { return {ne(a[0], a[1])}; };
    m["lt"] = [](const Args& a, const json&) -> Outs { return {lt(a[0], a[1])}; };
    m["le"] = [](const Args& a, const json&) -> Outs { return {le(a[0], a[1])}; };
    m["gt"] = [](const Args& a, const json&) -> Outs { return {gt(a[0], a[1])}; };
    m["ge"] = [](const Args& a, const json&) -> Outs { return {ge(a[0], a[1])}; };
    // ---- unary ----
    auto unary_op = [](Tensor (*fn)(const Tensor&), Tensor (Tensor::*method)() const) {
      return [fn, method](const Args& a, const json& p) -> Outs {
        return {spelling(p) == "method" ? (a[0].*method)() : fn(a[0])};
      };
    };
    m["relu"] = unary_op(&krill::relu, &Tensor::relu);
    m["sigmoid"] = unary_op(&krill::sigmoid, &Tensor::sigmoid);
    m["tanh"] = unary_op(&krill::tanh, &Tensor::tanh);
    m["exp"] = unary_op(&krill::exp, &Tensor::exp);
    m["log"] = unary_op(&krill::log, &Tensor::log);
    m["sqrt"] = unary_op(&krill::sqrt, &Tensor::sqrt);
    m["neg"] = unary_op(&krill::neg, &Tensor::neg);
    m["abs"] = unary_op(&krill::abs, &Tensor::abs);
    m["clamp"] = [](const Args& a, const json& p) -> Outs {
      return {clamp(a[0], p["min"].get<double>(), p["max"].get<double>())};
    };
    // ---- linear algebra ----
    m["matmul"] = [](const Args& a, const json& p) -> Outs {
      return {spelling(p) == "method" ? a[0].matmul(a[1]) : matmul(a[0], a[1])};
    };
    m["mm"] = [](const Args& a, const json&) -> Outs { return {mm(a[0], a[1])}; };
    m["linear"] = [](const Args& a, const json& p) -> Outs {
      return {p["bias"].get<bool>() ? linear(a[0], a[1], a[2]) : linear(a[0], a[1])};
    };
    // ---- reductions ----
    auto sum_mean = [](bool is_mean) {
      return [is_mean](const Args& a, const json& p) -> Outs {
        const bool method = spelling(p) == "method";
        if (p["dims"].is_null()) {
          if (method) return {is_mean ? a[0].mean() : a[0].sum()};
          return {is_mean ? mean(a[0]) : sum(a[0])};
        }
        auto dims = p["dims"].get<std::vector<std::int64_t>>();
        const bool keep = p["keepdim"].get<bool>();
        if (method && dims.size() == 1) return {is_mean ? a[0].mean(dims[0], keep) : a[0].sum(dims[0], keep)};
        if (method) return {is_mean ? a[0].mean(dims, keep) : a[0].sum(dims, keep)};
        return {is_mean ? mean(a[0], dims, keep) : sum(a[0], dims, keep)};
      };
    };
    m["sum"] = sum_mean(false);
    m["mean"] = sum_mean(true);
    m["max_all"] = [](const Args& a, const json& p) -> Outs {
      return {spelling(p) == "method" ? a[0].max() : max(a[0])};
    };
    m["min_all"] = [](const Args& a, const json& p) -> Outs {
      return {spelling(p) == "method" ? a[0].min() : min(a[0])};
    };
    m["max_dim"] = [](const Args& a, const json& p) -> Outs {
      const auto d = p["dim"].get<std::int64_t>();
      const bool k = p["keepdim"].get<bool>();
      auto r = spelling(p) == "method" ? a[0].max(d, k) : max(a[0], d, k);
      return {r.first, r.second};
    };
    m["min_dim"] = [](const Args& a, const json& p) -> Outs {
      const auto d = p["dim"].get<std::int64_t>();
      const bool k = p["keepdim"].get<bool>();
      auto r = spelling(p) == "method" ? a[0].min(d, k) : min(a[0], d, k);
      return {r.first, r.second};
    };
    m["argmax_dim"] = [](const Args& a, const json& p) -> Outs {
      const auto d = p["dim"].get<std::int64_t>();
      const bool k = p["keepdim"].get<bool>();
      return {spelling(p) == "method" ? a[0].argmax(d, k) : argmax(a[0], d, k)};
    };
    m["argmin_dim"] = [](const Args& a, const json& p) -> Outs {
      return {argmin(a[0], p["dim"].get<std::int64_t>(), p["keepdim"].get<bool>())};
    };
    m["argmax_all"] = [](const Args& a, const json& p) -> Outs {
      return {spelling(p) == "method" ? a[0].argmax() : argmax(a[0])};
    };
    // ---- softmax ----
    m["softmax"] = [](const Args& a, const json& p) -> Outs {
      const auto d = p["dim"].get<std::int64_t>();
      return {spelling(p) == "method" ? a[0].softmax(d) : softmax(a[0], d)};
    };
    m["log_softmax"] = [](const Args& a, const json& p) -> Outs {
      const auto d = p["dim"].get<std::int64_t>();
      return {spelling(p) == "method" ? a[0].log_softmax(d) : log_softmax(a[0], d)};
    };
    // ---- losses ----
    m["nll_loss"] = [](const Args& a, const json& p) -> Outs {
      return {nll_loss(a[0], a[1], parse_reduction(p["reduction"]), p["ignore_index"].get<std::int64_t>())};
    };
    m["cross_entropy"] = [](const Args& a, const json& p) -> Outs {
      return {cross_entropy(a[0], a[1], parse_reduction(p["reduction"]), p["ignore_index"].get<std::int64_t>())};
    };
    m["mse_loss"] = [](const Args& a, const json& p) -> Outs {
      return {mse_loss(a[0], a[1], parse_reduction(p["reduction"]))};
    };
    // ---- joining and indexing ----
    m["cat"] = [](const Args& a, const json& p) -> Outs { return {cat(a, p["dim"].get<std::int64_t>())}; };
    m["stack"] = [](const Args& a, const json& p) -> Outs { return {stack(a, p["dim"].get<std::int64_t>())}; };
    m["index_select"] = [](const Args& a, const json& p) -> Outs {
      const auto d = p["dim"].get<std::int64_t>();
      return {spelling(p) == "method" ? a[0].index_select(d, a[1]) : index_select(a[0], d, a[1])};
    };
    m["gather"] = [](const Args& a, const json& p) -> Outs {
      const auto d = p["dim"].get<std::int64_t>();
      return {spelling(p) == "method" ? a[0].gather(d, a[1]) : gather(a[0], d, a[1])};
    };
    m["where"] = [](const Args& a, const json&) -> Outs { return {where(a[0], a[1], a[2])}; };
    // ---- views (then an optional post op: a reduction, a square, exp+mean) ----
    auto view_op = [](std::function<Tensor(const Tensor&, const json&)> f) {
      return [f](const Args& a, const json& p) -> Outs { return {apply_post(p["post"], f(a[0], p))}; };
    };
    m["reshape"] = view_op([](const Tensor& x, const json& p) { return x.reshape(parse_shape(p["shape"])); });
    m["view"] = view_op([](const Tensor& x, const json& p) { return x.view(parse_shape(p["shape"])); });
    m["transpose"] = view_op([](const Tensor& x, const json& p) {
      return x.transpose(p["d0"].get<std::int64_t>(), p["d1"].get<std::int64_t>());
    });
    m["t"] = view_op([](const Tensor& x, const json&) { return x.t(); });
    m["permute"] = view_op([](const Tensor& x, const json& p) { return x.permute(parse_shape(p["dims"])); });
    m["slice"] = view_op([](const Tensor& x, const json& p) {
      return x.slice(p["dim"].get<std::int64_t>(), opt_int(p["start"]), opt_int(p["stop"]),
                     p["step"].get<std::int64_t>());
    });
    m["narrow"] = view_op([](const Tensor& x, const json& p) {
      return x.narrow(p["dim"].get<std::int64_t>(), p["start"].get<std::int64_t>(), p["length"].get<std::int64_t>());
    });
    m["select"] = view_op([](const Tensor& x, const json& p) {
      return x.select(p["dim"].get<std::int64_t>(), p["index"].get<std::int64_t>());
    });
    m["expand"] = view_op([](const Tensor& x, const json& p) { return x.expand(parse_shape(p["shape"])); });
    m["unsqueeze"] = view_op([](const Tensor& x, const json& p) { return x.unsqueeze(p["dim"].get<std::int64_t>()); });
    m["squeeze_dim"] = view_op([](const Tensor& x, const json& p) { return x.squeeze(p["dim"].get<std::int64_t>()); });
    m["squeeze_all"] = view_op([](const Tensor& x, const json&) { return x.squeeze(); });
    m["flatten"] = view_op([](const Tensor& x, const json& p) {
      return x.flatten(p["start"].get<std::int64_t>(), p["end"].get<std::int64_t>());
    });
    m["contiguous"] = view_op([](const Tensor& x, const json&) { return x.contiguous(); });
    return m;
  }();
  return table;
}

// ---------------------------------------------------------------------------------------------
// Comparison

struct FamilyStats {
  int cases = 0, grads = 0;
  double worst_fwd = 0, worst_grad = 0;
  std::string worst_fwd_case, worst_grad_case;
  int by_accuracy = 0;     // tensors beyond kRelTol of torch float32 that passed on accuracy
  double worst_terms = 0;  // their worst error / sum|terms| against float64 (sums of products)
  double worst_norm = 0;   // their worst normwise error against float64 (other ops)
};

struct Worst {
  double err = 0;
  std::int64_t index = -1;
  double actual = 0, expected = 0;
};

std::string multi_index(const Shape& s, std::int64_t flat) {
  std::vector<std::int64_t> idx(s.ndim());
  for (int d = s.ndim() - 1; d >= 0; --d) {
    idx[d] = s[d] ? flat % s[d] : 0;
    flat = s[d] ? flat / s[d] : 0;
  }
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < idx.size(); ++i) os << (i ? ", " : "") << idx[i];
  os << "]";
  return os.str();
}

// Equal values, infinities of the same sign, or both NaN.
bool same(double a, double e) { return a == e || (std::isnan(a) && std::isnan(e)); }

// Normwise error: max |a - e| / max |e| (0 when e is all zeros and a equals it).
double normwise(const Tensor& actual, const Tensor& expected) {
  auto a = actual.detach().to(DType::Float64).contiguous().to_vector<double>();
  auto e = expected.detach().to(DType::Float64).contiguous().to_vector<double>();
  double scale = 0, diff = 0;
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (std::isfinite(e[i])) scale = std::max(scale, std::abs(e[i]));
    if (same(a[i], e[i])) continue;
    const double d = std::abs(a[i] - e[i]);
    diff = std::isnan(d) ? INFINITY : std::max(diff, d);
  }
  return diff == 0 ? 0 : diff / std::max(scale, 1e-30);
}

// Error relative to the sum of |terms|: max |a - e| / m over elements (m = magnitude tensor).
double termwise(const Tensor& actual, const Tensor& exact, const Tensor& magnitude) {
  auto a = actual.detach().to(DType::Float64).contiguous().to_vector<double>();
  auto e = exact.detach().to(DType::Float64).contiguous().to_vector<double>();
  auto m = magnitude.detach().to(DType::Float64).contiguous().to_vector<double>();
  double worst = 0;
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (same(a[i], e[i])) continue;
    const double d = std::abs(a[i] - e[i]);
    if (std::isnan(d)) return INFINITY;
    if (d > 0) worst = std::max(worst, d / std::max(std::abs(m[i]), 1e-300));  // (div: all terms negative)
  }
  return worst;
}

// Worst element by |a - e| / max(|e|, floor), floor = max(kFloorAbs, kFloorRel * max|e|); for
// integer and bool tensors, err is 1 at the first differing element.
Worst compare(const Tensor& actual, const Tensor& expected) {
  Worst w;
  const bool fp = is_floating(expected.dtype());
  auto a = actual.detach().to(DType::Float64).contiguous().to_vector<double>();
  auto e = expected.detach().to(DType::Float64).contiguous().to_vector<double>();
  double scale = 0;
  for (double v : e)
    if (std::isfinite(v)) scale = std::max(scale, std::abs(v));
  const double floor = std::max(kFloorAbs, kFloorRel * scale);
  for (std::size_t i = 0; i < e.size(); ++i) {
    double err;
    if (!fp) err = a[i] == e[i] ? 0.0 : 1.0;
    else if (same(a[i], e[i])) err = 0.0;
    else if (!std::isfinite(a[i]) || !std::isfinite(e[i])) err = INFINITY;  // NaN or inf on one side only
    else err = std::abs(a[i] - e[i]) / std::max(std::abs(e[i]), floor);
    if (err > w.err || (w.index < 0 && err > 0)) {
      w.err = err;
      w.index = static_cast<std::int64_t>(i);
      w.actual = a[i];
      w.expected = e[i];
    }
  }
  return w;
}


std::string describe(const json& c) {
  std::ostringstream os;
  os << "case " << c["name"].get<std::string>() << " (op " << c["op"].get<std::string>() << ", params "
     << c["params"].dump() << ", inputs";
  for (const auto& in : c["inputs"]) {
    os << " " << in["dtype"].get<std::string>() << parse_shape(in["view_shape"]).str();
    if (in["layout"] == "t") os << "(transposed view)";
    if (in["layout"] == "s") os << "(every 2nd column of " << shape_of(in) << ")";
    if (in["layout"] == "e") os << "(expanded from " << shape_of(in) << ")";
    if (in["requires_grad"].get<bool>()) os << "*";
  }
  os << ")";
  return os.str();
}

// Checks one tensor against torch's float32 result `expected`, and when given the float64
// evaluation `exact` and the sum-of-|terms| tensor `magnitude`. Passes when every element is
// within kRelTol of torch; otherwise (float32 accumulation differences where terms cancel) when
// krill's error against the float64 answer is within kRelTol x sum|terms| at every element (ops
// with a magnitude), or its normwise error is at most max(kNormTol, kAccuracySlack x torch
// float32's) (other float32 ops). Returns the krill-vs-torch error.
double check_tensor(const json& c, const std::string& what, const Tensor& actual, const Tensor& expected,
                    const Tensor& exact, const Tensor& magnitude, FamilyStats& stats) {
  if (!actual.defined()) {
    ADD_FAILURE() << describe(c) << ": " << what << " is undefined";
    return INFINITY;
  }
  if (!(actual.shape() == expected.shape())) {
    ADD_FAILURE() << describe(c) << ": " << what << " has shape " << actual.shape().str() << ", torch gives "
                  << expected.shape().str();
    return INFINITY;
  }
  if (actual.dtype() != expected.dtype()) {
    ADD_FAILURE() << describe(c) << ": " << what << " has dtype " << dtype_name(actual.dtype()) << ", torch gives "
                  << dtype_name(expected.dtype());
    return INFINITY;
  }
  Worst w = compare(actual, expected);
  const bool fp = is_floating(expected.dtype());
  bool ok = fp ? w.err <= kRelTol : w.err == 0;
  std::string accuracy;  // the float64 comparison, for the failure message
  if (!ok && fp && exact.defined()) {
    const bool by_terms = magnitude.defined();
    const double krill_exact = by_terms ? termwise(actual, exact, magnitude) : normwise(actual, exact);
    const double torch_exact = by_terms ? termwise(expected, exact, magnitude) : normwise(expected, exact);
    const double tol = by_terms ? kRelTol : std::max(kNormTol, kAccuracySlack * torch_exact);
    const char* metric = by_terms ? "error / sum|terms|" : "normwise error";
    ok = krill_exact <= tol;
    if (ok) {
      std::cout << "[ops oracle]   " << c["name"].get<std::string>() << " " << what << ": " << w.err
                << " from torch float32; against float64, " << metric << ": krill " << krill_exact << ", torch "
                << torch_exact << "\n";
      ++stats.by_accuracy;
      double& worst = by_terms ? stats.worst_terms : stats.worst_norm;
      worst = std::max(worst, krill_exact);
    } else {
      std::ostringstream os;
      os << "; against the float64 evaluation, " << metric << ": krill " << krill_exact << ", torch float32 "
         << torch_exact << " (tolerance " << tol << ")";
      accuracy = os.str();
    }
  }
  if (!ok) {
    std::ostringstream os;
    os.precision(9);
    os << describe(c) << ": " << what << " differs from torch; worst element " << multi_index(expected.shape(), w.index)
       << ": krill " << w.actual << ", torch " << w.expected << " (error " << w.err << ", tolerance " << kRelTol
       << ")" << accuracy;
    ADD_FAILURE() << os.str();
  }
  return w.err;
}

void run_case(const Oracle& o, const json& c, FamilyStats& stats) {
  const auto& table = op_table();
  const std::string op = c["op"];
  auto it = table.find(op);
  if (it == table.end()) {
    ADD_FAILURE() << "ops oracle: no krill binding for op " << op;
    return;
  }
  Args leaves, args;
  for (const auto& in : c["inputs"]) {
    Tensor leaf = load(o, in);
    if (in["requires_grad"].get<bool>()) leaf.set_requires_grad(true);
    leaves.push_back(leaf);
    const std::string layout = in["layout"];
    if (layout == "t") args.push_back(leaf.transpose(-1, -2));
    else if (layout == "s") args.push_back(leaf.slice(-1, std::nullopt, std::nullopt, 2));
    else if (layout == "e") args.push_back(leaf.expand(parse_shape(in["view_shape"])));
    else args.push_back(leaf);
  }
  Outs outs;
  try {
    outs = it->second(args, c["params"]);
  } catch (const std::exception& e) {
    ADD_FAILURE() << describe(c) << ": krill threw: " << e.what();
    return;
  }
  ++stats.cases;
  const auto& odesc = c["outputs"];
  if (outs.size() != odesc.size()) {
    ADD_FAILURE() << describe(c) << ": krill returned " << outs.size() << " outputs, torch " << odesc.size();
    return;
  }
  for (std::size_t i = 0; i < outs.size(); ++i) {
    const json& ex = c["exact_outputs"];
    Tensor exact = ex.is_null() || ex[i].is_null() ? Tensor() : load(o, ex[i]);
    const json& mg = c["magnitude_outputs"];
    Tensor magnitude = mg.is_null() || mg[i].is_null() ? Tensor() : load(o, mg[i]);
    double e = check_tensor(c, "output " + std::to_string(i), outs[i], load(o, odesc[i]), exact, magnitude, stats);
    if (is_floating(outs[i].dtype()) && e >= stats.worst_fwd) {
      stats.worst_fwd = e;
      stats.worst_fwd_case = c["name"];
    }
  }
  if (c["weight"].is_null()) return;
  Tensor r = load(o, c["weight"]);
  try {
    if (!outs[0].requires_grad()) {
      ADD_FAILURE() << describe(c) << ": output 0 does not require grad";
      return;
    }
    if (c["backward"] == "mulsum") sum(mul(outs[0], r)).backward();
    else outs[0].backward(r);
  } catch (const std::exception& e) {
    ADD_FAILURE() << describe(c) << ": krill backward threw: " << e.what();
    return;
  }
  const auto& gdesc = c["grads"];
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    if (gdesc[i].is_null()) continue;
    Tensor expected = load(o, gdesc[i]);
    Tensor g = leaves[i].grad();
    if (!g.defined()) g = zeros_like(expected);  // no path from the output: torch's zeros
    const json& ex = c["exact_grads"];
    Tensor exact = ex.is_null() || ex[i].is_null() ? Tensor() : load(o, ex[i]);
    const json& mg = c["magnitude_grads"];
    Tensor magnitude = mg.is_null() || mg[i].is_null() ? Tensor() : load(o, mg[i]);
    double e = check_tensor(c, "gradient of input " + std::to_string(i), g, expected, exact, magnitude, stats);
    ++stats.grads;
    if (e >= stats.worst_grad) {
      stats.worst_grad = e;
      stats.worst_grad_case = c["name"];
    }
  }
}

void check_family(const std::string& family) {
  Oracle o;
  try {
    o = run_family(family);
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  FamilyStats stats;
  const auto& cases = o.manifest["cases"];
  ASSERT_GT(cases.size(), 0u) << "the oracle wrote no " << family << " cases";
  for (const auto& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    run_case(o, c, stats);
  }
  std::cout << "[ops oracle] " << family << ": " << stats.cases << " cases, " << stats.grads
            << " gradients; worst forward error " << stats.worst_fwd << " (" << stats.worst_fwd_case
            << "), worst gradient error " << stats.worst_grad << " (" << stats.worst_grad_case << "); tolerance "
            << kRelTol << "; " << stats.by_accuracy
            << " tensors beyond it passed on accuracy against float64 (worst error / sum|terms| "
            << stats.worst_terms << ", worst normwise error " << stats.worst_norm << ")\n";
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(o.dir);
}

}  // namespace

TEST(OpsOracle, Binary) { check_family("binary"); }
TEST(OpsOracle, Scalar) { check_family("scalar"); }
TEST(OpsOracle, Compare) { check_family("compare"); }
TEST(OpsOracle, Unary) { check_family("unary"); }
TEST(OpsOracle, Matmul) { check_family("matmul"); }
TEST(OpsOracle, Reduce) { check_family("reduce"); }
TEST(OpsOracle, Softmax) { check_family("softmax"); }
TEST(OpsOracle, Loss) { check_family("loss"); }
TEST(OpsOracle, Join) { check_family("join"); }
TEST(OpsOracle, Index) { check_family("index"); }
TEST(OpsOracle, View) { check_family("view"); }
TEST(OpsOracle, Edge) { check_family("edge"); }

// ---------------------------------------------------------------------------------------------
// Dropout: identity in eval mode; in train mode, checked statistically (it draws from krill's
// generator, so there is no PyTorch value to compare elementwise).

TEST(OpsOracle, DropoutEvalIsIdentity) {
  Generator gen(test::run_seed());
  Tensor x = randn({7, 13}, {}, &gen).set_requires_grad(true);
  for (double p : {0.0, 0.3, 0.9}) {
    Tensor y = dropout(x, p, /*train=*/false, &gen);
    EXPECT_TRUE(equal(y, x.detach())) << "p=" << p;
    Tensor r = randn({7, 13}, {}, &gen);
    x.zero_grad(true);
    sum(mul(y, r)).backward();
    ASSERT_TRUE(x.grad().defined());
    EXPECT_TRUE(equal(x.grad(), r)) << "eval-mode dropout must pass the gradient through, p=" << p;
  }
  // p = 0 in train mode is the identity too
  Tensor y0 = dropout(x, 0.0, true, &gen);
  EXPECT_TRUE(equal(y0.detach(), x.detach()));
}

TEST(OpsOracle, DropoutTrainStatistics) {
  Generator gen(test::run_seed() + 17);
  const std::int64_t n = 200000;
  for (double p : {0.1, 0.5, 0.8}) {
    Tensor x = add(rand({n}, {}, &gen), 0.5).detach().set_requires_grad(true);  // in [0.5, 1.5): never 0
    Tensor y = dropout(x, p, /*train=*/true, &gen);
    Tensor r = randn({n}, {}, &gen);
    sum(mul(y, r)).backward();
    auto xv = x.detach().to_vector<float>();
    auto yv = y.detach().contiguous().to_vector<float>();
    auto gv = x.grad().to_vector<float>();
    auto rv = r.to_vector<float>();
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    std::int64_t zeros_n = 0, bad_survivor = 0, bad_grad = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const bool dropped = yv[i] == 0.f;
      zeros_n += dropped;
      if (!dropped && std::abs(yv[i] - xv[i] * scale) > 1e-6f * std::abs(xv[i] * scale)) ++bad_survivor;
      // gradient = mask / (1 - p) * R
      const float want = dropped ? 0.f : rv[i] * scale;
      if (std::abs(gv[i] - want) > 1e-6f * std::max(1.f, std::abs(want))) ++bad_grad;
    }
    const double frac = static_cast<double>(zeros_n) / static_cast<double>(n);
    const double sigma = std::sqrt(p * (1 - p) / static_cast<double>(n));
    EXPECT_NEAR(frac, p, 6 * sigma) << "fraction of zeros for p=" << p;
    EXPECT_EQ(bad_survivor, 0) << "survivors must be scaled by 1/(1-p), p=" << p;
    EXPECT_EQ(bad_grad, 0) << "gradient must be R * mask / (1-p), p=" << p;
    // the mean is preserved in expectation
    double mx = 0, my = 0;
    for (std::int64_t i = 0; i < n; ++i) mx += xv[i], my += yv[i];
    EXPECT_NEAR(my / mx, 1.0, 6 * std::sqrt(p / (1 - p) / static_cast<double>(n)) * 1.2) << "p=" << p;
  }
  // p = 1 drops everything
  Tensor x = randn({100}, {}, &gen).set_requires_grad(true);
  Tensor y = dropout(x, 1.0, true, &gen);
  EXPECT_TRUE(allclose(y.detach(), zeros({100}), 0, 0)) << "p=1 must zero everything";
  // two calls draw different masks
  Tensor a = dropout(ones({1000}), 0.5, true, &gen), b = dropout(ones({1000}), 0.5, true, &gen);
  EXPECT_FALSE(equal(a, b)) << "consecutive dropout masks must differ";
}
