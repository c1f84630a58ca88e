// The timeline (Horovod's name): a Chrome trace ("Trace Event Format", JSON object form) of
// what a rank's training step spends its time on, opened in chrome://tracing or Perfetto:
//   {"traceEvents":[
//     {"name":"process_name","ph":"M","pid":0,"args":{"name":"rank 0"}},
//     {"name":"allreduce","cat":"allreduce","ph":"X","ts":1234,"dur":56,"pid":0,"tid":2,
//      "args":{"bucket":0,"bytes":812}}, ...]}
// ts/dur in microseconds since the timeline opened; pid = rank; tid 1 = the training thread,
// tid 2 = the communication thread. Events go through stdio's buffer (no allocation per
// event); the closing "]}" is written by close() / the destructor.
#pragma once
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace krill::dist::detail {

class Timeline {
 public:
  enum Thread { kTrainingThread = 1, kCommThread = 2 };

  Timeline() = default;
  ~Timeline() { close(); }
  Timeline(const Timeline&) = delete;
  Timeline& operator=(const Timeline&) = delete;

  // Opens `path` for writing (throws IOError when it cannot be created).
  void open(const std::string& path, int rank);
  void close();
  bool enabled() const { return file_ != nullptr; }
  const std::string& path() const { return path_; }

  // A complete event [begin_us, end_us) on the steady clock (detail::now_us); `bucket` < 0 and
  // `bytes` < 0 are left out of args.
  void event(const char* name, const char* category, Thread tid, std::int64_t begin_us, std::int64_t end_us,
             int bucket = -1, std::int64_t bytes = -1);

 private:
  std::mutex mu_;
  std::FILE* file_ = nullptr;
  std::string path_;
  int rank_ = 0;
  std::int64_t origin_us_ = 0;
};

// The file a rank writes for `path` in a world of `size` (see DistributedOptions::timeline_path).
std::string timeline_path_for_rank(const std::string& path, int rank, int size);

}  // namespace krill::dist::detail
