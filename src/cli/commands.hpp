// The krill subcommands, each a plain function over a plain struct so that only main.cpp and
// cli_parsing.cpp include CLI11 (a heavy header).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace krill::cli {

struct TrainArgs {
  std::string data_csv;                        // raw data, split by krill (the lab's form)
  std::string train_csv, validation_csv;       // pre-split data
  std::string label;
  std::vector<std::string> features;           // empty: every column but the label
  std::vector<std::string> categorical;
  std::vector<std::string> scale;              // "Column=factor" items
  bool standardize = false;
  bool dropna = true;
  int oversample = 1;
  double test_size = 0.3;
  std::vector<std::int64_t> hidden{10, 10};
  std::int64_t batch_size = 20;
  int epochs = 100;
  std::string optimizer = "adam";
  double lr = 0.001;
  double momentum = 0.0;
  double weight_decay = 0.0;
  bool shuffle = false;  // PyTorch's DataLoader default, and the lab's
  std::uint64_t seed = 0;
  std::string init_weights;
  std::string out;
  bool force = false;
  bool quiet = false;
  bool verbose = false;
  // Distributed (under mpirun -np N; ignored in a world of one process):
  bool scale_lr = true;                        // lr * N (--no-scale-lr: as given)
  std::string log_verbosity = "rank0";         // rank0: only rank 0 prints; all: every rank, "[rank r] "
  std::string timeline;                        // Chrome-trace file (dist::DistributedOptions::timeline_path)
  // Images (the "Train PyTorch Model" module; train_images.cpp): --model NAME or a model
  // directory (fine-tuning), with --data SPEC or --train DIR --validation DIR.
  std::string model;                           // empty or "mlp": the tabular MLP
  std::string data;                            // data::open_image_data's SPEC
  int warmup_epochs = 0;                       // linear warm-up, then the schedule below (images)
  std::string lr_schedule = "poly";            // poly: polynomial (linear) decay to the end; constant
  int patience = 0;                            // early stopping (0: off; images: 3)
  int print_freq = 0;                          // a progress line every N iterations (0: off; images: 10)
  int workers = 1;                             // data-loader threads (images)
  int threads = 0;                             // kernel (OpenMP) threads; 0: OMP_NUM_THREADS or every core
  std::string resize;                          // "H,W" or "S" (S x S); empty: none
  int random_crop_padding = -1;                // random crop to the (resized) size after this padding; -1: off
  bool hflip = false;                          // random horizontal flips
  std::string normalize = "auto";              // auto (training set's mean/std), none, or "M1,M2,M3/S1,S2,S3"
  bool image_mode() const { return (!model.empty() && model != "mlp") || !data.empty(); }
  // Run tracking (rank 0 records the run; see track::start_run):
  bool track = true;                           // --no-track: record nothing
  std::string tracking_uri;                    // empty: track::default_tracking_uri()
  std::string experiment = "Default";          // MLflow's default experiment name
  std::string run_name;                        // empty: "run-<id prefix>"
};

int run_train(const TrainArgs& args);  // calls check_train_args first
int run_train_images(const TrainArgs& args);  // run_train for image_mode()
void check_image_args(const TrainArgs& args);  // check_train_args for image_mode()

// Checks what a parser cannot: DATA.csv or --train with --validation (one form, complete),
// --test-size in (0, 1), --oversample >= 1, --scale items, --momentum only with sgd, --hidden
// not empty. Throws ValueError naming the flag.
void check_train_args(const TrainArgs& args);

// The items of a list flag given once or more ("--features A,B --features C"): comma-separated,
// spaces around items ignored, an item in double quotes may hold commas ("\"Mass, g\"").
// Throws ValueError naming the flag for an empty list or item ("A,,B").
std::vector<std::string> split_list(const std::string& flag, const std::vector<std::string>& values);

// Parses --hidden "10,10" (decimal positive widths, comma-separated, no empty items); throws
// ValueError saying what is wrong with it.
std::vector<std::int64_t> parse_hidden(const std::string& spec);

// krill launch -np N [-H hosts | --hostfile F] [--nodes N --processes-per-node P]
// [--bind-to core|none] [--dry-run] -- COMMAND...: runs COMMAND under mpirun with the settings
// it needs and returns its exit code. `args` are the words after "launch". Command-line errors
// print one line and return 2.
int run_launch(const std::vector<std::string>& args);

struct InspectArgs {
  std::string model_dir;
  bool full = false;  // print every value (no "..." summaries)
};
int run_inspect(const InspectArgs& args);

struct PredictArgs {
  std::string model_dir;
  std::string features;  // already-encoded feature vector "1,50.4,15.3,20,50"
  std::string row;       // raw values of the feature columns "Dream,50.4,15.3,200,5000"
  std::string input;     // CSV with the feature columns
  std::string output;    // CSV to write (with --input)
  std::string format = "text";  // text or json
  std::vector<std::string> images;  // image models: image files to score (--image, repeatable)
  int top = 5;                      // image models: classes shown per image (text format)
};
int run_predict(const PredictArgs& args);
// Image model directories (predict_images.cpp): --image FILE... or --input DIR (every image in it).
int run_predict_images(const PredictArgs& args);
int run_inspect_image(const InspectArgs& args);

// krill runs ACTION ...: the run store's command line (src/cli/runs_command.cpp).
struct RunsArgs {
  std::string action;                 // list, show, compare, plot, export, delete
  std::vector<std::string> ids;       // run ids or unique prefixes (show/export: one; compare: 2+; plot/delete: 1+)
  std::string tracking_uri;           // empty: track::default_tracking_uri()
  // list filters
  std::string experiment;             // empty: every experiment
  std::string status;                 // empty, RUNNING, FINISHED, FAILED or KILLED
  std::vector<std::string> params;    // "KEY=VALUE" items a run's params must all match
  std::string format;                 // empty: the action's default (list/compare: table, show: text, export: csv)
  std::string metric;                 // plot: the metric key (e.g. val_loss)
  std::string output;                 // plot: the PNG to write; export: file (empty: stdout)
  bool force = false;                 // delete: also a run still RUNNING
};
int run_runs(const RunsArgs& args);

// krill ui: the dashboard's web server (src/cli/ui_command.cpp); runs until SIGINT/SIGTERM.
struct UiArgs {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string tracking_uri;           // empty: track::default_tracking_uri()
};
int run_ui(const UiArgs& args);

// Parses "A=0.1,B=0.01" items into column -> factor; throws ValueError naming the bad item.
std::map<std::string, double> parse_scale(const std::vector<std::string>& items);

// Prints "krill <command>: error: <message>" to stderr.
void print_error(const std::string& command, const std::string& message);

}  // namespace krill::cli
