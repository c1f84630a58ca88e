// Image transforms: uint8 [C, H, W] images -> float32 [C, H', W'] model inputs.
//
// One fixed pipeline, in torchvision's usual order, fused into a single pass per image:
//
//   Resize(h, w)              bilinear, align_corners=False, no antialias: the values of
//                             torch.nn.functional.interpolate(x / 255, (h, w), mode="bilinear"),
//                             kept in float (never rounded back to uint8)
//   RandomCrop(size, padding) torchvision semantics: zero padding on every side, then a crop at
//                             a uniformly drawn position (evaluation: a centre crop, no padding)
//   RandomHorizontalFlip(p)   flips with probability p (evaluation: never)
//   ToTensor + Normalize      x / 255, then (x - mean[c]) / std[c], in float32 exactly as
//                             torchvision computes it
//
// Every stage is optional; the default is ToTensor alone. The random draws of one image come
// from its own seed (Dataset::fill_batch gives sample i of a batch mix_seed(batch_seed, i)), so
// results do not depend on thread count or batch composition.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "krill/tensor/shape.hpp"

namespace krill::data {

class Transforms {
 public:
  Transforms() = default;

  // Builder (PyTorch-like names). Sizes must be positive, padding >= 0, 0 <= p <= 1.
  Transforms& resize(std::int64_t height, std::int64_t width);
  Transforms& random_crop(std::int64_t size, std::int64_t padding = 0) { return random_crop(size, size, padding); }
  Transforms& random_crop(std::int64_t height, std::int64_t width, std::int64_t padding);
  Transforms& random_horizontal_flip(double p = 0.5);
  // One value per channel, or one value for all channels; std values must be non-zero.
  Transforms& normalize(std::vector<float> mean, std::vector<float> std);

  // The same pipeline without randomness, for evaluation: the crop becomes a centre crop of the
  // same size (no padding), the flip goes.
  Transforms deterministic() const;
  bool is_random() const { return (crop_h_ > 0 && !center_) || flip_p_ > 0; }

  bool has_resize() const { return resize_h_ > 0; }
  std::int64_t resize_height() const { return resize_h_; }
  std::int64_t resize_width() const { return resize_w_; }
  bool has_crop() const { return crop_h_ > 0; }
  std::int64_t crop_height() const { return crop_h_; }
  std::int64_t crop_width() const { return crop_w_; }
  std::int64_t padding() const { return padding_; }
  double flip_probability() const { return flip_p_; }
  const std::vector<float>& mean() const { return mean_; }
  const std::vector<float>& std() const { return std_; }

  // The output [C, H', W'] for a C x H x W source; throws ValueError when the pipeline cannot
  // take it (a crop larger than the padded image, mean/std with the wrong channel count).
  Shape output_shape(std::int64_t channels, std::int64_t height, std::int64_t width) const;

  // The random choices for one image (after resize, before padding: the image is height x width).
  struct Draw {
    std::int64_t top = 0, left = 0;  // crop origin in the padded image
    bool flip = false;
  };
  Draw draw(std::uint64_t sample_seed, std::int64_t height, std::int64_t width) const;

  // Transforms one image: `src` uint8 [channels, height, width] contiguous -> `out` float32
  // [output_shape(...)] contiguous. Thread-safe (scratch memory is per thread).
  void apply(const std::uint8_t* src, std::int64_t channels, std::int64_t height, std::int64_t width,
             std::uint64_t sample_seed, float* out) const;

  // "Resize(32, 32) -> RandomCrop(32, padding=4) -> RandomHorizontalFlip(p=0.5) -> ToTensor ->
  // Normalize(mean=[...], std=[...])"
  std::string str() const;

 private:
  std::int64_t resize_h_ = 0, resize_w_ = 0;
  std::int64_t crop_h_ = 0, crop_w_ = 0, padding_ = 0;
  bool center_ = false;  // deterministic(): centre crop
  double flip_p_ = 0.0;
  std::vector<float> mean_, std_;
};

}  // namespace krill::data
