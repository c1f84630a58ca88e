// krill command line: parses flags (CLI11, only in this file) and calls the commands.
//
// Every error is one line on stderr, "krill <command>: error: <what and where>", and the exit
// code is 2 for a bad command line (unknown flag, bad flag value) and 1 for everything found
// while running (unreadable or malformed files, unknown columns, ...). No error leaves an
// output directory behind (see io::ModelDirWriter).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iostream>
#include <limits>
#include <new>

#include "commands.hpp"
#include "krill/util/error.hpp"
#include "krill/util/runtime_info.hpp"

namespace {

// Integer flags: decimal digits only (CLI11 itself would read "010" as octal and wrap "-1"
// into an unsigned), within [lo, hi]. The validator rewrites the value to its canonical
// decimal form so CLI11's conversion sees exactly what was checked. CLI11 prefixes the
// message with the flag name.
CLI::Validator integer_in_range(std::uint64_t lo, std::uint64_t hi, std::string what) {
  return CLI::Validator(
      [lo, hi, what](std::string& s) -> std::string {
        std::string t = s;
        if (!t.empty() && t.front() == '+') t.erase(0, 1);
        std::uint64_t v = 0;
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (t.empty() || ec != std::errc() || end != t.data() + t.size() || v < lo || v > hi)
          return "must be " + what + " (at most " + std::to_string(hi) + "), got '" + s + "'";
        s = std::to_string(v);
        return "";
      },
      "INT");
}

CLI::Validator finite_non_negative(std::string what) {
  return CLI::Validator(
      [what](std::string& s) -> std::string {
        double v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v) || v < 0)
          return "must be " + what + ", got '" + s + "'";
        return "";
      },
      "NUMBER>=0");
}

CLI::Validator hidden_widths() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        try {
          krill::cli::parse_hidden(s);
        } catch (const krill::Error& e) {
          return e.what();
        }
        return "";
      },
      "W1,W2,...");
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// "; did you mean '--epochs'?" for a mistyped flag, or "" when nothing is close.
std::string suggest_flag(const CLI::App* app, const std::string& arg) {
  std::string name = arg.substr(0, arg.find('='));
  std::string best;
  std::size_t best_d = 3;  // suggest within an edit distance of 2
  for (const CLI::Option* opt : app->get_options()) {
    for (const auto& l : opt->get_lnames()) {
      std::string cand = "--" + l;
      std::size_t d = edit_distance(name, cand);
      if (d < best_d) best_d = d, best = cand;
    }
    for (const auto& l : opt->get_fnames()) {  // flags such as --no-shuffle
      std::string cand = l.rfind("--", 0) == 0 ? l : "--" + l;
      std::size_t d = edit_distance(name, cand);
      if (d < best_d) best_d = d, best = cand;
    }
  }
  return best.empty() ? "" : "; did you mean '" + best + "'?";
}

// An unknown flag or stray argument left over by the parse, as a message (or "" when none).
// CLI11 reports a missing required flag before an unknown one; the unknown one is usually
// the cause (a typo of the required flag), so it is reported first.
std::string describe_leftovers(const CLI::App& app, const CLI::App* sub) {
  std::vector<std::string> left = app.remaining_for_passthrough(true);
  if (left.empty()) return "";
  auto flag = std::find_if(left.begin(), left.end(), [](const std::string& a) { return a.size() > 1 && a[0] == '-'; });
  if (flag != left.end()) {
    std::string name = flag->substr(0, flag->find('='));
    return "unknown option '" + name + "'" + suggest_flag(sub ? sub : &app, *flag);
  }
  if (!sub) {
    std::string names;
    for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; }))
      names += (names.empty() ? "" : ", ") + s->get_name();
    return "unknown command '" + left.front() + "' (commands: " + names + ")";
  }
  return "unexpected argument '" + left.front() + "' (" + sub->get_name() + " takes no positional arguments; flags start with --)";
}

// CLI11 gives a flag its value even when that looks like another flag ("--label --out m"
// makes "--out" the label). When a value is the name of an option, that was the mistake.
std::string describe_flag_taken_as_value(const CLI::App* app) {
  if (!app) return "";
  for (const CLI::Option* opt : app->get_options()) {
    for (const std::string& value : opt->results()) {
      if (value.size() < 3 || value.rfind("--", 0) != 0) continue;
      const std::string name = value.substr(2, value.find('=') - 2);
      for (const CLI::Option* other : app->get_options())
        for (const auto& l : other->get_lnames())
          if (l == name)
            return opt->get_name() + " needs a value (it was followed by the flag '" + value + "')";
    }
  }
  return "";
}

