#include "train_common.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "krill/dist/dist.hpp"
#include "krill/io/model_dir.hpp"
#include "krill/io/plot.hpp"
#include "krill/optim/adam.hpp"
#include "krill/optim/adamw.hpp"
#include "krill/optim/sgd.hpp"
#include "krill/util/error.hpp"
#include "train_tracking.hpp"

namespace krill::cli {

namespace fs = std::filesystem;

std::string trim_right(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.pop_back();
  return s;
}

// Refuses, before any work is done, an --out that could not be written or should not be
// replaced: an empty path, ".", a path under a file, a directory that is not a krill model
// (with --force; so a typo never wipes a home directory), or one that holds an input file.
void check_output(const TrainArgs& a) {
  std::string out = a.out;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out.empty()) throw ValueError("--out: give the model directory to write, e.g. --out penguin_model");
  const fs::path p(out);
  if (p.filename() == "." || p.filename() == ".." || p == p.root_path())
    throw ValueError("--out " + a.out + ": give a new directory name, e.g. --out penguin_model");
  try {
    io::check_can_create(out, a.force);
  } catch (const IOError& e) {
    throw IOError(std::string("--out: ") + e.what());
  }
  std::error_code ec;
  if (fs::is_directory(p, ec)) {  // --force: it will be replaced
    if (!fs::is_empty(p, ec) && !fs::exists(p / "model.safetensors", ec) && !fs::exists(p / "config.json", ec))
      throw IOError("--out " + a.out +
                    " exists and is not a krill model directory (no model.safetensors or config.json); --force replaces "
                    "only model directories: remove it yourself or choose another --out");
    const fs::path canon_out = fs::weakly_canonical(p, ec);
    for (const std::string& in : {a.data_csv, a.train_csv, a.validation_csv, a.init_weights, a.data, a.model}) {
      if (in.empty() || !fs::exists(in, ec)) continue;   // synthetic:..., a model name
      const fs::path canon_in = fs::weakly_canonical(in, ec);
      auto [mo, mi] = std::mismatch(canon_out.begin(), canon_out.end(), canon_in.begin(), canon_in.end());
      if (mo == canon_out.end())
        throw IOError("--out " + a.out + " contains the input " + in + "; --force would delete it: choose another --out");
    }
  }
  // The nearest existing ancestor must be a writable directory (missing ones are created
  // when the model is written, after training).
  fs::path abs = fs::absolute(p, ec).lexically_normal();
  for (fs::path dir = abs.parent_path();; dir = dir.parent_path()) {
    if (fs::exists(dir, ec)) {
      if (!fs::is_directory(dir, ec)) throw IOError("--out " + a.out + ": " + dir.string() + " is not a directory");
      if (::access(dir.c_str(), W_OK | X_OK) != 0)
        throw IOError("--out " + a.out + ": cannot write in " + dir.string() + ": " + std::strerror(errno));
      break;
    }
    if (dir == dir.root_path() || dir.empty()) break;
  }
}

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainArgs& a, const std::vector<Tensor>& params) {
  if (a.optimizer == "adam")
    return std::make_unique<optim::Adam>(params, optim::AdamOptions(a.lr).weight_decay(a.weight_decay));
  if (a.optimizer == "adamw")
    return std::make_unique<optim::AdamW>(params, optim::AdamWOptions(a.lr).weight_decay(a.weight_decay));
  if (a.optimizer == "sgd")
    return std::make_unique<optim::SGD>(params, optim::SGDOptions(a.lr).momentum(a.momentum).weight_decay(a.weight_decay));
  throw ValueError("--optimizer: unknown optimizer '" + a.optimizer + "' (use adam, adamw or sgd)");
}

