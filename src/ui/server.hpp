// The dashboard's web server (krill ui): the embedded front end and the JSON API (api.hpp) over
// one run store, on cpp-httplib.
//
//   krill::ui::Server server({.host = "127.0.0.1", .port = 8080, .store_path = "runs.db"});
//   std::thread t([&] { server.run(); });   // serves until stop()
//   ...
//   server.stop(); t.join();
//
// Each request borrows a store connection from a small pool: SQLite in WAL mode, so reading never
// blocks a training process writing to the same store. Bound to a loopback address, the server
// also refuses requests whose Host header names another machine (DNS rebinding).
#pragma once
#include <memory>
#include <string>

namespace krill::ui {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;            // 0: any free port (see Server::port())
  std::string store_path;     // empty: track::default_tracking_uri()
};

class Server {
 public:
  // Opens the store and binds the port; IOError when the store cannot be opened or the address
  // cannot be bound ("port 8080 is in use: pass --port N").
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;                  // the bound port
  const std::string& host() const;
  const std::string& store_path() const;
  std::string url() const;           // "http://127.0.0.1:8080/"

  void run();    // serves requests until stop()
  void stop();   // from any thread; run() returns soon after

  struct Impl;
 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace krill::ui
