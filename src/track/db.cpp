// SQLite wrapper, schema and migrations of the tracking store.
#include "db.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>

#include "krill/util/error.hpp"

namespace krill::track::detail {

namespace {

// Ordered migrations: entry i brings a store from version i to version i + 1. Append only: a
// released migration never changes (older stores are upgraded by replaying the ones they lack).
struct Migration {
  int version;
  const char* sql;
};
const Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (0);
CREATE TABLE experiments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  created INTEGER NOT NULL
);
CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  status TEXT NOT NULL CHECK (status IN ('RUNNING', 'FINISHED', 'FAILED', 'KILLED')),
  start_time INTEGER NOT NULL,
  end_time INTEGER,
  command_line TEXT NOT NULL DEFAULT '',
  host TEXT NOT NULL DEFAULT '',
  pid INTEGER NOT NULL DEFAULT 0,
  krill_version TEXT NOT NULL DEFAULT '',
  git_commit TEXT
);
CREATE TABLE params (
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
);
CREATE TABLE tags (
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
);
CREATE TABLE metrics (
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value REAL NOT NULL,
  step INTEGER NOT NULL,
  timestamp INTEGER NOT NULL
);
CREATE INDEX metrics_run_key_step ON metrics (run_id, key, step);
)sql"},
    {2, R"sql(
ALTER TABLE runs ADD COLUMN heartbeat_time INTEGER;
CREATE TABLE artifacts (
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  kind TEXT NOT NULL,
  PRIMARY KEY (run_id, path)
);
CREATE INDEX runs_experiment ON runs (experiment_id, start_time);
CREATE INDEX runs_status ON runs (status);
)sql"},
    // The last point of every metric, kept by the writer, so that listing 1,000 runs with their
    // metrics reads 10,000 rows instead of scanning ten million.
    {3, R"sql(
CREATE TABLE latest_metrics (
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value REAL NOT NULL,
  step INTEGER NOT NULL,
  timestamp INTEGER NOT NULL,
  PRIMARY KEY (run_id, key)
);
INSERT INTO latest_metrics (run_id, key, value, step, timestamp)
  SELECT m.run_id, m.key, m.value, m.step, m.timestamp FROM metrics m
  WHERE m.rowid = (SELECT m2.rowid FROM metrics m2 WHERE m2.run_id = m.run_id AND m2.key = m.key
                   ORDER BY m2.step DESC, m2.timestamp DESC, m2.rowid DESC LIMIT 1);
)sql"},
    // SQLite stores a NaN as NULL, which the NOT NULL value refuses: a diverging loss is kept as
    // value 0 with is_nan = 1 (MLflow's encoding). Infinities are stored as they are.
    {4, R"sql(
ALTER TABLE metrics ADD COLUMN is_nan INTEGER NOT NULL DEFAULT 0;
ALTER TABLE latest_metrics ADD COLUMN is_nan INTEGER NOT NULL DEFAULT 0;
)sql"},
};
constexpr int kLatest = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));

}  // namespace

Db::Db(const std::string& path, const StoreOptions& options) : path_(path), options_(options) {
  if (path.empty()) throw IOError("tracking store: empty path (set KRILL_TRACKING_URI or pass a path)");
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec)
      throw IOError("tracking store " + path + ": cannot create directory " + parent.string() + ": " +
                    ec.message());
  }
  int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw IOError("tracking store " + path + ": cannot open (" + msg +
                  "): check that the path is a writable file location");
  }
  try {
    sqlite3_extended_result_codes(db_, 0);
    sqlite3_busy_timeout(db_, static_cast<int>(options_.busy_timeout_s * 1000.0));
    exec("PRAGMA foreign_keys = ON", "enabling foreign keys");
    {
      Stmt wal(*this, "PRAGMA journal_mode = WAL", "switching to WAL mode");
      wal.step();
    }
    exec("PRAGMA synchronous = NORMAL", "setting synchronous mode");
    // Closing the last connection would checkpoint the WAL into the database, with fsyncs: a
    // short krill train (~60 ms on the penguins) would pay for them at exit. The WAL is
    // checkpointed by commits (readers) or by runs' writer threads instead (defer_checkpoints).
    sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    // A short-lived process (krill train on the penguins takes ~60 ms) would otherwise pay a
    // checkpoint with fsyncs when it closes the store, and the next one would re-create the
    // -wal and -shm files. Writers checkpoint passively once the WAL reaches 1000 pages.
    sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    version_ = read_version();
    if (version_ > kLatest)
      throw IOError("tracking store " + path + " has schema version " + std::to_string(version_) +
                    ", newer than this krill (" KRILL_VERSION ") understands (up to " +
                    std::to_string(kLatest) + "): upgrade krill, or use another store");
    if (version_ < kLatest) migrate();
  } catch (...) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

