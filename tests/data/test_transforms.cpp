// Image transforms against torch (tests/oracle/image_oracle.py, torchvision's semantics written
// with torch ops): ToTensor + Normalize and RandomCrop/RandomHorizontalFlip bit for bit (given
// krill's drawn positions), Resize within float rounding of F.interpolate(bilinear,
// align_corners=False); and the draws: per seed, uniform, independent of the batch.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "krill/data/image.hpp"
#include "krill/data/transforms.hpp"
#include "support/expect.hpp"
#include "support/oracle.hpp"

using namespace krill;
using krill::test::contains;
using krill::test::error_of;
using json = nlohmann::json;

namespace {

constexpr std::int64_t N = 6, C = 3, H = 7, W = 9;

std::shared_ptr<data::ImageDataset> images(std::uint64_t seed) {
  Tensor px = empty(Shape{N, C, H, W}, DType::UInt8);
  std::uint64_t s = seed * 2654435761u + 1;
  auto* p = px.data_ptr<std::uint8_t>();
  for (std::int64_t i = 0; i < px.numel(); ++i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    p[i] = static_cast<std::uint8_t>(s >> 56);
  }
  p[0] = 0, p[1] = 255;  // the extremes
  return std::make_shared<data::ImageDataset>(px, std::vector<std::int64_t>(N, 0), std::vector<std::string>{"x"}, "test");
}

std::vector<float> read_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

struct Case {
  std::string name;
  data::Transforms t;
  double tolerance;  // 0: bit for bit
};

TEST(Transforms, MatchTorch) {
  const std::uint64_t seed = krill::test::run_seed();
  auto ds = images(seed);
  const std::vector<float> mean = {0.485f, 0.456f, 0.406f}, std = {0.229f, 0.224f, 0.225f};
  std::vector<Case> cases = {
      {"to_tensor", data::Transforms(), 0},
      {"normalize", data::Transforms().normalize(mean, std), 0},
      {"normalize_one", data::Transforms().normalize({0.2860f}, {0.3530f}), 0},
      {"flip", data::Transforms().random_horizontal_flip(0.5).normalize(mean, std), 0},
      {"crop", data::Transforms().random_crop(5, 7, 2).normalize(mean, std), 0},
      {"crop_flip", data::Transforms().random_crop(7, 9, 3).random_horizontal_flip().normalize({0.5f}, {0.25f}), 0},
      {"crop_bigger_than_image", data::Transforms().random_crop(10, 4), 0},
      {"resize_down", data::Transforms().resize(4, 5).normalize(mean, std), 2e-6},
      {"resize_up", data::Transforms().resize(15, 20), 2e-6},
      {"resize_crop_flip", data::Transforms().resize(12, 11).random_crop(10, 1).random_horizontal_flip().normalize(mean, std), 2e-6},
  };
  const std::string dir = krill::test::make_temp_dir("transforms");
  {
    std::ofstream(dir + "/images.u8", std::ios::binary)
        .write(static_cast<const char*>(ds->pixels().raw_data()), static_cast<std::streamsize>(N * C * H * W));
  }
  const std::uint64_t batch_seed = data::mix_seed(seed, 99);
  json spec = {{"n", N}, {"c", C}, {"h", H}, {"w", W}, {"cases", json::array()}};
  std::map<std::string, Tensor> outputs;
  std::vector<std::int64_t> idx(N);
  for (std::int64_t i = 0; i < N; ++i) idx[i] = i;
  for (const Case& c : cases) {
    auto t = ds->with_transforms(c.t);
    data::Batch b = t->get_batch(idx.data(), N, batch_seed);
    outputs[c.name] = b.input;
    const std::int64_t rh = c.t.has_resize() ? c.t.resize_height() : H, rw = c.t.has_resize() ? c.t.resize_width() : W;
    json draws = json::array();
    if (c.t.is_random()) {
      for (std::int64_t k = 0; k < N; ++k) {
        auto d = c.t.draw(data::mix_seed(batch_seed, static_cast<std::uint64_t>(k)), rh, rw);
        draws.push_back({d.top, d.left, d.flip ? 1 : 0});
      }
    }
    spec["cases"].push_back({{"name", c.name},
                             {"mean", c.t.mean()},
                             {"std", c.t.std()},
                             {"resize", c.t.has_resize() ? json{rh, rw} : json(nullptr)},
                             {"crop", c.t.has_crop() ? json{c.t.crop_height(), c.t.crop_width()} : json(nullptr)},
                             {"pad", c.t.padding()},
                             {"draws", draws}});
  }
  std::ofstream(dir + "/spec.json") << spec.dump();
  krill::test::run_oracle("image_oracle.py", {"transforms", dir});
  for (const Case& c : cases) {
    const std::vector<float> want = read_f32(dir + "/" + c.name + ".f32");
    const Tensor& got = outputs[c.name];
    ASSERT_EQ(static_cast<std::size_t>(got.numel()), want.size()) << c.name;
    const float* g = got.data_ptr<float>();
    for (std::size_t i = 0; i < want.size(); ++i) {
      if (c.tolerance == 0)
        ASSERT_EQ(std::memcmp(&g[i], &want[i], 4), 0) << c.name << " element " << i << ": " << g[i] << " vs " << want[i];
      else
        ASSERT_NEAR(g[i], want[i], c.tolerance * std::max(1.0f, std::abs(want[i]))) << c.name << " element " << i;
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(Transforms, DrawsAreUniformAndPerSeed) {
  const data::Transforms t = data::Transforms().random_crop(7, 9, 2).random_horizontal_flip(0.3);
  std::map<std::int64_t, int> tops, lefts;
  int flips = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    auto d = t.draw(data::mix_seed(1234, static_cast<std::uint64_t>(i)), 7, 9);
    tops[d.top]++, lefts[d.left]++, flips += d.flip;
    auto again = t.draw(data::mix_seed(1234, static_cast<std::uint64_t>(i)), 7, 9);
    ASSERT_TRUE(again.top == d.top && again.left == d.left && again.flip == d.flip);
  }
  ASSERT_EQ(tops.size(), 5u);  // 0..4: 7 + 2*2 - 7
  ASSERT_EQ(lefts.size(), 5u);
  for (auto [v, k] : tops) EXPECT_NEAR(k, n / 5, n / 5 * 0.1) << v;
  for (auto [v, k] : lefts) EXPECT_NEAR(k, n / 5, n / 5 * 0.1) << v;
  EXPECT_NEAR(flips, n * 0.3, n * 0.02);
}

TEST(Transforms, SameSeedSameBatchWhateverTheBatchSplit) {
  auto ds = images(3)->with_transforms(data::Transforms().random_crop(5, 7, 2).random_horizontal_flip());
  std::vector<std::int64_t> idx = {5, 1, 2, 0, 4, 3};
  data::Batch a = ds->get_batch(idx.data(), N, 77), b = ds->get_batch(idx.data(), N, 77), c = ds->get_batch(idx.data(), N, 78);
  EXPECT_EQ(std::memcmp(a.input.raw_data(), b.input.raw_data(), a.input.nbytes()), 0);
  EXPECT_NE(std::memcmp(a.input.raw_data(), c.input.raw_data(), a.input.nbytes()), 0);
  EXPECT_EQ(std::vector<std::int64_t>(a.target.data_ptr<std::int64_t>(), a.target.data_ptr<std::int64_t>() + N),
            std::vector<std::int64_t>(N, 0));
}

TEST(Transforms, DeterministicIsACentreCrop) {
  const data::Transforms train = data::Transforms().random_crop(5, 7, 4).random_horizontal_flip().normalize({0.5f}, {0.5f});
  const data::Transforms eval = train.deterministic();
  EXPECT_TRUE(train.is_random());
  EXPECT_FALSE(eval.is_random());
  EXPECT_EQ(eval.output_shape(3, H, W), (Shape{3, 5, 7}));
  auto d = eval.draw(42, H, W);
  EXPECT_EQ(d.top, 1);
  EXPECT_EQ(d.left, 1);
  EXPECT_FALSE(d.flip);
  auto ds = images(1);
  auto e = ds->with_transforms(eval);
  const std::int64_t i0[] = {0};
  data::Batch b = e->get_batch(i0, 1, 5);
  const auto* px = ds->pixels().data_ptr<std::uint8_t>();
  for (std::int64_t c = 0; c < 3; ++c)
    for (std::int64_t y = 0; y < 5; ++y)
      for (std::int64_t x = 0; x < 7; ++x)
        ASSERT_EQ(b.input.data_ptr<float>()[(c * 5 + y) * 7 + x],
                  (static_cast<float>(px[(c * H + y + 1) * W + x + 1]) / 255.0f - 0.5f) / 0.5f);
  EXPECT_EQ(eval.str(), "CenterCrop(5, 7) -> ToTensor -> Normalize(mean=[0.5], std=[0.5])");
  EXPECT_EQ(train.str(), "RandomCrop(5, 7, padding=4) -> RandomHorizontalFlip(p=0.5) -> ToTensor -> Normalize(mean=[0.5], std=[0.5])");
}

TEST(Transforms, Errors) {
  std::string msg = error_of<ValueError>([] { data::Transforms().random_crop(12).output_shape(1, 8, 8); });
  EXPECT_TRUE(contains(msg, "RandomCrop") && contains(msg, "12x12 is larger than the image 8x8")) << msg;
  msg = error_of<ValueError>([] { data::Transforms().normalize({0.1f, 0.2f}, {1, 1}).output_shape(3, 8, 8); });
  EXPECT_TRUE(contains(msg, "2 mean/std values for images with 3 channels")) << msg;
  auto ds = images(0);
  EXPECT_THROW(ds->set_transforms(data::Transforms().normalize({0.1f, 0.2f}, {1, 1})), ValueError);
  EXPECT_THROW(data::Transforms().normalize({0.1f}, {0.0f}), ValueError);
  EXPECT_THROW(data::Transforms().normalize({0.1f}, {}), ValueError);
  EXPECT_THROW(data::Transforms().resize(0, 4), ValueError);
  EXPECT_THROW(data::Transforms().random_crop(4, -1), ValueError);
  EXPECT_THROW(data::Transforms().random_horizontal_flip(1.5), ValueError);
}

}  // namespace
