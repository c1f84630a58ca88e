#include "krill/io/model_dir.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "fsync_dir.hpp"
#include "krill/util/error.hpp"

namespace fs = std::filesystem;

namespace krill::io {

void detail::fsync_dir(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

namespace {

using detail::fsync_dir;

// renameat2(2) with flags; -1 with errno EINVAL/ENOSYS where the file system or kernel lacks it.
int rename_with_flags(const std::string& from, const std::string& to, unsigned flags) {
#ifdef SYS_renameat2
  return static_cast<int>(::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags));
#else
  (void)from, (void)to, (void)flags;
  errno = ENOSYS;
  return -1;
#endif
}

// Staging directories ".NAME.tmp-PID" (and ".NAME.tmp-PID.old") beside `final_name` that were
// left by a krill process killed while saving (SIGKILL, power loss): removed when that process
// no longer exists. A live process's staging directory is never touched. An old model moved
// aside by the non-atomic fallback (".old") while NAME itself is missing is put back instead.
void remove_stale_staging(const fs::path& parent, const std::string& final_name) {
  const std::string prefix = "." + final_name + ".tmp-";
  std::vector<std::pair<fs::path, bool>> stale;  // path, is an ".old" (moved-aside) model
  std::error_code ec;
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    std::string rest = name.substr(prefix.size());
    const bool old = rest.size() > 4 && rest.compare(rest.size() - 4, 4, ".old") == 0;
    if (old) rest.resize(rest.size() - 4);
    if (rest.empty() || rest.size() > 9 || rest.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::stol(rest);
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
    std::error_code sec;
    if (fs::is_directory(fs::symlink_status(it->path(), sec))) stale.emplace_back(it->path(), old);
  }
  for (const auto& [path, old] : stale) {
    std::error_code sec;
    if (old && !fs::exists(fs::symlink_status(parent / final_name, sec))) {
      fs::rename(path, parent / final_name, sec);  // the only copy of the old model: put it back
      if (!sec) continue;
    }
    fs::remove_all(path, sec);
  }
}

}  // namespace

void check_can_create(const std::string& dir, bool overwrite, const char* flag_hint) {
  std::error_code ec;
  {  // first tidy up after a krill that was killed while saving this directory
    std::string d = dir;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    const fs::path p(d);
    const fs::path parent = p.has_parent_path() ? p.parent_path() : fs::path(".");
    if (!p.filename().empty() && fs::is_directory(parent, ec)) remove_stale_staging(parent, p.filename().string());
  }
  if (fs::exists(dir, ec) && !overwrite)
    throw IOError(dir + " already exists; choose another output directory or pass " + flag_hint + " to replace it");
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw IOError(dir + " exists and is not a directory; it will not be replaced");
}

ModelDirWriter::ModelDirWriter(std::string final_dir, bool overwrite)
    : final_(std::move(final_dir)), overwrite_(overwrite) {
  while (final_.size() > 1 && final_.back() == '/') final_.pop_back();
  fs::path p(final_);
  fs::path parent = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::error_code ec;
  check_can_create(final_, overwrite_);  // also removes stale staging directories of dead processes
  fs::create_directories(parent, ec);
  if (ec) throw IOError("cannot create " + parent.string() + ": " + ec.message());
  staging_ = (parent / ("." + p.filename().string() + ".tmp-" + std::to_string(::getpid()))).string();
  fs::remove_all(staging_, ec);
  if (!fs::create_directory(staging_, ec))
    throw IOError("cannot create the staging directory " + staging_ + ": " + ec.message());
}

ModelDirWriter::~ModelDirWriter() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
}

std::string ModelDirWriter::file(const std::string& name) const { return (fs::path(staging_) / name).string(); }

void ModelDirWriter::write_file(const std::string& name, const std::string& content) const {
  const std::string path = file(name);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IOError("cannot write " + path + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      throw IOError("cannot write " + path + ": " + std::strerror(e));
    }
    done += static_cast<std::size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
}

void ModelDirWriter::commit() {
  std::error_code ec;
  // fsync the staging directory so its entries are durable before the rename
  fsync_dir(staging_);
  const fs::path p(final_);
  const std::string parent = p.has_parent_path() ? p.parent_path().string() : std::string(".");
  if (fs::exists(final_, ec)) {
    if (!overwrite_) throw IOError(final_ + " appeared while training; not replacing it (pass --force to replace)");
    // Swap the new model and the old one in one step (renameat2 RENAME_EXCHANGE): at every
    // moment final_ holds a complete model, the old one until the swap, the new one after it.
    // The old model then sits at the staging path and is removed.
    if (rename_with_flags(staging_, final_, RENAME_EXCHANGE) == 0) {
      fsync_dir(parent);
      committed_ = true;
      fs::remove_all(staging_, ec);
      return;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
      throw IOError("cannot move the new model into " + final_ + ": " + std::strerror(errno));
    // No atomic exchange on this file system: move the old model aside, the new one in, then
    // drop the old one (a crash between the two renames leaves the old model at
    // <staging>.old, which the next ModelDirWriter for this directory puts back).
    const std::string old = staging_ + ".old";
    fs::rename(final_, old, ec);
    if (ec) throw IOError("cannot move the old " + final_ + " aside: " + ec.message());
    fs::rename(staging_, final_, ec);
    if (ec) {
      std::error_code ec2;
      fs::rename(old, final_, ec2);
      throw IOError("cannot move the new model into " + final_ + ": " + ec.message());
    }
    fsync_dir(parent);
    committed_ = true;
    fs::remove_all(old, ec);
    return;
  }
  // No model there yet: move the new one in, never over a directory that appeared meanwhile.
  if (rename_with_flags(staging_, final_, RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY)
      throw IOError(final_ + " appeared while training; not replacing it (pass --force to replace)");
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
      throw IOError("cannot move the new model into " + final_ + ": " + std::strerror(errno));
    fs::rename(staging_, final_, ec);
    if (ec) throw IOError("cannot move the new model into " + final_ + ": " + ec.message());
  }
  fsync_dir(parent);
  committed_ = true;
}

}  // namespace krill::io
