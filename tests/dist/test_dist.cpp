// krill::dist in one process: the DistributedSampler against PyTorch's, the single-process
// world (collectives are identities, checks pass, DistributedOptimizer == its wrapped optimizer
// bit for bit), and the DistributedOptimizer's buckets, hooks, communication thread, unused
// parameters and timeline over a "mirror" group that plays two ranks holding equal values.
// The multi-process behaviour (real MPI) is tested by tests/dist/mpi_checks.cpp under mpirun
// (tests/dist.cmake).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "dist/dist_test_util.hpp"
#include "krill/krill.hpp"
#include "support/oracle.hpp"

using namespace krill;
using krill::test::MirrorGroup;

namespace {

// ---------------------------------------------------------------------------------------------
// DistributedSampler

TEST(DistributedSampler, MatchesTorch) {
  const std::string dir = test::make_temp_dir("dist_sampler");
  const std::string file = dir + "/cases.txt";
  test::run_oracle("dist_sampler_oracle.py", {file, std::to_string(test::run_seed())});
  std::ifstream in(file);
  ASSERT_TRUE(in) << file;
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    std::istringstream is(line);
    std::int64_t n, epoch;
    int replicas, rank, shuffle, drop_last;
    std::uint64_t seed;
    std::string colon;
    is >> n >> replicas >> rank >> shuffle >> seed >> epoch >> drop_last >> colon;
    ASSERT_EQ(colon, ":") << line;
    std::vector<std::int64_t> expected;
    for (std::int64_t v; is >> v;) expected.push_back(v);
    dist::DistributedSampler s(n, replicas, rank, shuffle != 0, seed, drop_last != 0);
    s.set_epoch(epoch);
    Tensor idx = s.indices();
    ASSERT_EQ(idx.dtype(), DType::Int64);
    ASSERT_EQ(idx.numel(), s.num_samples());
    EXPECT_EQ(s.total_size(), s.num_samples() * replicas);
    EXPECT_EQ(idx.to_vector<std::int64_t>(), expected) << "case: " << line.substr(0, line.find(':'));
    ++cases;
  }
  EXPECT_GT(cases, 400);
  std::filesystem::remove_all(dir);
}

TEST(DistributedSampler, ShardsCoverTheDataAndPad) {
  // 10 rows over 3 ranks: 4 each, the two extra are rows 0 and 1 again (PyTorch's padding).
  std::multiset<std::int64_t> seen;
  for (int r = 0; r < 3; ++r) {
    dist::DistributedSampler s(10, 3, r, /*shuffle=*/false);
    EXPECT_EQ(s.num_samples(), 4);
    for (auto v : s.indices().to_vector<std::int64_t>()) seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 12u);
  EXPECT_EQ(seen.count(0), 2u);
  EXPECT_EQ(seen.count(1), 2u);
  EXPECT_EQ(seen.count(9), 1u);
  dist::DistributedSampler d(10, 3, 0, false, 0, /*drop_last=*/true);
  EXPECT_EQ(d.num_samples(), 3);
  EXPECT_EQ(d.indices().to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 3, 6}));
  // The epoch changes the permutation; the same epoch gives the same one.
  dist::DistributedSampler a(50, 2, 1, true, 7), b(50, 2, 1, true, 7);
  a.set_epoch(3);
  b.set_epoch(3);
  EXPECT_EQ(a.indices().to_vector<std::int64_t>(), b.indices().to_vector<std::int64_t>());
  b.set_epoch(4);
  EXPECT_NE(a.indices().to_vector<std::int64_t>(), b.indices().to_vector<std::int64_t>());
}

