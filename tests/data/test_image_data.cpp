// Image datasets: Fashion-MNIST (IDX, gzip) checked against numpy reading the same files,
// IDX/CIFAR-10/image-directory files written here, synthetic images, and every error a user
// can run into (named after the module's errors: NotLabeledDatasetError, InvalidDatasetError).
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "krill/data/dataloader.hpp"
#include "krill/data/image.hpp"
#include "support/expect.hpp"
#include "support/oracle.hpp"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

using namespace krill;
using krill::test::contains;
using krill::test::error_of;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char* kFashion = "/usr/share/datasets/fashion-mnist";

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gz(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

void put32(std::vector<std::uint8_t>& v, std::uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<std::uint8_t>(x >> s));
}

std::vector<std::uint8_t> idx_images(std::uint32_t n, std::uint32_t h, std::uint32_t w, std::uint8_t seed) {
  std::vector<std::uint8_t> v;
  put32(v, 0x803), put32(v, n), put32(v, h), put32(v, w);
  for (std::uint32_t i = 0; i < n * h * w; ++i) v.push_back(static_cast<std::uint8_t>(i * 7 + seed));
  return v;
}

std::vector<std::uint8_t> idx_labels(std::uint32_t n, std::uint32_t classes) {
  std::vector<std::uint8_t> v;
  put32(v, 0x801), put32(v, n);
  for (std::uint32_t i = 0; i < n; ++i) v.push_back(static_cast<std::uint8_t>(i % classes));
  return v;
}

// A gray h x w PNG whose pixels are (x * 16 + y * 3 + tag) % 256.
std::vector<std::uint8_t> gray_pixels(int h, int w, int tag) {
  std::vector<std::uint8_t> px(static_cast<std::size_t>(h * w));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) px[y * w + x] = static_cast<std::uint8_t>((x * 16 + y * 3 + tag) % 256);
  return px;
}

void write_png(const std::string& path, int h, int w, int comp, const std::vector<std::uint8_t>& interleaved) {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_TRUE(stbi_write_png(path.c_str(), w, h, comp, interleaved.data(), w * comp)) << path;
}

