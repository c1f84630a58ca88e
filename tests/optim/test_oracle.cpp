// krill's SGD / Adam / AdamW against torch.optim (PyTorch 1.13, single-tensor path): the same
// initial parameters and 100 random gradients (tests/oracle/optim_oracle.py), parameters compared
// at checkpoints along the trajectory, and the final optimizer state compared with PyTorch's.
// The update formulas reproduce ATen's float32 roundings, so the expected result is bit-exact;
// the assertion allows 1e-6 relative and the number of differing floats is printed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "krill/krill.hpp"
#include "krill/optim/adam.hpp"
#include "krill/optim/adamw.hpp"
#include "krill/optim/sgd.hpp"
#include "support/oracle.hpp"

using namespace krill;

namespace {

constexpr double kRelTol = 1e-6;

struct GroupSpec {
  std::vector<int> ids;
  std::map<std::string, std::string> kv;
  double get(const std::string& k, double d) const {
    auto it = kv.find(k);
    return it == kv.end() ? d : std::stod(it->second);
  }
};

struct StateSpec {
  int index;
  double step;
  std::vector<std::string> buffers;
};

struct CaseSpec {
  std::string name, optimizer;
  std::vector<GroupSpec> groups;
  std::vector<StateSpec> states;
};

struct Oracle {
  std::string dir;
  int steps = 0;
  std::vector<int> checkpoints;
  std::vector<Shape> shapes;
  std::vector<std::int64_t> numel, offset;
  std::int64_t total = 0;
  std::vector<std::vector<int>> mask;  // [step][param]
  std::vector<CaseSpec> cases;
  std::vector<float> init, grads;
};

std::vector<float> read_floats(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(in.tellg());
  in.seekg(0);
  std::vector<float> v(size / sizeof(float));
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(size));
  return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream is(s);
  while (std::getline(is, cur, sep)) out.push_back(cur);
  return out;
}

