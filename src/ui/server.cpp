#include "server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <vector>

#include <httplib.h>

#include "api.hpp"
#include "assets.hpp"
#include "krill/track/store.hpp"
#include "krill/util/error.hpp"
#include "krill/util/runtime_info.hpp"

namespace krill::ui {

namespace fs = std::filesystem;

namespace {

// Store connections handed to request threads one at a time (a Store is one SQLite connection).
class StorePool {
 public:
  explicit StorePool(std::string path) : path_(std::move(path)) { free_.push_back(std::make_unique<track::Store>(path_)); }

  class Lease {
   public:
    Lease(StorePool& pool, std::unique_ptr<track::Store> store) : pool_(pool), store_(std::move(store)) {}
    ~Lease() { pool_.give_back(std::move(store_)); }
    track::Store& operator*() { return *store_; }
    track::Store* operator->() { return store_.get(); }
   private:
    StorePool& pool_;
    std::unique_ptr<track::Store> store_;
  };

  Lease acquire() {
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        auto s = std::move(free_.back());
        free_.pop_back();
        return Lease(*this, std::move(s));
      }
    }
    return Lease(*this, std::make_unique<track::Store>(path_));
  }

  const std::string& path() const { return path_; }

 private:
  void give_back(std::unique_ptr<track::Store> s) {
    if (!s) return;
    std::lock_guard lock(mutex_);
    if (free_.size() < 8) free_.push_back(std::move(s));
  }
  std::string path_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<track::Store>> free_;
};

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

// The Host header without its port: "127.0.0.1:8080" -> "127.0.0.1", "[::1]:8080" -> "[::1]".
std::string host_name(const std::string& header) {
  if (!header.empty() && header[0] == '[') {
    auto close = header.find(']');
    return close == std::string::npos ? header : header.substr(0, close + 1);
  }
  auto colon = header.rfind(':');
  return colon == std::string::npos ? header : header.substr(0, colon);
}

// Why binding host:port failed, asked of the kernel with a socket like httplib's.
std::string bind_failure(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &result); rc != 0)
    return "cannot bind to --host " + host + ": " + gai_strerror(rc);
  int err = 0;
  for (auto* rp = result; rp; rp = rp->ai_next) {
    int fd = socket(rp->ai_family, rp->ai_socktype, rp->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (bind(fd, rp->ai_addr, rp->ai_addrlen) == 0 && listen(fd, 1) == 0) {
      err = 0;
      close(fd);
      break;
    }
    err = errno;
    close(fd);
  }
  freeaddrinfo(result);
  if (err == EADDRINUSE) return "port " + std::to_string(port) + " is in use: pass --port N";
  if (err == EACCES)
    return "no permission to bind port " + std::to_string(port) + " (ports below 1024 need root): pass --port N";
  if (err == EADDRNOTAVAIL) return "cannot bind to --host " + host + ": not an address of this machine";
  if (err != 0) return "cannot bind to " + host + ":" + std::to_string(port) + ": " + std::strerror(err);
  return "cannot bind to " + host + ":" + std::to_string(port);
}

void json_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(nlohmann::json({{"error", message}}).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json; charset=utf-8");
}

void json_ok(httplib::Response& res, std::string body) {
  res.status = 200;
  res.set_header("Cache-Control", "no-store");
  // "; charset=utf-8" also keeps httplib from compressing: on loopback that only costs time
  res.set_content(std::move(body), "application/json; charset=utf-8");
}

// Runs a handler, turning krill's exceptions into JSON errors.
template <class F>
httplib::Server::Handler guarded(F f) {
  return [f](const httplib::Request& req, httplib::Response& res) {
    try {
      f(req, res);
    } catch (const NotFound& e) {
      json_error(res, 404, e.what());
    } catch (const ValueError& e) {
      json_error(res, 400, e.what());
    } catch (const std::exception& e) {
      json_error(res, 500, e.what());
    }
  };
}

const char* kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

}  // namespace

struct Server::Impl {
  ServerOptions options;
  StorePool pool;
  httplib::Server http;
  int port = 0;
  bool loopback = false;

  explicit Impl(ServerOptions o)
      : options(std::move(o)), pool(options.store_path.empty() ? track::default_tracking_uri() : options.store_path) {}

  void routes();
};

