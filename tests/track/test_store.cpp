// The run-tracking store: schema, migrations, logging and reading back, prefix lookup, status
// lifecycle, several processes at once, SIGKILL'd runs, corrupt and locked databases.
#include <gtest/gtest.h>

#include <limits>

#include <cmath>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "krill/track/store.hpp"
#include "krill/util/error.hpp"
#include "support/oracle.hpp"

using namespace krill;
using krill::track::RunStatus;

namespace {

std::string fresh_db(const std::string& tag) { return krill::test::make_temp_dir(tag) + "/runs.db"; }

track::RunOptions opts(const std::string& uri, const std::string& name = "") {
  track::RunOptions o;
  o.tracking_uri = uri;
  o.name = name;
  return o;
}

// Raw SQL on the file, for hand-made old schemas and tampering.
void sql(const std::string& path, const std::string& text) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const IOError& e) {
    return std::string("IOError: ") + e.what();
  } catch (const ValueError& e) {
    return std::string("ValueError: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("other: ") + e.what();
  }
  return "no error";
}

}  // namespace

TEST(TrackStore, CreatesSchemaAndReopens) {
  std::string path = krill::test::make_temp_dir("track_schema") + "/nested/dir/runs.db";
  {
    track::Store store(path);
    EXPECT_EQ(store.schema_version(), track::Store::latest_schema_version());
    EXPECT_TRUE(store.list_runs().empty());
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  std::string id;
  {
    auto run = track::start_run("exp", opts(path, "first"));
    id = run.id();
    EXPECT_EQ(id.size(), 32u);
    run.end();
  }
  track::Store again(path);
  auto runs = again.list_runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].id, id);
  EXPECT_EQ(runs[0].name, "first");
  EXPECT_EQ(runs[0].experiment, "exp");
  EXPECT_EQ(runs[0].status, RunStatus::Finished);
  EXPECT_EQ(runs[0].pid, getpid());
  EXPECT_FALSE(runs[0].host.empty());
  EXPECT_FALSE(runs[0].krill_version.empty());
  EXPECT_FALSE(runs[0].command_line.empty());
  ASSERT_TRUE(runs[0].end_time.has_value());
  EXPECT_GE(*runs[0].end_time, runs[0].start_time);
  EXPECT_EQ(again.list_experiments(), std::vector<std::string>{"exp"});
}

TEST(TrackStore, DefaultUriFromEnvironment) {
  ::unsetenv("KRILL_TRACKING_URI");
  EXPECT_EQ(track::default_tracking_uri(), "./krill-runs/runs.db");
  ::setenv("KRILL_TRACKING_URI", "/tmp/elsewhere.db", 1);
  EXPECT_EQ(track::default_tracking_uri(), "/tmp/elsewhere.db");
  ::unsetenv("KRILL_TRACKING_URI");
}

TEST(TrackStore, MigratesVersionOneStore) {
  std::string path = fresh_db("track_migrate");
  // The schema of version 1, as an older krill wrote it, with one finished run.
  sql(path, R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE experiments (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, created INTEGER NOT NULL);
CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  status TEXT NOT NULL CHECK (status IN ('RUNNING', 'FINISHED', 'FAILED', 'KILLED')), start_time INTEGER NOT NULL,
  end_time INTEGER, command_line TEXT NOT NULL DEFAULT '', host TEXT NOT NULL DEFAULT '', pid INTEGER NOT NULL DEFAULT 0,
  krill_version TEXT NOT NULL DEFAULT '', git_commit TEXT);
CREATE TABLE params (run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE tags (run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE metrics (run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL, value REAL NOT NULL, step INTEGER NOT NULL, timestamp INTEGER NOT NULL);
INSERT INTO experiments (name, created) VALUES ('old', 1000);
INSERT INTO runs (id, name, experiment_id, status, start_time, end_time) VALUES ('abcdef0123456789abcdef0123456789', 'legacy', 1, 'FINISHED', 1000, 2000);
INSERT INTO params VALUES ('abcdef0123456789abcdef0123456789', 'lr', '0.1');
INSERT INTO metrics VALUES ('abcdef0123456789abcdef0123456789', 'loss', 0.5, 1, 1500);
INSERT INTO metrics VALUES ('abcdef0123456789abcdef0123456789', 'loss', 0.25, 3, 1400);
INSERT INTO metrics VALUES ('abcdef0123456789abcdef0123456789', 'loss', 0.75, 2, 1600);
)sql");
  track::Store store(path);
  EXPECT_EQ(store.schema_version(), track::Store::latest_schema_version());
  EXPECT_EQ(track::Store::latest_schema_version(), 4);
  auto r = store.get_run("abcdef");
  EXPECT_EQ(r.name, "legacy");
  EXPECT_EQ(r.status, RunStatus::Finished);
  EXPECT_FALSE(r.heartbeat_time.has_value());
  EXPECT_EQ(store.params(r.id).at("lr"), "0.1");
  EXPECT_EQ(store.metric_count(r.id), 3u);
  EXPECT_TRUE(store.artifacts(r.id).empty());   // the table added by migration 2
  // migration 3 fills latest_metrics from the history: the highest step wins, not the newest
  auto latest = store.latest_metrics(r.id);
  ASSERT_EQ(latest.size(), 1u);
  EXPECT_EQ(latest.at("loss").step, 3);
  EXPECT_DOUBLE_EQ(latest.at("loss").value, 0.25);
  // and the upgraded store takes new runs
  auto run = track::start_run("old", opts(path));
  run.log_artifact(path);
  run.end();
  EXPECT_EQ(store.artifacts(run.id()).size(), 1u);
}

TEST(TrackStore, RefusesNewerSchema) {
  std::string path = fresh_db("track_newer");
  { track::Store s(path); }
  sql(path, "UPDATE schema_version SET version = 99");
  std::string err = error_of([&] { track::Store s(path); });
  EXPECT_NE(err.find("IOError"), std::string::npos) << err;
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("schema version 99"), std::string::npos) << err;
  EXPECT_NE(err.find("upgrade krill"), std::string::npos) << err;
}

