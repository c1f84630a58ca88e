// Run: recording one run. Metrics go to an in-memory buffer that a background thread writes in
// batches (one transaction each), together with the run's heartbeat.
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string_view>
#include <random>
#include <sstream>
#include <thread>

#include "db.hpp"
#include "krill/track/store.hpp"
#include "krill/util/error.hpp"

namespace krill::track {

using detail::Db;
using detail::Stmt;

namespace {

std::string new_run_id() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
                      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                      (static_cast<std::uint64_t>(getpid()) << 17));
  static const char* hex = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    std::uint64_t v = gen();
    for (int i = 0; i < 16; ++i) id[half * 16 + i] = hex[(v >> (4 * i)) & 0xf];
  }
  return id;
}

std::string read_cmdline() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  while (!raw.empty() && raw.back() == '\0') raw.pop_back();
  for (char& c : raw)
    if (c == '\0') c = ' ';
  return raw;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// The commit checked out in the working directory's git repository (read from .git, no
// subprocess), or nothing.
std::optional<std::string> git_commit() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = fs::current_path(ec);
  if (ec) return std::nullopt;
  for (; !dir.empty(); dir = dir.parent_path()) {
    fs::path git = dir / ".git";
    if (fs::is_regular_file(git, ec)) {
      // A worktree or submodule: ".git" is a file "gitdir: <path>".
      std::ifstream f(git);
      std::string line;
      if (!std::getline(f, line) || line.rfind("gitdir: ", 0) != 0) return std::nullopt;
      fs::path target = trim(line.substr(8));
      git = target.is_absolute() ? target : dir / target;
    }
    if (fs::is_directory(git, ec)) {
      // Refs live in the common directory of a worktree (its "commondir" file), else here.
      fs::path common = git;
      if (std::ifstream cd(git / "commondir"); cd) {
        std::string rel;
        if (std::getline(cd, rel)) common = fs::path(trim(rel)).is_absolute() ? fs::path(trim(rel)) : git / trim(rel);
      }
      std::ifstream head(git / "HEAD");
      std::string line;
      if (!std::getline(head, line)) return std::nullopt;
      line = trim(line);
      if (line.rfind("ref: ", 0) != 0) return line.size() == 40 ? std::optional<std::string>(line) : std::nullopt;
      const std::string ref = line.substr(5);
      for (const fs::path& base : {git, common}) {
        std::ifstream loose(base / ref);
        std::string sha;
        if (std::getline(loose, sha) && trim(sha).size() == 40) return trim(sha);
      }
      std::ifstream packed(common / "packed-refs");
      while (std::getline(packed, line)) {
        line = trim(line);
        if (line.size() > 41 && line.substr(41) == ref) return line.substr(0, 40);
      }
      return std::nullopt;
    }
    if (dir == dir.parent_path()) break;
  }
  return std::nullopt;
}

// A run's writer checkpoints the WAL once it holds more pages than this (SQLite's own default
// threshold is 1000): the next process to open the store reads the whole WAL to rebuild its
// index, ~1 ms per 500 pages.
constexpr int kCheckpointFrames = 64;

struct Pending {
  std::string key;
  double value;
  std::int64_t step;
  std::int64_t timestamp;
};

}  // namespace

struct Run::Impl {
  std::unique_ptr<Db> db;
  std::mutex db_mu;          // one writer at a time on the connection
  std::string id, name, uri;
  RunOptions options;

  std::mutex buf_mu;
  std::condition_variable cv;
  std::vector<Pending> buf;
  std::mutex flush_mu;           // one flush at a time; owns `spare`
  std::vector<Pending> spare;    // swapped with buf on each flush: both keep their capacity
  bool stop = false;
  std::thread writer;
  std::exception_ptr writer_error;   // the last background failure, reported by flush()/end()
  std::int64_t last_heartbeat = 0;

  bool ended = false;
  bool killed_on_destroy = false;

  ~Impl() { stop_writer(); }   // a joinable thread must never be destroyed