TEST(DistributedSampler, RejectsBadArguments) {
  EXPECT_THROW(dist::DistributedSampler(-1, 2, 0), ValueError);
  EXPECT_THROW(dist::DistributedSampler(10, 0, 0), ValueError);
  try {
    dist::DistributedSampler(10, 2, 2);
    FAIL() << "no error for rank 2 of 2";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("invalid rank 2"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// The single-process world

TEST(SingleProcessWorld, InitAndIdentity) {
  dist::finalize();
  EXPECT_FALSE(dist::is_initialized());
  EXPECT_THROW(dist::rank(), dist::DistributedError);
  dist::init();
  dist::init();  // safe twice
  ASSERT_TRUE(dist::is_initialized());
  EXPECT_FALSE(dist::launched_under_mpi());
  EXPECT_EQ(dist::rank(), 0);
  EXPECT_EQ(dist::size(), 1);
  EXPECT_EQ(dist::local_rank(), 0);
  EXPECT_EQ(dist::local_size(), 1);
  EXPECT_EQ(dist::world().backend(), "single");

  for (auto op : {dist::ReduceOp::Sum, dist::ReduceOp::Average, dist::ReduceOp::Max, dist::ReduceOp::Min}) {
    Tensor f = tensor({1.5f, -2.0f, 3.25f});
    dist::allreduce(f, op);
    EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{1.5f, -2.0f, 3.25f}));
    Tensor d = tensor({0.1, 0.2}).to(DType::Float64);
    dist::allreduce(d, op);
    EXPECT_EQ(d.to_vector<double>(), (std::vector<double>{0.1f, 0.2f}));
    Tensor i = tensor({7, -3});
    dist::allreduce(i, op);
    EXPECT_EQ(i.to_vector<std::int64_t>(), (std::vector<std::int64_t>{7, -3}));
  }
  Tensor b = tensor({4.f, 5.f});
  dist::broadcast(b, 0);
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{4.f, 5.f}));
  Tensor g = dist::allgather(tensor({1.f, 2.f, 3.f, 4.f}, {2, 2}));
  EXPECT_EQ(g.shape(), (Shape{2, 2}));
  EXPECT_EQ(g.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  Tensor src = tensor({2.f, 4.f});
  Tensor avg = dist::allreduced(src);
  EXPECT_NE(avg.raw_data(), src.raw_data());
  EXPECT_EQ(avg.to_vector<float>(), (std::vector<float>{2.f, 4.f}));
  dist::barrier();
  dist::check_same_across_ranks(957, "the training set size");
  dist::finalize();
  EXPECT_FALSE(dist::is_initialized());
}

TEST(SingleProcessWorld, CollectiveErrorsNameOpAndDtype) {
  dist::init();
  auto expect_error = [](auto fn, const std::vector<std::string>& words) {
    try {
      fn();
      ADD_FAILURE() << "no DistributedError";
    } catch (const dist::DistributedError& e) {
      for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
    }
  };
  expect_error([] {
    Tensor t = empty({3}, DType::Int32);
    dist::allreduce(t);
  }, {"allreduce", "int32"});
  expect_error([] {
    Tensor t = empty({2}, DType::Bool);
    dist::broadcast(t, 0);
  }, {"broadcast", "bool"});
  expect_error([] {
    Tensor t = zeros({3, 4}).t();
    dist::allreduce(t);
  }, {"allreduce", "contiguous"});
  expect_error([] {
    Tensor t = zeros({2});
    dist::broadcast(t, 1);
  }, {"broadcast", "root rank 1"});
  expect_error([] { dist::allgather(scalar_tensor(1.0)); }, {"allgather", "0-dimensional"});
  expect_error([] { dist::allgather(empty({2}, DType::UInt8)); }, {"allgather", "uint8"});
}

TEST(SingleProcessWorld, DistributedOptimizerIsTheWrappedOptimizer) {
  dist::init();
  manual_seed(3);
  nn::MLP model(5, {10, 10}, 3);
  nn::MLP ref(5, {10, 10}, 3);
  test::copy_weights(model, ref);
  dist::broadcast_parameters(model, 0);
  dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters(), optim::AdamOptions(0.01)), model,
                                 dist::DistributedOptions{});
  dist::broadcast_optimizer_state(opt, 0);
  optim::Adam ref_opt(ref.parameters(), optim::AdamOptions(0.01));
  EXPECT_EQ(opt.name(), "Adam");
  EXPECT_EQ(opt.num_params(), 6u);
  EXPECT_TRUE(opt.buckets().empty());  // a world of one: nothing to bucket
  Generator g(11);
  for (int step = 0; step < 30; ++step) {
    auto [x, y] = test::random_batch(g, 20, 5, 3);
    opt.zero_grad();
    cross_entropy(model.forward(x), y).backward();
    opt.step();
    ref_opt.zero_grad();
    cross_entropy(ref.forward(x), y).backward();
    ref_opt.step();
  }
  EXPECT_EQ(test::first_bitwise_difference(model, ref), "");
  dist::check_parameters_in_sync(model);
  opt.set_lr(0.5);
  EXPECT_EQ(opt.inner().lr(), 0.5);
  EXPECT_EQ(opt.state_dict().keys(), ref_opt.state_dict().keys());
}

