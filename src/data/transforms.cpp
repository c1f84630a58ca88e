#include "krill/data/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "krill/data/dataset.hpp"
#include "krill/util/error.hpp"

namespace krill::data {
namespace {

// splitmix64: the stream of one image's random choices.
struct SampleRng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform integer in [0, n) (n > 0): Lemire's multiply-shift on 32 random bits.
  std::int64_t below(std::int64_t n) {
    return static_cast<std::int64_t>(((next() >> 32) * static_cast<std::uint64_t>(n)) >> 32);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

std::string join(const std::vector<float>& v) {
  std::ostringstream s;
  s << "[";
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
  return s.str() + "]";
}

float channel_value(const std::vector<float>& v, std::int64_t c, float fallback) {
  if (v.empty()) return fallback;
  return v.size() == 1 ? v[0] : v[static_cast<std::size_t>(c)];
}

// Bilinear resize of one float plane, PyTorch's upsample_bilinear2d (align_corners=False,
// sizes given, no antialias): src = (dst + 0.5) * in/out - 0.5, clamped at 0.
struct AxisTable {
  std::vector<std::int64_t> i0, i1;
  std::vector<float> l0, l1;
  void build(std::int64_t in, std::int64_t out) {
    i0.resize(out), i1.resize(out), l0.resize(out), l1.resize(out);
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    for (std::int64_t d = 0; d < out; ++d) {
      float src = scale * (static_cast<float>(d) + 0.5f) - 0.5f;
      if (src < 0) src = 0;
      const auto lo = static_cast<std::int64_t>(src);
      const std::int64_t step = lo < in - 1 ? 1 : 0;
      const float lambda = src - static_cast<float>(lo);
      i0[d] = lo, i1[d] = lo + step, l1[d] = lambda, l0[d] = 1.0f - lambda;
    }
  }
};

struct Scratch {
  std::vector<float> plane;    // the source as float / 255
  std::vector<float> resized;  // after Resize
  AxisTable rows, cols;
  std::int64_t rows_in = -1, rows_out = -1, cols_in = -1, cols_out = -1;
};
thread_local Scratch t_scratch;

}  // namespace

Transforms& Transforms::resize(std::int64_t height, std::int64_t width) {
  if (height <= 0 || width <= 0)
    throw ValueError("Resize: the size must be positive, got " + std::to_string(height) + "x" + std::to_string(width));
  resize_h_ = height, resize_w_ = width;
  return *this;
}

Transforms& Transforms::random_crop(std::int64_t height, std::int64_t width, std::int64_t padding) {
  if (height <= 0 || width <= 0)
    throw ValueError("RandomCrop: the size must be positive, got " + std::to_string(height) + "x" + std::to_string(width));
  if (padding < 0) throw ValueError("RandomCrop: padding must be >= 0, got " + std::to_string(padding));
  crop_h_ = height, crop_w_ = width, padding_ = padding, center_ = false;
  return *this;
}

Transforms& Transforms::random_horizontal_flip(double p) {
  if (!(p >= 0.0 && p <= 1.0)) throw ValueError("RandomHorizontalFlip: p must be in [0, 1], got " + std::to_string(p));
  flip_p_ = p;
  return *this;
}

Transforms& Transforms::normalize(std::vector<float> mean, std::vector<float> std) {
  if (mean.empty() || mean.size() != std.size())
    throw ValueError("Normalize: mean and std need the same number of values (one per channel), got " +
                     std::to_string(mean.size()) + " and " + std::to_string(std.size()));
  for (float s : std)
    if (s == 0.0f || !std::isfinite(s)) throw ValueError("Normalize: std values must be finite and non-zero, got " + join(std));
  mean_ = std::move(mean), std_ = std::move(std);
  return *this;
}

Transforms Transforms::deterministic() const {
  Transforms t = *this;
  t.flip_p_ = 0.0;
  if (t.crop_h_ > 0) t.center_ = true, t.padding_ = 0;
  return t;
}

Shape Transforms::output_shape(std::int64_t channels, std::int64_t height, std::int64_t width) const {
  if (!mean_.empty() && mean_.size() != 1 && static_cast<std::int64_t>(mean_.size()) != channels)
    throw ValueError("Normalize: " + std::to_string(mean_.size()) + " mean/std values for images with " +
                     std::to_string(channels) + " channel" + (channels == 1 ? "" : "s") +
                     " (give one value per channel, or one for all)");
  std::int64_t h = resize_h_ > 0 ? resize_h_ : height, w = resize_w_ > 0 ? resize_w_ : width;
  if (crop_h_ > 0) {
    if (crop_h_ > h + 2 * padding_ || crop_w_ > w + 2 * padding_)
      throw ValueError((center_ ? "CenterCrop: " : "RandomCrop: ") + std::string("the crop ") + std::to_string(crop_h_) +
                       "x" + std::to_string(crop_w_) + " is larger than the " + (padding_ ? "padded " : "") + "image " +
                       std::to_string(h + 2 * padding_) + "x" + std::to_string(w + 2 * padding_));
    h = crop_h_, w = crop_w_;
  }
  return Shape{channels, h, w};
}

Transforms::Draw Transforms::draw(std::uint64_t sample_seed, std::int64_t height, std::int64_t width) const {
  Draw d;
  SampleRng rng{sample_seed};
  if (crop_h_ > 0) {
    const std::int64_t room_h = height + 2 * padding_ - crop_h_, room_w = width + 2 * padding_ - crop_w_;
    if (center_) {
      // torchvision center_crop: int(round((h - th) / 2.0)), round half to even
      d.top = static_cast<std::int64_t>(std::nearbyint(static_cast<double>(room_h) / 2.0));
      d.left = static_cast<std::int64_t>(std::nearbyint(static_cast<double>(room_w) / 2.0));
    } else {
      d.top = rng.below(room_h + 1);
      d.left = rng.below(room_w + 1);
    }
  }
  if (flip_p_ > 0) d.flip = rng.uniform() < flip_p_;
  return d;
}

void Transforms::apply(const std::uint8_t* src, std::int64_t channels, std::int64_t height, std::int64_t width,
                       std::uint64_t sample_seed, float* out) const {
  const Shape os = output_shape(channels, height, width);
  const std::int64_t oh = os[1], ow = os[2];
  Scratch& s = t_scratch;
  const bool resizing = resize_h_ > 0 && (resize_h_ != height || resize_w_ != width);

  if (!resizing) {
    // uint8 source: (float(u) / 255 - mean) / std, exactly as torchvision's ToTensor +
    // Normalize compute it (without Normalize mean 0 and std 1 leave u / 255 unchanged, bit for
    // bit). The loops over contiguous runs vectorise (IEEE division is exact in SIMD too).
    const Draw d = draw(sample_seed, height, width);
    for (std::int64_t c = 0; c < channels; ++c) {
      const float m = channel_value(mean_, c, 0.0f), sd = channel_value(std_, c, 1.0f);
      const std::uint8_t* plane = src + c * height * width;
      float* o = out + c * oh * ow;
      if (crop_h_ == 0 && !d.flip) {
        const std::int64_t n = height * width;
        for (std::int64_t i = 0; i < n; ++i) o[i] = (static_cast<float>(plane[i]) / 255.0f - m) / sd;
        continue;
      }
      const float pad_value = (0.0f - m) / sd;
      const std::int64_t shift = d.left - padding_;
      // output columns [x0, x1) read the image: sx = x + shift, or ow - 1 - x + shift flipped
      std::int64_t x0, x1;
      if (!d.flip) {
        x0 = std::max<std::int64_t>(0, -shift), x1 = std::min<std::int64_t>(ow, width - shift);
      } else {
        x0 = std::max<std::int64_t>(0, ow - width + shift), x1 = std::min<std::int64_t>(ow, ow + shift);
      }
      x1 = std::max(x1, x0);
      for (std::int64_t y = 0; y < oh; ++y, o += ow) {
        const std::int64_t sy = y + d.top - padding_;
        if (sy < 0 || sy >= height) {
          std::fill(o, o + ow, pad_value);
          continue;
        }
        const std::uint8_t* row = plane + sy * width;
        std::fill(o, o + x0, pad_value);
        if (!d.flip) {
          for (std::int64_t x = x0; x < x1; ++x) o[x] = (static_cast<float>(row[x + shift]) / 255.0f - m) / sd;
        } else {
          const std::int64_t last = ow - 1 + shift;
          for (std::int64_t x = x0; x < x1; ++x) o[x] = (static_cast<float>(row[last - x]) / 255.0f - m) / sd;
        }
        std::fill(o + x1, o + ow, pad_value);
      }
    }
    return;
  }

  // Resize: source / 255 as float, bilinear into resize_h_ x resize_w_, then crop/flip and
  // normalise (x - mean) / std.
  const std::int64_t rh = resize_h_, rw = resize_w_;
  s.plane.resize(static_cast<std::size_t>(height * width));
  s.resized.resize(static_cast<std::size_t>(rh * rw));
  if (s.rows_in != height || s.rows_out != rh) s.rows.build(height, rh), s.rows_in = height, s.rows_out = rh;
  if (s.cols_in != width || s.cols_out != rw) s.cols.build(width, rw), s.cols_in = width, s.cols_out = rw;
  const Draw d = draw(sample_seed, rh, rw);
  for (std::int64_t c = 0; c < channels; ++c) {
    const std::uint8_t* plane = src + c * height * width;
    for (std::int64_t i = 0; i < height * width; ++i) s.plane[i] = static_cast<float>(plane[i]) / 255.0f;
    for (std::int64_t y = 0; y < rh; ++y) {
      const float* r0 = s.plane.data() + s.rows.i0[y] * width;
      const float* r1 = s.plane.data() + s.rows.i1[y] * width;
      const float h0 = s.rows.l0[y], h1 = s.rows.l1[y];
      float* o = s.resized.data() + y * rw;
      for (std::int64_t x = 0; x < rw; ++x) {
        const std::int64_t a = s.cols.i0[x], b = s.cols.i1[x];
        const float w0 = s.cols.l0[x], w1 = s.cols.l1[x];
        o[x] = h0 * (w0 * r0[a] + w1 * r0[b]) + h1 * (w0 * r1[a] + w1 * r1[b]);
      }
    }
    const bool norm = !mean_.empty();
    const float m = channel_value(mean_, c, 0.0f), sd = channel_value(std_, c, 1.0f);
    const float pad_value = norm ? (0.0f - m) / sd : 0.0f;
    float* o = out + c * oh * ow;
    for (std::int64_t y = 0; y < oh; ++y, o += ow) {
      const std::int64_t sy = crop_h_ ? y + d.top - padding_ : y;
      for (std::int64_t x = 0; x < ow; ++x) {
        const std::int64_t xx = d.flip ? ow - 1 - x : x;
        const std::int64_t sx = crop_h_ ? xx + d.left - padding_ : xx;
        if (sy < 0 || sy >= rh || sx < 0 || sx >= rw) {
          o[x] = pad_value;
        } else {
          const float v = s.resized[sy * rw + sx];
          o[x] = norm ? (v - m) / sd : v;
        }
      }
    }
  }
}

std::string Transforms::str() const {
  std::ostringstream s;
  if (resize_h_ > 0) s << "Resize(" << resize_h_ << ", " << resize_w_ << ") -> ";
  if (crop_h_ > 0) {
    s << (center_ ? "CenterCrop(" : "RandomCrop(") << crop_h_;
    if (crop_w_ != crop_h_) s << ", " << crop_w_;
    if (padding_) s << ", padding=" << padding_;
    s << ") -> ";
  }
  if (flip_p_ > 0) s << "RandomHorizontalFlip(p=" << flip_p_ << ") -> ";
  s << "ToTensor";
  if (!mean_.empty()) s << " -> Normalize(mean=" << join(mean_) << ", std=" << join(std_) << ")";
  return s.str();
}

}  // namespace krill::data
