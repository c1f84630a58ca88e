// Image datasets: labelled image directories, MNIST-format IDX files, CIFAR-10 binary batches
// and synthetic images, all as one ImageDataset (a Dataset of float32 [C, H, W] inputs and
// int64 class indices).
//
//   image directory   root/<class>/<image>.png|jpg|jpeg|bmp|gif|tga|ppm|pgm (stb_image); classes
//                     are the sorted folder names. Decoded in the loader's workers the first
//                     time an image is read, then kept (decoded) in memory while the whole set
//                     fits in ImageDataOptions::cache_bytes.
//   IDX (MNIST)       a directory with train-images/train-labels (training) and
//                     t10k-images/t10k-labels (validation), gzip-compressed or not
//   CIFAR-10          a directory with data_batch_1..5.bin (training) and test_batch.bin
//   synthetic         synthetic:CxHxW:CLASSES[:N] - seeded random images (a class-dependent
//                     pattern plus noise, so a model can learn it), for throughput tests
//
// IDX, CIFAR and synthetic pixels are loaded at open into one uint8 [N, C, H, W] tensor.
// Errors: NotLabeledDatasetError (no class folders, or a class folder without images),
// InvalidDatasetError (training and validation with different classes or image shapes),
// IOError naming the file for unreadable or malformed files.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "krill/data/dataset.hpp"
#include "krill/data/transforms.hpp"

namespace krill::data {

class ImageSource;  // where the pixels live (memory or files): image_dataset.cpp

class ImageDataset final : public Dataset {
 public:
  // In-memory images: `pixels` uint8 [N, C, H, W], labels in [0, classes.size()). `source`
  // names where they came from (for messages and `describe()`).
  ImageDataset(Tensor pixels, std::vector<std::int64_t> labels, std::vector<std::string> classes, std::string source);
  // Image files, decoded on demand into `channels` channels (1 or 3). Sizes may differ; then a
  // Resize transform is required. `heights`/`widths`: each file's size (from its header).
  ImageDataset(std::vector<std::string> files, std::vector<std::int64_t> heights, std::vector<std::int64_t> widths,
               std::int64_t channels, std::vector<std::int64_t> labels, std::vector<std::string> classes,
               std::string source, std::size_t cache_bytes);

  // Dataset
  std::int64_t size() const override;
  Shape input_shape() const override;  // after the transforms
  void fill_batch(const std::int64_t* indices, std::int64_t n, std::uint64_t seed, void* input,
                  void* target) const override;

  // The source images: channels, and height/width (0 when the images' sizes differ).
  std::int64_t channels() const;
  std::int64_t height() const;
  std::int64_t width() const;
  const std::vector<std::string>& classes() const { return classes_; }
  std::int64_t num_classes() const { return static_cast<std::int64_t>(classes_.size()); }
  std::int64_t label(std::int64_t i) const;
  std::vector<std::int64_t> labels() const;
  const std::string& source() const;
  // uint8 [N, C, H, W] for in-memory datasets (a subset's parent tensor), else undefined.
  Tensor pixels() const;
  // Image i (after the subset mapping) as uint8 [C, H, W] (decoded if on file).
  Tensor image(std::int64_t i) const;

  // Transforms: validated against the images (mean/std per channel, crop size, a Resize for
  // images of different sizes) and applied in fill_batch. with_transforms() shares the pixels.
  void set_transforms(Transforms t);
  const Transforms& transforms() const { return transforms_; }
  std::shared_ptr<ImageDataset> with_transforms(Transforms t) const;
  // The images at `indices` (sharing the pixels), e.g. a validation split.
  std::shared_ptr<ImageDataset> subset(std::vector<std::int64_t> indices) const;

  // Per-channel mean and standard deviation of pixel / 255 over the images (in memory: all of
  // them; on file: at most `max_file_images`, evenly spaced), for Transforms::normalize.
  // Fashion-MNIST's training set gives 0.2860 and 0.3530.
  std::pair<std::vector<float>, std::vector<float>> channel_stats(std::int64_t max_file_images = 2048) const;