// ---------------------------------------------------------------------------------------------
// DistributedOptimizer over a mirror group of two ranks

struct Trained {
  std::string difference;
  std::vector<dist::DistributedOptimizer::BucketInfo> buckets;
};

// Trains `steps` steps of MLP(5, {10, 10}, 3) with DistributedOptimizer(Adam) over `group` and
// plain Adam from the same weights on the same batches; returns the first parameter that differs.
Trained train_pair(dist::DistributedOptions options, int steps = 25) {
  manual_seed(5);
  nn::MLP model(5, {10, 10}, 3);
  nn::MLP ref(5, {10, 10}, 3);
  test::copy_weights(model, ref);
  dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters(), optim::AdamOptions(0.01)), model,
                                 options);
  optim::Adam ref_opt(ref.parameters(), optim::AdamOptions(0.01));
  Generator g(17);
  for (int step = 0; step < steps; ++step) {
    auto [x, y] = test::random_batch(g, 20, 5, 3);
    opt.zero_grad(step % 7 == 3);  // set_to_none sometimes: the hooks copy into the buckets again
    cross_entropy(model.forward(x), y).backward();
    opt.step();
    ref_opt.zero_grad(step % 7 == 3);
    cross_entropy(ref.forward(x), y).backward();
    ref_opt.step();
  }
  return {test::first_bitwise_difference(model, ref), opt.buckets()};
}

TEST(DistributedOptimizer, BucketsInReverseOrder) {
  MirrorGroup group;
  dist::DistributedOptions o;
  o.process_group = &group;
  o.bucket_bytes = 60 * 4;  // 60 floats: fc3 (33) + fc2.bias (10) | fc2.weight (100) | fc1 (60)
  manual_seed(1);
  nn::MLP model(5, {10, 10}, 3);
  dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters()), model, o);
  auto b = opt.buckets();
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].params, (std::vector<std::string>{"fc3.bias", "fc3.weight", "fc2.bias"}));
  EXPECT_EQ(b[0].bytes, 43 * 4);
  EXPECT_EQ(b[1].params, (std::vector<std::string>{"fc2.weight"}));  // larger than a bucket: alone
  EXPECT_EQ(b[1].bytes, 100 * 4);
  EXPECT_EQ(b[2].params, (std::vector<std::string>{"fc1.bias", "fc1.weight"}));
  EXPECT_EQ(b[2].bytes, 60 * 4);
  // One bucket by default.
  dist::DistributedOptions d;
  d.process_group = &group;
  dist::DistributedOptimizer one(std::make_unique<optim::Adam>(model.parameters()), model, d);
  ASSERT_EQ(one.buckets().size(), 1u);
  EXPECT_EQ(one.buckets()[0].bytes, (50 + 10 + 100 + 10 + 30 + 3) * 4);
}

TEST(DistributedOptimizer, MatchesWrappedOptimizerBitForBit) {
  for (bool overlap : {true, false})
    for (bool concurrent : {true, false})
      for (std::int64_t bucket_bytes : {std::int64_t{25} << 20, std::int64_t{64}, std::int64_t{200}}) {
        MirrorGroup group(2, concurrent);
        dist::DistributedOptions o;
        o.process_group = &group;
        o.overlap = overlap;
        o.bucket_bytes = bucket_bytes;
        const Trained t = train_pair(o);
        EXPECT_EQ(t.difference, "") << "overlap " << overlap << " concurrent " << concurrent << " bucket_bytes "
                                    << bucket_bytes << " (" << t.buckets.size() << " buckets)";
      }
}

