// CIFAR-10 binary batches (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version"):
// records of 3073 bytes, one label byte then 1024 red, 1024 green and 1024 blue bytes of a
// 32x32 image, row-major: exactly the [C, H, W] layout krill keeps.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "krill/data/image.hpp"
#include "krill/util/error.hpp"

namespace fs = std::filesystem;

namespace krill::data {
namespace {

constexpr std::int64_t kSide = 32, kChannels = 3, kPixels = kChannels * kSide * kSide, kRecord = 1 + kPixels;

}  // namespace

std::vector<std::string> cifar10_classes() {
  return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
}

std::shared_ptr<ImageDataset> read_cifar_batches(const std::vector<std::string>& files, std::vector<std::string> classes) {
  if (files.empty()) throw ValueError("read_cifar_batches: no files given");
  if (classes.empty()) classes = cifar10_classes();
  std::vector<std::int64_t> counts;
  std::int64_t total = 0;
  for (const auto& f : files) {
    std::error_code ec;
    const auto bytes = static_cast<std::int64_t>(fs::file_size(f, ec));
    if (ec) throw IOError(f + ": cannot read (" + ec.message() + ")");
    if (bytes == 0 || bytes % kRecord != 0)
      throw IOError(f + ": size mismatch: " + std::to_string(bytes) + " bytes is not a whole number of CIFAR-10 records (" +
                    std::to_string(kRecord) + " bytes each: 1 label byte + 3x32x32 pixel bytes)");
    counts.push_back(bytes / kRecord);
    total += bytes / kRecord;
  }
  Tensor pixels = empty(Shape{total, kChannels, kSide, kSide}, DType::UInt8);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(total));
  auto* out = pixels.data_ptr<std::uint8_t>();
  std::vector<char> buf;
  std::int64_t at = 0;
  for (std::size_t fi = 0; fi < files.size(); ++fi) {
    const std::string& f = files[fi];
    std::ifstream in(f, std::ios::binary);
    if (!in) throw IOError(f + ": cannot open (" + std::strerror(errno) + ")");
    buf.resize(static_cast<std::size_t>(counts[fi] * kRecord));
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() != static_cast<std::streamsize>(buf.size()))
      throw IOError(f + ": truncated: read " + std::to_string(in.gcount()) + " of " + std::to_string(buf.size()) + " bytes");
    for (std::int64_t r = 0; r < counts[fi]; ++r, ++at) {
      const char* rec = buf.data() + r * kRecord;
      const auto y = static_cast<std::int64_t>(static_cast<unsigned char>(rec[0]));
      if (y >= static_cast<std::int64_t>(classes.size()))
        throw IOError(f + ": record " + std::to_string(r) + " has label " + std::to_string(y) + ", outside the " +
                      std::to_string(classes.size()) + " classes (not a CIFAR-10 batch? CIFAR-100 has 2 label bytes)");
      labels[static_cast<std::size_t>(at)] = y;
      std::memcpy(out + at * kPixels, rec + 1, kPixels);
    }
  }
  std::string name = files.size() == 1 ? files[0] : files[0] + " (+" + std::to_string(files.size() - 1) + " more)";
  return std::make_shared<ImageDataset>(std::move(pixels), std::move(labels), std::move(classes), name);
}

ImageData read_cifar10_dir(const std::string& dir) {
  std::vector<std::string> train;
  std::string test;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (name.rfind("data_batch_", 0) == 0 && e.path().extension() == ".bin") train.push_back(e.path().string());
    if (name == "test_batch.bin") test = e.path().string();
  }
  if (ec) throw IOError(dir + ": cannot list the directory (" + ec.message() + ")");
  if (train.empty()) throw IOError(dir + ": no data_batch_*.bin files (a CIFAR-10 directory holds data_batch_1..5.bin and test_batch.bin)");
  std::sort(train.begin(), train.end());
  // Class names: batches.meta.txt (one per line) when present.
  std::vector<std::string> classes;
  std::ifstream meta(fs::path(dir) / "batches.meta.txt");
  for (std::string line; std::getline(meta, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) classes.push_back(line);
  }
  if (classes.empty()) classes = cifar10_classes();
  ImageData d;
  d.train = read_cifar_batches(train, classes);
  if (!test.empty()) d.validation = read_cifar_batches({test}, classes);
  return d;
}

}  // namespace krill::data
