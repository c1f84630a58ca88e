// The CNN ops (conv2d, conv2d_relu, conv2d_relu_max_pool2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d, batch_norm,
// batch_norm_relu)
// against PyTorch 1.13: tests/oracle/conv_oracle.py draws random configurations from this run's
// seed (stride, padding, dilation, groups incl. depthwise, bias on/off, batch 1..4, odd sizes,
// 3-D inputs, transposed non-contiguous inputs, ceil_mode, count_include_pad, adaptive pooling
// with non-divisible sizes, batch norm in training (running stats) and evaluation) and writes
// PyTorch's outputs and the gradients of sum(out * R).
//
// Tolerance: every element within 1e-4 relative of PyTorch's float32 result, relative to
// max(|torch|, 1e-3 x max|torch| over the tensor). Elements that cancel to nearly zero may
// differ by more between two float32 implementations that sum in different orders; such an
// element still passes when krill is accurate: |krill - exact| <= 1e-5 x sum|terms| (exact:
// PyTorch in float64; sum|terms|: for sums of products (convolutions, average pools) the
// oracle's float64 evaluation on |inputs| and |R|, for batch norm the same sum written out),
// else (max pooling, conv2d_relu) normwise max|krill - exact| / max|exact| <= 1e-5.
//
// KRILL_CONV_LAYOUT=plain|blocked forces the convolutions' layout (default: chosen per shape);
// run both to cover both paths.
//
// Also: the primitive cache (repeated steps create no primitive and no new allocator block),
// 3-D inputs and argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../../src/tensor/cpu/onednn.hpp"
#include "krill/krill.hpp"
#include "krill/tensor/allocator.hpp"
#include "support/oracle.hpp"

using namespace krill;
using json = nlohmann::json;

namespace {

constexpr double kRelTol = 1e-4;
constexpr double kFloorRel = 1e-3;
constexpr double kExactTol = 1e-5;

struct Oracle {
  json manifest;
  std::vector<char> data;
};

Tensor load(const Oracle& o, const json& desc) {
  if (desc.is_null()) return Tensor();
  const std::string dt = desc.at("dtype");
  const DType dtype = dt == "float32" ? DType::Float32 : dt == "float64" ? DType::Float64 : DType::Int64;
  Tensor t = empty(Shape(desc.at("shape").get<std::vector<std::int64_t>>()), TensorOptions(dtype));
  const auto off = desc.at("offset").get<std::size_t>();
  if (off + t.nbytes() > o.data.size()) throw std::runtime_error("conv oracle: data.bin is too short");
  std::memcpy(t.raw_data(), o.data.data() + off, t.nbytes());
  return t;
}

const Oracle& oracle() {
  static const Oracle o = [] {
    Oracle r;
    const std::string dir = test::make_temp_dir("conv_oracle");
    test::run_oracle("conv_oracle.py",
                     {"ops", "--seed", std::to_string(test::run_seed()), "--out", dir, "--reps", "80"});
    std::ifstream mf(dir + "/manifest.json");
    r.manifest = json::parse(mf);
    std::ifstream df(dir + "/data.bin", std::ios::binary);
    r.data.assign(std::istreambuf_iterator<char>(df), std::istreambuf_iterator<char>());
    return r;
  }();
  return o;
}

std::array<std::int64_t, 2> pair(const json& j) { return {j.at(0).get<std::int64_t>(), j.at(1).get<std::int64_t>()}; }

// Runs one case with krill: returns outputs (out, and running stats for batch_norm training)
// and the leaves whose gradients are compared.
struct CaseRun {
  std::vector<Tensor> outs;
  std::vector<Tensor> leaves;  // aligned with the case's inputs (undefined where none)
};

CaseRun run_case(const Oracle& o, const json& c) {
  CaseRun r;
  const std::string op = c.at("op");
  const json& p = c.at("params");
  std::vector<Tensor> in;
  for (const json& d : c.at("inputs")) in.push_back(load(o, d));
  const json& grads = c.at("grads");
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i].defined() && !grads.at(i).is_null()) in[i].requires_grad_(true);
    r.leaves.push_back(in[i]);
  }
  Tensor x = c.at("input_layout") == "t" ? in[0].transpose(2, 3) : in[0];
  Tensor out;
  if (op == "conv2d" || op == "conv2d_relu") {
    auto f = op == "conv2d" ? &krill::conv2d : &krill::conv2d_relu;
    out = f(x, in[1], in[2], pair(p.at("stride")), pair(p.at("padding")), pair(p.at("dilation")),
            p.at("groups").get<std::int64_t>());
    r.outs = {out};
  } else if (op == "conv2d_relu_max_pool2d") {
    out = conv2d_relu_max_pool2d(x, in[1], in[2], pair(p.at("stride")), pair(p.at("padding")), pair(p.at("dilation")),
                                 p.at("groups").get<std::int64_t>(), pair(p.at("pool_kernel")),
                                 pair(p.at("pool_stride")), pair(p.at("pool_padding")));
    r.outs = {out};
  } else if (op == "max_pool2d") {
    out = max_pool2d(x, pair(p.at("kernel_size")), pair(p.at("stride")), pair(p.at("padding")), pair(p.at("dilation")),
                     p.at("ceil_mode").get<bool>());
    r.outs = {out};
  } else if (op == "avg_pool2d") {
    out = avg_pool2d(x, pair(p.at("kernel_size")), pair(p.at("stride")), pair(p.at("padding")),
                     p.at("ceil_mode").get<bool>(), p.at("count_include_pad").get<bool>());
    r.outs = {out};
  } else if (op == "adaptive_avg_pool2d") {
    out = adaptive_avg_pool2d(x, pair(p.at("output_size")));
    r.outs = {out};
  } else if (op == "batch_norm" || op == "batch_norm_relu") {
    Tensor rm = in[1].defined() ? in[1].clone() : Tensor();
    Tensor rv = in[2].defined() ? in[2].clone() : Tensor();
    const bool training = p.at("training").get<bool>();
    auto f = op == "batch_norm" ? &krill::batch_norm : &krill::batch_norm_relu;
    out = f(x, rm, rv, in[3], in[4], training, p.at("momentum").get<double>(), p.at("eps").get<double>());
    r.outs = {out};
    if (training && rm.defined()) {
      r.outs.push_back(rm);
      r.outs.push_back(rv);
    }
  } else {
    throw std::runtime_error("conv oracle: unknown op " + op);
  }
  Tensor R = load(o, c.at("weight"));
  sum(mul(out, R)).backward();
  return r;
}