TEST(DistributedOptimizer, FixedBucketOrderOnTheCommunicationThread) {
  auto log = std::make_shared<test::CollectiveLog>();
  MirrorGroup group(2, true, log);
  dist::DistributedOptions o;
  o.process_group = &group;
  o.bucket_bytes = 64;
  manual_seed(2);
  nn::MLP model(5, {10, 10}, 3);
  auto opt_holder = std::make_unique<dist::DistributedOptimizer>(std::make_unique<optim::Adam>(model.parameters()), model, o);
  auto& opt = *opt_holder;
  const auto buckets = opt.buckets();
  ASSERT_GE(buckets.size(), 3u);
  Generator g(3);
  constexpr int kSteps = 5;
  for (int step = 0; step < kSteps; ++step) {
    auto [x, y] = test::random_batch(g, 8, 5, 3);
    opt.zero_grad();
    cross_entropy(model.forward(x), y).backward();
    opt.step();
  }
  // Every bucket on the communication thread's channel (the first duplicate), in bucket order,
  // every step; each bucket's buffer has one flag per parameter after its gradients.
  std::vector<std::int64_t> comm, expect;
  for (auto [channel, numel] : log->allreduces) {
    EXPECT_EQ(channel, 1);
    comm.push_back(numel);
  }
  for (int step = 0; step < kSteps; ++step)
    for (const auto& b : buckets) expect.push_back(b.bytes / 4 + static_cast<std::int64_t>(b.params.size()));
  EXPECT_EQ(comm, expect);
  opt_holder.reset();  // (its hooks go with it)
  // Without overlap (or with one bucket) the training thread does it, on its own channel, in the same order.
  auto log2 = std::make_shared<test::CollectiveLog>();
  MirrorGroup group2(2, true, log2);
  o.process_group = &group2;
  o.overlap = false;
  dist::DistributedOptimizer serial(std::make_unique<optim::Adam>(model.parameters()), model, o);
  for (int step = 0; step < kSteps; ++step) {
    auto [x, y] = test::random_batch(g, 8, 5, 3);
    serial.zero_grad();
    cross_entropy(model.forward(x), y).backward();
    serial.step();
  }
  std::vector<std::int64_t> main;
  for (auto [channel, numel] : log2->allreduces) main.push_back(numel);
  EXPECT_EQ(main, expect);
}

TEST(DistributedOptimizer, GradientsAreViewsOfTheFusionBuffer) {
  MirrorGroup group;
  dist::DistributedOptions o;
  o.process_group = &group;
  manual_seed(4);
  nn::MLP model(5, {10, 10}, 3);
  dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters()), model, o);
  Generator g(5);
  auto [x, y] = test::random_batch(g, 8, 5, 3);
  cross_entropy(model.forward(x), y).backward();
  opt.step();
  // One bucket, filled in reverse order: fc3.bias, fc3.weight, fc2.bias, fc2.weight, fc1.bias, fc1.weight.
  auto named = model.named_parameters();
  const float* base = named[5].second.grad().data_ptr<float>();  // fc3.bias
  EXPECT_EQ(named[4].second.grad().data_ptr<float>(), base + 3);
  EXPECT_EQ(named[3].second.grad().data_ptr<float>(), base + 33);
  EXPECT_EQ(named[0].second.grad().data_ptr<float>(), base + 33 + 110 + 10);
  // Backward after zero_grad accumulates straight into the buffer (the pointers stay).
  opt.zero_grad();
  cross_entropy(model.forward(x), y).backward();
  EXPECT_EQ(named[5].second.grad().data_ptr<float>(), base);
  opt.step();
}

// A model whose `spare` layer may be left out of forward.
struct TwoHeads : nn::Module {
  std::shared_ptr<nn::Linear> body, head, spare;
  bool use_spare = false;
  TwoHeads() : Module("TwoHeads") {
    body = register_module("body", std::make_shared<nn::Linear>(4, 6));
    head = register_module("head", std::make_shared<nn::Linear>(6, 3));
    spare = register_module("spare", std::make_shared<nn::Linear>(6, 3));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = relu(body->forward(x));
    Tensor out = head->forward(h);
    if (use_spare) out = out + spare->forward(h);
    return out;
  }
};

