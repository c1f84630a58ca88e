// MNIST-format IDX files (http://yann.lecun.com/exdb/mnist/): a big-endian header (magic
// 0x000008NN: uint8 data, NN dimensions; then one uint32 per dimension) and the data. Read
// through zlib's gzread, which takes gzip-compressed and plain files alike.
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "krill/data/image.hpp"
#include "krill/util/error.hpp"

namespace fs = std::filesystem;

namespace krill::data {
namespace {

class GzReader {
 public:
  explicit GzReader(std::string path) : path_(std::move(path)) {
    file_ = gzopen(path_.c_str(), "rb");
    if (!file_) throw IOError(path_ + ": cannot open (" + std::strerror(errno) + ")");
    gzbuffer(file_, 1 << 17);
  }
  ~GzReader() {
    if (file_) gzclose(file_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; returns how many. A damaged gzip stream is an IOError.
  std::size_t read(void* dst, std::size_t n) {
    std::size_t done = 0;
    auto* p = static_cast<char*>(dst);
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
      const int got = gzread(file_, p + done, chunk);
      if (got < 0) {
        int code = 0;
        const char* msg = gzerror(file_, &code);
        throw IOError(path_ + ": the gzip data is damaged (" + std::string(msg ? msg : "zlib error") + ")");
      }
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    if (done < n) {
      int code = 0;
      const char* msg = gzerror(file_, &code);
      if (code != Z_OK && code != Z_STREAM_END)
        throw IOError(path_ + ": the gzip data is damaged or cut short (" + std::string(msg ? msg : "zlib error") + ")");
    }
    return done;
  }
  bool at_end() {
    char c;
    return read(&c, 1) == 0;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

std::uint32_t big_endian(const unsigned char* b) {
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | b[3];
}

std::string hex(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

// Header: magic + dims. `what`: "image" (3 dims) or "label" (1 dim).
std::vector<std::int64_t> read_header(GzReader& in, int ndims, const char* what) {
  unsigned char b[4];
  if (in.read(b, 4) != 4) throw IOError(in.path() + ": truncated: the file ends inside the 4-byte IDX magic number");
  const std::uint32_t magic = big_endian(b);
  const std::uint32_t expected = 0x00000800u | static_cast<std::uint32_t>(ndims);
  if (magic != expected)
    throw IOError(in.path() + ": not an IDX " + what + " file: magic number " + hex(magic) + ", expected " + hex(expected) +
                  " (uint8 data, " + std::to_string(ndims) + " dimension" + (ndims > 1 ? "s" : "") + ")");
  std::vector<std::int64_t> dims;
  for (int i = 0; i < ndims; ++i) {
    if (in.read(b, 4) != 4) throw IOError(in.path() + ": truncated: the file ends inside the IDX header");
    dims.push_back(big_endian(b));
  }
  return dims;
}

void read_body(GzReader& in, void* dst, std::size_t bytes, const std::string& what) {
  const std::size_t got = in.read(dst, bytes);
  if (got != bytes)
    throw IOError(in.path() + ": truncated: " + what + " need " + std::to_string(bytes) +
                  " bytes after the header, the file has " + std::to_string(got));
  if (!in.at_end()) throw IOError(in.path() + ": size mismatch: more data follows the " + what + " the header announces");
}

Tensor load_images(const std::string& path) {
  GzReader in(path);
  const auto d = read_header(in, 3, "image");
  const std::int64_t n = d[0], h = d[1], w = d[2];
  if (h == 0 || w == 0) throw IOError(path + ": the IDX header gives images of " + std::to_string(h) + "x" + std::to_string(w));
  Tensor t = empty(Shape{n, 1, h, w}, DType::UInt8);
  read_body(in, t.raw_data(), static_cast<std::size_t>(n * h * w),
            std::to_string(n) + " images of " + std::to_string(h) + "x" + std::to_string(w));
  return t;
}

std::vector<std::int64_t> load_labels(const std::string& path) {
  GzReader in(path);
  const auto d = read_header(in, 1, "label");
  std::vector<std::uint8_t> raw(static_cast<std::size_t>(d[0]));
  read_body(in, raw.data(), raw.size(), std::to_string(d[0]) + " labels");
  return std::vector<std::int64_t>(raw.begin(), raw.end());
}

std::int64_t label_count(const std::vector<std::int64_t>& labels) {
  return labels.empty() ? 0 : *std::max_element(labels.begin(), labels.end()) + 1;
}

std::shared_ptr<ImageDataset> make(const std::string& images_path, const std::string& labels_path, Tensor pixels,
                                   std::vector<std::int64_t> labels, std::vector<std::string> classes,
                                   const std::string& name) {
  if (static_cast<std::int64_t>(labels.size()) != pixels.shape()[0])
    throw IOError(labels_path + ": size mismatch: " + std::to_string(labels.size()) + " labels for the " +
                  std::to_string(pixels.shape()[0]) + " images of " + images_path);
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= static_cast<std::int64_t>(classes.size()))
      throw IOError(labels_path + ": label " + std::to_string(labels[i]) + " of image " + std::to_string(i) +
                    " is outside the " + std::to_string(classes.size()) + " classes");
  return std::make_shared<ImageDataset>(std::move(pixels), std::move(labels), std::move(classes), name);
}

// The file of `dir` whose name starts with `prefix` (plain preferred over .gz); "" if none.
std::string find_file(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().filename().string().rfind(prefix, 0) == 0) found.push_back(e.path().string());
  std::sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) {
    const bool ga = a.size() > 3 && a.ends_with(".gz"), gb = b.size() > 3 && b.ends_with(".gz");
    return ga != gb ? !ga : a < b;
  });
  return found.empty() ? "" : found.front();
}

}  // namespace

std::vector<std::string> fashion_mnist_classes() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
}

std::shared_ptr<ImageDataset> read_idx(const std::string& images_path, const std::string& labels_path,
                                       std::vector<std::string> classes) {
  Tensor pixels = load_images(images_path);
  std::vector<std::int64_t> labels = load_labels(labels_path);
  if (classes.empty()) classes = numbered_classes(label_count(labels));
  return make(images_path, labels_path, std::move(pixels), std::move(labels), std::move(classes), images_path);
}

ImageData read_idx_dir(const std::string& dir) {
  const std::string name = fs::path(dir).lexically_normal().filename().string().empty()
                               ? fs::path(dir).lexically_normal().parent_path().filename().string()
                               : fs::path(dir).lexically_normal().filename().string();
  std::string lower = dir;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool fashion = lower.find("fashion") != std::string::npos;

  const std::string train_images = find_file(dir, "train-images"), train_labels = find_file(dir, "train-labels");
  const std::string test_images = find_file(dir, "t10k-images"), test_labels = find_file(dir, "t10k-labels");
  if (train_images.empty())
    throw IOError(dir + ": no train-images-idx3-ubyte[.gz] (an IDX directory holds train-images, train-labels, "
                        "t10k-images and t10k-labels)");
  if (train_labels.empty()) throw IOError(dir + ": " + train_images + " has no train-labels-idx1-ubyte[.gz] beside it");
  if (!test_images.empty() && test_labels.empty())
    throw IOError(dir + ": " + test_images + " has no t10k-labels-idx1-ubyte[.gz] beside it");

  Tensor train_px = load_images(train_images);
  std::vector<std::int64_t> train_y = load_labels(train_labels);
  Tensor test_px;
  std::vector<std::int64_t> test_y;
  if (!test_images.empty()) test_px = load_images(test_images), test_y = load_labels(test_labels);
  if (test_px.defined() && (test_px.shape()[2] != train_px.shape()[2] || test_px.shape()[3] != train_px.shape()[3]))
    throw InvalidDatasetError(dir + ": training images are " + std::to_string(train_px.shape()[2]) + "x" +
                              std::to_string(train_px.shape()[3]) + ", t10k images " + std::to_string(test_px.shape()[2]) +
                              "x" + std::to_string(test_px.shape()[3]));
  const std::int64_t k = std::max(label_count(train_y), label_count(test_y));
  std::vector<std::string> classes = fashion && k <= 10 ? fashion_mnist_classes() : numbered_classes(k);
  ImageData d;
  d.train = make(train_images, train_labels, std::move(train_px), std::move(train_y), classes, name + " train");
  if (test_px.defined())
    d.validation = make(test_images, test_labels, std::move(test_px), std::move(test_y), classes, name + " t10k");
  return d;
}

}  // namespace krill::data
