// The stall inspector (Horovod's name): a watchdog thread that looks at every collective in
// flight and reports one that has waited too long for the other ranks (see
// dist::set_stall_inspector). Collectives announce themselves with a StallWatch on their stack;
// the DistributedOptimizer names the bucket a collective works on with a StallContext.
#pragma once
#include <cstdint>
#include <string>

namespace krill::dist {
class ProcessGroup;
}

namespace krill::dist::detail {

// Starts the watchdog (idempotent) for a world whose rank is `rank`; `abort_group` ends the job
// on a stall shutdown. Stopped by stop_stall_inspector() (finalize).
void start_stall_inspector(ProcessGroup* abort_group, int rank);
void stop_stall_inspector();
void configure_stall_inspector(double warning_seconds, double shutdown_seconds);

// Marks the calling thread as blocked in collective `op` (a string literal) over `bytes`
// bytes until destroyed. Cheap (an uncontended lock and a clock read) when the inspector runs,
// a branch when it does not.
class StallWatch {
 public:
  StallWatch(const char* op, std::int64_t bytes);
  ~StallWatch();
  StallWatch(const StallWatch&) = delete;
  StallWatch& operator=(const StallWatch&) = delete;

 private:
  void* watch_;
};

// Names what the calling thread's collectives in scope work on ("bucket 1: fc2.weight, ...").
// `context` must outlive the scope.
class StallContext {
 public:
  explicit StallContext(const std::string* context);
  ~StallContext();
  StallContext(const StallContext&) = delete;
  StallContext& operator=(const StallContext&) = delete;

 private:
  const std::string* prev_;
};

}  // namespace krill::dist::detail
