// Small text helpers for messages: trimming, quoting values and names, "did you mean" lookups.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace krill::text {

inline bool is_space(char c) { return c == ' ' || c == '\t'; }
// Without leading and trailing spaces and tabs.
std::string_view trim(std::string_view s);
// A value as shown in messages: quoted, control characters escaped, long values shortened.
std::string show_value(std::string_view v);
// A name as a command-line argument: quoted when it contains shell-special characters.
std::string shell_arg(const std::string& name);
// Letters and digits only, lower case ("Body Mass (g)" -> "bodymassg").
std::string lower_alnum(std::string_view s);
// Levenshtein distance, ignoring case.
std::size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `name` (same letters; small edit distance; one contains the
// other), or "" when nothing is close.
std::string closest_name(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace krill::text
