// ImageDataset (in-memory or file-backed pixels, transforms, subsets), labelled image
// directories decoded with stb_image, and open_image_data() (the CLI's --data SPEC).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "krill/data/image.hpp"
#include "krill/tensor/generator.hpp"
#include "krill/util/error.hpp"

// The one stb_image implementation in krill (libkrill exports the stbi_* functions: other krill
// sources include <stb/stb_image.h> without defining STB_IMAGE_IMPLEMENTATION).
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace fs = std::filesystem;

namespace krill::data {

// ---- where the pixels live ----

class ImageSource {
 public:
  std::string source;
  std::vector<std::int64_t> labels;
  std::int64_t channels = 0, height = 0, width = 0;  // height/width 0: sizes differ
  // in memory
  Tensor pixels;  // uint8 [N, C, H, W]
  // on file
  std::vector<std::string> files;
  std::vector<std::int64_t> heights, widths;
  bool cached = false;
  mutable std::unique_ptr<std::atomic<std::uint8_t>[]> state;  // 0: not decoded, 1: being stored, 2: ready
  mutable std::vector<std::unique_ptr<std::uint8_t[]>> cache;
  std::string size_error;  // set when sizes differ: what a Resize must fix

  std::int64_t count() const { return static_cast<std::int64_t>(labels.size()); }
  std::int64_t image_height(std::int64_t i) const { return pixels.defined() ? height : heights[i]; }
  std::int64_t image_width(std::int64_t i) const { return pixels.defined() ? width : widths[i]; }

  // Image i as uint8 [C, h, w]: in memory, in the cache, or decoded into `scratch`.
  const std::uint8_t* image(std::int64_t i, std::vector<std::uint8_t>& scratch) const {
    if (pixels.defined()) return pixels.data_ptr<std::uint8_t>() + i * channels * height * width;
    if (cached && state[i].load(std::memory_order_acquire) == 2) return cache[i].get();
    const std::size_t bytes = static_cast<std::size_t>(channels * heights[i] * widths[i]);
    scratch.resize(bytes);
    decode(i, scratch.data());
    if (cached) {
      std::uint8_t expected = 0;
      if (state[i].compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        cache[i].reset(new std::uint8_t[bytes]);
        std::memcpy(cache[i].get(), scratch.data(), bytes);
        state[i].store(2, std::memory_order_release);
      }
    }
    return scratch.data();
  }

