// TOML config files for `krill train --config FILE`: every key is an option name without the
// leading "--"; options given on the command line win over the file.
#pragma once
#include <string>
#include <vector>

namespace krill::cli {

struct ConfigEntry {
  std::string key;                  // "label", "hidden", "shuffle", "data" ...
  std::vector<std::string> values;  // one per array item; booleans are "true"/"false"
  bool is_bool = false;
  int line = 0;                     // where it was set, for messages
};

// Parses a TOML file (toml++). Nested tables are refused (there are none in krill's options).
// Throws ValueError naming the file, line and problem.
std::vector<ConfigEntry> read_config_file(const std::string& path);

}  // namespace krill::cli