void Db::defer_checkpoints() {
  sqlite3_wal_hook(
      db_,
      [](void* self, sqlite3*, const char*, int frames) {
        static_cast<Db*>(self)->wal_frames_ = frames;
        return SQLITE_OK;
      },
      this);
}

void Db::checkpoint_if_large(int frames) {
  if (wal_frames_ <= frames) return;
  int log = 0, done = 0;
  // Passive: copies what no reader still needs, never waits on other connections. A busy
  // store just leaves it for the next time.
  if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done) == SQLITE_OK)
    wal_frames_ = log - done;
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
}

int Db::read_version() {
  Stmt has(*this, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
           "reading the schema version");
  if (!has.step()) return 0;
  Stmt v(*this, "SELECT MAX(version) FROM schema_version", "reading the schema version");
  if (!v.step() || v.is_null(0)) return 0;
  return static_cast<int>(v.int64(0));
}

void Db::migrate() {
  Transaction tx(*this);
  int v = read_version();   // another process may have migrated meanwhile
  if (v > kLatest)
    throw IOError("tracking store " + path_ + " has schema version " + std::to_string(v) +
                  ", newer than this krill understands: upgrade krill");
  for (const auto& m : kMigrations) {
    if (m.version <= v) continue;
    exec(m.sql, "upgrading the schema");
    Stmt up(*this, "UPDATE schema_version SET version = ?", "upgrading the schema");
    up.bind(1, static_cast<std::int64_t>(m.version)).run();
  }
  tx.commit();
  version_ = kLatest;
}

void Db::exec(const char* sql, const char* what) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (err) sqlite3_free(err);
  if (rc != SQLITE_OK) fail(rc, what);
}

void Db::fail(int rc, const std::string& what) const {
  int primary = rc & 0xff;
  std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    throw IOError("tracking store " + path_ + " is locked by another process (waited " +
                  std::to_string(options_.busy_timeout_s) + " s) while " + what +
                  ": wait for that process to finish its write and retry");
  if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)
    throw IOError("tracking store " + path_ + " is not a valid krill run database (" + msg + ") while " +
                  what + ": move the file aside, or point --tracking-uri / KRILL_TRACKING_URI elsewhere");
  if (primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN || primary == SQLITE_PERM)
    throw IOError("tracking store " + path_ + ": cannot write (" + msg + ") while " + what +
                  ": check the file's and its directory's permissions");
  throw IOError("tracking store " + path_ + ": " + what + " failed: " + msg);
}

Stmt::Stmt(Db& db, const char* sql, const char* what) : db_(db), what_(what) {
  int rc = sqlite3_prepare_v2(db.raw(), sql, -1, &st_, nullptr);
  if (rc != SQLITE_OK) db.fail(rc, what);
}
Stmt::~Stmt() { sqlite3_finalize(st_); }

Stmt& Stmt::bind(int i, const std::string& v) {
  sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::bind(int i, std::int64_t v) {
  sqlite3_bind_int64(st_, i, v);
  return *this;
}
Stmt& Stmt::bind(int i, double v) {
  sqlite3_bind_double(st_, i, v);
  return *this;
}
Stmt& Stmt::bind_null(int i) {
  sqlite3_bind_null(st_, i);
  return *this;
}
bool Stmt::step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3_reset(st_);
  db_.fail(rc, what_);
}
void Stmt::run() {
  while (step()) {
  }
}
void Stmt::reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
}
bool Stmt::is_null(int c) const { return sqlite3_column_type(st_, c) == SQLITE_NULL; }
std::int64_t Stmt::int64(int c) const { return sqlite3_column_int64(st_, c); }
double Stmt::real(int c) const { return sqlite3_column_double(st_, c); }
std::string Stmt::text(int c) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, c));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st_, c))) : std::string();
}

Transaction::Transaction(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE", "starting a write transaction"); }
Transaction::~Transaction() {
  if (!done_) sqlite3_exec(db_.raw(), "ROLLBACK", nullptr, nullptr, nullptr);
}
void Transaction::commit() {
  db_.exec("COMMIT", "committing a write transaction");
  done_ = true;
}

int latest_version() { return kLatest; }

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string this_host() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

bool pid_gone(std::int64_t pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH;
}

}  // namespace krill::track::detail