std::vector<std::uint8_t> plane(const Tensor& chw, std::int64_t c) {
  Tensor t = chw.contiguous();
  const std::int64_t hw = t.shape()[1] * t.shape()[2];
  const auto* p = t.data_ptr<std::uint8_t>() + c * hw;
  return {p, p + hw};
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// ---- Fashion-MNIST ----

TEST(ImageData, FashionMnistMatchesNumpy) {
  const std::string dir = krill::test::make_temp_dir("fmnist");
  krill::test::run_oracle("image_oracle.py", {"idx", kFashion, dir + "/o.json", "0,1,777,9999,59999"});
  json o = json::parse(std::ifstream(dir + "/o.json"));

  ASSERT_TRUE(data::is_image_data_spec(kFashion));
  data::ImageData d = data::open_image_data(kFashion);
  ASSERT_TRUE(d.train && d.validation);
  EXPECT_EQ(d.train->size(), 60000);
  EXPECT_EQ(d.validation->size(), 10000);
  EXPECT_EQ(o["train"]["n"], 60000);
  for (auto* ds : {d.train.get(), d.validation.get()}) {
    EXPECT_EQ(ds->channels(), 1);
    EXPECT_EQ(ds->height(), 28);
    EXPECT_EQ(ds->width(), 28);
    EXPECT_EQ(ds->input_shape(), (Shape{1, 28, 28}));
    EXPECT_EQ(ds->classes(), data::fashion_mnist_classes());
  }
  EXPECT_EQ(d.train->classes()[9], "Ankle boot");
  EXPECT_TRUE(contains(d.train->describe(), "60000 images 1x28x28, 10 classes")) << d.train->describe();
  auto [mean, std] = d.train->channel_stats();
  ASSERT_EQ(mean.size(), 1u);
  EXPECT_NEAR(mean[0], 0.2860, 5e-5);
  EXPECT_NEAR(std[0], 0.3530, 5e-5);

  for (auto [split, ds] : {std::pair{"train", d.train.get()}, std::pair{"t10k", d.validation.get()}}) {
    std::vector<std::int64_t> counts(10);
    for (std::int64_t y : ds->labels()) counts[static_cast<std::size_t>(y)]++;
    EXPECT_EQ(json(counts), o[split]["label_counts"]) << split;
    for (const auto& s : o[split]["samples"]) {
      const std::int64_t i = s["i"];
      EXPECT_EQ(ds->label(i), s["label"].get<std::int64_t>()) << split << " " << i;
      EXPECT_EQ(plane(ds->image(i), 0), s["pixels"].get<std::vector<std::uint8_t>>()) << split << " " << i;
      // the default transform is ToTensor: x / 255
      const std::int64_t idx[] = {i};
      data::Batch b = ds->get_batch(idx, 1, 0);
      EXPECT_EQ(b.input.shape(), (Shape{1, 1, 28, 28}));
      EXPECT_EQ(b.target.dtype(), DType::Int64);
      EXPECT_EQ(b.target.data_ptr<std::int64_t>()[0], s["label"].get<std::int64_t>());
      const auto px = s["pixels"].get<std::vector<int>>();
      for (std::size_t p = 0; p < px.size(); ++p)
        ASSERT_EQ(b.input.data_ptr<float>()[p], static_cast<float>(px[p]) / 255.0f) << split << " " << i << " " << p;
    }
  }
  fs::remove_all(dir);
}

// ---- IDX files written here ----

TEST(ImageData, IdxRawAndGzip) {
  const std::string dir = krill::test::make_temp_dir("idx");
  write_bytes(dir + "/train-images-idx3-ubyte", idx_images(12, 5, 4, 1));
  write_gz(dir + "/train-labels-idx1-ubyte.gz", idx_labels(12, 3));
  write_gz(dir + "/t10k-images-idx3-ubyte.gz", idx_images(4, 5, 4, 2));
  write_bytes(dir + "/t10k-labels-idx1-ubyte", idx_labels(4, 3));
  data::ImageData d = data::open_image_data(dir);
  ASSERT_TRUE(d.train && d.validation);
  EXPECT_EQ(d.train->size(), 12);
  EXPECT_EQ(d.validation->size(), 4);
  EXPECT_EQ(d.train->input_shape(), (Shape{1, 5, 4}));
  EXPECT_EQ(d.train->classes(), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(d.train->label(4), 1);
  Tensor img = d.validation->image(3);
  EXPECT_EQ(img.data_ptr<std::uint8_t>()[0], static_cast<std::uint8_t>(3 * 20 * 7 + 2));
  fs::remove_all(dir);
}

TEST(ImageData, IdxErrorsNameTheFile) {
  const std::string dir = krill::test::make_temp_dir("idxerr");
  const std::string img = dir + "/train-images-idx3-ubyte", lab = dir + "/train-labels-idx1-ubyte";
  write_bytes(lab, idx_labels(6, 3));

  auto bad = idx_images(6, 3, 3, 0);
  bad[3] = 0x01;  // magic 0x801: a label file
  write_bytes(img, bad);
  std::string msg = error_of<IOError>([&] { data::read_idx(img, lab); });
  EXPECT_TRUE(contains(msg, img) && contains(msg, "magic number 0x00000801") && contains(msg, "0x00000803")) << msg;

  auto cut = idx_images(6, 3, 3, 0);
  cut.resize(cut.size() - 5);
  write_bytes(img, cut);
  msg = error_of<IOError>([&] { data::read_idx(img, lab); });
  EXPECT_TRUE(contains(msg, img) && contains(msg, "truncated") && contains(msg, "need 54 bytes") &&
              contains(msg, "has 49")) << msg;

  auto longer = idx_images(6, 3, 3, 0);
  longer.push_back(9);
  write_bytes(img, longer);
  msg = error_of<IOError>([&] { data::read_idx(img, lab); });
  EXPECT_TRUE(contains(msg, img) && contains(msg, "size mismatch")) << msg;

  write_bytes(img, idx_images(5, 3, 3, 0));
  msg = error_of<IOError>([&] { data::read_idx(img, lab); });
  EXPECT_TRUE(contains(msg, lab) && contains(msg, "6 labels for the 5 images")) << msg;

  write_bytes(img, {0, 0});
  msg = error_of<IOError>([&] { data::read_idx(img, lab); });
  EXPECT_TRUE(contains(msg, img) && contains(msg, "truncated")) << msg;

  // a damaged gzip stream: valid header, garbage inside
  const std::string gz = dir + "/bad.gz";
  write_gz(gz, idx_images(50, 8, 8, 0));
  std::ifstream in(gz, std::ios::binary);
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  for (std::size_t i = 20; i < bytes.size() - 10; ++i) bytes[i] ^= 0x5A;
  write_bytes(gz, bytes);
  msg = error_of<IOError>([&] { data::read_idx(gz, lab); });
  EXPECT_TRUE(contains(msg, gz)) << msg;

  fs::remove(img);
  msg = error_of<IOError>([&] { data::read_idx_dir(dir); });
  EXPECT_TRUE(contains(msg, "no train-images")) << msg;
  msg = error_of<IOError>([&] { data::read_idx(img, lab); });
  EXPECT_TRUE(contains(msg, img) && contains(msg, "cannot open")) << msg;
  fs::remove_all(dir);
}

// ---- CIFAR-10 ----

std::vector<std::uint8_t> cifar_records(int n, int first_label, std::uint8_t tag) {
  std::vector<std::uint8_t> v;
  for (int r = 0; r < n; ++r) {
    v.push_back(static_cast<std::uint8_t>((first_label + r) % 10));
    for (int p = 0; p < 3072; ++p) v.push_back(static_cast<std::uint8_t>(p * 13 + r * 5 + tag));
  }
  return v;
}

TEST(ImageData, Cifar10Batches) {
  const std::string dir = krill::test::make_temp_dir("cifar");
  write_bytes(dir + "/data_batch_1.bin", cifar_records(3, 0, 1));
  write_bytes(dir + "/data_batch_2.bin", cifar_records(4, 3, 2));
  write_bytes(dir + "/test_batch.bin", cifar_records(2, 7, 3));
  data::ImageData d = data::open_image_data(dir);
  ASSERT_TRUE(d.train && d.validation);
  EXPECT_EQ(d.train->size(), 7);
  EXPECT_EQ(d.validation->size(), 2);
  EXPECT_EQ(d.train->input_shape(), (Shape{3, 32, 32}));
  EXPECT_EQ(d.train->classes(), data::cifar10_classes());
  EXPECT_EQ(d.train->label(4), 4);
  EXPECT_EQ(d.validation->label(1), 8);
  // record layout: R plane, G plane, B plane
  Tensor img = d.train->image(5);  // batch 2, record 2
  for (int p : {0, 1, 1024, 2047, 3071})
    EXPECT_EQ(img.data_ptr<std::uint8_t>()[p], static_cast<std::uint8_t>(p * 13 + 2 * 5 + 2)) << p;

  // class names from batches.meta.txt
  std::ofstream(dir + "/batches.meta.txt") << "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n";
  d = data::read_cifar10_dir(dir);
  EXPECT_EQ(d.train->classes().front(), "a");
  EXPECT_EQ(d.train->classes().size(), 10u);

  auto cut = cifar_records(2, 0, 0);
  cut.pop_back();
  write_bytes(dir + "/data_batch_3.bin", cut);
  std::string msg = error_of<IOError>([&] { data::open_image_data(dir); });
  EXPECT_TRUE(contains(msg, "data_batch_3.bin") && contains(msg, "6145 bytes") && contains(msg, "3073")) << msg;

  auto bad_label = cifar_records(1, 0, 0);
  bad_label[0] = 42;
  write_bytes(dir + "/data_batch_3.bin", bad_label);
  msg = error_of<IOError>([&] { data::open_image_data(dir); });
  EXPECT_TRUE(contains(msg, "data_batch_3.bin") && contains(msg, "label 42")) << msg;
  fs::remove_all(dir);
}

// ---- image directories ----

TEST(ImageData, ImageFolderPngAndJpg) {
  const std::string dir = krill::test::make_temp_dir("folder");
  // classes written out of order: they come back sorted
  write_png(dir + "/zebra/b.png", 6, 5, 1, gray_pixels(6, 5, 1));
  write_png(dir + "/zebra/a.png", 6, 5, 1, gray_pixels(6, 5, 2));
  write_png(dir + "/ant/x.png", 6, 5, 1, gray_pixels(6, 5, 3));
  std::ofstream(dir + "/ant/notes.txt") << "not an image";
  auto d = data::open_image_folder(dir);
  EXPECT_EQ(d->classes(), (std::vector<std::string>{"ant", "zebra"}));
  EXPECT_EQ(d->size(), 3);
  EXPECT_EQ(d->channels(), 1);
  EXPECT_EQ(d->input_shape(), (Shape{1, 6, 5}));
  EXPECT_EQ(d->labels(), (std::vector<std::int64_t>{0, 1, 1}));
  EXPECT_EQ(plane(d->image(0), 0), gray_pixels(6, 5, 3));
  EXPECT_EQ(plane(d->image(1), 0), gray_pixels(6, 5, 2));  // a.png before b.png
  EXPECT_EQ(plane(d->image(2), 0), gray_pixels(6, 5, 1));

  // one RGB image makes the set 3-channel (gray images are replicated), planes in C, H, W
  std::vector<std::uint8_t> rgb(6 * 5 * 3);
  for (std::size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<std::uint8_t>(i * 3 % 251);
  write_png(dir + "/zebra/c.png", 6, 5, 3, rgb);
  // and a JPG (lossy: compared loosely)
  std::vector<std::uint8_t> flat(6 * 5 * 3, 200);
  fs::create_directories(dir + "/ant");
  ASSERT_TRUE(stbi_write_jpg((dir + "/ant/y.jpg").c_str(), 5, 6, 3, flat.data(), 95));
  d = data::open_image_folder(dir);
  EXPECT_EQ(d->channels(), 3);
  EXPECT_EQ(d->size(), 5);
  EXPECT_EQ(plane(d->image(0), 2), gray_pixels(6, 5, 3));
  Tensor c = d->image(4);  // zebra/c.png
  for (std::int64_t ch = 0; ch < 3; ++ch) {
    auto p = plane(c, ch);
    for (std::size_t i = 0; i < p.size(); ++i) ASSERT_EQ(p[i], rgb[i * 3 + ch]);
  }
  for (std::uint8_t v : plane(d->image(1), 1)) EXPECT_NEAR(v, 200, 3);  // ant/y.jpg
  // single files
  EXPECT_EQ(data::read_image(dir + "/zebra/c.png").shape(), (Shape{3, 6, 5}));
  EXPECT_TRUE(same_bytes(data::read_image(dir + "/zebra/c.png"), d->image(4)));
  Tensor gray = data::read_image(dir + "/zebra/a.png");
  EXPECT_EQ(gray.shape(), (Shape{1, 6, 5}));
  EXPECT_EQ(plane(gray, 0), gray_pixels(6, 5, 2));
  EXPECT_EQ(data::read_image(dir + "/zebra/a.png", 3).shape(), (Shape{3, 6, 5}));
  std::string msg = error_of<IOError>([&] { data::read_image(dir + "/ant/notes.txt"); });
  EXPECT_TRUE(contains(msg, "notes.txt") && contains(msg, "not a readable image")) << msg;

  // batches through a loader with workers: decoded in the workers
  data::DataLoader loader(d, data::DataLoaderOptions(2).num_workers(2));
  std::int64_t seen = 0;
  for (auto& b : loader) {
    EXPECT_EQ(b.input.shape()[1], 3);
    seen += b.size();
  }
  EXPECT_EQ(seen, 5);
  fs::remove_all(dir);
}

TEST(ImageData, ImageFolderCachesDecodedImages) {
  const std::string dir = krill::test::make_temp_dir("cache");
  write_png(dir + "/a/1.png", 4, 4, 1, gray_pixels(4, 4, 1));
  write_png(dir + "/b/2.png", 4, 4, 1, gray_pixels(4, 4, 2));
  auto cached = data::open_image_folder(dir);
  auto uncached = data::open_image_folder(dir, data::ImageDataOptions().set_cache_bytes(0));
  const std::int64_t idx[] = {0, 1};
  data::Batch first = cached->get_batch(idx, 2, 0);
  (void)uncached->get_batch(idx, 2, 0);
  fs::remove(dir + "/a/1.png");
  data::Batch again = cached->get_batch(idx, 2, 0);  // from memory
  EXPECT_EQ(std::memcmp(first.input.raw_data(), again.input.raw_data(), first.input.nbytes()), 0);
  std::string msg = error_of<IOError>([&] { uncached->get_batch(idx, 2, 0); });
  EXPECT_TRUE(contains(msg, "1.png") && contains(msg, "cannot decode")) << msg;
  fs::remove_all(dir);
}

TEST(ImageData, NotLabeledDataset) {
  const std::string dir = krill::test::make_temp_dir("nolabel");
  write_png(dir + "/1.png", 4, 4, 1, gray_pixels(4, 4, 1));
  write_png(dir + "/2.png", 4, 4, 1, gray_pixels(4, 4, 1));
  std::string msg = error_of<NotLabeledDatasetError>([&] { data::open_image_data(dir); });
  EXPECT_TRUE(contains(msg, "2 images but no class folders") && contains(msg, dir + "/<class>/<image>.png")) << msg;

  const std::string empty_dir = krill::test::make_temp_dir("emptydir");
  msg = error_of<NotLabeledDatasetError>([&] { data::open_image_folder(empty_dir); });
  EXPECT_TRUE(contains(msg, "no class folders")) << msg;

  fs::create_directories(dir + "/cat");
  fs::create_directories(dir + "/dog");
  write_png(dir + "/dog/1.png", 4, 4, 1, gray_pixels(4, 4, 1));
  std::ofstream(dir + "/cat/readme.txt") << "x";
  msg = error_of<NotLabeledDatasetError>([&] { data::open_image_folder(dir); });
  EXPECT_TRUE(contains(msg, "class folder cat holds no images")) << msg;
  fs::remove_all(dir);
  fs::remove_all(empty_dir);
}

TEST(ImageData, BrokenImageIsAnIOErrorNamingTheFile) {
  const std::string dir = krill::test::make_temp_dir("broken");
  write_png(dir + "/a/ok.png", 4, 4, 1, gray_pixels(4, 4, 1));
  write_bytes(dir + "/a/bad.png", {0x89, 'P', 'N', 'G', 1, 2, 3});
  std::string msg = error_of<IOError>([&] { data::open_image_folder(dir); });
  EXPECT_TRUE(contains(msg, "bad.png") && contains(msg, "not a readable image (")) << msg;

  // header fine, data cut short: found when decoding, in a worker; next() rethrows it
  fs::remove(dir + "/a/bad.png");
  write_png(dir + "/a/ok.png", 64, 64, 1, std::vector<std::uint8_t>(64 * 64, 1));
  std::vector<std::uint8_t> noise(64 * 64);
  std::uint32_t r = 12345;
  for (auto& v : noise) v = static_cast<std::uint8_t>((r = r * 1664525u + 1013904223u) >> 24);
  write_png(dir + "/a/cut.png", 64, 64, 1, noise);
  std::ifstream in(dir + "/a/cut.png", std::ios::binary);
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  bytes.resize(bytes.size() / 2 + 20);
  write_bytes(dir + "/a/cut.png", bytes);
  auto d = data::open_image_folder(dir);
  data::DataLoader loader(d, data::DataLoaderOptions(2).num_workers(1));
  loader.begin_epoch();
  data::Batch b;
  msg = error_of<IOError>([&] { loader.next(b); });
  EXPECT_TRUE(contains(msg, "cut.png") && contains(msg, "cannot decode the image (")) << msg;
  fs::remove_all(dir);
}

TEST(ImageData, DifferentSizesNeedAResize) {
  const std::string dir = krill::test::make_temp_dir("sizes");
  write_png(dir + "/a/1.png", 8, 8, 1, gray_pixels(8, 8, 1));
  write_png(dir + "/b/2.png", 6, 10, 1, gray_pixels(6, 10, 1));
  auto d = data::open_image_folder(dir);
  EXPECT_EQ(d->height(), 0);
  std::string msg = error_of<InvalidDatasetError>([&] { (void)d->input_shape(); });
  EXPECT_TRUE(contains(msg, "different sizes") && contains(msg, "Resize") && contains(msg, "10x6")) << msg;
  msg = error_of<InvalidDatasetError>([&] { d->set_transforms(data::Transforms().random_horizontal_flip()); });
  EXPECT_TRUE(contains(msg, "Resize")) << msg;
  d->set_transforms(data::Transforms().resize(4, 4));
  EXPECT_EQ(d->input_shape(), (Shape{1, 4, 4}));
  const std::int64_t idx[] = {0, 1};
  data::Batch b = d->get_batch(idx, 2, 0);
  EXPECT_EQ(b.input.shape(), (Shape{2, 1, 4, 4}));
  fs::remove_all(dir);
}

TEST(ImageData, TrainAndValidationNeedTheSameClasses) {
  const std::string root = krill::test::make_temp_dir("pair");
  for (const char* c : {"cat", "dog", "eel"}) write_png(root + "/train/" + c + "/1.png", 4, 4, 1, gray_pixels(4, 4, 1));
  for (const char* c : {"cat", "dog", "fox"}) write_png(root + "/val/" + c + "/1.png", 4, 4, 1, gray_pixels(4, 4, 1));
  std::string msg = error_of<InvalidDatasetError>([&] { data::open_image_data(root); });
  EXPECT_TRUE(contains(msg, "different classes") && contains(msg, "only in training: eel") &&
              contains(msg, "only in validation: fox")) << msg;
  msg = error_of<InvalidDatasetError>([&] { data::open_image_folders(root + "/train", root + "/val"); });
  EXPECT_TRUE(contains(msg, root + "/train") && contains(msg, root + "/val")) << msg;

  fs::remove_all(root + "/val/fox");
  write_png(root + "/val/eel/1.png", 4, 4, 1, gray_pixels(4, 4, 1));
  data::ImageData d = data::open_image_data(root);
  ASSERT_TRUE(d.train && d.validation);
  EXPECT_EQ(d.train->classes(), d.validation->classes());
  data::check_compatible(*d.train, *d.validation);
  auto bigger = d.validation->with_transforms(data::Transforms().resize(5, 5));
  msg = error_of<InvalidDatasetError>([&] { data::check_compatible(*d.train, *bigger); });
  EXPECT_TRUE(contains(msg, "[1, 5, 5]")) << msg;
  fs::remove_all(root);
}

// ---- synthetic, splits ----

TEST(ImageData, Synthetic) {
  ASSERT_TRUE(data::is_image_data_spec("synthetic:3x32x32:10"));
  data::ImageData a = data::open_image_data("synthetic:3x32x32:10");
  EXPECT_EQ(a.train->size(), 1024);
  EXPECT_EQ(a.validation->size(), 256);
  EXPECT_EQ(a.train->input_shape(), (Shape{3, 32, 32}));
  EXPECT_EQ(a.train->num_classes(), 10);
  data::ImageData b = data::open_image_data("synthetic:1x8x6:3:50", data::ImageDataOptions().set_seed(5));
  data::ImageData c = data::open_image_data("synthetic:1x8x6:3:50", data::ImageDataOptions().set_seed(5));
  data::ImageData e = data::open_image_data("synthetic:1x8x6:3:50", data::ImageDataOptions().set_seed(6));
  EXPECT_EQ(b.train->size(), 50);
  EXPECT_EQ(b.validation->size(), 12);
  EXPECT_EQ(b.train->labels(), c.train->labels());
  EXPECT_EQ(std::memcmp(b.train->pixels().raw_data(), c.train->pixels().raw_data(), 50 * 48), 0);
  EXPECT_NE(std::memcmp(b.train->pixels().raw_data(), e.train->pixels().raw_data(), 50 * 48), 0);
  for (std::int64_t y : b.train->labels()) EXPECT_TRUE(y >= 0 && y < 3);

  for (const char* bad : {"synthetic:3x32:10", "synthetic:3x32x32", "synthetic:3x32x32:ten", "synthetic:3x32x32:10:0",
                          "synthetic:3x32x32:1", "synthetic:0x4x4:2"}) {
    std::string msg = error_of<ValueError>([&] { data::open_image_data(bad); });
    EXPECT_TRUE(contains(msg, "synthetic:CxHxW:CLASSES[:N]")) << bad << ": " << msg;
  }
}

TEST(ImageData, RandomSplitAndSubset) {
  data::ImageData a = data::open_image_data("synthetic:1x4x4:2:100");
  data::ImageData s = data::random_split(*a.train, 0.2, 7);
  EXPECT_EQ(s.train->size(), 80);
  EXPECT_EQ(s.validation->size(), 20);
  std::vector<bool> seen(100);
  auto mark = [&](const data::ImageDataset& part) {
    for (std::int64_t i = 0; i < part.size(); ++i) {
      Tensor img = part.image(i);
      // find it back in the parent
      for (std::int64_t j = 0; j < 100; ++j)
        if (!seen[j] && std::memcmp(img.raw_data(), a.train->image(j).raw_data(), 16) == 0) {
          seen[j] = true;
          EXPECT_EQ(part.label(i), a.train->label(j));
          break;
        }
    }
  };
  mark(*s.train);
  mark(*s.validation);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 100);
  EXPECT_THROW(data::random_split(*a.train, 1.5, 0), ValueError);
  EXPECT_THROW(a.train->subset({0, 100}), IndexError);
}

TEST(ImageData, SpecsThatAreNotImageData) {
  EXPECT_FALSE(data::is_image_data_spec(krill::test::source_dir() + "/CMakeLists.txt"));
  std::string msg = error_of<IOError>([&] { data::open_image_data("/no/such/dir"); });
  EXPECT_TRUE(contains(msg, "/no/such/dir")) << msg;
}

}  // namespace