void Server::Impl::routes() {
  // Without SO_REUSEPORT (httplib's default), so a second dashboard on the same port fails to
  // bind instead of sharing the port.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http.set_keep_alive_timeout(5);
  http.set_default_headers({{"X-Content-Type-Options", "nosniff"}, {"Referrer-Policy", "no-referrer"},
                            {"X-Frame-Options", "DENY"}});

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (loopback && req.has_header("Host") && !is_loopback_host(host_name(req.get_header_value("Host")))) {
      json_error(res, 403, "this dashboard serves this machine only (Host: " + req.get_header_value("Host") +
                               "); start it with --host 0.0.0.0 to serve other machines");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http.Get("/api/info", guarded([this](const httplib::Request&, httplib::Response& res) {
    json_ok(res, nlohmann::json({{"store", pool.path()}, {"krill_version", krill::version()}}).dump());
  }));

  http.Get("/api/experiments", guarded([this](const httplib::Request&, httplib::Response& res) {
    auto store = pool.acquire();
    json_ok(res, nlohmann::json(store->list_experiments()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }));

  http.Get("/api/runs", guarded([this](const httplib::Request& req, httplib::Response& res) {
    track::RunFilter filter;
    if (auto e = req.get_param_value("experiment"); !e.empty()) filter.experiment = e;
    if (auto s = req.get_param_value("status"); !s.empty()) filter.status = track::parse_run_status(s);
    auto store = pool.acquire();
    json_ok(res, runs_body(*store, filter));
  }));

  http.Get(R"(/api/runs/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
    auto store = pool.acquire();
    json_ok(res, run_detail_json(*store, req.matches[1]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }));

  http.Get(R"(/api/runs/([^/]+)/metrics)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    auto store = pool.acquire();
    json_ok(res, metrics_body(*store, req.matches[1], split_keys(req.get_param_value("keys"))));
  }));

  http.Get(R"(/api/runs/([^/]+)/artifact)", guarded([this](const httplib::Request& req, httplib::Response& res) {
    fs::path file;
    {
      auto store = pool.acquire();
      file = resolve_artifact(*store, req.matches[1], req.get_param_value("path"));
    }
    std::error_code ec;
    auto size = static_cast<std::size_t>(fs::file_size(file, ec));
    if (ec) throw NotFound("cannot read " + file.string());
    std::size_t offset = 0;
    if (auto tail = req.get_param_value("tail"); !tail.empty()) {   // the last N bytes (logs)
      std::size_t n = 0;
      try {
        n = std::stoull(tail);
      } catch (const std::exception&) {
        throw ValueError("tail=" + tail + " is not a byte count");
      }
      if (n < size) offset = size - n;
    }
    auto stream = std::make_shared<std::ifstream>(file, std::ios::binary);
    if (!*stream) throw NotFound("cannot read " + file.string());
    stream->seekg(static_cast<std::streamoff>(offset));
    res.set_header("Cache-Control", "no-store");
    res.set_header("Content-Security-Policy", "sandbox");
    res.set_header("X-Artifact-Size", std::to_string(size));
    auto type = std::string(artifact_content_type(file));
    if (type == "application/octet-stream")
      res.set_header("Content-Disposition", "attachment; filename=\"" + file.filename().string() + "\"");
    res.set_content_provider(size - offset, type, [stream](std::size_t, std::size_t length, httplib::DataSink& sink) {
      char buf[65536];
      while (length > 0) {
        stream->read(buf, static_cast<std::streamsize>(std::min(length, sizeof buf)));
        auto got = static_cast<std::size_t>(stream->gcount());
        if (got == 0) return false;   // the file shrank while being sent
        if (!sink.write(buf, got)) return false;
        length -= got;
      }
      return true;
    });
  }));

  http.Get(R"(/api/.*)", [](const httplib::Request& req, httplib::Response& res) {
    json_error(res, 404, "no such API: " + req.path);
  });

  http.Get(R"(/.*)", [](const httplib::Request& req, httplib::Response& res) {
    const Asset* asset = find_asset(req.path == "/" ? "/index.html" : req.path);
    if (!asset) {
      res.status = 404;
      res.set_content("not found: " + req.path + "\n", "text/plain; charset=utf-8");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    if (asset->path.ends_with(".html")) res.set_header("Content-Security-Policy", kContentSecurityPolicy);
    res.set_content(asset->data.data(), asset->data.size(), std::string(content_type_for(asset->path)).c_str());
  });
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  auto& o = impl_->options;
  impl_->loopback = is_loopback_host(o.host);
  impl_->routes();
  if (o.port == 0) {
    impl_->port = impl_->http.bind_to_any_port(o.host);
    if (impl_->port <= 0) throw IOError(bind_failure(o.host, 0));
  } else {
    if (!impl_->http.bind_to_port(o.host, o.port)) throw IOError(bind_failure(o.host, o.port));
    impl_->port = o.port;
  }
}

Server::~Server() { stop(); }

int Server::port() const { return impl_->port; }
const std::string& Server::host() const { return impl_->options.host; }
const std::string& Server::store_path() const { return impl_->pool.path(); }

std::string Server::url() const {
  const auto& h = impl_->options.host;
  bool v6 = h.find(':') != std::string::npos && h.front() != '[';
  return "http://" + (v6 ? "[" + h + "]" : h) + ":" + std::to_string(impl_->port) + "/";
}

void Server::run() { impl_->http.listen_after_bind(); }   // returns when stop() closes the socket

void Server::stop() { impl_->http.stop(); }

}  // namespace krill::ui
