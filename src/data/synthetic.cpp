// synthetic:CxHxW:CLASSES[:N] - seeded random images for throughput tests. Each class has a
// random template; an image is the average of its class's template and uniform noise, so the
// classes can be learnt (a smoke test of a training loop) while the data costs nothing to load.
#include <algorithm>
#include <charconv>
#include <cstring>

#include "krill/data/image.hpp"
#include "krill/util/error.hpp"

namespace krill::data {
namespace {

constexpr std::int64_t kDefaultCount = 1024;

struct SplitMix {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  void bytes(std::uint8_t* out, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const std::uint64_t v = next();
      std::memcpy(out + i, &v, 8);
    }
    if (i < n) {
      const std::uint64_t v = next();
      std::memcpy(out + i, &v, static_cast<std::size_t>(n - i));
    }
  }
};

[[noreturn]] void bad_spec(const std::string& spec, const std::string& why) {
  throw ValueError("synthetic data '" + spec + "': " + why +
                   "; the form is synthetic:CxHxW:CLASSES[:N], e.g. synthetic:3x32x32:10 or synthetic:1x28x28:10:60000");
}

std::int64_t parse_positive(const std::string& spec, const std::string& text, const char* what) {
  std::int64_t v = 0;
  const char* end = text.data() + text.size();
  auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != end || v <= 0)
    bad_spec(spec, std::string(what) + " must be a positive integer, got '" + text + "'");
  return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

std::shared_ptr<ImageDataset> generate(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
                                       const std::vector<std::uint8_t>& templates, std::int64_t classes,
                                       std::uint64_t seed, std::string name) {
  const std::int64_t px = c * h * w;
  SplitMix rng{seed};
  Tensor pixels = empty(Shape{n, c, h, w}, DType::UInt8);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  auto* out = pixels.data_ptr<std::uint8_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto y = static_cast<std::int64_t>(((rng.next() >> 32) * static_cast<std::uint64_t>(classes)) >> 32);
    labels[static_cast<std::size_t>(i)] = y;
    std::uint8_t* img = out + i * px;
    rng.bytes(img, px);
    const std::uint8_t* t = templates.data() + y * px;
    for (std::int64_t p = 0; p < px; ++p) img[p] = static_cast<std::uint8_t>((img[p] + t[p] + 1) >> 1);
  }
  return std::make_shared<ImageDataset>(std::move(pixels), std::move(labels), numbered_classes(classes), std::move(name));
}

}  // namespace

ImageData synthetic_image_data(const std::string& spec, std::uint64_t seed) {
  if (spec.rfind("synthetic:", 0) != 0) bad_spec(spec, "it does not start with 'synthetic:'");
  const auto parts = split(spec.substr(10), ':');
  if (parts.size() < 2 || parts.size() > 3) bad_spec(spec, "expected 2 or 3 fields after 'synthetic:'");
  const auto dims = split(parts[0], 'x');
  if (dims.size() != 3) bad_spec(spec, "the image shape must be CxHxW, got '" + parts[0] + "'");
  const std::int64_t c = parse_positive(spec, dims[0], "C"), h = parse_positive(spec, dims[1], "H"),
                     w = parse_positive(spec, dims[2], "W");
  const std::int64_t classes = parse_positive(spec, parts[1], "CLASSES");
  const std::int64_t n = parts.size() == 3 ? parse_positive(spec, parts[2], "N") : kDefaultCount;
  if (c > 4) bad_spec(spec, "C (channels) must be at most 4, got " + std::to_string(c));
  if (classes < 2) bad_spec(spec, "CLASSES must be at least 2, got " + std::to_string(classes));
  const std::int64_t px = c * h * w;
  if (px > (std::int64_t{1} << 26) || n > (std::int64_t{1} << 40) / px)
    bad_spec(spec, "that is " + std::to_string(n) + " images of " + std::to_string(px) + " bytes: too large");

  SplitMix rng{seed ^ 0x5EEDC1A55E5ULL};
  std::vector<std::uint8_t> templates(static_cast<std::size_t>(classes * px));
  rng.bytes(templates.data(), classes * px);
  ImageData d;
  d.train = generate(n, c, h, w, templates, classes, rng.next(), spec + " train");
  d.validation = generate(std::max<std::int64_t>(1, n / 4), c, h, w, templates, classes, rng.next(), spec + " validation");
  return d;
}

}  // namespace krill::data
