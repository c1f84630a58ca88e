// How PyTorch prints module arguments (repr of Python floats and bools), shared by the layers'
// extra_repr() so that print(model) matches PyTorch's text.
#pragma once
#include <charconv>
#include <cmath>
#include <string>

namespace krill::nn::detail {

inline std::string py_bool(bool b) { return b ? "True" : "False"; }

// Python's repr(float): the shortest digits that round-trip, fixed notation for exponents in
// [-4, 16), else d.ddde+XX; integral values keep a ".0" (0.5, 1e-05, 0.0001, 1.0).
inline std::string py_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // e.g. "-1.25e-01"
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const auto e = sci.find('e');
  const int exp = std::stoi(sci.substr(e + 1));
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits += c;
  std::string out = sign;
  if (exp < -4 || exp >= 16) {
    out.append(digits, 0, 1);
    if (digits.size() > 1) out.append(".").append(digits, 1, std::string::npos);
    const std::string ex = std::to_string(exp < 0 ? -exp : exp);
    out.append(exp < 0 ? "e-" : "e+").append(ex.size() < 2 ? "0" : "").append(ex);
  } else if (exp < 0) {
    out.append("0.").append(static_cast<std::size_t>(-exp - 1), '0').append(digits);
  } else if (digits.size() <= static_cast<std::size_t>(exp) + 1) {
    out.append(digits).append(static_cast<std::size_t>(exp) + 1 - digits.size(), '0').append(".0");
  } else {
    const auto point = static_cast<std::size_t>(exp) + 1;
    out.append(digits, 0, point).append(".").append(digits, point, std::string::npos);
  }
  return out;
}

}  // namespace krill::nn::detail
