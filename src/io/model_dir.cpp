#include "krill/io/model_dir.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "krill/util/error.hpp"

namespace fs = std::filesystem;

namespace krill::io {

void check_can_create(const std::string& dir, bool overwrite, const char* flag_hint) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !overwrite)
    throw IOError(dir + " already exists; choose another output directory or pass " + flag_hint + " to replace it");
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw IOError(dir + " exists and is not a directory; it will not be replaced");
}

ModelDirWriter::ModelDirWriter(std::string final_dir, bool overwrite)
    : final_(std::move(final_dir)), overwrite_(overwrite) {
  while (final_.size() > 1 && final_.back() == '/') final_.pop_back();
  check_can_create(final_, overwrite_);
  fs::path p(final_);
  fs::path parent = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::error_code ec;
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
  int dfd = ::open(staging_.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  if (fs::exists(final_, ec)) {
    if (!overwrite_) throw IOError(final_ + " appeared while training; not replacing it (pass --force to replace)");
    // move the old model aside, move the new one in, then drop the old one
    const std::string old = staging_ + ".old";
    fs::rename(final_, old, ec);
    if (ec) throw IOError("cannot move the old " + final_ + " aside: " + ec.message());
    fs::rename(staging_, final_, ec);
    if (ec) {
      std::error_code ec2;
      fs::rename(old, final_, ec2);
      throw IOError("cannot move the new model into " + final_ + ": " + ec.message());
    }
    fs::remove_all(old, ec);
  } else {
    fs::rename(staging_, final_, ec);
    if (ec) throw IOError("cannot move the new model into " + final_ + ": " + ec.message());
  }
  committed_ = true;
}

}  // namespace krill::io