TEST(DistributedOptimizer, UnusedParametersNeverHang) {
  for (std::int64_t bucket_bytes : {std::int64_t{16}, std::int64_t{25} << 20}) {
    MirrorGroup group;
    dist::DistributedOptions o;
    o.process_group = &group;
    o.bucket_bytes = bucket_bytes;
    manual_seed(8);
    TwoHeads model, ref;
    test::copy_weights(model, ref);
    dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters(), optim::AdamOptions(0.05)), model, o);
    optim::Adam ref_opt(ref.parameters(), optim::AdamOptions(0.05));
    Generator g(9);
    for (int step = 0; step < 12; ++step) {
      // The spare head joins from step 6 on: before, its .grad stays undefined and Adam skips it.
      model.use_spare = ref.use_spare = step >= 6;
      auto [x, y] = test::random_batch(g, 8, 4, 3);
      opt.zero_grad();
      cross_entropy(model.forward(x), y).backward();
      opt.step();
      ref_opt.zero_grad();
      cross_entropy(ref.forward(x), y).backward();
      ref_opt.step();
      if (step < 6) {
        EXPECT_FALSE(model.spare->weight.grad().defined()) << "step " << step;
      }
      EXPECT_EQ(test::first_bitwise_difference(model, ref), "") << "step " << step << " bucket_bytes " << bucket_bytes;
    }
  }
}

TEST(DistributedOptimizer, SecondBackwardBeforeStep) {
  MirrorGroup group;
  dist::DistributedOptions o;
  o.process_group = &group;
  o.bucket_bytes = 64;  // several buckets: the hooks start allreduces
  manual_seed(6);
  nn::MLP model(5, {10, 10}, 3);
  {
    dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters()), model, o);
    Generator g(7);
    auto [x, y] = test::random_batch(g, 8, 5, 3);
    cross_entropy(model.forward(x), y).backward();
    try {
      cross_entropy(model.forward(x), y).backward();
      ADD_FAILURE() << "a second backward before step() was accepted";
    } catch (const dist::DistributedError& e) {
      EXPECT_NE(std::string(e.what()).find("overlap = false"), std::string::npos) << e.what();
    }
  }
  // Without overlap, gradients accumulate over backward passes as in one process.
  o.overlap = false;
  manual_seed(6);
  nn::MLP a(5, {10, 10}, 3), ref(5, {10, 10}, 3);
  test::copy_weights(a, ref);
  dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(a.parameters()), a, o);
  optim::Adam ref_opt(ref.parameters());
  Generator g(7);
  for (int step = 0; step < 4; ++step) {
    auto [x, y] = test::random_batch(g, 8, 5, 3);
    auto [x2, y2] = test::random_batch(g, 8, 5, 3);
    opt.zero_grad();
    cross_entropy(a.forward(x), y).backward();
    cross_entropy(a.forward(x2), y2).backward();
    opt.step();
    ref_opt.zero_grad();
    cross_entropy(ref.forward(x), y).backward();
    cross_entropy(ref.forward(x2), y2).backward();
    ref_opt.step();
  }
  EXPECT_EQ(test::first_bitwise_difference(a, ref), "");
}

TEST(DistributedOptimizer, BadGradientRaisesAfterTheCollectives) {
  auto log = std::make_shared<test::CollectiveLog>();
  MirrorGroup group(2, true, log);
  dist::DistributedOptions o;
  o.process_group = &group;
  o.bucket_bytes = 64;
  manual_seed(6);
  nn::MLP model(5, {10, 10}, 3);
  dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters()), model, o);
  model.named_parameters()[2].second.set_grad(zeros({10, 10}, DType::Float64));  // fc2.weight
  try {
    opt.step();
    ADD_FAILURE() << "no error for a float64 gradient";
  } catch (const dist::DistributedError& e) {
    EXPECT_NE(std::string(e.what()).find("fc2.weight is float64"), std::string::npos) << e.what();
  }
  EXPECT_EQ(log->allreduces.size(), opt.buckets().size());  // every bucket still went through its collective
  // The next step works.
  opt.zero_grad(true);
  Generator g(1);
  auto [x, y] = test::random_batch(g, 4, 5, 3);
  cross_entropy(model.forward(x), y).backward();
  opt.step();
  EXPECT_EQ(log->allreduces.size(), 2 * opt.buckets().size());
}