// CLI11's wording, made clearer where it is cryptic.
std::string describe_parse_error(const CLI::ParseError& e) {
  std::string msg = e.what();
  const std::string at_most = ": At Most 1 required but received ";
  if (auto p = msg.find(at_most); p != std::string::npos) return msg.substr(0, p) + " was given more than once";
  const std::string required = ": 1 required ";  // "--hidden: 1 required TEXT missing"
  if (auto p = msg.find(required); p != std::string::npos && msg.size() > 8 && msg.ends_with(" missing"))
    return msg.substr(0, p) + " needs a value";
  return msg;
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
  std::string hidden = "10,10";
  auto* train = app.add_subcommand("train", "Train an MLP classifier on numeric CSV files");
  train->add_option("--train", t.train_csv, "Training CSV (header row; numeric columns)")->required()->check(CLI::ExistingFile);
  train->add_option("--validation", t.validation_csv, "Validation CSV with the same columns")->required()->check(CLI::ExistingFile);
  train->add_option("--label", t.label, "Name of the label column (integer class ids 0..C-1)")->required();
  train->add_option("--hidden", hidden, "Hidden layer widths, comma-separated")->check(hidden_widths())->capture_default_str();
  train->add_option("--batch-size", t.batch_size, "Mini-batch size")
      ->check(integer_in_range(1, std::numeric_limits<std::int32_t>::max(), "a positive integer"))
      ->capture_default_str();
  train->add_option("--epochs", t.epochs, "Number of epochs")
      ->check(integer_in_range(1, 1'000'000, "a positive integer"))
      ->capture_default_str();
  train->add_option("--optimizer", t.optimizer, "adam, adamw or sgd")
      ->check(CLI::IsMember({"adam", "adamw", "sgd"}))
      ->capture_default_str();
  train->add_option("--lr", t.lr, "Learning rate")->check(finite_non_negative("a finite number >= 0"))->capture_default_str();
  train->add_option("--momentum", t.momentum, "SGD momentum (--optimizer sgd only)")
      ->check(finite_non_negative("a finite number >= 0"))
      ->capture_default_str();
  train->add_option("--weight-decay", t.weight_decay, "Weight decay (L2 for sgd/adam, decoupled for adamw)")
      ->check(finite_non_negative("a finite number >= 0"))
      ->capture_default_str();
  train->add_flag("--shuffle,!--no-shuffle", t.shuffle, "Reshuffle the training rows every epoch (default) or keep file order");
  train->add_option("--seed", t.seed, "Random seed for initialisation and shuffling")
      ->check(integer_in_range(0, std::numeric_limits<std::uint64_t>::max(), "a non-negative integer"))
      ->capture_default_str();
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
    // CLI11 prints help/version itself; errors get one line with the command name and a hint.
    if (e.get_exit_code() == 0) return app.exit(e);
    const CLI::App* sub = app.get_subcommands().empty() ? nullptr : app.get_subcommands().front();
    std::string where = sub ? "krill " + sub->get_name() : "krill";
    // Leftovers explain a "required" or "extras" error; other errors (a bad or missing value)
    // are raised mid-parse and are more precise than whatever was left unparsed.
    std::string msg = describe_flag_taken_as_value(sub ? sub : &app);
    if (msg.empty() && (dynamic_cast<const CLI::RequiredError*>(&e) || dynamic_cast<const CLI::ExtrasError*>(&e)))
      msg = describe_leftovers(app, sub);
    if (msg.empty()) msg = describe_parse_error(e);
    std::cerr << where << ": error: " << msg << " (run '" << where << " --help' for the options)\n";
    return 2;
  }

  if (show_runtime) {
    std::cout << krill::describe_runtime();
    return 0;
  }
  const std::string command = app.get_subcommands().empty() ? "" : app.get_subcommands().front()->get_name();
  try {
    if (train->parsed()) {
      t.hidden = krill::cli::parse_hidden(hidden);
      return krill::cli::run_train(t);
    }
    if (inspect->parsed()) return krill::cli::run_inspect(ins);
  } catch (const krill::Error& e) {
    krill::cli::print_error(command, e.what());
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