TEST(TrackStore, LogsAndReadsBack) {
  std::string path = fresh_db("track_log");
  std::string dir = std::filesystem::path(path).parent_path().string();
  auto run = track::start_run("penguins", opts(path, "baseline"));
  run.log_param("lr", "0.01");
  run.log_param("epochs", 20.0);
  run.log_param("lr", "0.02");   // replaces
  run.log_params({{"optimizer", "adam"}, {"hidden", "10,10"}});
  run.set_tag("note", "first try");
  run.set_tag("user", "<script>alert(1)</script>");
  for (int step = 9; step >= 0; --step) run.log_metric("loss", 1.0 / (step + 1), step);   // out of order
  for (int step = 0; step < 5; ++step) run.log_metric("acc", 0.1 * step, step);
  run.log_artifact(dir);
  run.log_artifact(path, "database");
  run.flush();

  track::Store store(path);
  auto p = store.params(run.id());
  EXPECT_EQ(p.size(), 4u);
  EXPECT_EQ(p.at("lr"), "0.02");
  EXPECT_EQ(p.at("hidden"), "10,10");
  EXPECT_EQ(p.at("epochs"), "20");
  auto t = store.tags(run.id());
  EXPECT_EQ(t.at("note"), "first try");
  EXPECT_EQ(t.at("user"), "<script>alert(1)</script>");
  auto loss = store.metric_history(run.id(), "loss");
  ASSERT_EQ(loss.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(loss[i].step, i);
    EXPECT_DOUBLE_EQ(loss[i].value, 1.0 / (i + 1));
    EXPECT_GT(loss[i].timestamp, 0);
  }
  EXPECT_EQ(store.metric_keys(run.id()), (std::vector<std::string>{"acc", "loss"}));
  auto latest = store.latest_metrics(run.id());
  EXPECT_EQ(latest.at("loss").step, 9);
  EXPECT_DOUBLE_EQ(latest.at("acc").value, 0.4);
  auto arts = store.artifacts(run.id());
  ASSERT_EQ(arts.size(), 2u);
  EXPECT_EQ(arts[0].kind, "dir");
  EXPECT_EQ(arts[1].kind, "database");
  EXPECT_TRUE(std::filesystem::path(arts[0].path).is_absolute());

  EXPECT_EQ(store.get_run(run.id()).status, RunStatus::Running);
  run.end();
  EXPECT_THROW(run.log_param("late", "x"), ValueError);
  EXPECT_EQ(store.get_run(run.id()).status, RunStatus::Finished);
  EXPECT_EQ(store.metric_count(run.id()), 15u);
  latest = store.latest_metrics(run.id());

  // latest points across several writer batches: a lower step logged later does not win
  run.log_metric("acc", 0.9, 7);
  run.flush();
  run.log_metric("acc", 0.05, 1);
  run.log_metric("acc", 0.95, 7);   // same step, newer: wins
  run.flush();
  latest = store.latest_metrics(run.id());
  EXPECT_EQ(latest.at("acc").step, 7);
  EXPECT_DOUBLE_EQ(latest.at("acc").value, 0.95);
  // NaN (a diverging loss) and infinities are kept as such
  run.log_metric("diverged", 1.5, 0);
  run.log_metric("diverged", std::numeric_limits<double>::infinity(), 1);
  run.log_metric("diverged", std::nan(""), 2);
  run.flush();
  auto diverged = store.metric_history(run.id(), "diverged");
  ASSERT_EQ(diverged.size(), 3u);
  EXPECT_DOUBLE_EQ(diverged[0].value, 1.5);
  EXPECT_TRUE(std::isinf(diverged[1].value));
  EXPECT_TRUE(std::isnan(diverged[2].value));
  EXPECT_TRUE(std::isnan(store.latest_metrics(run.id()).at("diverged").value));
  auto other = track::start_run("other", opts(path, "second"));
  other.log_param("lr", "0.5");
  other.log_metric("loss", 2.0, 0);
  other.end();
  auto summaries = store.run_summaries();
  ASSERT_EQ(summaries.size(), 2u);
  EXPECT_EQ(summaries[0].info.name, "second");   // newest first
  EXPECT_EQ(summaries[0].params.at("lr"), "0.5");
  EXPECT_DOUBLE_EQ(summaries[0].latest_metrics.at("loss").value, 2.0);
  EXPECT_EQ(summaries[1].info.id, run.id());
  EXPECT_EQ(summaries[1].params, store.params(run.id()));
  EXPECT_EQ(summaries[1].tags.at("user"), "<script>alert(1)</script>");
  EXPECT_EQ(summaries[1].latest_metrics.at("loss").step, 9);
  EXPECT_EQ(store.run_summaries({.experiment = "other"}).size(), 1u);
  store.delete_run(other.id());

  store.delete_run(run.id().substr(0, 12));
  EXPECT_TRUE(store.list_runs().empty());
  EXPECT_TRUE(store.latest_metrics(run.id()).empty());
  EXPECT_EQ(store.metric_count(run.id()), 0u);
  EXPECT_TRUE(store.params(run.id()).empty());
}