// Compares one tensor; returns an empty string when it passes, else a description.
std::string compare(const Tensor& k, const Tensor& t, const Tensor& exact, const Tensor& mag, double* worst) {
  if (!k.defined()) return "krill produced no tensor";
  if (!(k.shape() == t.shape())) return "shape " + k.shape().str() + " vs torch " + t.shape().str();
  Tensor kc = k.contiguous().to(DType::Float64), tc = t.to(DType::Float64), ec = exact.to(DType::Float64);
  const double* pk = kc.data_ptr<double>();
  const double* pt = tc.data_ptr<double>();
  const double* pe = ec.data_ptr<double>();
  Tensor mc = mag.defined() ? mag.to(DType::Float64) : Tensor();
  const double* pm = mc.defined() ? mc.data_ptr<double>() : nullptr;
  const std::int64_t n = kc.numel();
  double tmax = 0, emax = 0, errmax_exact = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    tmax = std::max(tmax, std::abs(pt[i]));
    emax = std::max(emax, std::abs(pe[i]));
    errmax_exact = std::max(errmax_exact, std::abs(pk[i] - pe[i]));
  }
  const double floor = std::max(kFloorRel * tmax, 1e-30);
  const bool normwise_ok = errmax_exact <= kExactTol * std::max(emax, 1e-30);
  for (std::int64_t i = 0; i < n; ++i) {
    const double rel = std::abs(pk[i] - pt[i]) / std::max(std::abs(pt[i]), floor);
    *worst = std::max(*worst, std::min(rel, 1.0));
    if (rel <= kRelTol) continue;
    if (pm && std::abs(pk[i] - pe[i]) <= kExactTol * pm[i] + 1e-30) continue;
    if (!pm && normwise_ok) continue;
    std::ostringstream s;
    s << "element " << i << ": krill " << pk[i] << ", torch " << pt[i] << ", exact " << pe[i]
      << (pm ? ", sum|terms| " + std::to_string(pm[i]) : std::string()) << " (relative " << rel << ")";
    return s.str();
  }
  return "";
}

}  // namespace

