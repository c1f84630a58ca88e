// Run tracking (MLflow's tracking schema in an embedded SQLite database).
//
//   auto run = krill::track::start_run("penguins");
//   run.log_param("lr", "0.01");
//   run.log_metric("loss", v, step);     // buffered: a background thread writes batches
//   run.set_tag("note", "baseline");
//   run.log_artifact("model/");
//   run.end();                           // FINISHED; a Run destroyed un-ended is FAILED
//
// The store is one file (default ./krill-runs/runs.db, or $KRILL_TRACKING_URI) in WAL mode, so
// several processes can log into it at once and a reader never blocks the writers. Tables:
// schema_version, experiments, runs, params, tags, metrics (full history), artifacts. Opening a
// store written by an older krill upgrades it (ordered migrations, one transaction); a store
// from a newer krill is refused with an IOError.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace krill::track {

enum class RunStatus { Running, Finished, Failed, Killed };
std::string to_string(RunStatus status);       // "RUNNING", "FINISHED", "FAILED", "KILLED"
RunStatus parse_run_status(const std::string& text);  // ValueError on anything else

// $KRILL_TRACKING_URI when set and non-empty, else "./krill-runs/runs.db".
std::string default_tracking_uri();

struct StoreOptions {
  double busy_timeout_s = 10.0;      // how long a write waits for another process's lock
  double stale_heartbeat_s = 60.0;   // a RUNNING run silent for longer is reported KILLED
};

// Times are milliseconds since the Unix epoch.
struct RunInfo {
  std::string id;              // 32 lowercase hex digits
  std::string name;
  std::int64_t experiment_id = 0;
  std::string experiment;      // the experiment's name
  RunStatus status = RunStatus::Running;
  std::int64_t start_time = 0;
  std::optional<std::int64_t> end_time;
  std::string command_line;
  std::string host;
  std::int64_t pid = 0;
  std::string krill_version;
  std::optional<std::string> git_commit;
  std::optional<std::int64_t> heartbeat_time;
};

struct MetricPoint {
  std::string key;
  double value = 0;
  std::int64_t step = 0;
  std::int64_t timestamp = 0;
};

struct Artifact {
  std::string path;   // absolute
  std::string kind;   // "file", "dir" or what the caller gave
};

// A run with its params, tags and the last point of each metric (what a runs table shows).
struct RunSummary {
  RunInfo info;
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> tags;
  std::map<std::string, MetricPoint> latest_metrics;
};

struct RunFilter {
  std::optional<std::string> experiment;   // experiment name
  std::optional<RunStatus> status;         // compared after the liveness check
};

// A connection to a store (reads, deletes). Opening creates the file and its directory when
// missing. Errors are krill::IOError naming the path: not a database, locked beyond the busy
// timeout, written by a newer krill, unwritable.
class Store {
 public:
  explicit Store(const std::string& path = default_tracking_uri(), StoreOptions options = {});
  ~Store();
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;

  const std::string& path() const;
  int schema_version() const;         // of the open file (== latest_schema_version())
  static int latest_schema_version();

  std::vector<std::string> list_experiments();
  // Newest first. RUNNING runs whose process is gone (same host, kill(pid, 0) == ESRCH) or whose
  // heartbeat is older than stale_heartbeat_s are reported KILLED, and stored so (best effort).
  std::vector<RunInfo> list_runs(const RunFilter& filter = {});
  // By full id or a unique prefix; ValueError for an unknown or ambiguous one (listing matches).
  RunInfo get_run(const std::string& id_or_prefix);

  std::map<std::string, std::string> params(const std::string& run_id);
  std::map<std::string, std::string> tags(const std::string& run_id);
  std::vector<std::string> metric_keys(const std::string& run_id);
  std::vector<MetricPoint> metric_history(const std::string& run_id, const std::string& key);  // by step
  std::map<std::string, MetricPoint> latest_metrics(const std::string& run_id);  // highest step, then newest
  // list_runs(filter) with each run's params, tags and latest metrics, read in a few queries
  // whatever the number of runs.
  std::vector<RunSummary> run_summaries(const RunFilter& filter = {});
  std::size_t metric_count(const std::string& run_id);   // all keys
  std::vector<Artifact> artifacts(const std::string& run_id);
  void delete_run(const std::string& id_or_prefix);       // with its params, tags, metrics, artifacts

  struct Impl;
 private:
  std::unique_ptr<Impl> impl_;
};

struct RunOptions {
  std::string name;                  // default: "run-<first 8 hex digits of the id>"
  std::string tracking_uri;          // default: default_tracking_uri()
  std::string command_line;          // default: /proc/self/cmdline
  StoreOptions store;
  double flush_interval_s = 0.02;    // how long the writer lets points gather before a write
  std::size_t flush_entries = 8192;  // ... or as soon as this many points wait
  double heartbeat_interval_s = 5.0;
};

// One run being recorded. Not copyable; movable. Thread-safe: log_metric may be called from
// several threads. Writes other than metrics (params, tags, artifacts) are synchronous.
class Run {
 public:
  Run(Run&&) noexcept;
  Run& operator=(Run&&) noexcept;
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;
  // Ends an un-ended run as FAILED (KILLED after set_killed_on_destroy(true)); never throws.
  ~Run();

  const std::string& id() const;
  const std::string& name() const;
  const std::string& tracking_uri() const;

  void log_param(const std::string& key, const std::string& value);   // one value per key: re-logging replaces
  void log_param(const std::string& key, double value);
  void log_params(const std::map<std::string, std::string>& params);   // in one transaction
  void set_tag(const std::string& key, const std::string& value);
  // Appends to an in-memory buffer (tens of ns); never waits on SQLite.
  void log_metric(const std::string& key, double value, std::int64_t step = 0);
  void log_artifact(const std::string& path, const std::string& kind = "");  // kind: "file"/"dir" by default
  void log_artifacts(const std::vector<std::pair<std::string, std::string>>& path_kinds);  // one transaction
  void flush();                                     // writes the buffered metrics now
  void end(RunStatus status = RunStatus::Finished); // flushes, stops the writer, records the status
  bool ended() const;
  void set_killed_on_destroy(bool killed);

  struct Impl;
 private:
  explicit Run(std::unique_ptr<Impl> impl);
  friend Run start_run(const std::string& experiment, RunOptions options);
  std::unique_ptr<Impl> impl_;
};

// Creates the experiment when new, records a RUNNING run (host, pid, command line, krill
// version, git commit of the working directory when there is one) and starts its writer.
Run start_run(const std::string& experiment, RunOptions options = {});

}  // namespace krill::track
