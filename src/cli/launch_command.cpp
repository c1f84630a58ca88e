// krill launch: horovodrun's job for krill. Builds an mpirun command line from -np, a host list
// (-H or --hostfile), nodes x processes-per-node and binding, sets what mpirun needs here
// (running as root, more ranks than cores, one OpenMP thread per rank) and runs the command
// under it, passing its exit code through.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "krill/util/error.hpp"

namespace krill::cli {
namespace {

const char* kUsage =
    "usage: krill launch -np N [-H host1:2,host2:2 | --hostfile FILE] [--nodes N --processes-per-node P]\n"
    "                    [--bind-to core|none] [--dry-run] -- COMMAND [ARGS...]\n"
    "  -np N                     number of processes (ranks)\n"
    "  -H, --hosts LIST          hosts with their slots, e.g. host1:2,host2:2\n"
    "  --hostfile FILE           an OpenMPI host file (one 'host slots=N' per line)\n"
    "  --nodes N                 with --processes-per-node P: N*P ranks, P on each node (--map-by ppr:P:node)\n"
    "  --processes-per-node P\n"
    "  --bind-to core|none       process binding (default: mpirun's; none when ranks exceed the local cores)\n"
    "  --dry-run                 print the mpirun command instead of running it\n"
    "COMMAND 'krill' means this krill binary. Example:\n"
    "  krill launch -np 2 -- krill train --train data/penguins_train.csv --validation data/penguins_val.csv \\\n"
    "      --label Species --out penguin_model\n";

struct UsageError : Error {
  using Error::Error;
};

int parse_count(const std::string& flag, const std::string& v) {
  int n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n < 1 || n > 1'000'000)
    throw UsageError(flag + " must be a positive integer, got '" + v + "'");
  return n;
}

// host1:2,host2 -> validated (each host a non-empty name, slots a positive integer).
void check_hosts(const std::string& list) {
  if (list.empty()) throw UsageError("-H: give hosts like host1:2,host2:2");
  std::size_t begin = 0;
  for (int item = 1;; ++item) {
    std::size_t end = list.find(',', begin);
    if (end == std::string::npos) end = list.size();
    const std::string h = list.substr(begin, end - begin);
    const auto colon = h.find(':');
    const std::string name = h.substr(0, colon);
    if (name.empty() || name.find_first_of(" \t") != std::string::npos)
      throw UsageError("-H " + list + ": host " + std::to_string(item) + " is '" + h +
                       "', not HOST or HOST:SLOTS (e.g. -H host1:2,host2:2)");
    if (colon != std::string::npos) parse_count("-H " + list + ": the slots of '" + name + "'", h.substr(colon + 1));
    if (end == list.size()) break;
    begin = end + 1;
  }
}

std::string self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("krill") : p.string();
}

// mpirun on PATH, else the one CMake found (KRILL_MPIEXEC).
std::string find_mpirun() {
  if (const char* env = std::getenv("KRILL_MPIEXEC"); env && *env) return env;
  if (const char* path = std::getenv("PATH")) {
    std::string p = path;
    std::size_t begin = 0;
    while (begin <= p.size()) {
      std::size_t end = p.find(':', begin);
      if (end == std::string::npos) end = p.size();
      const std::string dir = p.substr(begin, end - begin);
      for (const char* name : {"mpirun", "mpiexec"}) {
        const std::string cand = (dir.empty() ? std::string(".") : dir) + "/" + name;
        if (::access(cand.c_str(), X_OK) == 0) return cand;
      }
      begin = end + 1;
    }
  }
#ifdef KRILL_MPIEXEC_PATH
  if (::access(KRILL_MPIEXEC_PATH, X_OK) == 0) return KRILL_MPIEXEC_PATH;
#endif
  return "";
}

std::string quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=,@+%") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

