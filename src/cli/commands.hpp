// The krill subcommands, each a plain function over a plain struct so that only main.cpp
// includes CLI11 (a heavy header).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace krill::cli {

struct TrainArgs {
  std::string train_csv, validation_csv;
  std::string label;
  std::vector<std::int64_t> hidden{10, 10};
  std::int64_t batch_size = 20;
  int epochs = 100;
  std::string optimizer = "adam";
  double lr = 0.001;
  double momentum = 0.0;
  double weight_decay = 0.0;
  bool shuffle = true;
  std::uint64_t seed = 0;
  std::string init_weights;
  std::string out;
  bool force = false;
  bool quiet = false;
  bool verbose = false;
};

int run_train(const TrainArgs& args);

// Parses --hidden "10,10" (decimal positive widths, comma-separated, no empty items); throws
// ValueError saying what is wrong with it.
std::vector<std::int64_t> parse_hidden(const std::string& spec);

struct InspectArgs {
  std::string model_dir;
};
int run_inspect(const InspectArgs& args);

// Prints "krill <command>: error: <message>" to stderr.
void print_error(const std::string& command, const std::string& message);

}  // namespace krill::cli
