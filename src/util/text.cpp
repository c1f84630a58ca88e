#include "krill/util/text.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <limits>

namespace krill::text {

std::string_view trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string show_value(std::string_view v) {
  constexpr std::size_t kMax = 60;
  std::string out = "'";
  std::size_t n = std::min(v.size(), kMax);
  for (std::size_t i = 0; i < n; ++i) {
    char c = v[i];
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", static_cast<unsigned char>(c));
      out += b;
    } else out += c;
  }
  out += "'";
  if (v.size() > kMax) out += "... (" + std::to_string(v.size()) + " characters)";
  return out;
}

std::string shell_arg(const std::string& name) {
  bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
  if (plain) return name;
  std::string q = "'";
  for (char c : name) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

std::string lower_alnum(std::string_view s) {
  std::string out;
  for (char c : s)
    if (std::isalnum(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (std::tolower(static_cast<unsigned char>(a[i - 1])) !=
                                       std::tolower(static_cast<unsigned char>(b[j - 1])));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_name(std::string_view name, const std::vector<std::string>& candidates) {
  std::string key = lower_alnum(name);
  // Same letters and digits (case, spaces, punctuation differ): "body mass" vs "Body Mass".
  for (const auto& c : candidates)
    if (!key.empty() && lower_alnum(c) == key) return c;
  std::string best;
  std::size_t best_d = std::numeric_limits<std::size_t>::max();
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(name, c);
    if (d < best_d) best_d = d, best = c;
  }
  std::size_t limit = std::max<std::size_t>(2, name.size() / 3);
  if (!best.empty() && best_d <= limit) return best;
  // "BodyMass" vs "Body Mass (g)": one name's letters contain the other's.
  if (key.size() >= 3)
    for (const auto& c : candidates) {
      std::string k = lower_alnum(c);
      if (k.size() >= 3 && (k.find(key) != std::string::npos || key.find(k) != std::string::npos)) return c;
    }
  return "";
}

}  // namespace krill::text
