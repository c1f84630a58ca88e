// The controller: see controller.hpp. Nothing here allocates after start(): the queue is a
// flag per bucket plus the index of the next bucket to reduce.
#include "controller.hpp"

namespace krill::dist::detail {

void Controller::start(const std::vector<int>& params_per_bucket, int num_comm_buckets, ReduceFn reduce, void* ctx) {
  stop();
  params_per_bucket_ = params_per_bucket;
  pending_ = params_per_bucket;
  queued_local_.assign(params_per_bucket.size(), 0);
  queued_.assign(params_per_bucket.size(), 0);
  comm_buckets_ = num_comm_buckets;
  reduce_ = reduce;
  ctx_ = ctx;
  next_ = 0;
  stop_ = false;
  error_ = nullptr;
  if (comm_buckets_ > 0) thread_ = std::thread([this] { loop(); });
}

void Controller::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Controller::param_ready(int b) {
  if (--pending_[static_cast<std::size_t>(b)] != 0) return false;
  if (b < comm_buckets_) queue(b);
  return true;
}

void Controller::queue(int b) {
  if (queued_local_[static_cast<std::size_t>(b)]) return;
  queued_local_[static_cast<std::size_t>(b)] = 1;
  bool wake;
  {
    std::lock_guard lk(mu_);
    queued_[static_cast<std::size_t>(b)] = 1;
    wake = b == next_;  // the thread waits for exactly this bucket
  }
  if (wake) work_cv_.notify_one();
}

void Controller::wait_all() {
  {
    std::unique_lock lk(mu_);
    done_cv_.wait(lk, [&] { return next_ >= comm_buckets_; });
    next_ = 0;
    for (auto& q : queued_) q = 0;
  }
  for (std::size_t b = 0; b < pending_.size(); ++b) {
    pending_[b] = params_per_bucket_[b];
    queued_local_[b] = 0;
  }
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

void Controller::loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [&] { return stop_ || (next_ < comm_buckets_ && queued_[static_cast<std::size_t>(next_)]); });
    if (stop_) return;
    const int b = next_;
    lk.unlock();
    try {
      if (!error_) reduce_(ctx_, b);
    } catch (...) {
      error_ = std::current_exception();  // (read by the training thread after next_ moves on)
    }
    lk.lock();
    ++next_;
    if (next_ >= comm_buckets_) done_cv_.notify_one();
  }
}

}  // namespace krill::dist::detail