  void decode(std::int64_t i, std::uint8_t* out) const {
    const std::string& path = files[i];
    int w = 0, h = 0, comp = 0;
    stbi_uc* data = stbi_load(path.c_str(), &w, &h, &comp, static_cast<int>(channels));
    if (!data) {
      const char* why = stbi_failure_reason();
      throw IOError(path + ": cannot decode the image (" + std::string(why ? why : "unknown reason") + ")");
    }
    if (h != heights[i] || w != widths[i]) {
      stbi_image_free(data);
      throw IOError(path + ": the image is now " + std::to_string(w) + "x" + std::to_string(h) + ", it was " +
                    std::to_string(widths[i]) + "x" + std::to_string(heights[i]) + " when the directory was opened");
    }
    const std::int64_t plane = static_cast<std::int64_t>(h) * w;
    for (std::int64_t c = 0; c < channels; ++c)
      for (std::int64_t p = 0; p < plane; ++p) out[c * plane + p] = data[p * channels + c];
    stbi_image_free(data);
  }
};

// ---- single images ----

Tensor read_image(const std::string& path, std::int64_t channels) {
  if (channels < 0 || channels == 2 || channels > 3)
    throw ValueError("read_image: channels must be 0 (as stored), 1 or 3, got " + std::to_string(channels));
  int w = 0, h = 0, comp = 0;
  if (!stbi_info(path.c_str(), &w, &h, &comp)) {
    const char* why = stbi_failure_reason();
    throw IOError(path + ": not a readable image (" + std::string(why ? why : "unknown reason") + ")");
  }
  const int c = channels ? static_cast<int>(channels) : (comp >= 3 ? 3 : 1);
  stbi_uc* data = stbi_load(path.c_str(), &w, &h, &comp, c);
  if (!data) {
    const char* why = stbi_failure_reason();
    throw IOError(path + ": cannot decode the image (" + std::string(why ? why : "unknown reason") + ")");
  }
  Tensor t = empty(Shape{c, h, w}, DType::UInt8);
  auto* out = t.data_ptr<std::uint8_t>();
  const std::int64_t plane = static_cast<std::int64_t>(h) * w;
  for (std::int64_t ch = 0; ch < c; ++ch)
    for (std::int64_t p = 0; p < plane; ++p) out[ch * plane + p] = data[p * c + ch];
  stbi_image_free(data);
  return t;
}

// ---- ImageDataset ----

static std::string shape_text(std::int64_t c, std::int64_t h, std::int64_t w) {
  return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

ImageDataset::ImageDataset(Tensor pixels, std::vector<std::int64_t> labels, std::vector<std::string> classes,
                           std::string source) {
  if (!pixels.defined() || pixels.dtype() != DType::UInt8 || pixels.ndim() != 4)
    throw ValueError("ImageDataset: pixels must be uint8 [N, C, H, W], got " +
                     (pixels.defined() ? std::string(dtype_name(pixels.dtype())) + " " + pixels.shape().str() : "none"));
  if (static_cast<std::int64_t>(labels.size()) != pixels.shape()[0])
    throw ShapeError("ImageDataset: " + std::to_string(pixels.shape()[0]) + " images but " +
                     std::to_string(labels.size()) + " labels");
  for (std::int64_t y : labels)
    if (y < 0 || y >= static_cast<std::int64_t>(classes.size()))
      throw ValueError("ImageDataset: label " + std::to_string(y) + " is outside the " +
                       std::to_string(classes.size()) + " classes");
  auto src = std::make_shared<ImageSource>();
  src->pixels = pixels.contiguous();
  src->labels = std::move(labels);
  src->channels = pixels.shape()[1], src->height = pixels.shape()[2], src->width = pixels.shape()[3];
  src->source = std::move(source);
  src_ = std::move(src);
  classes_ = std::move(classes);
  out_shape_ = transforms_.output_shape(channels(), height(), width());
}

ImageDataset::ImageDataset(std::vector<std::string> files, std::vector<std::int64_t> heights,
                           std::vector<std::int64_t> widths, std::int64_t channels, std::vector<std::int64_t> labels,
                           std::vector<std::string> classes, std::string source, std::size_t cache_bytes) {
  const std::size_t n = files.size();
  if (heights.size() != n || widths.size() != n || labels.size() != n)
    throw ValueError("ImageDataset: files, sizes and labels differ in length");
  if (channels != 1 && channels != 3) throw ValueError("ImageDataset: channels must be 1 or 3, got " + std::to_string(channels));
  auto src = std::make_shared<ImageSource>();
  src->channels = channels;
  std::size_t total = 0;
  for (std::size_t i = 0; i < n; ++i) total += static_cast<std::size_t>(channels * heights[i] * widths[i]);
  bool same = true;
  for (std::size_t i = 1; i < n; ++i) same = same && heights[i] == heights[0] && widths[i] == widths[0];
  if (n > 0 && same) {
    src->height = heights[0], src->width = widths[0];
  } else if (n > 0) {
    std::size_t k = 1;
    while (heights[k] == heights[0] && widths[k] == widths[0]) ++k;
    src->size_error = "the images of " + source + " have different sizes (" + files[0] + " is " +
                      std::to_string(widths[0]) + "x" + std::to_string(heights[0]) + ", " + files[k] + " is " +
                      std::to_string(widths[k]) + "x" + std::to_string(heights[k]) +
                      "): give a Resize transform to bring them to one size";
  }
  src->cached = total <= cache_bytes;
  if (src->cached) {
    src->state.reset(new std::atomic<std::uint8_t>[n]);
    for (std::size_t i = 0; i < n; ++i) src->state[i].store(0, std::memory_order_relaxed);
    src->cache.resize(n);
  }
  src->files = std::move(files), src->heights = std::move(heights), src->widths = std::move(widths);
  src->labels = std::move(labels);
  src->source = std::move(source);
  src_ = std::move(src);
  classes_ = std::move(classes);
  if (src_->size_error.empty()) out_shape_ = transforms_.output_shape(this->channels(), height(), width());
}

std::int64_t ImageDataset::size() const { return index_.empty() ? src_->count() : static_cast<std::int64_t>(index_.size()); }
std::int64_t ImageDataset::channels() const { return src_->channels; }
std::int64_t ImageDataset::height() const { return src_->height; }
std::int64_t ImageDataset::width() const { return src_->width; }
const std::string& ImageDataset::source() const { return src_->source; }
Tensor ImageDataset::pixels() const { return src_->pixels; }

std::int64_t ImageDataset::source_index(std::int64_t i) const {
  if (i < 0 || i >= size())
    throw IndexError("ImageDataset: image index " + std::to_string(i) + " is out of range for " +
                     std::to_string(size()) + " images of " + src_->source);
  return index_.empty() ? i : index_[static_cast<std::size_t>(i)];
}

std::int64_t ImageDataset::label(std::int64_t i) const { return src_->labels[static_cast<std::size_t>(source_index(i))]; }

std::vector<std::int64_t> ImageDataset::labels() const {
  if (index_.empty()) return src_->labels;
  std::vector<std::int64_t> out(index_.size());
  for (std::size_t i = 0; i < index_.size(); ++i) out[i] = src_->labels[static_cast<std::size_t>(index_[i])];
  return out;
}

Tensor ImageDataset::image(std::int64_t i) const {
  const std::int64_t s = source_index(i);
  std::vector<std::uint8_t> scratch;
  const std::int64_t h = src_->image_height(s), w = src_->image_width(s);
  const std::uint8_t* p = src_->image(s, scratch);
  Tensor t = empty(Shape{channels(), h, w}, DType::UInt8);
  std::memcpy(t.raw_data(), p, static_cast<std::size_t>(channels() * h * w));
  return t;
}

Shape ImageDataset::input_shape() const {
  if (out_shape_.ndim() == 0) throw InvalidDatasetError(src_->size_error);
  return out_shape_;
}

void ImageDataset::set_transforms(Transforms t) {
  if (!src_->size_error.empty() && !t.has_resize()) throw InvalidDatasetError(src_->size_error);
  // Any image's size will do when a Resize fixes it; output_shape() validates the rest.
  const std::int64_t h = height() ? height() : t.resize_height(), w = width() ? width() : t.resize_width();
  out_shape_ = t.output_shape(channels(), h, w);
  transforms_ = std::move(t);
}

std::shared_ptr<ImageDataset> ImageDataset::with_transforms(Transforms t) const {
  auto d = std::shared_ptr<ImageDataset>(new ImageDataset(*this));
  d->set_transforms(std::move(t));
  return d;
}

std::shared_ptr<ImageDataset> ImageDataset::subset(std::vector<std::int64_t> indices) const {
  for (auto& i : indices) i = source_index(i);
  auto d = std::shared_ptr<ImageDataset>(new ImageDataset(*this));
  d->index_ = std::move(indices);
  return d;
}

void ImageDataset::fill_batch(const std::int64_t* indices, std::int64_t n, std::uint64_t seed, void* input,
                              void* target) const {
  const Shape os = input_shape();
  const std::int64_t stride = os.numel(), c = channels();
  float* out = static_cast<float*>(input);
  auto* tg = static_cast<std::int64_t*>(target);
  thread_local std::vector<std::uint8_t> scratch;
  const ImageSource& src = *src_;
  for (std::int64_t j = 0; j < n; ++j) {
    const std::int64_t s = source_index(indices[j]);
    const std::uint8_t* p = src.image(s, scratch);
    transforms_.apply(p, c, src.image_height(s), src.image_width(s), mix_seed(seed, static_cast<std::uint64_t>(j)),
                      out + j * stride);
    if (tg) tg[j] = src.labels[static_cast<std::size_t>(s)];
  }
}

std::pair<std::vector<float>, std::vector<float>> ImageDataset::channel_stats(std::int64_t max_file_images) const {
  const std::int64_t n = size(), c = channels();
  std::int64_t take = n, step = 1;
  if (!src_->pixels.defined() && max_file_images > 0 && n > max_file_images)
    take = max_file_images, step = n / max_file_images;
  std::vector<double> sum(static_cast<std::size_t>(c)), sq(static_cast<std::size_t>(c));
  std::vector<std::int64_t> count(static_cast<std::size_t>(c));
  std::vector<std::uint8_t> scratch;
  for (std::int64_t k = 0; k < take; ++k) {
    const std::int64_t s = source_index(k * step);
    const std::uint8_t* p = src_->image(s, scratch);
    const std::int64_t hw = src_->image_height(s) * src_->image_width(s);
    for (std::int64_t ch = 0; ch < c; ++ch) {
      std::uint64_t a = 0, b = 0;  // exact integer sums per image
      for (std::int64_t i = 0; i < hw; ++i) {
        const std::uint64_t v = p[ch * hw + i];
        a += v, b += v * v;
      }
      sum[ch] += static_cast<double>(a), sq[ch] += static_cast<double>(b), count[ch] += hw;
    }
  }
  std::vector<float> mean(static_cast<std::size_t>(c)), std(static_cast<std::size_t>(c));
  for (std::int64_t ch = 0; ch < c; ++ch) {
    const double cnt = static_cast<double>(std::max<std::int64_t>(count[ch], 1));
    const double m = sum[ch] / cnt, var = std::max(0.0, sq[ch] / cnt - m * m);
    mean[ch] = static_cast<float>(m / 255.0);
    std[ch] = static_cast<float>(std::sqrt(var) / 255.0);
    if (std[ch] == 0.0f) std[ch] = 1.0f;  // constant images: leave the scale alone
  }
  return {mean, std};
}

std::string ImageDataset::describe() const {
  std::string shape = height() ? shape_text(channels(), height(), width()) : std::to_string(channels()) + "x(various sizes)";
  return src_->source + " (" + std::to_string(size()) + " images " + shape + ", " + std::to_string(num_classes()) +
         " classes)";
}

// ---- compatibility, splits ----

static std::string list_names(const std::vector<std::string>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size() && i < 10; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > 10) s += ", ... (" + std::to_string(v.size()) + " in all)";
  return s.empty() ? "none" : s;
}

static void check_same_classes(const std::string& train_name, const std::vector<std::string>& train,
                               const std::string& val_name, const std::vector<std::string>& val) {
  if (train == val) return;
  std::vector<std::string> only_train, only_val;
  const std::set<std::string> a(train.begin(), train.end()), b(val.begin(), val.end());
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_train));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_val));
  std::string msg = "training data " + train_name + " and validation data " + val_name + " have different classes";
  if (only_train.empty() && only_val.empty()) {
    msg += " (the same names in a different order)";
  } else {
    msg += ": only in training: " + list_names(only_train) + "; only in validation: " + list_names(only_val);
  }
  throw InvalidDatasetError(msg + ". Both need the same class folders (root/<class>/<image>.png)");
}

