// krill command line: main() defines the subcommands and their flags (CLI11; the validators,
// error messages and --config expansion are in cli_parsing.cpp), parses, and calls the commands.
//
// Every error is one line on stderr, "krill <command>: error: <what and where>", and the exit
// code is 2 for a bad command line (unknown flag, bad flag value) and 1 for everything found
// while running (unreadable or malformed files, unknown columns, ...). No error leaves an
// output directory behind (see io::ModelDirWriter).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <new>
#include <utility>

#include "cli_parsing.hpp"
#include "commands.hpp"
#include "krill/util/error.hpp"
#include "krill/train/model_dir.hpp"
#include "krill/util/runtime_info.hpp"

using krill::cli::config_note;
using krill::cli::describe_flag_taken_as_value;
using krill::cli::describe_leftovers;
using krill::cli::describe_parse_error;
using krill::cli::expand_config;
using krill::cli::find_unknown_option;
using krill::cli::finite_non_negative;
using krill::cli::fraction_open01;
using krill::cli::hidden_widths;
using krill::cli::integer_in_range;

int main(int argc, char** argv) {
  CLI::App app{"krill: train, inspect and use neural networks (PyTorch-compatible weights)", "krill"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", std::string("krill ") + krill::version());
  bool show_runtime = false;
  app.add_flag("--runtime-info", show_runtime, "Print the BLAS core, oneDNN ISA and threads krill uses, then exit");

  // ---- train ----
  krill::cli::TrainArgs t;
  std::string hidden = "10,10";
  std::vector<std::string> features, categorical, scale;  // as given (each may hold a comma-separated list)
  auto* train = app.add_subcommand("train", "Train an MLP classifier on a CSV file (or on pre-split CSV files)");
  std::string config_file;  // expanded before parsing (see expand_config)
  train->add_option("--config", config_file, "Read options from a TOML file (option = value per line; flags on the command line win)")
      ->check(CLI::ExistingFile)->group("Input");
  train->add_option("data", t.data_csv, "CSV file with a header row; krill prepares and splits it")
      ->check(CLI::ExistingFile)->group("Input");
  train->add_option("--train", t.train_csv, "Pre-split training CSV (instead of DATA.csv), or an image directory of class folders")
      ->check(CLI::ExistingPath)->group("Input");
  train->add_option("--validation", t.validation_csv, "Pre-split validation CSV with the same columns, or an image directory")
      ->check(CLI::ExistingPath)->group("Input");
  train->add_option("--label", t.label, "Column holding the class (text names or integer ids); CSV data only")->group("Input");
  train->add_option("--data", t.data,
                    "Image data: an IDX directory (train-*/t10k-*, e.g. /usr/share/datasets/fashion-mnist), a CIFAR-10 "
                    "directory, an image directory (class folders, or train/ and val/), or synthetic:CxHxW:CLASSES[:N]")
      ->group("Images");
  train->add_option("--model", t.model,
                    "Image model: lenet, resnet18, resnet34, resnet50, densenet121, or a krill model directory to "
                    "fine-tune (default for CSV data: the MLP of --hidden)")
      ->group("Images");
  train->add_option("--warmup-epochs", t.warmup_epochs, "Linear learning-rate warm-up epochs, then polynomial decay (images)")
      ->check(integer_in_range(0, 1'000'000, "a non-negative integer"))->capture_default_str()->group("Images");
  train->add_option("--lr-schedule", t.lr_schedule,
                    "After the warm-up: poly (linear decay to the end of training, the module's) or constant (images)")
      ->check(CLI::IsMember({"poly", "constant"}))->capture_default_str()->group("Images");
  train->add_option("--patience", t.patience,
                    "Stop when the validation loss has not improved for N epochs, keeping the best weights (0: off; "
                    "images: 3)")
      ->check(integer_in_range(0, 1'000'000, "a non-negative integer"))->group("Training");
  train->add_option("--print-freq", t.print_freq, "Print a progress line every N iterations (0: off; images: 10)")
      ->check(integer_in_range(0, 1'000'000'000, "a non-negative integer"))->group("Training");
  train->add_option("--workers", t.workers, "Data-loader threads decoding and augmenting images")
      ->check(integer_in_range(0, 256, "a non-negative integer"))->capture_default_str()->group("Images");
  train->add_option("--resize", t.resize, "Resize images to SIZE or HEIGHT,WIDTH pixels (bilinear)")->group("Images");
  train->add_option("--random-crop", t.random_crop_padding,
                    "Augment: pad by N pixels, then crop back to the image size at a random position")
      ->check(integer_in_range(0, 4096, "a non-negative integer"))->group("Images");
  train->add_flag("--hflip", t.hflip, "Augment: flip half of the training images horizontally")->group("Images");
  train->add_option("--normalize", t.normalize,
                    "auto (the training images' per-channel mean/std), none, or MEANS/STDS, e.g. 0.5,0.5,0.5/0.25,0.25,0.25")
      ->capture_default_str()->group("Images");
  // Lists are split by krill::cli::split_list, not by CLI11 (which silently drops empty items).
  train->add_option("--features", features, "Feature columns, comma-separated (default: every column but the label)")
      ->allow_extra_args(false)->group("Preparation");
  train->add_option("--categorical", categorical, "Text columns to encode as indexes of their sorted values")
      ->allow_extra_args(false)->group("Preparation");
  train->add_option("--scale", scale, "Multiply columns by factors: COLUMN=FACTOR,... (e.g. FlipperLength=0.1)")
      ->allow_extra_args(false)->group("Preparation");
  train->add_flag("--standardize", t.standardize, "Standardise features (mean/std fitted on the training split)")->group("Preparation");
  train->add_flag("--dropna,!--no-dropna", t.dropna, "Drop rows with a missing value in a used column (default) or fail on them")
      ->group("Preparation");
  train->add_option("--oversample", t.oversample, "Repeat the whole table N times before the split (the lab uses 4)")
      ->check(integer_in_range(1, 1'000'000, "a positive integer"))->capture_default_str()->group("Preparation");
  train->add_option("--test-size", t.test_size, "Fraction of rows held out for validation")
      ->check(fraction_open01())->capture_default_str()->group("Preparation");
  train->add_option("--seed", t.seed, "Random seed for the split, initialisation and shuffling")
      ->check(integer_in_range(0, std::numeric_limits<std::uint64_t>::max(), "a non-negative integer"))
      ->capture_default_str()->group("Preparation");
  train->add_option("--hidden", hidden, "Hidden layer widths, comma-separated")
      ->check(hidden_widths())->capture_default_str()->group("Model");
  train->add_option("--batch-size", t.batch_size, "Mini-batch size")
      ->check(integer_in_range(1, std::numeric_limits<std::int32_t>::max(), "a positive integer"))
      ->capture_default_str()->group("Training");
  train->add_option("--epochs", t.epochs, "Number of epochs")
      ->check(integer_in_range(1, 1'000'000, "a positive integer"))->capture_default_str()->group("Training");
  train->add_option("--optimizer", t.optimizer, "adam, adamw or sgd")
      ->check(CLI::IsMember({"adam", "adamw", "sgd"}))->capture_default_str()->group("Training");
  train->add_option("--lr", t.lr, "Learning rate")->check(finite_non_negative("a finite number >= 0"))
      ->capture_default_str()->group("Training");
  train->add_option("--momentum", t.momentum, "SGD momentum (--optimizer sgd only)")
      ->check(finite_non_negative("a finite number >= 0"))->capture_default_str()->group("Training");
  train->add_option("--weight-decay", t.weight_decay, "Weight decay (L2 for sgd/adam, decoupled for adamw)")
      ->check(finite_non_negative("a finite number >= 0"))->capture_default_str()->group("Training");
  train->add_flag("--shuffle,!--no-shuffle", t.shuffle,
                  "Reshuffle the training rows every epoch, or keep their order (default, like the lab)")->group("Training");
  train->add_option("--threads", t.threads,
                    "Threads for the kernels (default: OMP_NUM_THREADS, else every core); 1 can be faster when "
                    "other processes keep cores busy")
      ->check(integer_in_range(1, 4096, "a positive integer"))->group("Training");
  train->add_option("--init-weights", t.init_weights, "Start from these weights (safetensors, PyTorch names)")
      ->check(CLI::ExistingFile)->group("Training");
  train->add_option("--out", t.out, "Model directory to write")->required()->group("Output");
  train->add_flag("--force", t.force, "Replace an existing model directory")->group("Output");
  train->add_flag("-q,--quiet", t.quiet, "Print only warnings, errors and the final summary")->group("Output");
  train->add_flag("-v,--verbose", t.verbose, "Print the numeric runtime (BLAS core, oneDNN ISA, threads)")->group("Output");
  // Under mpirun -np N (or krill launch) training is data-parallel with no other flag.
  train->add_flag("--scale-lr,!--no-scale-lr", t.scale_lr,
                  "Under mpirun -np N: multiply --lr by N (default, Horovod's rule) or keep it as given")
      ->group("Distributed");
  train->add_option("--log-verbosity", t.log_verbosity,
                    "Under mpirun: rank0 (only rank 0 prints) or all (every rank, prefixed [rank r]); every rank "
                    "logs to MODEL_DIR/logs/rank-<r>.log")
      ->check(CLI::IsMember({"rank0", "all"}))->capture_default_str()->group("Distributed");
  train->add_option("--timeline", t.timeline,
                    "Write a Chrome-trace timeline of backward, allreduce and optimizer step (one file per rank)")
      ->group("Distributed");

  train->add_flag("--track,!--no-track", t.track,
                  "Record the run (params, per-epoch metrics, artifacts) in the tracking store (default), or not")
      ->group("Tracking");
  train->add_option("--tracking-uri", t.tracking_uri,
                    "Run store to record into (default $KRILL_TRACKING_URI, else ./krill-runs/runs.db)")
      ->group("Tracking");
  train->add_option("--experiment", t.experiment, "Experiment to file the run under")
      ->capture_default_str()->group("Tracking");
  train->add_option("--run-name", t.run_name, "Name of the run (default run-<first 8 digits of its id>)")
      ->group("Tracking");

  // ---- runs (the run store) ----
  krill::cli::RunsArgs ra;
  auto* runs = app.add_subcommand("runs", "List, show, compare, plot, export and delete tracked runs");
  runs->require_subcommand(1, 1);
  auto add_uri = [&](CLI::App* c) {
    c->add_option("--tracking-uri", ra.tracking_uri,
                  "Run store to read (default $KRILL_TRACKING_URI, else ./krill-runs/runs.db)");
  };
  auto* runs_list = runs->add_subcommand("list", "List runs, newest first, with their params and latest metrics");
  runs_list->add_option("--experiment", ra.experiment, "Only runs of this experiment");
  runs_list->add_option("--status", ra.status, "Only runs with this status")
      ->check(CLI::IsMember({"RUNNING", "FINISHED", "FAILED", "KILLED"}, CLI::ignore_case));
  runs_list->add_option("--param", ra.params, "Only runs whose param KEY has VALUE (KEY=VALUE; repeatable)")
      ->allow_extra_args(false);
  runs_list->add_option("--format", ra.format, "table or json")->check(CLI::IsMember({"table", "json"}));
  add_uri(runs_list);
  auto* runs_show = runs->add_subcommand("show", "Show one run: info, params, tags, metrics, artifacts");
  runs_show->add_option("id", ra.ids, "Run id or a unique prefix of it")->required()->expected(1);
  runs_show->add_option("--format", ra.format, "text or json")->check(CLI::IsMember({"text", "json"}));
  add_uri(runs_show);
  auto* runs_compare = runs->add_subcommand("compare", "Compare runs: params that differ, final and best metrics");
  runs_compare->add_option("ids", ra.ids, "Two or more run ids (or unique prefixes)")->required()->expected(2, 1000);
  runs_compare->add_option("--format", ra.format, "table or json")->check(CLI::IsMember({"table", "json"}));
  add_uri(runs_compare);
  auto* runs_plot = runs->add_subcommand("plot", "Plot one metric of one or more runs, overlaid, into a PNG");
  runs_plot->add_option("ids", ra.ids, "Run ids (or unique prefixes)")->required()->expected(1, 1000);
  runs_plot->add_option("--metric", ra.metric, "Metric to plot (e.g. val_loss)")->required();
  runs_plot->add_option("-o,--output", ra.output, "PNG file to write")->required();
  add_uri(runs_plot);
  auto* runs_export = runs->add_subcommand("export", "Export a run's metric history (and its params) as CSV or JSON");
  runs_export->add_option("id", ra.ids, "Run id or a unique prefix of it")->required()->expected(1);
  runs_export->add_option("--format", ra.format,
                           "csv (default; .json output files: json): one row per point, run_id,key,step,value,timestamp "
                           "(ms since 1970), sorted by key then step, values exact (pandas: df.pivot(index='step', "
                           "columns='key', values='value')); csv-wide: one row per step, one column per metric "
                           "(empty where a metric has no point at that step), for spreadsheets; json: the run "
                           "(id, params, latest metrics) and \"history\": {key: [{step, value, timestamp}]}")
      ->check(CLI::IsMember({"csv", "csv-wide", "json"}));
  runs_export->add_option("-o,--output", ra.output, "File to write, atomically (default: standard output)");
  add_uri(runs_export);
  auto* runs_delete = runs->add_subcommand("delete", "Delete runs with their params, tags, metrics and artifact records");
  runs_delete->add_option("ids", ra.ids, "Run ids (or unique prefixes)")->required()->expected(1, 1000);
  runs_delete->add_flag("--force", ra.force, "Also delete a run that is still RUNNING");
  add_uri(runs_delete);

  // ---- ui (the dashboard) ----
  krill::cli::UiArgs ua;
  auto* ui = app.add_subcommand("ui", "Serve the runs dashboard (runs table, run pages, compare view, live charts)");
  ui->add_option("--port", ua.port, "TCP port")->check(CLI::Range(1, 65535))->capture_default_str();
  ui->add_option("--host", ua.host, "Address to bind (127.0.0.1: this machine only; 0.0.0.0: every interface)")
      ->capture_default_str();
  ui->add_option("--tracking-uri", ua.tracking_uri,
                 "Run store to serve (default $KRILL_TRACKING_URI, else ./krill-runs/runs.db)");

  // ---- launch (parsed by run_launch: everything after -- is the command to run) ----
  app.add_subcommand("launch",
                     "Run a command under mpirun: krill launch -np N [-H host1:2,host2:2 | --hostfile F] "
                     "[--nodes N --processes-per-node P] [--bind-to core|none] [--dry-run] -- krill train ...")
      ->allow_extras();

  // ---- inspect ----
  krill::cli::InspectArgs ins;
  auto* inspect = app.add_subcommand("inspect", "Show a model directory: layers, shapes, preparation, weights and biases");
  inspect->add_option("model_dir", ins.model_dir, "Model directory written by krill train")->required();
  inspect->add_flag("--full", ins.full, "Print every weight (no ... summaries)");

  // ---- predict ----
  krill::cli::PredictArgs pr;
  auto* predict = app.add_subcommand("predict", "Predict classes with a trained model directory");
  predict->add_option("model_dir", pr.model_dir, "Model directory written by krill train")->required();
  predict->add_option("--features", pr.features, "One already-encoded feature vector, e.g. \"1,50.4,15.3,20,50\"");
  predict->add_option("--row", pr.row, "Raw values of the feature columns, prepared as in training, e.g. \"Dream,50.4,15.3,200,5000\"");
  predict->add_option("--input", pr.input,
                      "CSV file with the feature columns (a header row); predicts every row. Image models: a directory "
                      "of images (every image in it and its sub-folders)")
      ->check(CLI::ExistingPath);
  predict->add_option("--image", pr.images, "Image models: an image file to classify (repeatable)")
      ->check(CLI::ExistingFile)->allow_extra_args(false);
  predict->add_option("--top", pr.top, "Image models: how many classes to show per image")
      ->check(CLI::Range(1, 1000))->capture_default_str();
  predict->add_option("--output", pr.output, "With --input: write the predictions to this CSV");
  predict->add_option("--format", pr.format, "text or json (one object per row with --input)")
      ->check(CLI::IsMember({"text", "json"}))->capture_default_str();

  if (argc > 1 && std::string(argv[1]) == "launch")
    return krill::cli::run_launch(std::vector<std::string>(argv + 2, argv + argc));
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "train") {
      try {
        args = expand_config(args, train);
      } catch (const krill::Error& e) {
        krill::cli::print_error("train", e.what());
        return 2;
      }
    }
    if (!args.empty()) {
      for (CLI::App* sc : app.get_subcommands([](const CLI::App*) { return true; })) {
        if (sc->get_name() != args[0]) continue;
        // A nested command (krill runs list) is checked against its own options.
        std::vector<std::string> words = args;
        std::string where = sc->get_name();
        if (args.size() > 1)
          for (CLI::App* nested : sc->get_subcommands([](const CLI::App*) { return true; }))
            if (nested->get_name() == args[1]) {
              sc = nested;
              words.erase(words.begin());
              where += " " + nested->get_name();
            }
        if (std::string unknown = find_unknown_option(words, sc); !unknown.empty()) {
          std::cerr << "krill " << where << ": error: " << unknown << " (run 'krill " << where
                    << " --help' for the options)\n";
          return 2;
        }
      }
    }
    if (std::getenv("KRILL_DEBUG_ARGS"))
      for (const auto& x : args) std::cerr << "[arg] " << x << "\n";
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments reversed
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints help/version itself; errors get one line with the command name and a hint.
    if (e.get_exit_code() == 0) return app.exit(e);
    const CLI::App* sub = app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
    std::string where = sub ? "krill " + sub->get_name() : "krill";
    if (sub && !sub->get_subcommands().empty()) {  // krill runs list
      sub = sub->get_subcommands().front();
      where += " " + sub->get_name();
    }
    // Leftovers explain a "required" or "extras" error; other errors (a bad or missing value)
    // are raised mid-parse and are more precise than whatever was left unparsed.
    std::string msg = describe_flag_taken_as_value(sub ? sub : &app);
    if (msg.empty() && (dynamic_cast<const CLI::RequiredError*>(&e) || dynamic_cast<const CLI::ExtrasError*>(&e)))
      msg = describe_leftovers(app, sub);
    if (msg.empty()) msg = describe_parse_error(e);
    msg += config_note(msg);
    std::cerr << where << ": error: " << msg << " (run '" << where << " --help' for the options)\n";
    return 2;
  }

  if (show_runtime) {
    std::cout << krill::describe_runtime();
    return 0;
  }
  std::string command = app.get_subcommands().empty() ? "" : app.get_subcommands().front()->get_name();
  if (runs->parsed() && !runs->get_subcommands().empty()) {
    ra.action = runs->get_subcommands().front()->get_name();
    command += " " + ra.action;
  }
  // What the parser cannot check: list items, and options that go (or do not go) together.
  try {
    if (train->parsed()) {
      if (t.image_mode()) {
        // The "Train PyTorch Model" module's defaults, for what the command line does not give.
        auto unset = [&](const char* flag) { return train->get_option(flag)->count() == 0; };
        if (unset("--epochs")) t.epochs = 5;
        if (unset("--batch-size")) t.batch_size = 16;
        if (unset("--seed")) t.seed = 1;
        if (unset("--optimizer")) t.optimizer = "sgd";
        if (t.optimizer == "sgd" && unset("--momentum")) t.momentum = 0.9;
        if (t.optimizer == "sgd" && unset("--weight-decay")) t.weight_decay = 1e-4;
        if (unset("--patience")) t.patience = 3;
        if (unset("--print-freq")) t.print_freq = 10;
        if (unset("--test-size")) t.test_size = 0.1;
      }
      t.hidden = krill::cli::parse_hidden(hidden);
      t.features = krill::cli::split_list("--features", features);
      t.categorical = krill::cli::split_list("--categorical", categorical);
      t.scale = krill::cli::split_list("--scale", scale);
      krill::cli::check_train_args(t);
    }
    if (predict->parsed()) {
      const std::pair<const char*, const std::string*> values[] = {
          {"--features", &pr.features}, {"--row", &pr.row}, {"--input", &pr.input}, {"--output", &pr.output}};
      for (const auto& [flag, value] : values)
        if (predict->get_option(flag)->count() > 0 && value->empty())
          throw krill::ValueError(std::string(flag) + " is empty: give " +
                                  (std::string(flag) == "--features" ? "the encoded values, e.g. --features \"1,50.4,15.3,20,50\""
                                   : std::string(flag) == "--row"    ? "the raw values, e.g. --row \"Dream,50.4,15.3,200,5000\""
                                                                     : "a CSV file name"));
    }
  } catch (const krill::Error& e) {
    std::string msg = e.what();
    krill::cli::print_error(command, msg + (train->parsed() ? config_note(msg) : ""));
    return 2;
  }
  try {
    if (train->parsed()) return krill::cli::run_train(t);
    if (inspect->parsed()) return krill::cli::run_inspect(ins);
    if (predict->parsed()) return krill::cli::run_predict(pr);
    if (runs->parsed()) return krill::cli::run_runs(ra);
    if (ui->parsed()) return krill::cli::run_ui(ua);
  } catch (const krill::Error& e) {
    // The "Train PyTorch Model" module's errors keep their names, so scripts and users who know
    // the module recognise them.
    std::string msg = e.what();
    if (dynamic_cast<const krill::NotLabeledDatasetError*>(&e)) msg = "NotLabeledDatasetError: " + msg;
    else if (dynamic_cast<const krill::InvalidDatasetError*>(&e)) msg = "InvalidDatasetError: " + msg;
    else if (dynamic_cast<const krill::training::InvalidModelDirectoryError*>(&e) && t.image_mode())
      msg = "InvalidModelDirectoryError: " + msg;
    krill::cli::print_error(command, msg + (train->parsed() ? config_note(msg) : ""));
    return 1;
  } catch (const std::bad_alloc&) {
    krill::cli::print_error(command, "out of memory (the data or the model is too large for this machine)");
    return 1;
  } catch (const std::exception& e) {
    krill::cli::print_error(command, std::string("unexpected failure: ") + e.what());
    return 1;
  }
  std::cout << app.help();
  return 0;
}
