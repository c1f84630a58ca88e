// Internal to the krill command: the CLI11-dependent helpers main() uses (flag validators,
// messages for bad command lines, --config expansion). Only main.cpp and cli_parsing.cpp
// include it, so CLI11 (a heavy header) is still compiled in these two files alone.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace krill::cli {

// Flag validators; CLI11 prefixes their messages with the flag name.
CLI::Validator integer_in_range(std::uint64_t lo, std::uint64_t hi, std::string what);  // canonical decimal
CLI::Validator finite_non_negative(std::string what);
CLI::Validator fraction_open01();  // --test-size
CLI::Validator hidden_widths();    // --hidden W1,W2,...

// Messages for a bad command line, "" when they do not apply: an unknown flag or stray
// argument left over by the parse (`sub`: the command given, or null), a flag taken as
// another's value, CLI11's own wording made clearer, and an unknown long option in `args`
// (checked before parsing).
std::string describe_leftovers(const CLI::App& app, const CLI::App* sub);
std::string describe_flag_taken_as_value(const CLI::App* app);
std::string describe_parse_error(const CLI::ParseError& e);
std::string find_unknown_option(const std::vector<std::string>& args, const CLI::App* sub);

// `krill train --config FILE` (`sub`: the train command): `args` with the file's options
// appended where the command line does not give them.
std::vector<std::string> expand_config(const std::vector<std::string>& args, const CLI::App* sub);

// " (set in --config FILE line N)" when `message` is about an option expand_config took from
// the config file, else "".
std::string config_note(const std::string& message);

}  // namespace krill::cli