TEST(DistributedOptimizer, HooksGoAwayWithTheOptimizer) {
  MirrorGroup group;
  dist::DistributedOptions o;
  o.process_group = &group;
  o.bucket_bytes = 64;
  manual_seed(6);
  nn::MLP model(5, {10, 10}, 3);
  {
    dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters()), model, o);
  }
  // A backward after the optimizer is gone must not call into it.
  Generator g(1);
  auto [x, y] = test::random_batch(g, 4, 5, 3);
  cross_entropy(model.forward(x), y).backward();
  cross_entropy(model.forward(x), y).backward();
  for (const auto& p : model.parameters()) {
    ASSERT_TRUE(p.impl()->extra);
    EXPECT_TRUE(p.impl()->extra->post_accumulate_hooks.empty());
  }
}

TEST(DistributedOptimizer, Timeline) {
  const std::string dir = test::make_temp_dir("dist_timeline");
  MirrorGroup group;
  dist::DistributedOptions o;
  o.process_group = &group;
  o.bucket_bytes = 64;
  o.timeline_path = dir + "/trace.json";
  manual_seed(6);
  nn::MLP model(5, {10, 10}, 3);
  std::string file;
  std::size_t num_buckets = 0;
  {
    dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters()), model, o);
    file = opt.timeline_file();
    num_buckets = opt.buckets().size();
    Generator g(1);
    for (int step = 0; step < 3; ++step) {
      auto [x, y] = test::random_batch(g, 4, 5, 3);
      opt.zero_grad();
      cross_entropy(model.forward(x), y).backward();
      opt.step();
    }
  }
  EXPECT_EQ(file, dir + "/trace.rank0.json");  // a world of 2: rank-suffixed
  std::ifstream in(file);
  ASSERT_TRUE(in) << file;
  const auto j = nlohmann::json::parse(in);
  std::map<std::string, int> count;
  std::set<int> comm_buckets;
  for (const auto& e : j.at("traceEvents")) {
    if (e.at("ph") != "X") continue;
    EXPECT_EQ(e.at("pid"), 0);
    EXPECT_GE(e.at("dur").get<std::int64_t>(), 0);
    const std::string name = e.at("name");
    ++count[name];
    if (name == "allreduce" && e.at("tid") == 2) comm_buckets.insert(e.at("args").at("bucket").get<int>());
  }
  EXPECT_EQ(count["backward"], 3);
  EXPECT_EQ(count["optimizer step"], 3);
  ASSERT_EQ(num_buckets, 6u);  // 16 floats a bucket: every parameter alone
  EXPECT_EQ(count["allreduce"], 3 * 6);
  EXPECT_GE(count["fill"], 3 * 6);
  EXPECT_EQ(count["wait for communication"], 3);
  EXPECT_EQ(comm_buckets, (std::set<int>{0, 1, 2, 3, 4, 5}));
  // "{rank}" in the path is replaced.
  o.timeline_path = dir + "/t-{rank}.json";
  {
    dist::DistributedOptimizer opt(std::make_unique<optim::Adam>(model.parameters()), model, o);
    EXPECT_EQ(opt.timeline_file(), dir + "/t-0.json");
  }
  EXPECT_TRUE(std::filesystem::exists(dir + "/t-0.json"));
  std::filesystem::remove_all(dir);
}

TEST(DistributedOptimizer, RejectsBadOptions) {
  MirrorGroup group;
  manual_seed(1);
  nn::MLP model(5, {10}, 3);
  dist::DistributedOptions o;
  o.process_group = &group;
  o.bucket_bytes = 0;
  EXPECT_THROW(dist::DistributedOptimizer(std::make_unique<optim::Adam>(model.parameters()), model, o), ValueError);
  o.bucket_bytes = 1024;
  EXPECT_THROW(dist::DistributedOptimizer(nullptr, model, o), ValueError);
  o.timeline_path = "/nonexistent-dir/trace.json";
  EXPECT_THROW(dist::DistributedOptimizer(std::make_unique<optim::Adam>(model.parameters()), model, o), IOError);
}

}  // namespace
