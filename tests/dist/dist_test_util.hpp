// Helpers for the dist tests: a "mirror" process group that plays a world of N ranks holding
// identical values in one process (a sum multiplies by N, so an average of N = 2 is exact and
// a DistributedOptimizer over it must match its wrapped optimizer bit for bit), and small
// models.
#pragma once
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "krill/krill.hpp"

namespace krill::test {

// What the mirror group saw: (channel, op, numel) per collective, in order. Channels count the
// duplicate() calls: 0 is the group the test made.
struct CollectiveLog {
  std::mutex mu;
  std::vector<std::pair<int, std::int64_t>> allreduces;
  bool enabled = true;
};

class MirrorGroup : public dist::ProcessGroup {
 public:
  explicit MirrorGroup(int size = 2, bool concurrent = true, std::shared_ptr<CollectiveLog> log = nullptr,
                       int channel = 0)
      : size_(size), concurrent_(concurrent), log_(std::move(log)), channel_(channel) {}

  int rank() const override { return 0; }
  int size() const override { return size_; }
  int local_rank() const override { return 0; }
  int local_size() const override { return size_; }
  std::string backend() const override { return "mirror"; }
  bool concurrent_collectives() const override { return concurrent_; }

  void allreduce(Tensor& t, dist::ReduceOp op) override {
    if (log_ && log_->enabled) {
      std::lock_guard lk(log_->mu);
      log_->allreduces.emplace_back(channel_, t.numel());
    }
    if (op != dist::ReduceOp::Sum) return;  // average / max / min of equal values
    float* p = t.data_ptr<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] * static_cast<float>(size_);
  }
  void broadcast(Tensor&, int) override {}
  Tensor allgather(const Tensor& t) override {
    std::vector<Tensor> parts(static_cast<std::size_t>(size_), t);
    return cat(parts, 0);
  }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message, int) override { throw std::runtime_error(message); }
  std::unique_ptr<dist::ProcessGroup> duplicate() override {
    return std::make_unique<MirrorGroup>(size_, concurrent_, log_, ++*next_channel_);
  }

 private:
  int size_;
  bool concurrent_;
  std::shared_ptr<CollectiveLog> log_;
  int channel_;
  std::shared_ptr<int> next_channel_ = std::make_shared<int>(0);
};

// Random inputs [n, in] and class targets [n] from a generator.
inline std::pair<Tensor, Tensor> random_batch(Generator& g, std::int64_t n, std::int64_t in, std::int64_t classes) {
  Tensor x = rand(Shape{n, in}, {}, &g);
  Tensor y = randint(0, classes, Shape{n}, DType::Int64, &g);
  return {x, y};
}

// Copies every parameter and buffer of `from` into `to` (same structure).
inline void copy_weights(const nn::Module& from, nn::Module& to) { to.load_state_dict(from.state_dict()); }

// Bitwise equality of two modules' parameters; returns the first differing name (or "").
inline std::string first_bitwise_difference(const nn::Module& a, const nn::Module& b) {
  auto pa = a.named_parameters();
  auto pb = b.named_parameters();
  if (pa.size() != pb.size()) return "<different parameter counts>";
  for (std::size_t i = 0; i < pa.size(); ++i) {
    Tensor x = pa[i].second.contiguous(), y = pb[i].second.contiguous();
    if (!(x.shape() == y.shape()) || std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) != 0) return pa[i].first;
  }
  return "";
}

}  // namespace krill::test
