// The stall inspector: see stall_inspector.hpp and dist::set_stall_inspector.
//
// Each thread that runs a collective gets one Watch (allocated on its first collective while
// the inspector runs, registered in a list, unregistered when the thread ends). A collective
// writes its start time, name, size and context into the watch and clears the start time when
// done; the watchdog thread wakes every interval (a quarter of the warning time, at most one
// second) and reports watches whose collective has been in flight longer than the warning time.
#include "stall_inspector.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "internal.hpp"
#include "krill/dist/dist.hpp"

namespace krill::dist::detail {
namespace {

struct Watch {
  std::mutex mu;
  std::int64_t since_us = 0;  // 0: no collective in flight
  const char* op = "";
  std::int64_t bytes = 0;
  char context[200] = {0};
  std::int64_t last_warning_us = 0;  // watchdog only
};

struct Inspector {
  std::mutex mu;  // guards everything below
  std::condition_variable cv;
  std::vector<Watch*> watches;
  std::thread thread;
  bool running = false;
  bool stop = false;
  double warning_s = 60.0;
  double shutdown_s = 0.0;
  int rank = 0;
  ProcessGroup* abort_group = nullptr;
};

Inspector& inspector() {
  static Inspector* in = new Inspector;  // never destroyed: threads may outlive static destruction
  return *in;
}

std::atomic<bool> g_active{false};
thread_local const std::string* t_context = nullptr;

// The calling thread's watch, registered on first use; unregistered when the thread exits.
struct WatchHolder {
  std::unique_ptr<Watch> watch;
  ~WatchHolder() {
    if (!watch) return;
    Inspector& in = inspector();
    std::lock_guard lk(in.mu);
    in.watches.erase(std::remove(in.watches.begin(), in.watches.end(), watch.get()), in.watches.end());
  }
};
thread_local WatchHolder t_watch;

Watch* my_watch() {
  if (!t_watch.watch) {
    t_watch.watch = std::make_unique<Watch>();
    Inspector& in = inspector();
    std::lock_guard lk(in.mu);
    in.watches.push_back(t_watch.watch.get());
  }
  return t_watch.watch.get();
}

std::string format_bytes(std::int64_t b) {
  char buf[64];
  if (b >= (1 << 20)) std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(b) / (1 << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KB", static_cast<double>(b) / 1024);
  else std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
  return buf;
}

void watchdog_loop() {
  Inspector& in = inspector();
  std::unique_lock lk(in.mu);
  while (!in.stop) {
    const double interval_s = std::clamp(in.warning_s / 4.0, 0.05, 1.0);
    in.cv.wait_for(lk, std::chrono::microseconds(static_cast<std::int64_t>(interval_s * 1e6)));
    if (in.stop) break;
    if (in.warning_s <= 0) continue;
    const std::int64_t now = now_us();
    for (Watch* w : in.watches) {
      std::lock_guard wl(w->mu);
      if (w->since_us == 0) continue;
      const double waited = static_cast<double>(now - w->since_us) * 1e-6;
      std::string what = std::string(w->op);
      if (w->context[0]) what += std::string(" of ") + w->context;
      what += " (" + format_bytes(w->bytes) + ")";
      if (in.shutdown_s > 0 && waited >= in.shutdown_s) {
        char msg[200];
        std::snprintf(msg, sizeof msg, "has waited %.0f s for the other ranks; ending the job (KRILL_STALL_SHUTDOWN_SECONDS=%g). ",
                      waited, in.shutdown_s);
        const std::string text = "krill dist: rank " + std::to_string(in.rank) + ": stall: " + what + " " + msg +
                                 "A rank may have stopped or be stuck, or the ranks run different numbers of steps or "
                                 "collectives.";
        ProcessGroup* g = in.abort_group;
        lk.unlock();  // (w->mu stays held: nothing else matters now)
        if (g) g->abort(text, 1);
        std::fprintf(stderr, "%s\n", text.c_str());
        std::fflush(stderr);
        std::_Exit(1);
      }
      if (waited >= in.warning_s && now - w->last_warning_us >= static_cast<std::int64_t>(in.warning_s * 1e6)) {
        w->last_warning_us = now;
        std::fprintf(stderr,
                     "krill dist: rank %d: stall: %s has waited %.0f s for the other ranks. A rank may have stopped "
                     "or be stuck, or the ranks run different numbers of steps or collectives (unequal data shards). "
                     "(stall inspector: KRILL_STALL_CHECK_SECONDS=%g, KRILL_STALL_SHUTDOWN_SECONDS=%g)\n",
                     in.rank, what.c_str(), waited, in.warning_s, in.shutdown_s);
        std::fflush(stderr);
      }
    }
  }
}

}  // namespace

void configure_stall_inspector(double warning_seconds, double shutdown_seconds) {
  Inspector& in = inspector();
  std::lock_guard lk(in.mu);
  in.warning_s = warning_seconds;
  in.shutdown_s = shutdown_seconds;
  g_active.store(in.running && in.warning_s > 0, std::memory_order_relaxed);
  in.cv.notify_all();
}

void start_stall_inspector(ProcessGroup* abort_group, int rank) {
  Inspector& in = inspector();
  std::lock_guard lk(in.mu);
  if (in.running) return;
  in.running = true;
  in.stop = false;
  in.rank = rank;
  in.abort_group = abort_group;
  in.thread = std::thread(watchdog_loop);
  g_active.store(in.warning_s > 0, std::memory_order_relaxed);
}

void stop_stall_inspector() {
  Inspector& in = inspector();
  std::thread t;
  {
    std::lock_guard lk(in.mu);
    if (!in.running) return;
    in.running = false;
    in.stop = true;
    in.abort_group = nullptr;
    g_active.store(false, std::memory_order_relaxed);
    t = std::move(in.thread);
    in.cv.notify_all();
  }
  t.join();
}

StallWatch::StallWatch(const char* op, std::int64_t bytes) : watch_(nullptr) {
  if (!g_active.load(std::memory_order_relaxed)) return;
  Watch* w = my_watch();
  std::lock_guard lk(w->mu);
  w->since_us = now_us();
  w->op = op;
  w->bytes = bytes;
  w->last_warning_us = 0;
  if (t_context) {
    const std::size_t n = std::min(t_context->size(), sizeof w->context - 1);
    std::memcpy(w->context, t_context->data(), n);
    w->context[n] = 0;
  } else {
    w->context[0] = 0;
  }
  watch_ = w;
}

StallWatch::~StallWatch() {
  if (!watch_) return;
  Watch* w = static_cast<Watch*>(watch_);
  std::lock_guard lk(w->mu);
  w->since_us = 0;
}

StallContext::StallContext(const std::string* context) : prev_(t_context) { t_context = context; }
StallContext::~StallContext() { t_context = prev_; }

}  // namespace krill::dist::detail