int run_launch(const std::vector<std::string>& args) {
  int np = 0, nodes = 0, ppn = 0;
  std::string hosts, hostfile, bind_to;
  bool dry_run = false;
  std::vector<std::string> command;
  try {
    std::size_t i = 0;
    auto value = [&](const std::string& flag) -> std::string {
      if (i + 1 >= args.size() || args[i + 1] == "--") throw UsageError(flag + " needs a value");
      return args[++i];
    };
    bool saw_dashdash = false;
    for (; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a == "--") {
        saw_dashdash = true;
        command.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
        break;
      }
      if (a == "-h" || a == "--help") {
        std::cout << kUsage;
        return 0;
      }
      if (a == "-np" || a == "--np" || a == "-n") np = parse_count("-np", value(a));
      else if (a == "-H" || a == "--hosts" || a == "--host") hosts = value(a), check_hosts(hosts);
      else if (a == "--hostfile") hostfile = value(a);
      else if (a == "--nodes") nodes = parse_count("--nodes", value(a));
      else if (a == "--processes-per-node") ppn = parse_count("--processes-per-node", value(a));
      else if (a == "--bind-to") {
        bind_to = value(a);
        if (bind_to != "core" && bind_to != "none") throw UsageError("--bind-to must be core or none, got '" + bind_to + "'");
      } else if (a == "--dry-run") dry_run = true;
      else throw UsageError("unknown option '" + a + "' (the command to run goes after --)");
    }
    if (!saw_dashdash || command.empty())
      throw UsageError("no command: give it after --, e.g. krill launch -np 2 -- krill train ...");
    if (!hosts.empty() && !hostfile.empty()) throw UsageError("give either -H or --hostfile, not both");
    if (!hostfile.empty() && !std::filesystem::is_regular_file(hostfile))
      throw UsageError("--hostfile " + hostfile + ": no such file");
    if ((nodes > 0) != (ppn > 0)) throw UsageError("--nodes and --processes-per-node go together");
    if (nodes > 0) {
      if (np > 0 && np != nodes * ppn)
        throw UsageError("-np " + std::to_string(np) + " differs from --nodes x --processes-per-node = " +
                         std::to_string(nodes * ppn));
      np = nodes * ppn;
    }
    if (np == 0) throw UsageError("-np: give the number of processes, e.g. -np 2");
  } catch (const Error& e) {
    std::cerr << "krill launch: error: " << e.what() << " (run 'krill launch --help' for the usage)\n";
    return 2;
  }

  const std::string mpirun = find_mpirun();
  if (mpirun.empty()) {
    std::cerr << "krill launch: error: mpirun not found on PATH (install OpenMPI: apt-get install openmpi-bin, or "
                 "set KRILL_MPIEXEC)\n";
    return 1;
  }
  // The environment mpirun needs here, and each rank gets (-x).
  std::vector<std::pair<std::string, std::string>> env;
  if (::geteuid() == 0) env.push_back({"OMPI_ALLOW_RUN_AS_ROOT", "1"}), env.push_back({"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"});
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  const bool local_only = hosts.empty() && hostfile.empty() && nodes == 0;
  const bool oversubscribed = local_only && cores > 0 && np > cores;
  if (oversubscribed) {
    env.push_back({"OMPI_MCA_rmaps_base_oversubscribe", "1"});
    if (bind_to.empty()) bind_to = "none";
  }
  std::vector<std::string> exported;
  if (!std::getenv("OMP_NUM_THREADS")) env.push_back({"OMP_NUM_THREADS", "1"});
  exported.push_back("OMP_NUM_THREADS");
  for (const char* v : {"KRILL_STALL_CHECK_SECONDS", "KRILL_STALL_SHUTDOWN_SECONDS"})
    if (std::getenv(v)) exported.push_back(v);

  std::vector<std::string> argv{mpirun, "-np", std::to_string(np)};
  if (!hosts.empty()) argv.insert(argv.end(), {"-H", hosts});
  if (!hostfile.empty()) argv.insert(argv.end(), {"--hostfile", hostfile});
  if (nodes > 0) argv.insert(argv.end(), {"--map-by", "ppr:" + std::to_string(ppn) + ":node"});
  if (!bind_to.empty()) argv.insert(argv.end(), {"--bind-to", bind_to});
  for (const auto& x : exported) argv.insert(argv.end(), {"-x", x});
  if (command[0] == "krill") command[0] = self_exe();
  argv.insert(argv.end(), command.begin(), command.end());

  if (dry_run) {
    std::string line;
    for (const auto& [k, v] : env) line += k + "=" + v + " ";
    for (std::size_t k = 0; k < argv.size(); ++k) line += (k ? " " : "") + quote(argv[k]);
    std::cout << line << "\n";
    return 0;
  }
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> cargv;
  for (auto& s : argv) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::cerr << "krill launch: error: cannot start " << mpirun << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  if (pid == 0) {
    ::execv(cargv[0], cargv.data());
    std::fprintf(stderr, "krill launch: error: cannot run %s: %s\n", cargv[0], std::strerror(errno));
    std::_Exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      std::cerr << "krill launch: error: waiting for mpirun: " << std::strerror(errno) << "\n";
      return 1;
    }
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace krill::cli
