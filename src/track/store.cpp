// Store: reading runs back (list, prefix lookup, liveness), deleting them.
#include <cstdlib>
#include <limits>
#include <unordered_map>

#include "db.hpp"
#include "krill/track/store.hpp"
#include "krill/util/error.hpp"

namespace krill::track {

using detail::Db;
using detail::Stmt;

std::string to_string(RunStatus status) {
  switch (status) {
    case RunStatus::Running: return "RUNNING";
    case RunStatus::Finished: return "FINISHED";
    case RunStatus::Failed: return "FAILED";
    case RunStatus::Killed: return "KILLED";
  }
  return "UNKNOWN";
}

RunStatus parse_run_status(const std::string& text) {
  if (text == "RUNNING") return RunStatus::Running;
  if (text == "FINISHED") return RunStatus::Finished;
  if (text == "FAILED") return RunStatus::Failed;
  if (text == "KILLED") return RunStatus::Killed;
  throw ValueError("unknown run status '" + text + "' (expected RUNNING, FINISHED, FAILED or KILLED)");
}

std::string default_tracking_uri() {
  const char* env = std::getenv("KRILL_TRACKING_URI");
  if (env && *env) return env;
  return "./krill-runs/runs.db";
}

struct Store::Impl {
  Db db;
  Impl(const std::string& path, const StoreOptions& options) : db(path, options) {}
};

Store::Store(const std::string& path, StoreOptions options) : impl_(std::make_unique<Impl>(path, options)) {}
Store::~Store() = default;
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;

const std::string& Store::path() const { return impl_->db.path(); }
int Store::schema_version() const { return impl_->db.schema_version(); }
int Store::latest_schema_version() { return detail::latest_version(); }

std::vector<std::string> Store::list_experiments() {
  Stmt q(impl_->db, "SELECT name FROM experiments ORDER BY id", "listing experiments");
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

namespace {

constexpr const char* kRunColumns =
    "SELECT r.id, r.name, r.experiment_id, e.name, r.status, r.start_time, r.end_time, r.command_line, "
    "r.host, r.pid, r.krill_version, r.git_commit, r.heartbeat_time FROM runs r "
    "JOIN experiments e ON e.id = r.experiment_id ";

RunInfo read_run(const Stmt& q) {
  RunInfo r;
  r.id = q.text(0);
  r.name = q.text(1);
  r.experiment_id = q.int64(2);
  r.experiment = q.text(3);
  r.status = parse_run_status(q.text(4));
  r.start_time = q.int64(5);
  if (!q.is_null(6)) r.end_time = q.int64(6);
  r.command_line = q.text(7);
  r.host = q.text(8);
  r.pid = q.int64(9);
  r.krill_version = q.text(10);
  if (!q.is_null(11)) r.git_commit = q.text(11);
  if (!q.is_null(12)) r.heartbeat_time = q.int64(12);
  return r;
}

// A RUNNING run whose process is gone, or that has been silent too long, was killed.
void check_liveness(Db& db, RunInfo& r, const std::string& host, std::int64_t now) {
  if (r.status != RunStatus::Running) return;
  std::int64_t last = r.heartbeat_time.value_or(r.start_time);
  bool dead = (r.host == host && detail::pid_gone(r.pid)) ||
              static_cast<double>(now - last) > db.options().stale_heartbeat_s * 1000.0;
  if (!dead) return;
  r.status = RunStatus::Killed;
  r.end_time = last;
  try {  // persist the verdict; a busy store only delays it to the next reader
    Stmt u(db, "UPDATE runs SET status = 'KILLED', end_time = ? WHERE id = ? AND status = 'RUNNING'",
           "marking a dead run KILLED");
    u.bind(1, last).bind(2, r.id).run();
  } catch (const IOError&) {
  }
}

// A metric's value: NaN is stored as 0 with is_nan set (SQLite has no NaN).
double metric_value(const Stmt& q, int value_column, int is_nan_column) {
  return q.int64(is_nan_column) ? std::numeric_limits<double>::quiet_NaN() : q.real(value_column);
}

bool is_hex(const std::string& s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

std::vector<RunInfo> Store::list_runs(const RunFilter& filter) {
  std::string sql = kRunColumns;
  if (filter.experiment) sql += "WHERE e.name = ?1 ";
  sql += "ORDER BY r.start_time DESC, r.rowid DESC";
  Stmt q(impl_->db, sql.c_str(), "listing runs");
  if (filter.experiment) q.bind(1, *filter.experiment);
  std::vector<RunInfo> all;
  while (q.step()) all.push_back(read_run(q));
  std::string host = detail::this_host();
  std::int64_t now = detail::now_ms();
  std::vector<RunInfo> out;
  for (auto& r : all) {
    check_liveness(impl_->db, r, host, now);
    if (!filter.status || r.status == *filter.status) out.push_back(std::move(r));
  }
  return out;
}

RunInfo Store::get_run(const std::string& id_or_prefix_in) {
  std::string id_or_prefix = id_or_prefix_in;
  for (char& c : id_or_prefix)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');   // ids pasted in upper case
  if (id_or_prefix.empty() || !is_hex(id_or_prefix))
    throw ValueError("no run '" + id_or_prefix + "' in " + path() +
                     ": run ids are lowercase hexadecimal (see `krill runs list`)");
  std::string sql = std::string(kRunColumns) + "WHERE r.id >= ?1 AND r.id < ?2 ORDER BY r.id LIMIT 11";
  Stmt q(impl_->db, sql.c_str(), "looking up a run");
  q.bind(1, id_or_prefix).bind(2, id_or_prefix + "\x7f");
  std::vector<RunInfo> found;
  while (q.step()) found.push_back(read_run(q));
  if (found.empty())
    throw ValueError("no run with id or prefix '" + id_or_prefix + "' in " + path() + " (see `krill runs list`)");
  if (found.size() > 1) {
    std::string msg = "run id prefix '" + id_or_prefix + "' is ambiguous in " + path() + "; it matches:";
    for (std::size_t i = 0; i < found.size() && i < 10; ++i)
      msg += "\n  " + found[i].id + "  " + found[i].name + "  (" + found[i].experiment + ")";
    if (found.size() > 10) msg += "\n  ...";
    msg += "\ngive more characters of the id";
    throw ValueError(msg);
  }
  check_liveness(impl_->db, found[0], detail::this_host(), detail::now_ms());
  return found[0];
}

namespace {
std::map<std::string, std::string> key_values(Db& db, const char* sql, const std::string& run_id) {
  Stmt q(db, sql, "reading a run");
  q.bind(1, run_id);
  std::map<std::string, std::string> out;
  while (q.step()) out[q.text(0)] = q.text(1);
  return out;
}
}  // namespace

std::map<std::string, std::string> Store::params(const std::string& run_id) {
  return key_values(impl_->db, "SELECT key, value FROM params WHERE run_id = ?", run_id);
}
std::map<std::string, std::string> Store::tags(const std::string& run_id) {
  return key_values(impl_->db, "SELECT key, value FROM tags WHERE run_id = ?", run_id);
}

std::vector<std::string> Store::metric_keys(const std::string& run_id) {
  Stmt q(impl_->db, "SELECT DISTINCT key FROM metrics WHERE run_id = ? ORDER BY key", "reading metric keys");
  q.bind(1, run_id);
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

std::vector<MetricPoint> Store::metric_history(const std::string& run_id, const std::string& key) {
  Stmt q(impl_->db,
         "SELECT key, value, step, timestamp, is_nan FROM metrics WHERE run_id = ? AND key = ? "
         "ORDER BY step, timestamp, rowid",
         "reading a metric history");
  q.bind(1, run_id).bind(2, key);
  std::vector<MetricPoint> out;
  while (q.step()) out.push_back({q.text(0), metric_value(q, 1, 4), q.int64(2), q.int64(3)});
  return out;
}

std::map<std::string, MetricPoint> Store::latest_metrics(const std::string& run_id) {
  Stmt q(impl_->db, "SELECT key, value, step, timestamp, is_nan FROM latest_metrics WHERE run_id = ?",
         "reading latest metrics");
  q.bind(1, run_id);
  std::map<std::string, MetricPoint> out;
  while (q.step()) {
    MetricPoint p{q.text(0), metric_value(q, 1, 4), q.int64(2), q.int64(3)};
    out[p.key] = p;
  }
  return out;
}

std::vector<RunSummary> Store::run_summaries(const RunFilter& filter) {
  std::vector<RunSummary> out;
  std::unordered_map<std::string, std::size_t> index;
  for (RunInfo& r : list_runs(filter)) {
    index.emplace(r.id, out.size());
    out.push_back(RunSummary{std::move(r), {}, {}, {}});
  }
  if (out.empty()) return out;
  // Three scans of small tables instead of three queries per run.
  auto fill = [&](const char* sql, auto&& put) {
    Stmt q(impl_->db, sql, "reading run summaries");
    while (q.step()) {
      auto it = index.find(q.text(0));
      if (it != index.end()) put(out[it->second], q);
    }
  };
  fill("SELECT run_id, key, value FROM params", [](RunSummary& s, Stmt& q) { s.params[q.text(1)] = q.text(2); });
  fill("SELECT run_id, key, value FROM tags", [](RunSummary& s, Stmt& q) { s.tags[q.text(1)] = q.text(2); });
  fill("SELECT run_id, key, value, step, timestamp, is_nan FROM latest_metrics", [](RunSummary& s, Stmt& q) {
    MetricPoint p{q.text(1), metric_value(q, 2, 5), q.int64(3), q.int64(4)};
    s.latest_metrics[p.key] = p;
  });
  return out;
}

std::size_t Store::metric_count(const std::string& run_id) {
  Stmt q(impl_->db, "SELECT COUNT(*) FROM metrics WHERE run_id = ?", "counting metrics");
  q.bind(1, run_id);
  q.step();
  return static_cast<std::size_t>(q.int64(0));
}

std::vector<Artifact> Store::artifacts(const std::string& run_id) {
  Stmt q(impl_->db, "SELECT path, kind FROM artifacts WHERE run_id = ? ORDER BY rowid", "reading artifacts");
  q.bind(1, run_id);
  std::vector<Artifact> out;
  while (q.step()) out.push_back({q.text(0), q.text(1)});
  return out;
}

void Store::delete_run(const std::string& id_or_prefix) {
  RunInfo r = get_run(id_or_prefix);
  detail::Transaction tx(impl_->db);
  Stmt d(impl_->db, "DELETE FROM runs WHERE id = ?", "deleting a run");   // cascades
  d.bind(1, r.id).run();
  tx.commit();
}

}  // namespace krill::track
