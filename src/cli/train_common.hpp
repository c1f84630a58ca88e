// What the tabular (train_command.cpp) and image (train_images.cpp) paths of `krill train`
// share: output checks, the optimizer from the flags, console printing (one line per epoch,
// rank prefixes), rank-0 strings over MPI, the loss plot.
#pragma once
#include <cstdio>
#include <memory>
#include <string>
#include <vector>
#include <chrono>

#include <future>
#include <optional>

#include "commands.hpp"
#include "krill/data/dataloader.hpp"
#include "krill/nn/module.hpp"
#include "krill/optim/optimizer.hpp"
#include "krill/track/store.hpp"
#include "krill/train/trainer.hpp"

namespace krill::cli {

std::string trim_right(std::string s);
std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Prints `text` with `prefix` before each non-empty line.
void print_prefixed(std::FILE* f, const std::string& prefix, const std::string& text);

// Refuses, before any work is done, an --out that could not be written or should not be
// replaced: an empty path, ".", a path under a file, a directory that is not a krill model
// (with --force; so a typo never wipes a home directory), or one that holds an input file.
void check_output(const TrainArgs& a);

// adam, adamw or sgd from --optimizer, --lr (as given: the caller scales it), --momentum,
// --weight-decay.
std::unique_ptr<optim::Optimizer> make_optimizer(const TrainArgs& a, const std::vector<Tensor>& params);

// A string through an int64 tensor (one byte per element): rank `root`'s `s` on every rank.
std::string broadcast_string(const std::string& s, int root);
// Every rank's `s` (collective), in rank order.
std::vector<std::string> allgather_strings(const std::string& s);

// Refuses an unusable --out and opens the run store before any work. Rank 0 alone decides (it
// alone writes) and tells the others, so that all ranks stop alike. A single process opens the
// store and records the run on another thread (`pending`; join it with join_run() before
// training): ~1 ms of SQLite work hidden behind the data preparation.
void check_output_and_start_run(const TrainArgs& a, int world_size, double effective_lr,
                                std::optional<track::Run>& run, std::future<track::Run>& pending);
// The run started by check_output_and_start_run, once started (rethrows its error).
void join_run(std::optional<track::Run>& run, std::future<track::Run>& pending);
// Records a failed command in its run: FAILED, with the error message as the "error" tag.
void record_failure(std::optional<track::Run>& run, std::future<track::Run>& pending, const std::exception& e);

// The end of a successful training command: the run FINISHED (and its receipt unless --quiet),
// then the DistributedOptimizer's communication thread, then MPI.
void finish_training(const TrainArgs& a, std::optional<track::Run>& run, std::unique_ptr<optim::Optimizer>& optimizer);

// Horovod's recipe under mpirun (or with --timeline): rank 0's weights everywhere, gradients
// averaged by a DistributedOptimizer wrapping `optimizer`, rank 0's optimizer state everywhere.
void make_distributed(const TrainArgs& a, nn::Module& model, std::unique_ptr<optim::Optimizer>& optimizer);
// Each rank trains on its shard of `rows` (PyTorch's DistributedSampler: rows rank::N of the
// epoch's order, reshuffled per epoch with seed + epoch when shuffling, padded so that every
// rank runs the same number of steps). A world of one: the loader is left alone.
void shard_training_loader(data::DataLoader& loader, std::int64_t rows, bool shuffle, std::uint64_t seed);

// What metrics.csv records for a job: the mean training loss over ranks (one per epoch, from
// the epoch callback's allreduce) and the job's throughput (rank 0's x world size).
void to_job_metrics(std::vector<training::EpochResult>& history, const std::vector<double>& global_train_loss,
                    int world_size);

// loss.png: training and validation loss against epoch.
void write_loss_plot(const std::string& path, const std::vector<training::EpochResult>& history);

// One block per epoch like the lab's notebook, or (on a terminal) the same with a progress bar
// underneath while an epoch runs.
class EpochPrinter {
 public:
  // `prefix` starts every printed line ("[rank 1] " under --log-verbosity all); `bar`: whether a
  // progress bar may be drawn on a terminal (not with several ranks sharing the console).
  EpochPrinter(bool quiet, int epochs, std::string prefix = "", bool bar = true);
  void batch(int epoch, std::int64_t done, std::int64_t total);
  // `top5`: also print the top-5 accuracy (image classification).
  void epoch(const training::EpochResult& r, bool top5 = false);
  // Removes a progress bar before other text is printed.
  void clear_bar();

 private:
  bool quiet_;
  int epochs_;
  bool tty_;
  std::string prefix_;
  bool bar_shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace krill::cli