TEST(ConvOracle, AllCasesMatchPyTorch) {
  const Oracle& o = oracle();
  std::map<std::string, std::pair<int, double>> summary;  // op -> cases, worst relative error
  int failures = 0;
  for (const json& c : o.manifest.at("cases")) {
    const std::string name = c.at("name");
    const std::string what = name + " " + c.at("params").dump() + " input " +
                             Shape(c.at("inputs").at(0).at("shape").get<std::vector<std::int64_t>>()).str() +
                             (c.at("input_layout") == "t" ? " (stored transposed)" : "");
    CaseRun r;
    try {
      r = run_case(o, c);
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": threw " << e.what();
      ++failures;
      continue;
    }
    auto& sm = summary[c.at("op")];
    ++sm.first;
    const json& mo = c.at("magnitude_outputs");
    const json& mg = c.at("magnitude_grads");
    for (std::size_t i = 0; i < c.at("outputs").size(); ++i) {
      const std::string err = compare(r.outs.at(i), load(o, c["outputs"][i]), load(o, c["exact_outputs"][i]),
                                      mo.is_null() ? Tensor() : load(o, mo[i]), &sm.second);
      if (!err.empty()) {
        ADD_FAILURE() << what << ": output " << i << ": " << err;
        ++failures;
      }
    }
    for (std::size_t i = 0; i < c.at("grads").size(); ++i) {
      if (c["grads"][i].is_null()) continue;
      const Tensor g = r.leaves.at(i).grad();
      const std::string err = compare(g, load(o, c["grads"][i]), load(o, c["exact_grads"][i]),
                                      mg.is_null() ? Tensor() : load(o, mg[i]), &sm.second);
      if (!err.empty()) {
        ADD_FAILURE() << what << ": gradient of input " << i << ": " << err;
        ++failures;
      }
    }
  }
  for (const auto& [op, s] : summary)
    std::cout << "  " << op << ": " << s.first << " cases, worst elementwise relative error vs torch " << s.second
              << "\n";
  EXPECT_EQ(failures, 0);
  EXPECT_GT(summary.size(), 5u);
}

// ---- primitive cache and allocations ----

namespace {

// One LeNet-shaped training step of the ops (conv, relu, pool, the fused conv + relu + pool,
// conv, batch norm, batch norm + relu, pools).
void lenet_step(Tensor& x, Tensor& w1, Tensor& b1, Tensor& w2, Tensor& rm, Tensor& rv, Tensor& g, Tensor& b) {
  Tensor h = conv2d_relu(x, w1, b1, {1, 1}, {2, 2});
  h = max_pool2d(h, {2, 2});
  h = add(h, conv2d_relu_max_pool2d(x, w1, b1, {1, 1}, {2, 2}, {1, 1}, 1, {2, 2}));
  h = conv2d(h, w2, Tensor());
  h = batch_norm(h, rm, rv, g, b, true);
  h = batch_norm_relu(h, Tensor(), Tensor(), g, b, true);
  h = avg_pool2d(h, {2, 2}, {}, {0, 0}, true, true);
  h = adaptive_avg_pool2d(h, {3, 3});
  sum(h).backward();
}

}  // namespace

TEST(ConvCache, RepeatedStepsCreateNoPrimitiveAndNoNewBlocks) {
  manual_seed(0);
  Tensor x = randn({4, 1, 28, 28});
  Tensor w1 = mul(randn({6, 1, 5, 5}), 0.2).requires_grad_();
  Tensor b1 = zeros({6}).requires_grad_();
  Tensor w2 = mul(randn({16, 6, 5, 5}), 0.1).requires_grad_();
  Tensor rm = zeros({16}), rv = ones({16});
  Tensor g = ones({16}).requires_grad_(), b = zeros({16}).requires_grad_();
  for (int i = 0; i < 3; ++i) lenet_step(x, w1, b1, w2, rm, rv, g, b);
  const std::size_t prims = cpu::onednn::primitive_count();
  const std::size_t entries = cpu::onednn::cache_entries();
  EXPECT_GT(prims, 0u);
  const auto before = host_allocator::stats();
  for (int i = 0; i < 20; ++i) lenet_step(x, w1, b1, w2, rm, rv, g, b);
  const auto after = host_allocator::stats();
  EXPECT_EQ(cpu::onednn::primitive_count(), prims) << "a repeated step created oneDNN primitives";
  EXPECT_EQ(cpu::onednn::cache_entries(), entries);
  EXPECT_EQ(after.system_allocs, before.system_allocs) << "a repeated step took new blocks from the system";
  // a new shape creates new primitives
  Tensor x2 = randn({2, 1, 28, 28});
  lenet_step(x2, w1, b1, w2, rm, rv, g, b);
  EXPECT_GT(cpu::onednn::primitive_count(), prims);
}

// ---- forms and errors ----

