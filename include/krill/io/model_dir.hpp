// Model directories, written atomically: everything goes into a hidden sibling directory
// (".DIR.tmp-PID") which is renamed into place at the end, so a crash never leaves a half-written
// model and an existing model is replaced only by a complete new one (and only when asked to):
// the old and the new directory are swapped in one step (renameat2 RENAME_EXCHANGE), so DIR
// holds a complete model at every moment, even when the process is killed while saving. A
// staging directory left by a killed process is removed by the next writer of DIR.
#pragma once
#include <string>

namespace krill::io {

class ModelDirWriter {
 public:
  // Throws IOError when `final_dir` exists and `overwrite` is false, or when the parent
  // directory cannot be written. Nothing is created until the constructor succeeds.
  ModelDirWriter(std::string final_dir, bool overwrite);
  ~ModelDirWriter();  // removes the staging directory unless committed
  ModelDirWriter(const ModelDirWriter&) = delete;
  ModelDirWriter& operator=(const ModelDirWriter&) = delete;

  // Path of `name` inside the staging directory.
  std::string file(const std::string& name) const;
  const std::string& staging_dir() const { return staging_; }
  const std::string& final_dir() const { return final_; }
  // Writes `content` to `name` (fsynced).
  void write_file(const std::string& name, const std::string& content) const;
  // Moves the staging directory into place (replacing an old model when allowed).
  void commit();

 private:
  std::string final_, staging_;
  bool overwrite_;
  bool committed_ = false;
};

// Throws IOError with a "use --force" hint when `dir` exists. First removes the staging
// directories (".DIR.tmp-PID") that krill processes killed while saving `dir` left behind (only
// those of processes that no longer exist), putting back an old model that such a process had
// moved aside (".DIR.tmp-PID.old", file systems without an atomic exchange) when `dir` is missing.
void check_can_create(const std::string& dir, bool overwrite, const char* flag_hint = "--force");

}  // namespace krill::io
