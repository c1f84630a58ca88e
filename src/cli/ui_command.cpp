// krill ui: serves the runs dashboard (src/ui/server.hpp) until Ctrl-C (SIGINT) or SIGTERM.
#include <signal.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <thread>

#include "commands.hpp"
#include "krill/track/store.hpp"
#include "server.hpp"

namespace krill::cli {

int run_ui(const UiArgs& args) {
  // SIGINT and SIGTERM are blocked before the server starts its threads (they inherit the mask)
  // and taken here with sigtimedwait, so stopping is ordinary code, not a signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigset_t old_mask;
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
  struct RestoreMask {
    sigset_t mask;
    ~RestoreMask() { pthread_sigmask(SIG_SETMASK, &mask, nullptr); }
  } restore{old_mask};

  ui::ServerOptions options;
  options.host = args.host;
  options.port = args.port;
  options.store_path = std::filesystem::absolute(args.tracking_uri.empty() ? track::default_tracking_uri() : args.tracking_uri)
                           .lexically_normal()
                           .string();
  ui::Server server(options);   // opens the store and binds: errors before anything is printed

  std::atomic<bool> serving{true};
  std::thread thread([&] {
    server.run();
    serving = false;
  });
  std::cout << "Dashboard: " << server.url() << " (store: " << server.store_path() << ") \u2014 Ctrl-C to stop"
            << std::endl;

  int signal_number = 0;
  while (serving) {
    timespec wait{0, 200'000'000};
    signal_number = sigtimedwait(&stop_signals, nullptr, &wait);
    if (signal_number > 0) break;
  }
  server.stop();
  thread.join();
  if (signal_number <= 0) {
    print_error("ui", "the server stopped accepting connections");
    return 1;
  }
  std::cout << "krill ui: stopped" << std::endl;
  return 0;
}

}  // namespace krill::cli
