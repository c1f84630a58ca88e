// The timeline: see timeline.hpp.
#include "timeline.hpp"

#include <cerrno>
#include <cstring>

#include "internal.hpp"

namespace krill::dist::detail {

std::string timeline_path_for_rank(const std::string& path, int rank, int size) {
  const std::string r = std::to_string(rank);
  if (const auto pos = path.find("{rank}"); pos != std::string::npos) {
    std::string p = path;
    p.replace(pos, 6, r);
    return p;
  }
  if (size == 1) return path;
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash) || dot == (slash == std::string::npos ? 0 : slash + 1))
    return path + ".rank" + r;
  return path.substr(0, dot) + ".rank" + r + path.substr(dot);
}

void Timeline::open(const std::string& path, int rank) {
  close();
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw IOError("timeline: cannot create '" + path + "': " + std::strerror(errno));
  std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
  std::lock_guard lk(mu_);
  file_ = f;
  path_ = path;
  rank_ = rank;
  origin_us_ = now_us();
  std::fprintf(f, "{\"traceEvents\":[\n");
  std::fprintf(f, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"name\":\"rank %d\"}},\n", rank, rank);
  std::fprintf(f, "{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"sort_index\":%d}},\n", rank, rank);
  std::fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":\"training\"}},\n",
               rank, kTrainingThread);
  std::fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":\"communication\"}}",
               rank, kCommThread);
}

void Timeline::close() {
  std::lock_guard lk(mu_);
  if (!file_) return;
  std::fprintf(file_, "\n]}\n");
  std::fclose(file_);
  file_ = nullptr;
}

void Timeline::event(const char* name, const char* category, Thread tid, std::int64_t begin_us, std::int64_t end_us,
                     int bucket, std::int64_t bytes) {
  std::lock_guard lk(mu_);
  if (!file_) return;
  std::fprintf(file_, ",\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":%lld,\"dur\":%lld,\"pid\":%d,\"tid\":%d",
               name, category, static_cast<long long>(begin_us - origin_us_),
               static_cast<long long>(end_us > begin_us ? end_us - begin_us : 0), rank_, static_cast<int>(tid));
  if (bucket >= 0 || bytes >= 0) {
    std::fprintf(file_, ",\"args\":{");
    if (bucket >= 0) std::fprintf(file_, "\"bucket\":%d", bucket);
    if (bytes >= 0) std::fprintf(file_, "%s\"bytes\":%lld", bucket >= 0 ? "," : "", static_cast<long long>(bytes));
    std::fprintf(file_, "}");
  }
  std::fprintf(file_, "}");
}

}  // namespace krill::dist::detail
