// The CLI11-dependent helpers of the krill command line: flag validators, the one-line messages
// for bad command lines, and `krill train --config FILE` expanded into flags.
#include "cli_parsing.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "commands.hpp"
#include "config_file.hpp"
#include "krill/util/error.hpp"
#include "krill/util/text.hpp"

namespace krill::cli {

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

// --test-size: a fraction strictly between 0 and 1.
CLI::Validator fraction_open01() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        double v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !(v > 0 && v < 1))
          return "must be a fraction strictly between 0 and 1 (0.3 = 30% of the rows for validation), got '" + s + "'";
        return "";
      },
      "FRACTION");
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

using krill::text::edit_distance;

namespace {

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

}  // namespace

// An unknown flag or stray argument left over by the parse, as a message (or "" when none).
// CLI11 reports a missing required flag before an unknown one; the unknown one is usually
// the cause (a typo of the required flag), so it is reported first.
std::string describe_leftovers(const CLI::App& app, const CLI::App* sub) {
  std::vector<std::string> left = app.remaining_for_passthrough(true);
  // A command made of commands (krill runs) given none, or a mistyped one.
  if (sub && sub->get_subcommands().empty()) {
    std::vector<std::string> names;
    for (const CLI::App* s : sub->get_subcommands([](const CLI::App*) { return true; })) names.push_back(s->get_name());
    if (!names.empty()) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      auto word = std::find_if(left.begin(), left.end(), [](const std::string& a) { return a.empty() || a[0] != '-'; });
      if (word == left.end())
        return "missing command: 'krill " + sub->get_name() + "' needs one of: " + list;
      const std::string close = krill::text::closest_name(*word, names);
      return "unknown command '" + *word + "' for 'krill " + sub->get_name() + "'" +
             (close.empty() ? "" : "; did you mean '" + close + "'?") + " (commands: " + list + ")";
    }
  }
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
  std::size_t positionals = 0;
  for (const CLI::Option* o : sub->get_options()) positionals += o->get_positional() ? 1 : 0;
  if (positionals > 0)
    return "unexpected argument '" + left.front() + "' (" + sub->get_name() + " takes " +
           (sub->get_name() == "train" ? std::string("one DATA.csv") : std::string("one MODEL_DIR")) +
           "; flags start with --)";
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

// Unknown long options, found before CLI11 parses: with a positional argument declared, CLI11
// would take the value after an unknown "--epoch" as the positional and complain about that
// instead ("data: File does not exist: 3").
std::string find_unknown_option(const std::vector<std::string>& args, const CLI::App* sub) {
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a.rfind("--", 0) != 0 || a.size() == 2) continue;
    const std::string name = a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
    bool known = false;
    const CLI::Option* match = nullptr;
    for (const CLI::Option* o : sub->get_options()) {
      for (const auto& l : o->get_lnames())
        if (l == name) known = true, match = o;
      for (const auto& f : o->get_fnames())
        if (f == name) known = true, match = o;
    }
    if (!known) return "unknown option '--" + name + "'" + suggest_flag(sub, a);
    if (match && match->get_expected_min() > 0 && a.find('=') == std::string::npos) ++i;  // skip its value
  }
  return "";
}

namespace {

// Where each option taken from a --config file was set ("--config FILE line N"), by option
// name ("epochs", "data"), so that an error about its value can point there.
std::map<std::string, std::string> g_config_origin;

}  // namespace

// " (set in --config FILE line N)" when `message` is about an option that came from the config
// file (it starts with "--NAME" or "data:"), else "".
std::string config_note(const std::string& message) {
  std::string name;
  if (message.rfind("--", 0) == 0) {
    std::size_t e = 2;
    while (e < message.size() && (std::isalnum(static_cast<unsigned char>(message[e])) || message[e] == '-')) ++e;
    name = message.substr(2, e - 2);
  } else if (message.rfind("data:", 0) == 0) {
    name = "data";
  }
  auto it = g_config_origin.find(name);
  if (it == g_config_origin.end()) return "";
  // relative paths in the file are read from where krill runs, like on the command line
  const bool missing_path = message.find("does not exist") != std::string::npos;
  return " (set in " + it->second + ")" +
         (missing_path ? "; relative paths in a config file are taken from the current directory, " +
                             std::filesystem::current_path().string()
                       : std::string());
}

