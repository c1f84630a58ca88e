// Internal: a thin SQLite wrapper for krill::track (errors -> krill::IOError naming the path),
// the schema and its migrations.
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "krill/track/store.hpp"

namespace krill::track::detail {

class Db {
 public:
  // Opens (creating file and directory), sets WAL, busy timeout, foreign keys, and brings the
  // schema up to date.
  Db(const std::string& path, const StoreOptions& options);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* raw() { return db_; }
  // For a run's connection: commits never checkpoint (no fsync on the training thread); the
  // run's writer thread calls checkpoint_if_large() instead.
  void defer_checkpoints();
  // A passive checkpoint when the WAL holds more than `frames` pages (as of the last commit).
  void checkpoint_if_large(int frames);
  const std::string& path() const { return path_; }
  const StoreOptions& options() const { return options_; }
  int schema_version() const { return version_; }

  void exec(const char* sql, const char* what);
  [[noreturn]] void fail(int rc, const std::string& what) const;

 private:
  int read_version();
  void migrate();
  sqlite3* db_ = nullptr;
  std::string path_;
  StoreOptions options_;
  int version_ = 0;
  int wal_frames_ = 0;   // pages in the WAL after this connection's last commit
};

class Stmt {
 public:
  Stmt(Db& db, const char* sql, const char* what);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, const std::string& v);
  Stmt& bind(int i, std::int64_t v);
  Stmt& bind(int i, double v);
  Stmt& bind_null(int i);
  bool step();    // true while a row is available
  void run();     // steps to completion
  void reset();

  bool is_null(int c) const;
  std::int64_t int64(int c) const;
  double real(int c) const;
  std::string text(int c) const;

 private:
  Db& db_;
  sqlite3_stmt* st_ = nullptr;
  const char* what_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back when destroyed uncommitted.
class Transaction {
 public:
  explicit Transaction(Db& db);
  ~Transaction();
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

int latest_version();   // the newest schema this krill writes
std::int64_t now_ms();
std::string this_host();
bool pid_gone(std::int64_t pid);   // kill(pid, 0) == ESRCH

}  // namespace krill::track::detail
