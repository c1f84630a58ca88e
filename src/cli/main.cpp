// krill command line: parses flags (CLI11, only in this file) and calls the commands.
#include <CLI/CLI.hpp>

#include <iostream>

#include "commands.hpp"
#include "krill/util/error.hpp"
#include "krill/util/runtime_info.hpp"

namespace {

// Positive-integer and range validators with messages that name the flag.
CLI::Validator positive_int(const char* flag) {
  return CLI::Validator(
      [flag](std::string& s) -> std::string {
        try {
          std::size_t pos = 0;
          long long v = std::stoll(s, &pos);
          if (pos != s.size() || v <= 0) throw std::invalid_argument("");
        } catch (...) {
          return std::string(flag) + " must be a positive integer, got '" + s + "'";
        }
        return "";
      },
      "POSITIVE");
}

CLI::Validator non_negative_number(const char* flag) {
  return CLI::Validator(
      [flag](std::string& s) -> std::string {
        try {
          std::size_t pos = 0;
          double v = std::stod(s, &pos);
          if (pos != s.size() || !(v >= 0) || v == INFINITY) throw std::invalid_argument("");
        } catch (...) {
          return std::string(flag) + " must be a non-negative number, got '" + s + "'";
        }
        return "";
      },
      "NUMBER>=0");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"krill: train, inspect and use neural networks (PyTorch-compatible weights)", "krill"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", std::string("krill ") + krill::version());
  bool show_runtime = false;
  app.add_flag("--runtime-info", show_runtime, "Print the BLAS core, oneDNN ISA and threads krill uses, then exit");

  // ---- train ----
  krill::cli::TrainArgs t;
  auto* train = app.add_subcommand("train", "Train an MLP classifier on numeric CSV files");
  train->add_option("--train", t.train_csv, "Training CSV (header row; numeric columns)")->required()->check(CLI::ExistingFile);
  train->add_option("--validation", t.validation_csv, "Validation CSV with the same columns")->required()->check(CLI::ExistingFile);
  train->add_option("--label", t.label, "Name of the label column (integer class ids 0..C-1)")->required();
  train->add_option("--hidden", t.hidden, "Hidden layer widths, comma-separated")->delimiter(',')->capture_default_str();
  train->add_option("--batch-size", t.batch_size, "Mini-batch size")->check(positive_int("--batch-size"))->capture_default_str();
  train->add_option("--epochs", t.epochs, "Number of epochs")->check(positive_int("--epochs"))->capture_default_str();
  train->add_option("--optimizer", t.optimizer, "adam, adamw or sgd")
      ->check(CLI::IsMember({"adam", "adamw", "sgd"}))
      ->capture_default_str();
  train->add_option("--lr", t.lr, "Learning rate")->check(non_negative_number("--lr"))->capture_default_str();
  train->add_option("--momentum", t.momentum, "SGD momentum")->check(non_negative_number("--momentum"))->capture_default_str();
  train->add_option("--weight-decay", t.weight_decay, "Weight decay (L2 for sgd/adam, decoupled for adamw)")
      ->check(non_negative_number("--weight-decay"))
      ->capture_default_str();
  train->add_flag("--shuffle,!--no-shuffle", t.shuffle, "Reshuffle the training rows every epoch (default) or keep file order");
  train->add_option("--seed", t.seed, "Random seed for initialisation and shuffling")->capture_default_str();
  train->add_option("--init-weights", t.init_weights, "Start from these weights (safetensors, PyTorch names)")
      ->check(CLI::ExistingFile);
  train->add_option("--out", t.out, "Model directory to write")->required();
  train->add_flag("--force", t.force, "Replace an existing model directory");
  train->add_flag("-q,--quiet", t.quiet, "Print only errors and the final summary");
  train->add_flag("-v,--verbose", t.verbose, "Print the numeric runtime (BLAS core, oneDNN ISA, threads)");

  // ---- inspect ----
  krill::cli::InspectArgs ins;
  auto* inspect = app.add_subcommand("inspect", "Show a model directory's layers, shapes, weights and biases");
  inspect->add_option("model_dir", ins.model_dir, "Model directory written by krill train")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints help/version itself; errors get the command name and a hint.
    if (e.get_exit_code() == 0) return app.exit(e);
    std::string where = app.get_subcommands().empty() ? "krill" : "krill " + app.get_subcommands().front()->get_name();
    std::cerr << where << ": error: " << e.what() << "\n(run '" << where << " --help' for the options)\n";
    return 2;
  }

  if (show_runtime) {
    std::cout << krill::describe_runtime();
    return 0;
  }
  try {
    if (train->parsed()) return krill::cli::run_train(t);
    if (inspect->parsed()) return krill::cli::run_inspect(ins);
  } catch (const krill::Error& e) {
    krill::cli::print_error(app.get_subcommands().front()->get_name(), e.what());
    return 1;
  } catch (const std::exception& e) {
    krill::cli::print_error(app.get_subcommands().front()->get_name(), std::string("unexpected failure: ") + e.what());
    return 1;
  }
  std::cout << app.help();
  return 0;
}