// `krill train --config FILE`: the file's options are appended to the command line, except
// those the command line already gives (it wins; DATA.csv there also drops the file's
// train/validation, and --train/--validation there its data). Keys are option names without
// "--"; "data" is the positional DATA.csv; booleans turn flags on or off (shuffle = false ->
// --no-shuffle); arrays become comma-separated lists.
std::vector<std::string> expand_config(const std::vector<std::string>& args, const CLI::App* sub) {
  std::size_t cfg_at = args.size();
  std::string file;
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string value;
    if (args[i] == "--config") {
      if (i + 1 >= args.size() || args[i + 1].empty() || args[i + 1].rfind("--", 0) == 0)
        throw krill::ValueError("--config needs a value: the TOML file to read (e.g. --config examples/penguins.toml)");
      value = args[i + 1];
    } else if (args[i].rfind("--config=", 0) == 0) {
      value = args[i].substr(9);
      if (value.empty())
        throw krill::ValueError("--config needs a value: the TOML file to read (e.g. --config examples/penguins.toml)");
    } else {
      if (args[i] == "--") break;
      continue;
    }
    if (cfg_at != args.size()) throw krill::ValueError("--config was given more than once (one config file per run)");
    cfg_at = i;
    file = value;
  }
  if (cfg_at == args.size()) return args;
  std::vector<std::string> out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i == cfg_at) {
      if (args[i] == "--config") ++i;
      continue;
    }
    out.push_back(args[i]);
  }
  // Options the command line gives (tokens after the subcommand name).
  auto find_opt = [&](const std::string& lname) -> const CLI::Option* {
    for (const CLI::Option* o : sub->get_options())
      for (const auto& l : o->get_lnames())
        if (l == lname) return o;
    return nullptr;
  };
  std::set<const CLI::Option*> given;
  bool positional_given = false;  // DATA.csv on the command line
  for (std::size_t i = 1; i < out.size(); ++i) {
    const std::string& a = out[i];
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
      const CLI::Option* o = find_opt(name);
      if (!o && name.rfind("no-", 0) == 0) o = find_opt(name.substr(3));
      if (o) {
        given.insert(o);
        if (o->get_expected_min() > 0 && a.find('=') == std::string::npos) ++i;  // skip its value
      }
    } else if (a.size() > 1 && a[0] == '-') {
      // short flags (-q, -v) take no value
    } else {
      positional_given = true;
    }
  }
  // The command line's choice of data wins as a whole: DATA.csv there drops the file's
  // train/validation, and --train or --validation there drops the file's data.
  const bool presplit_given = given.count(find_opt("train")) || given.count(find_opt("validation"));
  std::vector<krill::cli::ConfigEntry> entries = krill::cli::read_config_file(file);
  for (const auto& e : entries) {
    const std::string where = "--config " + file + " line " + std::to_string(e.line);
    if (e.key == "data") {
      if (e.values.size() != 1) throw krill::ValueError(where + ": 'data' takes one file name");
      if (!positional_given && !presplit_given) {
        out.insert(out.begin() + 1, e.values[0]);
        g_config_origin["data"] = where;
      }
      continue;
    }
    if ((e.key == "train" || e.key == "validation") && positional_given) continue;
    const CLI::Option* o = find_opt(e.key);
    if (!o || e.key == "config" || e.key == "help") {
      std::string known = "data";
      for (const CLI::Option* opt : sub->get_options())
        for (const auto& l : opt->get_lnames())
          if (l != "help" && l != "config") known += ", " + l;
      throw krill::ValueError(where + ": unknown option '" + e.key + "'" + suggest_flag(sub, "--" + e.key) +
                              " (options: " + known + ")");
    }
    if (given.count(o)) continue;  // the command line wins
    g_config_origin[e.key] = where;
    if (o->get_expected_min() == 0) {  // a flag
      if (!e.is_bool || e.values.size() != 1)
        throw krill::ValueError(where + ": '" + e.key + "' is a switch: write " + e.key + " = true or false");
      if (e.values[0] == "true") {
        out.push_back("--" + e.key);
      } else {
        bool has_negation = false;
        for (const auto& f : o->get_fnames()) has_negation |= f == "no-" + e.key;
        if (has_negation) out.push_back("--no-" + e.key);
      }
      continue;
    }
    if (e.is_bool) throw krill::ValueError(where + ": '" + e.key + "' takes a value, not true/false");
    std::string joined;
    for (const auto& v : e.values) {
      std::string item = v;
      const bool list = e.key == "features" || e.key == "categorical" || e.key == "scale";  // see split_list
      if (list && item.find_first_of(",\"") != std::string::npos) {  // keep it one list item
        item = "\"";
        for (char ch : v) item += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        item += "\"";
      }
      joined += (joined.empty() ? "" : ",") + item;
    }
    out.push_back("--" + e.key + "=" + joined);
  }
  return out;
}

}  // namespace krill::cli