void check_compatible(const ImageDataset& train, const ImageDataset& validation) {
  check_same_classes(train.source(), train.classes(), validation.source(), validation.classes());
  if (train.channels() != validation.channels())
    throw InvalidDatasetError("training data " + train.source() + " has " + std::to_string(train.channels()) +
                              "-channel images, validation data " + validation.source() + " " +
                              std::to_string(validation.channels()) + "-channel ones");
  const Shape a = train.input_shape(), b = validation.input_shape();
  if (!(a == b))
    throw InvalidDatasetError("training data " + train.source() + " gives inputs " + a.str() + ", validation data " +
                              validation.source() + " " + b.str() + ": give a Resize transform to bring them to one size");
}

ImageData random_split(const ImageDataset& dataset, double validation_fraction, std::uint64_t seed) {
  if (!(validation_fraction > 0.0 && validation_fraction < 1.0))
    throw ValueError("random_split: the validation fraction must be in (0, 1), got " + std::to_string(validation_fraction));
  const std::int64_t n = dataset.size();
  const auto nv = static_cast<std::int64_t>(std::llround(validation_fraction * static_cast<double>(n)));
  if (nv < 1 || nv >= n)
    throw ValueError("random_split: " + std::to_string(n) + " images are too few to hold out " +
                     std::to_string(validation_fraction * 100) + "% for validation");
  Generator gen(seed);
  Tensor perm = randperm(n, &gen);
  const std::int64_t* p = perm.data_ptr<std::int64_t>();
  std::vector<std::int64_t> val(p, p + nv), train(p + nv, p + n);
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  return {dataset.subset(std::move(train)), dataset.subset(std::move(val))};
}

