#include "config_file.hpp"

#include <toml++/toml.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "krill/util/error.hpp"

namespace krill::cli {
namespace {

std::string scalar_text(const toml::node& n, const std::string& path, const std::string& key, bool* is_bool) {
  if (auto v = n.value<bool>(); n.is_boolean()) {
    *is_bool = true;
    return *v ? "true" : "false";
  }
  if (n.is_integer()) return std::to_string(*n.value<std::int64_t>());
  if (n.is_floating_point()) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *n.value<double>());  // shortest round trip
    return std::string(buf, end);
  }
  if (n.is_string()) return *n.value<std::string>();
  throw ValueError(path + " line " + std::to_string(n.source().begin.line) + ": '" + key +
                   "' must be a string, number, boolean or array of those");
}

}  // namespace

std::vector<ConfigEntry> read_config_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw ValueError("--config " + path + ": no such file");
  if (std::filesystem::is_directory(path, ec)) throw ValueError("--config " + path + " is a directory, not a TOML file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ValueError("--config " + path + ": cannot read: " + std::strerror(errno));
  std::stringstream text;
  text << f.rdbuf();
  if (f.bad()) throw ValueError("--config " + path + ": cannot read: " + std::strerror(errno));
  toml::table tbl;
  try {
    tbl = toml::parse(text.str(), path);
  } catch (const toml::parse_error& e) {
    throw ValueError("--config " + path + " line " + std::to_string(e.source().begin.line) + ": " +
                     std::string(e.description()));
  }
  std::vector<ConfigEntry> out;
  for (const auto& [k, node] : tbl) {
    ConfigEntry e;
    e.key = std::string(k.str());
    e.line = static_cast<int>(node.source().begin.line);
    if (node.is_table() && node.as_table()->is_inline())
      throw ValueError("--config " + path + " line " + std::to_string(e.line) + ": '" + e.key +
                       "' is a table; give a string, number, boolean or array (e.g. hidden = [10, 10])");
    if (node.is_table())
      throw ValueError("--config " + path + " line " + std::to_string(e.line) + ": [" + e.key +
                       "] sections are not used; write the options at the top level (e.g. label = \"Species\")");
    if (const toml::array* arr = node.as_array()) {
      for (const auto& item : *arr) e.values.push_back(scalar_text(item, "--config " + path, e.key, &e.is_bool));
    } else {
      e.values.push_back(scalar_text(node, "--config " + path, e.key, &e.is_bool));
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace krill::cli
