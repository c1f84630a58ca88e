// Atomic model directories (issue 3, "Proof: atomic write (kill during save leaves the old model
// intact)"). A model is trained into D; then `krill train ... --out D --force` is killed with
// SIGKILL again and again:
//  - at chosen moments (immediately, during training, around the end of the run, when it saves),
//  - deterministically at every file-system call of the save (mkdir of the staging directory,
//    each open/write/fsync/rename in it, the swap into place, the removal of the old model),
//    using strace's fault injection (`-e inject=SYSCALL:signal=KILL:when=N`).
// After every kill D holds a complete model — the old one byte for byte until the new one is
// swapped in, the new one after — that `krill predict` loads; beside D there is at most the
// hidden staging directory of the killed process (".D.tmp-PID"), which the next krill writing D
// removes. Stale staging directories of dead processes are cleaned, those of live ones never.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "cli/lab_helpers.hpp"
#include "support/oracle.hpp"

extern char** environ;

using krill::test::make_temp_dir;
using namespace krill::test::cli;
using namespace krill::test::lab;

namespace {

const std::vector<std::string> kModelFiles = {"config.json", "loss.png", "metrics.csv", "model.safetensors"};

// --no-track: the run store's own fdatasyncs (its writer thread's checkpoints) would shift the
// numbering of the model save's syscalls that the strace cases kill at.
std::vector<std::string> train_args(const std::string& out, int epochs) {
  return cat(cat({"train", data_path("penguins.csv")}, lab_prep()),
             {"--epochs", std::to_string(epochs), "--out", out, "--force", "-q", "--no-track"});
}

// What identifies a model generation: the weights, the config, the number of metrics rows, and
// what `krill predict` prints for the new penguin.
struct Generation {
  std::string weights, config, prediction;
  std::size_t epochs = 0;
  bool operator==(const Generation& o) const {
    return weights == o.weights && config == o.config && prediction == o.prediction && epochs == o.epochs;
  }
};

Generation read_generation(const std::string& dir) {
  Generation g;
  g.weights = read_text(dir + "/model.safetensors");
  g.config = read_text(dir + "/config.json");
  g.epochs = split_lines(read_text(dir + "/metrics.csv")).size() - 1;
  CliResult p = run_krill({"predict", dir, "--features", "1,50.4,15.3,20,50", "--format", "json"});
  EXPECT_EQ(p.rc, 0) << "the model in " << dir << " does not load: " << p.err;
  g.prediction = p.out;
  return g;
}

void copy_dir(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::remove_all(to, ec);
  fs::copy(from, to, fs::copy_options::recursive);
}

// Starts krill with these arguments (stdout and stderr to files); returns its pid.
pid_t spawn_krill(const std::vector<std::string>& args, const std::string& log_prefix) {
  std::vector<std::string> all = {krill::test::krill_cli()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, (log_prefix + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, (log_prefix + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  EXPECT_EQ(rc, 0) << "posix_spawn failed";
  return rc == 0 ? pid : -1;
}

// Entries of `parent` other than `name`: only hidden staging directories ".name.tmp-PID[.old]"
// are allowed; returns the distinct PIDs they belong to.
std::set<std::string> staging_pids(const std::string& parent, const std::string& name) {
  std::set<std::string> pids;
  const std::string prefix = "." + name + ".tmp-";
  for (const auto& e : list_dir(parent)) {
    if (e == name) continue;
    EXPECT_EQ(e.rfind(prefix, 0), 0u) << "unexpected entry beside the model: " << parent << "/" << e;
    if (e.rfind(prefix, 0) != 0) continue;
    std::string pid = e.substr(prefix.size());
    if (pid.size() > 4 && pid.compare(pid.size() - 4, 4, ".old") == 0) pid.resize(pid.size() - 4);
    EXPECT_TRUE(!pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos) << e;
    pids.insert(pid);
  }
  return pids;
}

// D must hold exactly one complete generation, `a` or (when given) `b`; returns which (0/1).
int expect_complete(const std::string& model, const Generation& a, const Generation* b, const std::string& what) {
  EXPECT_EQ(list_dir(model), kModelFiles) << what;
  const Generation now = read_generation(model);
  if (now == a) return 0;
  if (b && now == *b) return 1;
  ADD_FAILURE() << what << ": " << model << " holds neither the old nor the new model (weights "
                << (now.weights == a.weights ? "old" : b && now.weights == b->weights ? "new" : "other") << ", config "
                << (now.config == a.config ? "old" : b && now.config == b->config ? "new" : "other") << ", "
                << now.epochs << " metrics rows)";
  return -1;
}

struct Fixture {
  std::string parent, model;  // the model directory D = parent/model
  std::string pristine;       // a copy of the old model, to restore D between trials
  Generation old_gen, new_gen;
};

// D with an old 5-epoch model; the generation an `epochs`-epoch run writes (from a reference run
// elsewhere: the same command gives the same bytes).
Fixture make_fixture(const std::string& tag, int epochs) {
  Fixture f;
  f.parent = make_temp_dir(tag);
  f.model = f.parent + "/model";
  CliResult old_run = run_krill(train_args(f.model, 5));
  EXPECT_EQ(old_run.rc, 0) << old_run.err;
  f.pristine = make_temp_dir(tag + "-pristine") + "/model";
  copy_dir(f.model, f.pristine);
  f.old_gen = read_generation(f.model);
  const std::string ref = make_temp_dir(tag + "-ref") + "/model";
  CliResult new_run = run_krill(train_args(ref, epochs));
  EXPECT_EQ(new_run.rc, 0) << new_run.err;
  f.new_gen = read_generation(ref);
  EXPECT_FALSE(f.new_gen.weights == f.old_gen.weights);
  // The reference is reproducible, so "new" is well defined.
  const std::string ref2 = make_temp_dir(tag + "-ref2") + "/model";
  EXPECT_EQ(run_krill(train_args(ref2, epochs)).rc, 0);
  EXPECT_TRUE(read_generation(ref2) == f.new_gen) << "two identical runs wrote different models";
  return f;
}

void restore_old(const Fixture& f) {
  if (read_text(f.model + "/model.safetensors") != f.old_gen.weights ||
      read_text(f.model + "/config.json") != f.old_gen.config)
    copy_dir(f.pristine, f.model);
}

bool strace_works() {
  static const bool ok = krill::test::run_command("strace -o /dev/null -e trace=getpid true >/dev/null 2>&1") == 0;
  return ok;
}

}  // namespace

// SIGKILL at moments spread over a whole run (immediately, while training, around the save).
TEST(AtomicSave, KillAtAnyMomentKeepsACompleteModel) {
  constexpr int kEpochs = 400;
  Fixture f = make_fixture("atomic-timed", kEpochs);
  const std::string logs = make_temp_dir("atomic-timed-logs");

  // How long a complete run takes here (the fastest of three, as the runs below are warm).
  double full_s = 1e9;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    pid_t pid = spawn_krill(train_args(f.model, kEpochs), logs + "/full");
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_text(logs + "/full.err");
    full_s = std::min(full_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  EXPECT_TRUE(read_generation(f.model) == f.new_gen);
  EXPECT_TRUE(staging_pids(f.parent, "model").empty());

  std::vector<double> fractions = {0.0, 0.0, 0.05, 0.2, 0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.05};
  std::mt19937 rng(static_cast<unsigned>(krill::test::run_seed()));
  std::uniform_real_distribution<double> near_end(0.9, 1.1);
  for (int i = 0; i < 16; ++i) fractions.push_back(near_end(rng));

  int killed = 0, finished = 0, left_staging = 0, became_new = 0;
  std::set<std::string> spawned;
  for (std::size_t i = 0; i < fractions.size(); ++i) {
    const std::string what = "kill after " + std::to_string(fractions[i]) + " of a " + std::to_string(full_s) + " s run";
    SCOPED_TRACE(what);
    restore_old(f);
    const pid_t pid = spawn_krill(train_args(f.model, kEpochs), logs + "/" + std::to_string(i));
    ASSERT_GT(pid, 0);
    spawned.insert(std::to_string(pid));
    if (fractions[i] > 0) std::this_thread::sleep_for(std::chrono::duration<double>(fractions[i] * full_s));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
      ++killed;
    } else {
      ++finished;
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_text(logs + "/" + std::to_string(i) + ".err");
    }
    const std::set<std::string> pids = staging_pids(f.parent, "model");
    EXPECT_LE(pids.size(), 1u) << "staging directories of earlier kills were not cleaned up";
    if (!pids.empty()) {
      left_staging += *pids.begin() == std::to_string(pid);
      EXPECT_TRUE(spawned.count(*pids.begin())) << "a staging directory of another process: " << *pids.begin();
    }
    const int which = expect_complete(f.model, f.old_gen, &f.new_gen, what);
    became_new += which == 1;
    if (WIFEXITED(status)) EXPECT_EQ(which, 1) << "a finished run must have written the new model";
  }
  std::printf("[atomic] %zu SIGKILLs over a %.3f s run: %d killed (%d left a hidden staging directory, %d after the "
              "new model was in place), %d had finished\n",
              fractions.size(), full_s, killed, left_staging, became_new - finished, finished);
  EXPECT_GE(killed, 5) << "too few runs were actually killed to prove anything";

  // The next successful run removes what the killed ones left and writes the new model.
  restore_old(f);
  CliResult ok = run_krill(train_args(f.model, kEpochs));
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_EQ(list_dir(f.parent), std::vector<std::string>{"model"});
  EXPECT_TRUE(read_generation(f.model) == f.new_gen);
}

// SIGKILL at each file-system call of the save, deterministically (strace fault injection).
TEST(AtomicSave, KillAtEverySaveStepKeepsACompleteModel) {
  ASSERT_TRUE(strace_works()) << "strace (with ptrace permission) is needed to kill krill at a chosen syscall: "
                                 "bash scripts/setup-deps.sh --tests installs it";
  constexpr int kEpochs = 3;
  Fixture f = make_fixture("atomic-strace", kEpochs);
  const std::string logs = make_temp_dir("atomic-strace-logs");

  // Trace a complete --force run (main thread only, where the save happens) to find the save's
  // calls and their occurrence numbers.
  const std::vector<std::string> watched = {"mkdir", "openat", "write", "fsync", "fdatasync", "rename", "renameat",
                                            "renameat2", "unlink", "unlinkat", "rmdir"};
  std::string trace_set;
  for (const auto& s : watched) trace_set += (trace_set.empty() ? "" : ",") + s;
  const std::string trace_log = logs + "/trace.log";
  {
    std::string cmd = "strace -o " + shell_quote(trace_log) + " -e trace=" + trace_set + " " +
                      shell_quote(krill::test::krill_cli());
    for (const auto& a : train_args(f.model, kEpochs)) cmd += " " + shell_quote(a);
    ASSERT_EQ(krill::test::run_command(cmd + " >/dev/null 2>&1"), 0) << cmd;
  }
  EXPECT_TRUE(read_generation(f.model) == f.new_gen) << "the traced run wrote another model";

  struct Step {
    std::string call;
    int occurrence = 0;
    std::string line;
    bool after_swap = false;
  };
  std::vector<Step> steps;
  {
    std::map<std::string, int> count;
    std::map<std::string, std::string> fd_path;  // fd -> path opened by openat (for writes)
    std::map<std::string, int> writes_per_fd;
    bool in_save = false, swapped = false;
    const std::string staging_mark = f.parent + "/.model.tmp-";
    for (const auto& line : split_lines(read_text(trace_log))) {
      const auto paren = line.find('(');
      if (paren == std::string::npos) continue;
      const std::string call = line.substr(0, paren);
      if (std::find(watched.begin(), watched.end(), call) == watched.end()) continue;
      const int n = ++count[call];
      if (!in_save && line.find(staging_mark) != std::string::npos) in_save = true;
      if (!in_save) continue;
      bool take = false;
      if (call == "openat") {
        const auto eq = line.rfind(") = ");
        if (eq != std::string::npos && line.find(f.parent) != std::string::npos) {
          fd_path[line.substr(eq + 4)] = line;
          take = true;
        }
      } else if (call == "write") {
        const std::string fd = line.substr(paren + 1, line.find(',') - paren - 1);
        // the first few writes of each file in the staging directory
        take = fd_path.count(fd) && ++writes_per_fd[fd + "#" + fd_path[fd]] <= 3;
      } else {
        take = true;
      }
      if (take) steps.push_back({call, n, line, swapped});
      if (call == "renameat2" && line.find("RENAME_EXCHANGE") != std::string::npos) swapped = true;
      if ((call == "rename" || call == "renameat" || call == "renameat2") && line.find("RENAME_EXCHANGE") == std::string::npos &&
          line.find("/.model.tmp-") != std::string::npos && line.find(", \"" + f.model + "\"") != std::string::npos)
        swapped = true;  // a plain rename into place (no exchange on this file system)
    }
  }
  ASSERT_GE(steps.size(), 8u) << "the trace shows no save:\n" << read_text(trace_log);
  const bool has_swap = std::any_of(steps.begin(), steps.end(), [](const Step& s) { return s.after_swap; });
  EXPECT_TRUE(has_swap) << "no step after the model was moved into place:\n" << read_text(trace_log);

  int old_kept = 0, new_in_place = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    const std::string what = "SIGKILL at " + s.call + " #" + std::to_string(s.occurrence) + ": " + s.line;
    SCOPED_TRACE(what);
    // The same starting point as the traced run (the occurrence numbers depend on it): the old
    // model and nothing beside it. What the previous kill left was checked already; that krill
    // itself removes it is checked at the end and by the other tests.
    restore_old(f);
    for (const auto& e : list_dir(f.parent))
      if (e != "model") fs::remove_all(f.parent + "/" + e);
    std::string cmd = "strace -o /dev/null -e trace=" + s.call + " -e inject=" + s.call +
                      ":signal=KILL:when=" + std::to_string(s.occurrence) + " " + shell_quote(krill::test::krill_cli());
    for (const auto& a : train_args(f.model, kEpochs)) cmd += " " + shell_quote(a);
    const int rc = krill::test::run_command(cmd + " >" + shell_quote(logs + "/" + std::to_string(i) + ".out") + " 2>&1");
    EXPECT_NE(rc, 0) << "the injected SIGKILL did not happen: " << cmd;
    EXPECT_LE(staging_pids(f.parent, "model").size(), 1u) << "staging directories of earlier kills were not cleaned up";
    const int which = expect_complete(f.model, f.old_gen, &f.new_gen, what);
    EXPECT_EQ(which, s.after_swap ? 1 : 0) << what << ": expected the " << (s.after_swap ? "new" : "old") << " model";
    old_kept += which == 0;
    new_in_place += which == 1;
  }
  std::printf("[atomic] %zu SIGKILLs at save syscalls: the old model intact %d times (before the swap), the new one "
              "complete %d times (after it)\n",
              steps.size(), old_kept, new_in_place);

  restore_old(f);
  CliResult ok = run_krill(train_args(f.model, kEpochs));
  ASSERT_EQ(ok.rc, 0) << ok.err;
  EXPECT_EQ(list_dir(f.parent), std::vector<std::string>{"model"}) << "stale staging directories were not removed";
  EXPECT_TRUE(read_generation(f.model) == f.new_gen);
}

// Stale staging directories: those of dead processes go, a live process's stays, another
// model's are not touched; an old model a killed process had moved aside (".old", on file
// systems without an atomic swap) is put back when D itself is missing.
TEST(AtomicSave, StaleStagingDirectories) {
  const std::string parent = make_temp_dir("atomic-stale");
  const std::string model = parent + "/model";
  ASSERT_EQ(run_krill(train_args(model, 2)).rc, 0);
  const Generation old_gen = read_generation(model);

  // A pid that certainly belongs to no process now.
  pid_t dead = fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(dead, &status, 0), dead);
  const std::string d = std::to_string(dead), live = std::to_string(::getpid());
  for (const std::string& name : {".model.tmp-" + d, ".model.tmp-" + d + ".old", ".model.tmp-" + live, ".other.tmp-" + d}) {
    fs::create_directory(parent + "/" + name);
    write_text(parent + "/" + name + "/model.safetensors", "half written");
  }
  CliResult r = run_krill(train_args(model, 3));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(list_dir(parent), (std::vector<std::string>{".model.tmp-" + live, ".other.tmp-" + d, "model"}));
  EXPECT_EQ(read_generation(model).epochs, 3u);

  // D missing, its old model aside in the ".old" of a dead process: put back before anything
  // else, so a run without --force refuses to replace it (at once, before training).
  const std::string parent2 = make_temp_dir("atomic-stale-old");
  copy_dir(model, parent2 + "/.model.tmp-" + d + ".old");
  const Generation aside = read_generation(parent2 + "/.model.tmp-" + d + ".old");
  CliResult refused = run_krill(cat(cat({"train", data_path("penguins.csv")}, lab_prep()),
                                    {"--epochs", "2", "--out", parent2 + "/model", "-q"}));
  EXPECT_EQ(refused.rc, 1) << refused.err;
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused.err;
  EXPECT_EQ(list_dir(parent2), std::vector<std::string>{"model"});
  EXPECT_TRUE(read_generation(parent2 + "/model") == aside) << "the model moved aside was not put back";
  (void)old_gen;
}
