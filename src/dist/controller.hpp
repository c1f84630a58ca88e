// The controller (Horovod's name for the part that knows which tensors are ready): counts the
// gradients still missing from each bucket during backward, and runs the communication thread
// that allreduces complete buckets strictly in bucket order (bucket k only after k-1, even when
// k was complete first), so every rank issues the same collectives in the same order on the
// communication thread's own communicator. Horovod negotiates readiness through rank 0 every
// cycle; with a fixed parameter order the fixed bucket order of PyTorch DDP needs no
// negotiation.
//
// Buckets 0 .. num_comm_buckets-1 go to the communication thread (all of them, or none: then
// step() reduces them on the training thread).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace krill::dist::detail {

class Controller {
 public:
  // `reduce(ctx, bucket)` runs on the communication thread for each queued bucket, in order.
  using ReduceFn = void (*)(void* ctx, int bucket);

  Controller() = default;
  ~Controller() { stop(); }
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // `params_per_bucket[b]` gradients complete bucket b. Starts the thread when
  // num_comm_buckets > 0.
  void start(const std::vector<int>& params_per_bucket, int num_comm_buckets, ReduceFn reduce, void* ctx);
  void stop();

  int num_comm_buckets() const { return comm_buckets_; }

  // Training thread: one more gradient of bucket `b` is in place. Returns true when that
  // completed the bucket (and queued it, for a communication bucket).
  bool param_ready(int b);
  // Training thread (step()): hands bucket `b` to the communication thread now.
  void queue(int b);
  bool is_queued(int b) const { return queued_local_[static_cast<std::size_t>(b)] != 0; }
  // Training thread: waits until every communication bucket of this step is reduced, then
  // resets for the next step; rethrows an error of the communication thread.
  void wait_all();

 private:
  void loop();

  std::vector<int> params_per_bucket_;
  std::vector<int> pending_;             // training thread only
  std::vector<std::uint8_t> queued_local_;  // training thread's view of what it queued
  int comm_buckets_ = 0;
  ReduceFn reduce_ = nullptr;
  void* ctx_ = nullptr;

  std::mutex mu_;  // guards the members below
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::uint8_t> queued_;
  int next_ = 0;                 // the next bucket the thread reduces
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace krill::dist::detail