TEST(TrackStore, PrefixLookup) {
  std::string path = fresh_db("track_prefix");
  { track::Store s(path); }
  sql(path,
      "INSERT INTO experiments (name, created) VALUES ('e', 1);"
      "INSERT INTO runs (id, name, experiment_id, status, start_time, end_time) VALUES "
      "('aaaa1111000000000000000000000000', 'one', 1, 'FINISHED', 1, 2),"
      "('aaaa2222000000000000000000000000', 'two', 1, 'FINISHED', 1, 2),"
      "('bbbb0000000000000000000000000000', 'three', 1, 'FAILED', 1, 2);");
  track::Store store(path);
  EXPECT_EQ(store.get_run("aaaa1").name, "one");
  EXPECT_EQ(store.get_run("b").name, "three");
  EXPECT_EQ(store.get_run("AAAA1").name, "one");
  EXPECT_EQ(store.get_run("aaaa2222000000000000000000000000").name, "two");
  std::string amb = error_of([&] { store.get_run("aaaa"); });
  EXPECT_NE(amb.find("ValueError"), std::string::npos) << amb;
  EXPECT_NE(amb.find("ambiguous"), std::string::npos) << amb;
  EXPECT_NE(amb.find("aaaa1111000000000000000000000000"), std::string::npos) << amb;
  EXPECT_NE(amb.find("aaaa2222000000000000000000000000"), std::string::npos) << amb;
  std::string unknown = error_of([&] { store.get_run("cccc"); });
  EXPECT_NE(unknown.find("ValueError"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("no run"), std::string::npos) << unknown;
  EXPECT_NE(error_of([&] { store.get_run("a%"); }).find("ValueError"), std::string::npos);
  EXPECT_NE(error_of([&] { store.get_run(""); }).find("ValueError"), std::string::npos);

  track::RunFilter f;
  f.status = RunStatus::Failed;
  auto failed = store.list_runs(f);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].name, "three");
  f = {};
  f.experiment = "nope";
  EXPECT_TRUE(store.list_runs(f).empty());
}