Oracle load_oracle(const std::string& dir) {
  Oracle o;
  o.dir = dir;
  std::ifstream man(dir + "/manifest.txt");
  if (!man) throw std::runtime_error("no manifest in " + dir);
  std::string line;
  while (std::getline(man, line)) {
    std::istringstream is(line);
    std::string w;
    is >> w;
    if (w == "steps") {
      is >> o.steps;
    } else if (w == "checkpoints") {
      int c;
      while (is >> c) o.checkpoints.push_back(c);
    } else if (w == "param") {
      int i;
      is >> i;
      std::vector<std::int64_t> dims;
      std::int64_t d;
      while (is >> d) dims.push_back(d);
      o.shapes.push_back(Shape(dims));
    } else if (w == "mask") {
      int step;
      is >> step;
      std::vector<int> m;
      int b;
      while (is >> b) m.push_back(b);
      o.mask.push_back(m);
    } else if (w == "case") {
      CaseSpec c;
      int ngroups;
      is >> c.name >> c.optimizer >> ngroups;
      o.cases.push_back(c);
    } else if (w == "group") {
      GroupSpec g;
      std::string ids, kv;
      is >> ids;
      for (const auto& s : split(ids, ',')) g.ids.push_back(std::stoi(s));
      while (is >> kv) {
        auto eq = kv.find('=');
        g.kv[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
      o.cases.back().groups.push_back(g);
    } else if (w == "state") {
      StateSpec s;
      std::string name, step, bufs;
      is >> name >> s.index >> step >> bufs;
      s.step = std::stod(step.substr(step.find('=') + 1));
      s.buffers = split(bufs.substr(bufs.find('=') + 1), ',');
      o.cases.back().states.push_back(s);
    }
  }
  for (const auto& s : o.shapes) {
    o.offset.push_back(o.total);
    o.numel.push_back(s.numel());
    o.total += s.numel();
  }
  o.init = read_floats(dir + "/init.bin");
  o.grads = read_floats(dir + "/grads.bin");
  if (static_cast<std::int64_t>(o.init.size()) != o.total ||
      static_cast<std::int64_t>(o.grads.size()) != o.total * o.steps)
    throw std::runtime_error("oracle files have unexpected sizes");
  return o;
}

Tensor from_floats(const float* data, const Shape& shape) {
  Tensor t = empty(shape);
  std::memcpy(t.data_ptr<float>(), data, static_cast<std::size_t>(shape.numel()) * sizeof(float));
  return t;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const CaseSpec& c, const std::vector<Tensor>& params) {
  auto group_params = [&](const GroupSpec& g) {
    std::vector<Tensor> ps;
    for (int i : g.ids) ps.push_back(params[static_cast<std::size_t>(i)]);
    return ps;
  };
  auto betas = [](const GroupSpec& g, std::pair<double, double> d) {
    auto it = g.kv.find("betas");
    if (it == g.kv.end()) return d;
    auto parts = split(it->second, ',');
    return std::make_pair(std::stod(parts.at(0)), std::stod(parts.at(1)));
  };
  if (c.optimizer == "sgd") {
    std::vector<optim::ParamGroup<optim::SGDOptions>> groups;
    for (const auto& g : c.groups) {
      optim::SGDOptions o(g.get("lr", 0.1));
      o.momentum(g.get("momentum", 0))
          .dampening(g.get("dampening", 0))
          .weight_decay(g.get("weight_decay", 0))
          .nesterov(g.get("nesterov", 0) != 0)
          .maximize(g.get("maximize", 0) != 0);
      groups.push_back({group_params(g), o});
    }
    return std::make_unique<optim::SGD>(std::move(groups), optim::SGDOptions(0.1));
  }
  if (c.optimizer == "adam") {
    std::vector<optim::ParamGroup<optim::AdamOptions>> groups;
    for (const auto& g : c.groups) {
      optim::AdamOptions o(g.get("lr", 1e-3));
      o.betas(betas(g, {0.9, 0.999}))
          .eps(g.get("eps", 1e-8))
          .weight_decay(g.get("weight_decay", 0))
          .amsgrad(g.get("amsgrad", 0) != 0)
          .maximize(g.get("maximize", 0) != 0);
      groups.push_back({group_params(g), o});
    }
    return std::make_unique<optim::Adam>(std::move(groups));
  }
  if (c.optimizer == "adamw") {
    std::vector<optim::ParamGroup<optim::AdamWOptions>> groups;
    for (const auto& g : c.groups) {
      optim::AdamWOptions o(g.get("lr", 1e-3));
      o.betas(betas(g, {0.9, 0.999}))
          .eps(g.get("eps", 1e-8))
          .weight_decay(g.get("weight_decay", 1e-2))
          .amsgrad(g.get("amsgrad", 0) != 0)
          .maximize(g.get("maximize", 0) != 0);
      groups.push_back({group_params(g), o});
    }
    return std::make_unique<optim::AdamW>(std::move(groups));
  }
  throw std::runtime_error("unknown optimizer " + c.optimizer);
}

struct Diff {
  std::int64_t count = 0, differing = 0;
  double max_rel = 0;
  void add(const float* actual, const float* expected, std::int64_t n) {
    for (std::int64_t k = 0; k < n; ++k) {
      ++count;
      if (std::memcmp(&actual[k], &expected[k], sizeof(float)) == 0) continue;
      ++differing;
      double rel = std::abs(static_cast<double>(actual[k]) - expected[k]) / std::max(std::abs(static_cast<double>(expected[k])), 1e-3);
      if (std::isnan(actual[k]) != std::isnan(expected[k])) rel = INFINITY;
      if (!(rel <= max_rel)) max_rel = rel;
    }
  }
};

class OptimOracle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test::make_temp_dir("optim_oracle");
    test::run_oracle("optim_oracle.py", {std::to_string(test::run_seed()), dir_});
    oracle_ = new Oracle(load_oracle(dir_));
  }
  static void TearDownTestSuite() {
    delete oracle_;
    oracle_ = nullptr;
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }
  static std::string dir_;
  static Oracle* oracle_;

  void run_case(const std::string& name);
};

std::string OptimOracle::dir_;
Oracle* OptimOracle::oracle_ = nullptr;