std::vector<std::string> numbered_classes(std::int64_t n) {
  std::vector<std::string> v;
  for (std::int64_t i = 0; i < n; ++i) v.push_back(std::to_string(i));
  return v;
}

// ---- image directories ----

static bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::set<std::string> known = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".ppm", ".pgm", ".pnm"};
  return known.count(ext) > 0;
}

static std::string layout_hint(const std::string& dir) {
  return "an image directory holds one folder per class with the images inside: " + dir + "/<class>/<image>.png (e.g. " +
         dir + "/cat/001.png, " + dir + "/dog/002.jpg)";
}

std::shared_ptr<ImageDataset> open_image_folder(const std::string& dir, const ImageDataOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IOError(dir + ": no such directory");
  std::vector<std::string> classes;
  std::size_t loose_images = 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    if (e.is_directory()) classes.push_back(name);
    else if (e.is_regular_file() && is_image_file(e.path())) ++loose_images;
  }
  if (ec) throw IOError(dir + ": cannot list the directory (" + ec.message() + ")");
  std::sort(classes.begin(), classes.end());
  if (classes.empty())
    throw NotLabeledDatasetError(dir + (loose_images ? " holds " + std::to_string(loose_images) + " images but no class folders"
                                                      : " holds no class folders") +
                                 ": " + layout_hint(dir));
  std::vector<std::string> files;
  std::vector<std::int64_t> heights, widths, labels;
  std::vector<std::string> empty_classes;
  bool any_color = false;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    const fs::path cdir = fs::path(dir) / classes[c];
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(cdir, ec))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.' && is_image_file(e.path()))
        found.push_back(e.path().string());
    if (ec) throw IOError(cdir.string() + ": cannot list the directory (" + ec.message() + ")");
    std::sort(found.begin(), found.end());
    if (found.empty()) empty_classes.push_back(classes[c]);
    for (auto& f : found) {
      int w = 0, h = 0, comp = 0;
      if (!stbi_info(f.c_str(), &w, &h, &comp)) {
        const char* why = stbi_failure_reason();
        throw IOError(f + ": not a readable image (" + std::string(why ? why : "unknown reason") + ")");
      }
      any_color = any_color || comp >= 3;
      files.push_back(std::move(f));
      heights.push_back(h), widths.push_back(w), labels.push_back(static_cast<std::int64_t>(c));
    }
  }
  if (!empty_classes.empty())
    throw NotLabeledDatasetError(dir + ": the class folder" + (empty_classes.size() > 1 ? "s " : " ") +
                                 list_names(empty_classes) + (empty_classes.size() > 1 ? " hold" : " holds") +
                                 " no images (.png, .jpg, .jpeg, .bmp, .gif, .tga, .ppm, .pgm); " + layout_hint(dir));
  return std::make_shared<ImageDataset>(std::move(files), std::move(heights), std::move(widths), any_color ? 3 : 1,
                                        std::move(labels), std::move(classes), dir, options.cache_bytes);
}