TEST(TrackStore, StatusLifecycleAndDestructor) {
  std::string path = fresh_db("track_status");
  std::string failed_id, killed_id, explicit_id;
  {
    auto run = track::start_run("e", opts(path));
    failed_id = run.id();
    run.log_metric("loss", 1.0, 0);
    run.log_metric("loss", 0.5, 1);
  }  // destroyed un-ended: FAILED, metrics written
  {
    auto run = track::start_run("e", opts(path));
    killed_id = run.id();
    run.set_killed_on_destroy(true);
  }
  {
    auto run = track::start_run("e", opts(path));
    explicit_id = run.id();
    EXPECT_THROW(run.end(RunStatus::Running), ValueError);
    run.end(RunStatus::Failed);
    run.end(RunStatus::Finished);   // already ended: no change
    EXPECT_TRUE(run.ended());
  }
  track::Store store(path);
  EXPECT_EQ(store.get_run(failed_id).status, RunStatus::Failed);
  EXPECT_EQ(store.metric_count(failed_id), 2u);
  EXPECT_EQ(store.get_run(killed_id).status, RunStatus::Killed);
  EXPECT_EQ(store.get_run(explicit_id).status, RunStatus::Failed);

  // A moved run is ended once, by its new owner.
  std::string moved_id;
  {
    auto a = track::start_run("e", opts(path));
    moved_id = a.id();
    track::Run b = std::move(a);
    b.log_metric("x", 1, 0);
    b.end();
  }
  EXPECT_EQ(store.get_run(moved_id).status, RunStatus::Finished);
  EXPECT_EQ(store.metric_count(moved_id), 1u);
}

TEST(TrackStore, LogMetricFromSeveralThreads) {
  std::string path = fresh_db("track_threads");
  auto o = opts(path);
  o.flush_interval_s = 0.005;
  o.flush_entries = 64;
  auto run = track::start_run("e", o);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&run, t] {
      for (int i = 0; i < 5000; ++i) run.log_metric("m" + std::to_string(t), i, i);
    });
  for (auto& th : threads) th.join();
  run.end();
  track::Store store(path);
  EXPECT_EQ(store.metric_count(run.id()), 20000u);
  auto h = store.metric_history(run.id(), "m2");
  ASSERT_EQ(h.size(), 5000u);
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(h[i].step, i);
}

TEST(TrackStore, RecordsGitCommitOfWorkingDirectory) {
  std::string expected;
  int rc = krill::test::run_command("git rev-parse HEAD 2>/dev/null", &expected);
  while (!expected.empty() && (expected.back() == '\n' || expected.back() == ' ')) expected.pop_back();
  std::string path = fresh_db("track_git");
  auto run = track::start_run("e", opts(path));
  run.end();
  auto r = track::Store(path).get_run(run.id());
  if (rc == 0 && expected.size() == 40) {
    ASSERT_TRUE(r.git_commit.has_value());
    EXPECT_EQ(*r.git_commit, expected);
  } else {
    EXPECT_FALSE(r.git_commit.has_value());
  }
}

TEST(TrackStore, BackgroundWriterFlushesWithoutEnd) {
  std::string path = fresh_db("track_bg");
  auto o = opts(path);
  o.flush_interval_s = 0.05;
  auto run = track::start_run("e", o);
  for (int i = 0; i < 100; ++i) run.log_metric("m", i, i);
  track::Store store(path);
  for (int i = 0; i < 200 && store.metric_count(run.id()) < 100; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(store.metric_count(run.id()), 100u);
  ASSERT_TRUE(store.get_run(run.id()).heartbeat_time.has_value());
  run.end();
}

TEST(TrackStore, StaleHeartbeatIsKilled) {
  std::string path = fresh_db("track_stale");
  auto run = track::start_run("e", opts(path));
  run.flush();
  // An old heartbeat, as if the process had hung on another host.
  sql(path, "UPDATE runs SET heartbeat_time = heartbeat_time - 3600000, host = 'elsewhere'");
  track::Store store(path);
  auto r = store.get_run(run.id());
  EXPECT_EQ(r.status, RunStatus::Killed);
  run.set_killed_on_destroy(true);
}

TEST(TrackStore, ConcurrentProcessesLoseNoMetric) {
  std::string path = fresh_db("track_concurrent");
  { track::Store s(path); }   // closed before fork: no connection crosses it
  constexpr int kProcs = 4, kRunsPerProc = 3, kPoints = 2000;
  int go[2];   // the children start together when the parent closes its end
  ASSERT_EQ(pipe(go), 0);
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(go[1]);
      char c;
      while (read(go[0], &c, 1) > 0) {
      }
      int code = 0;
      try {
        std::vector<track::Run> runs;
        for (int r = 0; r < kRunsPerProc; ++r) {
          auto o = opts(path, "p" + std::to_string(p) + "r" + std::to_string(r));
          o.flush_interval_s = 0.01;
          o.flush_entries = 256;
          runs.push_back(track::start_run("concurrent", o));
        }
        for (int i = 0; i < kPoints; ++i) {
          runs[i % kRunsPerProc].log_metric("loss", 1.0 / (i + 1), i);
          if (i % 500 == 0) runs[i % kRunsPerProc].log_param("p" + std::to_string(i), "v");
          if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));   // let the writers interleave
        }
        for (auto& r : runs) r.end();
      } catch (const std::exception& e) {
        fprintf(stderr, "child %d: %s\n", p, e.what());
        code = 1;
      }
      _exit(code);
    }
    kids.push_back(pid);
  }
  close(go[0]);
  close(go[1]);
  for (pid_t k : kids) {
    int status = 0;
    ASSERT_EQ(waitpid(k, &status, 0), k);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  track::Store store(path);
  auto runs = store.list_runs();
  ASSERT_EQ(runs.size(), static_cast<std::size_t>(kProcs * kRunsPerProc));
  std::size_t total = 0;
  for (auto& r : runs) {
    EXPECT_EQ(r.status, RunStatus::Finished) << r.name;
    total += store.metric_count(r.id);
  }
  EXPECT_EQ(total, static_cast<std::size_t>(kProcs * kPoints));
}