void OptimOracle::run_case(const std::string& name) {
  const Oracle& o = *oracle_;
  const CaseSpec* spec = nullptr;
  for (const auto& c : o.cases)
    if (c.name == name) spec = &c;
  ASSERT_NE(spec, nullptr) << "oracle has no case " << name;

  const std::size_t P = o.shapes.size();
  std::vector<Tensor> params, grads;
  for (std::size_t i = 0; i < P; ++i) {
    params.push_back(from_floats(o.init.data() + o.offset[i], o.shapes[i]).requires_grad_());
    grads.push_back(empty(o.shapes[i]));
  }
  auto opt = make_optimizer(*spec, params);
  const std::vector<float> traj = read_floats(o.dir + "/" + name + ".traj.bin");
  ASSERT_EQ(static_cast<std::int64_t>(traj.size()), o.total * static_cast<std::int64_t>(o.checkpoints.size()));

  Diff diff;
  std::size_t ck = 0;
  for (int step = 1; step <= o.steps; ++step) {
    for (std::size_t i = 0; i < P; ++i) {
      if (o.mask[static_cast<std::size_t>(step - 1)][i]) {
        std::memcpy(grads[i].data_ptr<float>(), o.grads.data() + (step - 1) * o.total + o.offset[i],
                    static_cast<std::size_t>(o.numel[i]) * sizeof(float));
        params[i].set_grad(grads[i]);
      } else {
        params[i].impl()->grad = nullptr;  // p.grad = None
      }
    }
    opt->step();
    if (ck < o.checkpoints.size() && o.checkpoints[ck] == step) {
      Diff at;
      for (std::size_t i = 0; i < P; ++i)
        at.add(params[i].data_ptr<float>(), traj.data() + ck * o.total + o.offset[i], o.numel[i]);
      EXPECT_LE(at.max_rel, kRelTol) << name << ": after step " << step << ", " << at.differing << " of " << at.count
                                    << " floats differ from PyTorch";
      diff.count += at.count;
      diff.differing += at.differing;
      diff.max_rel = std::max(diff.max_rel, at.max_rel);
      ++ck;
    }
  }
  std::cout << "[optim oracle] " << name << ": " << diff.differing << " of " << diff.count
            << " checkpointed floats differ from PyTorch, max rel error " << diff.max_rel << "\n";
  RecordProperty("differing_floats", static_cast<int>(diff.differing));

  // Final state == PyTorch's optimizer.state, with state_dict()'s names and numbering.
  const StateDict sd = opt->state_dict();
  const std::vector<float> state = read_floats(o.dir + "/" + name + ".state.bin");
  std::size_t pos = 0;
  std::size_t buffers = 0;
  Diff sdiff;
  // Parameter numbering over groups, as PyTorch's state_dict: map state index -> param index.
  std::vector<int> order;
  for (const auto& g : spec->groups) order.insert(order.end(), g.ids.begin(), g.ids.end());
  for (const auto& s : spec->states) {
    const std::string pre = "state." + std::to_string(s.index) + ".";
    const auto n = o.numel[static_cast<std::size_t>(order[static_cast<std::size_t>(s.index)])];
    if (s.step >= 0) {
      const Tensor* step = sd.find(pre + "step");
      ASSERT_NE(step, nullptr) << name << ": state_dict lacks " << pre << "step";
      EXPECT_EQ(step->dtype(), DType::Float32);
      EXPECT_EQ(step->numel(), 1);
      EXPECT_EQ(static_cast<double>(*step->data_ptr<float>()), s.step) << name << ": " << pre << "step";
    }
    for (const auto& b : s.buffers) {
      const Tensor* t = sd.find(pre + b);
      ASSERT_NE(t, nullptr) << name << ": state_dict lacks " << pre << b;
      ASSERT_EQ(t->numel(), n) << pre << b;
      ASSERT_LE(pos + static_cast<std::size_t>(n), state.size());
      Diff d;
      d.add(t->data_ptr<float>(), state.data() + pos, n);
      EXPECT_LE(d.max_rel, kRelTol) << name << ": " << pre << b << ": " << d.differing << " of " << n << " differ";
      sdiff.differing += d.differing;
      pos += static_cast<std::size_t>(n);
      ++buffers;
    }
  }
  EXPECT_EQ(pos, state.size());
  std::size_t state_keys = 0;
  for (const auto& item : sd)
    if (item.first.rfind("state.", 0) == 0 && item.first.find(".step") == std::string::npos) ++state_keys;
  EXPECT_EQ(state_keys, buffers) << name << ": state_dict has state buffers PyTorch does not";
  std::cout << "[optim oracle] " << name << ": final state, " << sdiff.differing << " floats differ\n";
}

}  // namespace

// One test over all cases: the oracle runs once per process (ctest runs each TEST separately).
TEST_F(OptimOracle, TrajectoriesAndStateMatchPyTorch) {
  const char* expected[] = {"sgd_plain", "sgd_momentum", "sgd_dampening", "sgd_nesterov", "sgd_weight_decay",
                            "sgd_momentum_wd", "sgd_nesterov_wd_maximize", "sgd_groups", "adam_plain",
                            "adam_weight_decay", "adam_amsgrad", "adam_amsgrad_wd_maximize", "adam_groups",
                            "adamw_default", "adamw_wd", "adamw_amsgrad", "adamw_no_wd"};
  ASSERT_EQ(oracle_->cases.size(), std::size(expected));
  for (const char* name : expected) {
    SCOPED_TRACE(name);
    run_case(name);
  }
}