TEST(ConvOps, ThreeDimensionalInputIsABatchOfOne) {
  manual_seed(1);
  Tensor x = randn({3, 9, 8});
  Tensor w = randn({4, 3, 3, 3});
  Tensor y3 = conv2d(x, w, Tensor(), {2, 1}, {1, 1});
  Tensor y4 = conv2d(x.unsqueeze(0), w, Tensor(), {2, 1}, {1, 1});
  EXPECT_EQ(y3.shape(), Shape({4, 5, 8}));
  EXPECT_TRUE(allclose(y3, y4.squeeze(0)));
  EXPECT_EQ(max_pool2d(x, {2, 2}).shape(), Shape({3, 4, 4}));
  EXPECT_EQ(avg_pool2d(x, {3, 3}, {1, 1}).shape(), Shape({3, 7, 6}));
  EXPECT_EQ(adaptive_avg_pool2d(x, {2, 3}).shape(), Shape({3, 2, 3}));
}

TEST(ConvOps, ArgumentErrorsNameOpArgumentAndShapes) {
  Tensor x = zeros({2, 3, 8, 8});
  auto expect_msg = [](auto&& fn, const std::vector<std::string>& parts) {
    try {
      fn();
      ADD_FAILURE() << "no error";
    } catch (const ValueError& e) {
      for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " lacks " << p;
    }
  };
  expect_msg([&] { conv2d(x, zeros({4, 2, 3, 3})); }, {"conv2d", "[2, 3, 8, 8]", "[4, 2, 3, 3]"});
  expect_msg([&] { conv2d(x, zeros({4, 3, 3})); }, {"conv2d", "weight", "[4, 3, 3]"});
  expect_msg([&] { conv2d(x, zeros({4, 3, 3, 3}), zeros({5})); }, {"conv2d", "bias", "[5]"});
  expect_msg([&] { conv2d(x, zeros({4, 3, 3, 3}), Tensor(), {0, 1}); }, {"conv2d", "stride", "[0, 1]"});
  expect_msg([&] { conv2d(x, zeros({4, 1, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2); }, {"conv2d", "groups=2"});
  expect_msg([&] { conv2d(x, zeros({4, 3, 9, 3})); }, {"conv2d", "[2, 3, 8, 8]", "kernel"});
  expect_msg([&] { conv2d(zeros({8, 8}), zeros({4, 3, 3, 3})); }, {"conv2d", "input", "[8, 8]"});
  expect_msg([&] { max_pool2d(x, {2, 2}, {}, {2, 0}); }, {"max_pool2d", "padding", "[2, 0]"});
  expect_msg([&] { max_pool2d(x, {9, 9}); }, {"max_pool2d", "[2, 3, 8, 8]", "too small"});
  expect_msg([&] { avg_pool2d(x, {0, 2}); }, {"avg_pool2d", "kernel_size"});
  expect_msg([&] { adaptive_avg_pool2d(x, {0, 2}); }, {"adaptive_avg_pool2d", "output_size"});
  expect_msg([&] { batch_norm(x, zeros({4}), ones({4})); }, {"batch_norm", "running_mean", "[4]", "[2, 3, 8, 8]"});
  expect_msg([&] { batch_norm(x, Tensor(), Tensor()); }, {"batch_norm", "running_mean"});
  expect_msg([&] { batch_norm_relu(x, zeros({4}), ones({4}), Tensor(), Tensor(), true); },
             {"batch_norm_relu", "running_mean", "[4]", "[2, 3, 8, 8]"});
  expect_msg([&] { batch_norm(zeros({1, 3, 1, 1}), Tensor(), Tensor(), Tensor(), Tensor(), true); },
             {"batch_norm", "more than 1 value per channel"});
  EXPECT_THROW(conv2d(x.to(DType::Float64), zeros({4, 3, 3, 3})), DTypeError);
}

TEST(ConvOps, BatchNormEvalUsesRunningStatsAndLeavesThemAlone) {
  manual_seed(2);
  Tensor x = randn({3, 4, 5, 5});
  Tensor rm = randn({4}), rv = add(rand({4}), 0.5);
  Tensor rm0 = rm.clone(), rv0 = rv.clone();
  Tensor y = batch_norm(x, rm, rv, Tensor(), Tensor(), false, 0.1, 1e-5);
  EXPECT_TRUE(equal(rm, rm0));
  EXPECT_TRUE(equal(rv, rv0));
  Tensor ref = div(sub(x, rm.reshape({1, 4, 1, 1})), sqrt(add(rv.reshape({1, 4, 1, 1}), 1e-5)));
  EXPECT_TRUE(allclose(y, ref, 1e-5, 1e-6));
}