TEST(TrackStore, SigkilledRunShowsKilledWithItsMetrics) {
  std::string path = fresh_db("track_sigkill");
  { track::Store s(path); }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    try {
      auto run = track::start_run("doomed", opts(path));
      for (int i = 0; i < 150; ++i) run.log_metric("loss", 1.0 / (i + 1), i);
      run.flush();
      std::string id = run.id() + "\n";
      if (write(fds[1], id.data(), id.size()) != static_cast<ssize_t>(id.size())) _exit(2);
      for (;;) pause();
    } catch (...) {
      _exit(1);
    }
  }
  close(fds[1]);
  char buf[64] = {};
  std::size_t got = 0;
  while (got < 33) {
    ssize_t n = read(fds[0], buf + got, sizeof(buf) - 1 - got);
    ASSERT_GT(n, 0) << "the child died before logging";
    got += static_cast<std::size_t>(n);
  }
  close(fds[0]);
  std::string id(buf, 32);
  {
    track::Store store(path);
    EXPECT_EQ(store.get_run(id).status, RunStatus::Running);   // alive yet
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));

  track::Store store(path);
  auto runs = store.list_runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].id, id);
  EXPECT_EQ(runs[0].status, RunStatus::Killed);
  ASSERT_TRUE(runs[0].end_time.has_value());
  EXPECT_EQ(store.metric_count(id), 150u);
  auto hist = store.metric_history(id, "loss");
  ASSERT_EQ(hist.size(), 150u);
  EXPECT_EQ(hist.back().step, 149);
  // and the verdict was stored: a raw read sees KILLED too
  track::Store again(path);
  track::RunFilter f;
  f.status = RunStatus::Killed;
  EXPECT_EQ(again.list_runs(f).size(), 1u);
}

TEST(TrackStore, CorruptFileGivesClearError) {
  std::string path = fresh_db("track_corrupt");
  {
    std::ofstream f(path, std::ios::binary);
    for (int i = 0; i < 512; ++i) f << "this is not a database, just garbage bytes ";
  }
  std::string err = error_of([&] { track::Store s(path); });
  EXPECT_NE(err.find("IOError"), std::string::npos) << err;
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("not a valid"), std::string::npos) << err;
  EXPECT_NE(err.find("move the file aside"), std::string::npos) << err;
  std::string err2 = error_of([&] { track::start_run("e", opts(path)); });
  EXPECT_NE(err2.find("IOError"), std::string::npos) << err2;
}

TEST(TrackStore, LockedDatabaseGivesClearError) {
  std::string path = fresh_db("track_locked");
  { track::Store s(path); }
  // Another connection holds the write lock for longer than the busy timeout.
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &holder), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(holder, "BEGIN EXCLUSIVE; INSERT INTO experiments (name, created) VALUES ('held', 1);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  auto o = opts(path);
  o.store.busy_timeout_s = 0.2;
  auto t0 = std::chrono::steady_clock::now();
  std::string err = error_of([&] { track::start_run("e", o); });
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(err.find("IOError"), std::string::npos) << err;
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("locked"), std::string::npos) << err;
  EXPECT_GE(waited, 0.15);
  // Readers are not blocked (WAL).
  track::StoreOptions so;
  so.busy_timeout_s = 0.2;
  track::Store reader(path, so);
  EXPECT_TRUE(reader.list_runs().empty());
  ASSERT_EQ(sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(holder);
  auto run = track::start_run("e", o);   // fine once released
  run.end();
}
