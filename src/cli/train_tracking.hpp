// What `krill train` records in the tracking store (rank 0 alone): the options as params, one
// point per metric per epoch, the model directory's files as artifacts, the final status.
#pragma once
#include <map>
#include <optional>
#include <string>

#include "commands.hpp"
#include "krill/track/store.hpp"
#include "krill/train/trainer.hpp"

namespace krill::cli {

// Every option of the run as text (numbers in their shortest exact form), plus the world size
// and the learning rate actually used.
std::map<std::string, std::string> train_params(const TrainArgs& a, int world_size, double effective_lr);

// Starts the run and logs its params and tags. A store that cannot be opened is an IOError that
// says how to train without recording (--no-track).
track::Run start_train_run(const TrainArgs& a, int world_size, double effective_lr);

// train_loss, val_loss, val_accuracy, lr, <rate_key> (rows_per_s, images_per_s) and
// epoch_seconds at step = the epoch number. Buffered: costs a few hundred ns.
void log_epoch_metrics(track::Run& run, const training::EpochResult& epoch, double lr, const char* rate_key);

// The model directory and the files in it (weights, config, metrics, plot, rank logs).
void log_model_artifacts(track::Run& run, const std::string& model_dir);

// The run's one-line receipt for the console: "Run <id> recorded in <store> (experiment E)".
std::string run_receipt(const track::Run& run, const std::string& experiment);

}  // namespace krill::cli