std::string strf(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// Prints `text` with `prefix` before each non-empty line.
void print_prefixed(std::FILE* f, const std::string& prefix, const std::string& text) {
  if (prefix.empty()) {
    std::fputs(text.c_str(), f);
  } else {
    std::istringstream is(text);
    for (std::string line; std::getline(is, line);)
      std::fprintf(f, "%s%s\n", line.empty() ? "" : prefix.c_str(), line.c_str());
  }
  std::fflush(f);
}

// A string through an int64 tensor (one byte per element): rank `root`'s `s` on every rank.
std::string broadcast_string(const std::string& s, int root) {
  Tensor n = zeros(Shape{1}, TensorOptions(DType::Int64));
  if (dist::rank() == root) n.data_ptr<std::int64_t>()[0] = static_cast<std::int64_t>(s.size());
  dist::broadcast(n, root);
  const std::int64_t len = n.data_ptr<std::int64_t>()[0];
  if (len == 0) return "";
  Tensor b = zeros(Shape{len}, TensorOptions(DType::Int64));
  if (dist::rank() == root)
    for (std::int64_t i = 0; i < len; ++i) b.data_ptr<std::int64_t>()[i] = static_cast<unsigned char>(s[i]);
  dist::broadcast(b, root);
  std::string out(static_cast<std::size_t>(len), '\0');
  for (std::int64_t i = 0; i < len; ++i) out[i] = static_cast<char>(b.data_ptr<std::int64_t>()[i]);
  return out;
}

// Every rank's `s` (collective), in rank order.
std::vector<std::string> allgather_strings(const std::string& s) {
  const std::int64_t len = static_cast<std::int64_t>(s.size());
  Tensor t = zeros(Shape{len + 1}, TensorOptions(DType::Int64));
  std::int64_t* p = t.data_ptr<std::int64_t>();
  p[0] = len;
  for (std::int64_t i = 0; i < len; ++i) p[i + 1] = static_cast<unsigned char>(s[i]);
  Tensor all = dist::allgather(t).contiguous();
  const std::int64_t* q = all.data_ptr<std::int64_t>();
  const std::int64_t total = all.numel();
  std::vector<std::string> out;
  for (std::int64_t at = 0; at < total;) {
    const std::int64_t n = q[at++];
    std::string item(static_cast<std::size_t>(n), '\0');
    for (std::int64_t i = 0; i < n; ++i) item[i] = static_cast<char>(q[at + i]);
    at += n;
    out.push_back(std::move(item));
  }
  return out;
}

void check_output_and_start_run(const TrainArgs& a, int world_size, double effective_lr,
                                std::optional<track::Run>& run, std::future<track::Run>& pending) {
  if (world_size == 1) {
    check_output(a);
    if (a.track)
      pending = std::async(std::launch::async, [&a, world_size, effective_lr] {
        return start_train_run(a, world_size, effective_lr);
      });
    return;
  }
  std::string verdict;
  if (dist::rank() == 0) {
    try {
      check_output(a);
      if (a.track) run = start_train_run(a, world_size, effective_lr);
    } catch (const ValueError& e) {
      verdict = std::string("V") + e.what();
    } catch (const Error& e) {
      verdict = std::string("I") + e.what();
    }
  }
  verdict = broadcast_string(verdict, 0);
  if (!verdict.empty()) {
    if (verdict[0] == 'V') throw ValueError(verdict.substr(1));
    throw IOError(verdict.substr(1));
  }
}

void join_run(std::optional<track::Run>& run, std::future<track::Run>& pending) {
  if (pending.valid()) run = pending.get();
}

void record_failure(std::optional<track::Run>& run, std::future<track::Run>& pending, const std::exception& e) {
  if (!run && pending.valid()) {
    try {
      run = pending.get();
    } catch (const std::exception&) {  // the store's own error is the one reported
    }
  }
  if (!run || run->ended()) return;
  try {
    run->set_tag("error", trim_right(e.what()));
    run->end(track::RunStatus::Failed);
  } catch (const std::exception&) {  // the store's liveness check reports the run later
  }
}

void finish_training(const TrainArgs& a, std::optional<track::Run>& run, std::unique_ptr<optim::Optimizer>& optimizer) {
  if (run) {
    run->end(track::RunStatus::Finished);
    if (!a.quiet) std::printf("%s", run_receipt(*run, a.experiment).c_str());
  }
  std::fflush(stdout);
  optimizer.reset();  // the DistributedOptimizer's communication thread ends before MPI does
  dist::finalize();
}

void make_distributed(const TrainArgs& a, nn::Module& model, std::unique_ptr<optim::Optimizer>& optimizer) {
  if (dist::size() == 1 && a.timeline.empty()) return;
  dist::broadcast_parameters(model, 0);
  dist::DistributedOptions dopts;
  dopts.timeline_path = a.timeline;
  optimizer = std::make_unique<dist::DistributedOptimizer>(std::move(optimizer), model, dopts);
  dist::broadcast_optimizer_state(*optimizer, 0);
}

void shard_training_loader(data::DataLoader& loader, std::int64_t rows, bool shuffle, std::uint64_t seed) {
  if (dist::size() == 1) return;
  auto sampler = std::make_shared<dist::DistributedSampler>(rows, dist::size(), dist::rank(), shuffle, seed, false);
  loader.set_sampler(
      [sampler](std::int64_t epoch) {
        sampler->set_epoch(epoch);
        return sampler->indices();
      },
      sampler->num_samples());
}

void to_job_metrics(std::vector<training::EpochResult>& history, const std::vector<double>& global_train_loss,
                    int world_size) {
  for (std::size_t i = 0; i < history.size() && i < global_train_loss.size(); ++i)
    history[i].train_loss = global_train_loss[i];
  for (auto& r : history) r.samples_per_second *= world_size;
}

void write_loss_plot(const std::string& path, const std::vector<training::EpochResult>& history) {
  io::Series tr{"training", {}, {}}, va{"validation", {}, {}};
  for (const auto& r : history) {
    tr.x.push_back(r.epoch);
    tr.y.push_back(r.train_loss);
    va.x.push_back(r.epoch);
    va.y.push_back(r.validation.loss);
  }
  io::LinePlotOptions o;
  o.x_label = "epoch";
  o.y_label = "loss";
  io::write_line_plot(path, {tr, va}, o);
}

EpochPrinter::EpochPrinter(bool quiet, int epochs, std::string prefix, bool bar)
    : quiet_(quiet), epochs_(epochs), tty_(bar && ::isatty(STDOUT_FILENO) == 1), prefix_(std::move(prefix)) {}

void EpochPrinter::batch(int epoch, std::int64_t done, std::int64_t total) {
  if (quiet_ || !tty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(100) && done != total) return;
  last_ = now;
  const int width = 30;
  const int filled = total ? static_cast<int>(width * done / total) : width;
  std::printf("\r  epoch %d/%d [%s%s] %lld/%lld batches", epoch, epochs_, std::string(filled, '#').c_str(),
              std::string(width - filled, '.').c_str(), static_cast<long long>(done), static_cast<long long>(total));
  std::fflush(stdout);
  bar_shown_ = true;
}

void EpochPrinter::clear_bar() {
  if (!bar_shown_) return;
  std::printf("\r\033[K");
  bar_shown_ = false;
}

void EpochPrinter::epoch(const training::EpochResult& r, bool top5) {
  if (quiet_) return;
  clear_bar();
  std::string text = strf("Epoch: %d\nTraining set: Average loss: %.6f\nValidation set: Average loss: %.6f, Accuracy: %lld/%lld (%.0f%%)",
                          r.epoch, r.train_loss, r.validation.loss, static_cast<long long>(r.validation.correct),
                          static_cast<long long>(r.validation.total), 100.0 * r.validation.accuracy());
  if (top5) text += strf(", Top-%d: %.2f%%", r.validation.top_k, 100.0 * r.validation.top5_accuracy());
  text += "\n\n";
  print_prefixed(stdout, prefix_, text);
}

}  // namespace krill::cli