  // Writes a batch and the heartbeat in one transaction. On failure the batch goes back to the
  // front of the buffer, so nothing is lost while the store is busy.
  void write(std::vector<Pending>& batch, bool force_heartbeat) {
    std::int64_t now = detail::now_ms();
    bool beat = force_heartbeat || !batch.empty() ||
                static_cast<double>(now - last_heartbeat) >= options.heartbeat_interval_s * 1000.0;
    if (!beat) return;
    try {
      std::lock_guard<std::mutex> lk(db_mu);
      detail::Transaction tx(*db);
      if (!batch.empty()) {
        Stmt ins(*db, "INSERT INTO metrics (run_id, key, value, step, timestamp, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
                 "writing metrics");
        // The batch's last point per key (highest step, then newest; later wins a tie) updates
        // latest_metrics once per key.
        std::map<std::string_view, const Pending*> last;
        for (const auto& p : batch) {
          const bool nan = std::isnan(p.value);
          ins.bind(1, id).bind(2, p.key).bind(3, nan ? 0.0 : p.value).bind(4, p.step).bind(5, p.timestamp);
          ins.bind(6, static_cast<std::int64_t>(nan));
          ins.run();
          ins.reset();
          const Pending*& l = last[p.key];
          if (!l || p.step > l->step || (p.step == l->step && p.timestamp >= l->timestamp)) l = &p;
        }
        Stmt up(*db,
                "INSERT INTO latest_metrics (run_id, key, value, step, timestamp, is_nan) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
                "timestamp = excluded.timestamp, is_nan = excluded.is_nan WHERE excluded.step > latest_metrics.step OR "
                "(excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)",
                "writing metrics");
        for (const auto& [key, p] : last) {
          const bool nan = std::isnan(p->value);
          up.bind(1, id).bind(2, p->key).bind(3, nan ? 0.0 : p->value).bind(4, p->step).bind(5, p->timestamp);
          up.bind(6, static_cast<std::int64_t>(nan));
          up.run();
          up.reset();
        }
      }
      Stmt hb(*db, "UPDATE runs SET heartbeat_time = ? WHERE id = ?", "updating the heartbeat");
      hb.bind(1, now).bind(2, id).run();
      tx.commit();
      last_heartbeat = now;
      batch.clear();
    } catch (...) {
      std::lock_guard<std::mutex> lk(buf_mu);
      buf.insert(buf.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
      batch.clear();
      throw;
    }
  }

  void flush_now(bool force_heartbeat) {
    std::lock_guard<std::mutex> f(flush_mu);
    {
      std::lock_guard<std::mutex> lk(buf_mu);
      spare.swap(buf);
    }
    write(spare, force_heartbeat);   // empties spare (keeping its capacity), or puts it back in buf
  }

  // Off the training thread: keeps the WAL short so that opening the store stays cheap.
  void checkpoint() {
    std::lock_guard<std::mutex> lk(db_mu);
    db->checkpoint_if_large(kCheckpointFrames);
  }

  // Sleeps until points arrive (or the heartbeat is due), lets a burst gather for
  // flush_interval_s, then writes it in one transaction: the points of a short run are written
  // while it trains, off its thread, and end() has little left to write.
  void writer_loop() {
    const auto gather = std::chrono::duration<double>(options.flush_interval_s);
    const auto idle = std::chrono::duration<double>(options.heartbeat_interval_s);
    checkpoint();   // what earlier runs left in the WAL
    std::unique_lock<std::mutex> lk(buf_mu);
    while (!stop) {
      cv.wait_for(lk, idle, [&] { return stop || !buf.empty(); });
      if (stop) break;
      if (!buf.empty()) cv.wait_for(lk, gather, [&] { return stop || buf.size() >= options.flush_entries; });
      if (stop) break;   // end() writes what is left
      lk.unlock();
      try {
        flush_now(false);
        checkpoint();
      } catch (...) {
        std::lock_guard<std::mutex> g(buf_mu);
        writer_error = std::current_exception();
      }
      lk.lock();
    }
  }

  void stop_writer() {
    {
      std::lock_guard<std::mutex> lk(buf_mu);
      stop = true;
    }
    cv.notify_all();
    if (writer.joinable()) writer.join();
  }

  void sync_write(const char* sql, const char* what, const std::string& a, const std::string& b) {
    if (ended) throw ValueError("run " + id + " has ended: cannot " + std::string(what));
    std::lock_guard<std::mutex> lk(db_mu);
    Stmt s(*db, sql, what);
    s.bind(1, id).bind(2, a).bind(3, b).run();
  }

  // One statement over `rows` in one transaction (params, artifacts): one commit for all.
  template <class Rows, class Bind>
  void write_rows(const char* sql, const char* what, const Rows& rows, Bind bind) {
    if (ended) throw ValueError("run " + id + " has ended: cannot " + std::string(what));
    std::lock_guard<std::mutex> lk(db_mu);
    detail::Transaction tx(*db);
    Stmt s(*db, sql, what);
    for (const auto& row : rows) {
      bind(s, row);
      s.run();
      s.reset();
    }
    tx.commit();
  }

  void finish(RunStatus status) {
    if (ended) return;
    stop_writer();
    flush_now(true);
    std::lock_guard<std::mutex> lk(db_mu);
    Stmt s(*db, "UPDATE runs SET status = ?, end_time = ? WHERE id = ?", "ending the run");
    s.bind(1, to_string(status)).bind(2, detail::now_ms()).bind(3, id).run();
    ended = true;
  }
};

Run::Run(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Run::Run(Run&&) noexcept = default;
Run& Run::operator=(Run&& other) noexcept {
  if (this != &other) {
    if (impl_ && !impl_->ended) {
      try {
        impl_->finish(impl_->killed_on_destroy ? RunStatus::Killed : RunStatus::Failed);
      } catch (...) {   // the store's liveness check reports it later
      }
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

Run::~Run() {
  if (!impl_) return;
  try {
    impl_->finish(impl_->killed_on_destroy ? RunStatus::Killed : RunStatus::Failed);
  } catch (...) {
    impl_->stop_writer();   // never throw from a destructor; the store's liveness check catches it
  }
}

const std::string& Run::id() const { return impl_->id; }
const std::string& Run::name() const { return impl_->name; }
const std::string& Run::tracking_uri() const { return impl_->uri; }
bool Run::ended() const { return impl_->ended; }
void Run::set_killed_on_destroy(bool killed) { impl_->killed_on_destroy = killed; }

void Run::log_param(const std::string& key, const std::string& value) {
  impl_->sync_write(
      "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?) "
      "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
      "log a param", key, value);
}

void Run::log_params(const std::map<std::string, std::string>& params) {
  impl_->write_rows(
      "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?) "
      "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
      "log params", params, [&](Stmt& s, const auto& kv) { s.bind(1, impl_->id).bind(2, kv.first).bind(3, kv.second); });
}

void Run::log_param(const std::string& key, double value) {
  std::ostringstream os;
  os.precision(17);
  os << value;
  log_param(key, os.str());
}

void Run::set_tag(const std::string& key, const std::string& value) {
  impl_->sync_write(
      "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?) "
      "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
      "set a tag", key, value);
}

void Run::log_artifact(const std::string& path, const std::string& kind) { log_artifacts({{path, kind}}); }

void Run::log_artifacts(const std::vector<std::pair<std::string, std::string>>& artifacts) {
  impl_->write_rows(
      "INSERT INTO artifacts (run_id, path, kind) VALUES (?, ?, ?) "
      "ON CONFLICT (run_id, path) DO UPDATE SET kind = excluded.kind",
      "log artifacts", artifacts, [&](Stmt& s, const auto& pk) {
        std::error_code ec;
        const auto abs = std::filesystem::absolute(pk.first, ec);
        const std::string path = ec ? pk.first : abs.lexically_normal().string();
        const std::string kind =
            pk.second.empty() ? (std::filesystem::is_directory(pk.first, ec) ? "dir" : "file") : pk.second;
        s.bind(1, impl_->id).bind(2, path).bind(3, kind);
      });
}

void Run::log_metric(const std::string& key, double value, std::int64_t step) {
  // Millisecond timestamps: the coarse clock (a few ns, tick of a few ms) is enough.
  timespec now{};
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  std::int64_t ts = static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
  bool wake;
  {
    std::lock_guard<std::mutex> lk(impl_->buf_mu);
    impl_->buf.push_back({key, value, step, ts});
    // the writer sleeps while the buffer is empty, and gathers until it is full
    wake = impl_->buf.size() == 1 || impl_->buf.size() == impl_->options.flush_entries;
  }
  if (wake) impl_->cv.notify_one();
}

void Run::flush() {
  impl_->flush_now(true);
  std::lock_guard<std::mutex> lk(impl_->buf_mu);
  impl_->writer_error = nullptr;   // the buffer is written now: an earlier failure is resolved
}

void Run::end(RunStatus status) {
  if (status == RunStatus::Running) throw ValueError("Run::end: the final status cannot be RUNNING");
  impl_->finish(status);
}

Run start_run(const std::string& experiment, RunOptions options) {
  if (experiment.empty()) throw ValueError("start_run: the experiment name is empty");
  if (options.flush_entries == 0) options.flush_entries = 1;
  auto impl = std::make_unique<Run::Impl>();
  impl->uri = options.tracking_uri.empty() ? default_tracking_uri() : options.tracking_uri;
  impl->db = std::make_unique<Db>(impl->uri, options.store);
  impl->db->defer_checkpoints();
  impl->id = new_run_id();
  impl->name = options.name.empty() ? "run-" + impl->id.substr(0, 8) : options.name;
  std::string cmd = options.command_line.empty() ? read_cmdline() : options.command_line;
  impl->options = options;
  auto commit = git_commit();
  std::int64_t now = detail::now_ms();
  {
    Db& db = *impl->db;
    detail::Transaction tx(db);
    Stmt e(db, "INSERT OR IGNORE INTO experiments (name, created) VALUES (?, ?)", "creating the experiment");
    e.bind(1, experiment).bind(2, now).run();
    Stmt q(db, "SELECT id FROM experiments WHERE name = ?", "reading the experiment");
    q.bind(1, experiment);
    q.step();
    std::int64_t exp_id = q.int64(0);
    Stmt r(db,
           "INSERT INTO runs (id, name, experiment_id, status, start_time, command_line, host, pid, "
           "krill_version, git_commit, heartbeat_time) VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?, ?)",
           "recording the run");
    r.bind(1, impl->id).bind(2, impl->name).bind(3, exp_id).bind(4, now).bind(5, cmd);
    r.bind(6, detail::this_host()).bind(7, static_cast<std::int64_t>(getpid())).bind(8, std::string(KRILL_VERSION));
    if (commit) r.bind(9, *commit); else r.bind_null(9);
    r.bind(10, now).run();
    tx.commit();
  }
  impl->last_heartbeat = now;
  Run::Impl* raw = impl.get();
  impl->writer = std::thread([raw] { raw->writer_loop(); });
  return Run(std::move(impl));
}

}  // namespace krill::track