  // "fashion-mnist train (60000 images 1x28x28, 10 classes)"
  std::string describe() const;

 private:
  ImageDataset() = default;
  std::int64_t source_index(std::int64_t i) const;
  std::shared_ptr<const ImageSource> src_;
  std::vector<std::int64_t> index_;  // subset: position -> source image; empty: identity
  std::vector<std::string> classes_;
  Transforms transforms_;
  Shape out_shape_;  // [C, H', W'] after transforms
};

// Training and validation sets (validation null when the source has none).
struct ImageData {
  std::shared_ptr<ImageDataset> train;
  std::shared_ptr<ImageDataset> validation;
};

struct ImageDataOptions {
  std::uint64_t seed = 0;                         // synthetic images
  std::size_t cache_bytes = std::size_t{2} << 30;  // image directories: decoded-image cache limit
  ImageDataOptions& set_seed(std::uint64_t v) { seed = v; return *this; }
  ImageDataOptions& set_cache_bytes(std::size_t v) { cache_bytes = v; return *this; }
};

// True when `spec` names image data open_image_data() reads: "synthetic:...", or a directory
// (CSV files and other plain files are tabular data).
bool is_image_data_spec(const std::string& spec);

// The CLI's entry point (`krill train --data SPEC`):
//   synthetic:CxHxW:CLASSES[:N]    N training images (default 1024), N/4 (at least 1) validation
//   DIR with train-*/t10k-* IDX     IDX training and validation
//   DIR with data_batch_*.bin       CIFAR-10 (validation: test_batch.bin, when present)
//   DIR with train/ and val/ (or validation/, test/) holding class folders: the pair form
//   DIR with class folders          an image directory, validation null (see random_split)
ImageData open_image_data(const std::string& spec, const ImageDataOptions& options = {});

// root/<class>/<image>: classes are the sorted sub-folder names.
std::shared_ptr<ImageDataset> open_image_folder(const std::string& dir, const ImageDataOptions& options = {});
// Two image directories that must hold the same classes (else InvalidDatasetError naming the
// classes found in only one of them).
ImageData open_image_folders(const std::string& train_dir, const std::string& validation_dir,
                             const ImageDataOptions& options = {});
// Checks that two datasets can train/validate together (same classes, same channels, and the
// same image size unless a Resize is set): InvalidDatasetError otherwise.
void check_compatible(const ImageDataset& train, const ImageDataset& validation);

// One IDX image file (magic 0x00000803, uint8 [N, H, W]) with its IDX label file (0x00000801).
std::shared_ptr<ImageDataset> read_idx(const std::string& images_path, const std::string& labels_path,
                                       std::vector<std::string> classes = {});
ImageData read_idx_dir(const std::string& dir);
// CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32).
std::shared_ptr<ImageDataset> read_cifar_batches(const std::vector<std::string>& files,
                                                 std::vector<std::string> classes = {});
ImageData read_cifar10_dir(const std::string& dir);
// synthetic:CxHxW:CLASSES[:N]
ImageData synthetic_image_data(const std::string& spec, std::uint64_t seed = 0);

// Splits a dataset at random (seeded) into (train, validation) with round(fraction * N)
// validation images.
ImageData random_split(const ImageDataset& dataset, double validation_fraction, std::uint64_t seed);

// One image file (PNG, JPG, BMP, GIF, TGA, PNM: stb_image) as uint8 [C, H, W]; channels 0:
// as stored (gray or gray+alpha -> 1, RGB or RGBA -> 3), else 1 or 3 (converted). IOError naming
// the file and stb's reason when it cannot be read.
Tensor read_image(const std::string& path, std::int64_t channels = 0);

// Class names known for a data set: Fashion-MNIST's and CIFAR-10's, else "0".."n-1".
std::vector<std::string> fashion_mnist_classes();
std::vector<std::string> cifar10_classes();
std::vector<std::string> numbered_classes(std::int64_t n);

}  // namespace krill::data