ImageData open_image_folders(const std::string& train_dir, const std::string& validation_dir,
                             const ImageDataOptions& options) {
  ImageData d;
  d.train = open_image_folder(train_dir, options);
  d.validation = open_image_folder(validation_dir, options);
  check_same_classes(train_dir, d.train->classes(), validation_dir, d.validation->classes());
  if (d.train->channels() != d.validation->channels()) {
    throw InvalidDatasetError("training images in " + train_dir + " have " + std::to_string(d.train->channels()) +
                              " channel(s), validation images in " + validation_dir + " " +
                              std::to_string(d.validation->channels()) + ": convert them to one format");
  }
  return d;
}

// ---- open_image_data ----

static bool has_class_folders(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_directory(p, ec)) return false;
  for (const auto& e : fs::directory_iterator(p, ec))
    if (e.is_directory() && e.path().filename().string()[0] != '.') return true;
  return false;
}

bool is_image_data_spec(const std::string& spec) {
  if (spec.rfind("synthetic:", 0) == 0) return true;
  std::error_code ec;
  return fs::is_directory(spec, ec);
}

ImageData open_image_data(const std::string& spec, const ImageDataOptions& options) {
  if (spec.rfind("synthetic:", 0) == 0) return synthetic_image_data(spec, options.seed);
  std::error_code ec;
  if (!fs::exists(spec, ec)) throw IOError(spec + ": no such file or directory");
  if (!fs::is_directory(spec, ec))
    throw IOError(spec + ": image data is a directory (IDX files, CIFAR-10 batches or root/<class>/<image>.png) or "
                         "synthetic:CxHxW:CLASSES[:N]");
  bool idx = false, cifar = false;
  for (const auto& e : fs::directory_iterator(spec, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (name.rfind("train-images", 0) == 0 || name.rfind("t10k-images", 0) == 0) idx = true;
    if (name.rfind("data_batch_", 0) == 0 && e.path().extension() == ".bin") cifar = true;
  }
  if (idx) return read_idx_dir(spec);
  if (cifar) return read_cifar10_dir(spec);
  const fs::path root(spec);
  if (has_class_folders(root / "train")) {
    for (const char* v : {"val", "validation", "test"})
      if (has_class_folders(root / v)) return open_image_folders((root / "train").string(), (root / v).string(), options);
  }
  ImageData d;
  d.train = open_image_folder(spec, options);
  return d;
}

}  // namespace krill::data
