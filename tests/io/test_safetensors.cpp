// safetensors: round trips, exact layout, every malformed-header case, fuzzing, and interop
// with PyTorch (tests/oracle/safetensors_oracle.py implements the format independently).
#include "krill/io/safetensors.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <typeinfo>
#include <vector>

#include "support/oracle.hpp"

namespace fs = std::filesystem;
using namespace krill;
using krill::io::from_safetensors_bytes;
using krill::io::load_safetensors;
using krill::io::save_safetensors;
using krill::io::to_safetensors_bytes;
using Meta = std::map<std::string, std::string>;

namespace {

const DType kAllDTypes[] = {DType::Float32, DType::Int64,    DType::Int32,   DType::Bool,
                            DType::Float16, DType::BFloat16, DType::Float64, DType::UInt8};

// ---- byte helpers ----

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

std::string make_file(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

std::string f32_bytes(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

// Bytes of a contiguous tensor.
std::string bytes_of(const Tensor& t) {
  if (t.nbytes() == 0) return {};
  EXPECT_TRUE(t.is_contiguous());
  return std::string(static_cast<const char*>(t.raw_data()), t.nbytes());
}

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) {
    h += d[c >> 4];
    h += d[c & 15];
  }
  return h.empty() ? "-" : h;
}

std::string unhex(const std::string& h) {
  if (h == "-") return {};
  std::string s;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) s += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return s;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// ---- tensor helpers ----

// Random contents; every bit pattern for floats (NaN payloads, -0.0, denormals must survive).
Tensor random_tensor(DType dt, const Shape& shape, std::mt19937_64& rng) {
  Tensor t = krill::empty(shape, dt);
  auto* p = static_cast<unsigned char*>(t.raw_data());
  for (std::size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>(rng());
  if (dt == DType::Bool)
    for (std::size_t i = 0; i < t.nbytes(); ++i) p[i] &= 1;
  return t;
}

// start + step * i in the dtype (bool: != 0); matches the oracle's "affine" kind. Use values
// exactly representable in the dtype.
Tensor affine(DType dt, const Shape& shape, double start, double step) {
  Tensor t = krill::empty(shape, dt);
  void* p = t.raw_data();
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    double v = start + step * static_cast<double>(i);
    switch (dt) {
      case DType::Float32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
      case DType::Float64: static_cast<double*>(p)[i] = v; break;
      case DType::Float16: {
        _Float16 h = static_cast<_Float16>(v);
        std::memcpy(static_cast<char*>(p) + 2 * i, &h, 2);
        break;
      }
      case DType::BFloat16: {
        float f = static_cast<float>(v);
        std::uint32_t bits;
        std::memcpy(&bits, &f, 4);
        std::uint16_t b = static_cast<std::uint16_t>(bits >> 16);
        std::memcpy(static_cast<char*>(p) + 2 * i, &b, 2);
        break;
      }
      case DType::Int64:
        static_cast<std::int64_t*>(p)[i] = static_cast<std::int64_t>(start) + static_cast<std::int64_t>(step) * i;
        break;
      case DType::Int32: static_cast<std::int32_t*>(p)[i] = static_cast<std::int32_t>(v); break;
      case DType::UInt8: static_cast<std::uint8_t*>(p)[i] = static_cast<std::uint8_t>(v); break;
      case DType::Bool: static_cast<std::uint8_t*>(p)[i] = v != 0 ? 1 : 0; break;
    }
  }
  return t;
}

void expect_same(const Tensor& got, const Tensor& want, const std::string& name) {
  ASSERT_TRUE(got.defined()) << name;
  EXPECT_EQ(got.dtype(), want.dtype()) << name;
  EXPECT_EQ(got.shape(), want.shape()) << name << ": " << got.shape().str() << " vs " << want.shape().str();
  EXPECT_EQ(hex(bytes_of(got)), hex(bytes_of(want))) << name;
}

void expect_same(const StateDict& got, const StateDict& want) {
  ASSERT_EQ(got.keys(), want.keys());
  for (const auto& [name, t] : want) expect_same(got.at(name), t, name);
}

// Parses `bytes` as "bad.safetensors" and expects a FormatError whose message names the file
// and contains every one of `needles`.
void expect_format_error(const std::string& bytes, std::vector<std::string> needles) {
  try {
    from_safetensors_bytes(bytes.data(), bytes.size(), "bad.safetensors");
    ADD_FAILURE() << "no FormatError; expected one mentioning '" << needles.front() << "'";
  } catch (const FormatError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind("bad.safetensors: ", 0), 0u) << msg;
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected FormatError, got another exception: " << e.what();
  }
}

std::string entry(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = krill::test::make_temp_dir("safetensors"); }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

TEST_F(SafetensorsTest, RoundTripFloatAndIntShapes) {
  std::mt19937_64 rng(krill::test::run_seed());
  const std::vector<Shape> shapes = {{}, {0}, {1}, {7}, {2, 3}, {2, 0, 3}, {3, 1, 4, 1}, {2, 3, 1, 2, 1, 2}};
  StateDict sd;
  int i = 0;
  // Names deliberately not sorted: insertion order must survive.
  for (const auto& s : shapes) {
    sd.insert("z" + std::to_string(i) + ".weight", random_tensor(DType::Float32, s, rng));
    sd.insert("a" + std::to_string(i) + ".index", random_tensor(DType::Int64, s, rng));
    ++i;
  }
  // In memory.
  std::string bytes = to_safetensors_bytes(sd);
  expect_same(from_safetensors_bytes(bytes.data(), bytes.size(), "mem"), sd);
  // Through a file; the file holds exactly the in-memory bytes.
  save_safetensors(sd, path("m.safetensors"));
  EXPECT_EQ(read_file(path("m.safetensors")), bytes);
  Meta meta{{"stale", "x"}};
  expect_same(load_safetensors(path("m.safetensors"), &meta), sd);
  EXPECT_TRUE(meta.empty()) << "metadata out-param must be cleared when the file has none";
}

TEST_F(SafetensorsTest, RoundTripEveryDType) {
  std::mt19937_64 rng(krill::test::run_seed() + 1);
  StateDict sd;
  for (DType dt : kAllDTypes) {
    std::string n(dtype_name(dt));
    sd.insert(n + ".scalar", random_tensor(dt, {}, rng));
    sd.insert(n + ".empty", random_tensor(dt, {4, 0}, rng));
    sd.insert(n + ".mat", random_tensor(dt, {3, 5}, rng));
  }
  save_safetensors(sd, path("all.safetensors"));
  expect_same(load_safetensors(path("all.safetensors")), sd);
}

TEST_F(SafetensorsTest, EmptyStateDict) {
  StateDict sd;
  std::string bytes = to_safetensors_bytes(sd);
  EXPECT_EQ(bytes, le64(8) + "{}      ");
  EXPECT_TRUE(from_safetensors_bytes(bytes.data(), bytes.size()).empty());
  save_safetensors(sd, path("e.safetensors"));
  EXPECT_TRUE(load_safetensors(path("e.safetensors")).empty());
}

TEST_F(SafetensorsTest, NonContiguousAndOffsetViewsAreWrittenContiguously) {
  Tensor base = affine(DType::Float32, {4, 6}, 0, 1);  // base[r][c] = 6r + c
  Tensor tr = base.transpose(0, 1);                     // [6, 4]
  Tensor sl = base.slice(1, 1, 6, 2);                   // [4, 3]: columns 1, 3, 5
  Tensor row = base.select(0, 2);                       // contiguous, storage offset 12
  ASSERT_FALSE(tr.is_contiguous());
  ASSERT_FALSE(sl.is_contiguous());
  ASSERT_EQ(row.storage_offset(), 12);
  StateDict sd;
  sd.insert("tr", tr);
  sd.insert("sl", sl);
  sd.insert("row", row);
  save_safetensors(sd, path("v.safetensors"));
  StateDict got = load_safetensors(path("v.safetensors"));
  ASSERT_EQ(got.keys(), (std::vector<std::string>{"tr", "sl", "row"}));

  const Tensor& gtr = got.at("tr");
  ASSERT_EQ(gtr.shape(), Shape({6, 4}));
  const float* p = static_cast<const float*>(gtr.raw_data());
  for (int c = 0; c < 6; ++c)
    for (int r = 0; r < 4; ++r) EXPECT_EQ(p[c * 4 + r], static_cast<float>(6 * r + c)) << c << "," << r;
  const Tensor& gsl = got.at("sl");
  ASSERT_EQ(gsl.shape(), Shape({4, 3}));
  p = static_cast<const float*>(gsl.raw_data());
  for (int r = 0; r < 4; ++r)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(p[r * 3 + j], static_cast<float>(6 * r + 1 + 2 * j));
  expect_same(got.at("row"), affine(DType::Float32, {6}, 12, 1), "row");
  // The source tensors are untouched.
  EXPECT_FALSE(tr.is_contiguous());
}

TEST_F(SafetensorsTest, NonContiguousEveryDType) {
  std::mt19937_64 rng(krill::test::run_seed() + 5);
  StateDict sd;
  std::map<std::string, std::string> want;  // expected bytes, computed element by element
  for (DType dt : kAllDTypes) {
    const std::size_t isz = itemsize(dt);
    Tensor base = random_tensor(dt, {3, 4, 5}, rng);
    const char* b = static_cast<const char*>(base.raw_data());
    auto at = [&](int i, int j, int k) { return std::string(b + ((i * 4 + j) * 5 + k) * isz, isz); };
    std::string n(dtype_name(dt));
    // permute(2, 0, 1): out[k][i][j] = base[i][j][k]
    sd.insert(n + ".perm", base.permute({2, 0, 1}));
    std::string& p = want[n + ".perm"];
    for (int k = 0; k < 5; ++k)
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 4; ++j) p += at(i, j, k);
    // slice with a step on the last dim, then select: base[1][:, 1::2]
    sd.insert(n + ".strided", base.select(0, 1).slice(1, 1, 5, 2));
    std::string& q = want[n + ".strided"];
    for (int j = 0; j < 4; ++j)
      for (int k = 1; k < 5; k += 2) q += at(1, j, k);
    // a 0-d view into the middle of the storage
    sd.insert(n + ".elem", base.select(0, 2).select(0, 3).select(0, 4));
    want[n + ".elem"] = at(2, 3, 4);
    // an empty view with odd strides
    sd.insert(n + ".empty", base.slice(1, 2, 2).transpose(0, 2));
    want[n + ".empty"] = "";
  }
  save_safetensors(sd, path("nc.safetensors"));
  StateDict got = load_safetensors(path("nc.safetensors"));
  ASSERT_EQ(got.keys(), sd.keys());
  for (const auto& [name, t] : sd) {
    EXPECT_EQ(got.at(name).shape(), t.shape()) << name;
    EXPECT_EQ(got.at(name).dtype(), t.dtype()) << name;
    EXPECT_EQ(hex(bytes_of(got.at(name))), hex(want.at(name))) << name;
  }
}

TEST_F(SafetensorsTest, MetadataRoundTrip) {
  StateDict sd;
  sd.insert("w", affine(DType::Float32, {2}, 1, 1));
  Meta meta{{"format", "pt"},
            {"", "empty key"},
            {"empty value", ""},
            {"tricky", "quote \" backslash \\ newline \n tab \t nul-free unicode \xc3\xa9 \xe4\xb8\xad"},
            {"__metadata__", "nested-looking key is fine"}};
  save_safetensors(sd, path("meta.safetensors"), meta);
  Meta got;
  StateDict back = load_safetensors(path("meta.safetensors"), &got);
  EXPECT_EQ(got, meta);
  expect_same(back, sd);
  // Loading without asking for metadata works too.
  expect_same(load_safetensors(path("meta.safetensors")), sd);
}

TEST_F(SafetensorsTest, ExactLayoutMatchesReferenceWriter) {
  // The reference library writes compact JSON, "__metadata__" first, padded with spaces to a
  // multiple of 8 bytes.
  StateDict sd;
  sd.insert("a", affine(DType::Float32, {2}, 1, 1));
  std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(h.size(), 54u);
  EXPECT_EQ(to_safetensors_bytes(sd), make_file(h + "  ", f32_bytes({1.0f, 2.0f})));

  std::string hm = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string padded = hm + std::string((8 - hm.size() % 8) % 8, ' ');
  EXPECT_EQ(to_safetensors_bytes(sd, {{"format", "pt"}}), make_file(padded, f32_bytes({1.0f, 2.0f})));

  // Offsets follow insertion order with no gaps; the header length is a multiple of 8.
  StateDict two;
  two.insert("second", affine(DType::Int64, {3}, 5, 1));
  two.insert("first", affine(DType::UInt8, {3}, 1, 1));
  two.insert("scalar", affine(DType::Float64, {}, 0.5, 0));
  std::string b = to_safetensors_bytes(two);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(b[i]);
  EXPECT_EQ(n % 8, 0u);
  std::string header = b.substr(8, n);
  EXPECT_NE(header.find(R"("second":{"dtype":"I64","shape":[3],"data_offsets":[0,24]})"), std::string::npos) << header;
  EXPECT_NE(header.find(R"("first":{"dtype":"U8","shape":[3],"data_offsets":[24,27]})"), std::string::npos) << header;
  EXPECT_NE(header.find(R"("scalar":{"dtype":"F64","shape":[],"data_offsets":[27,35]})"), std::string::npos) << header;
  EXPECT_LT(header.find("second"), header.find("first"));
  EXPECT_EQ(b.size(), 8 + n + 35);
}

TEST_F(SafetensorsTest, ReadsValidButUnusualHeaders) {
  // Whitespace, fields in another order, unknown extra fields, escaped names, header order
  // different from data order, no padding, zero-size tensors between others.
  std::string h = "\n { \"b\\u00e9\" : { \"data_offsets\" : [ 8 , 12 ], \"shape\" : [ 1 ], \"dtype\" : \"F32\", "
                  "\"extra\": {\"x\": [1, 2]} },\n"
                  "  \"z\": {\"dtype\":\"I32\",\"shape\":[0,5],\"data_offsets\":[8,8]},\n"
                  "  \"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]} } ";
  std::string bytes = make_file(h, f32_bytes({1.0f, 2.0f, 3.0f}));
  StateDict sd = from_safetensors_bytes(bytes.data(), bytes.size(), "unusual");
  ASSERT_EQ(sd.keys(), (std::vector<std::string>{"b\xc3\xa9", "z", "a"}));
  expect_same(sd.at("a"), affine(DType::Float32, {2}, 1, 1), "a");
  expect_same(sd.at("b\xc3\xa9"), affine(DType::Float32, {1}, 3, 0), "b");
  EXPECT_EQ(sd.at("z").shape(), Shape({0, 5}));
  EXPECT_EQ(sd.at("z").dtype(), DType::Int32);
}

// ---------------------------------------------------------------------------------------
// Writing errors and atomicity
// ---------------------------------------------------------------------------------------

TEST_F(SafetensorsTest, AtomicReplaceLeavesNoTemporaryFiles) {
  StateDict a, b;
  a.insert("x", affine(DType::Float32, {100}, 0, 1));
  b.insert("y", affine(DType::Int64, {3}, 7, 1));
  std::string p = path("model.safetensors");
  save_safetensors(a, p);
  save_safetensors(b, p);
  expect_same(load_safetensors(p), b);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"model.safetensors"});

  // A failing rename (the target is a non-empty directory) leaves the target and no temp file.
  fs::create_directories(path("occupied/inner"));
  EXPECT_THROW(save_safetensors(a, path("occupied")), IOError);
  EXPECT_TRUE(fs::is_directory(path("occupied/inner")));
  names.clear();
  for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"model.safetensors", "occupied"}));
}

TEST_F(SafetensorsTest, SaveErrors) {
  StateDict sd;
  sd.insert("x", affine(DType::Float32, {1}, 0, 1));
  try {
    save_safetensors(sd, path("no/such/dir/m.safetensors"));
    ADD_FAILURE() << "no IOError";
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("m.safetensors"), std::string::npos) << e.what();
  }
  StateDict undef;
  undef.insert("hole", Tensor());
  EXPECT_THROW(to_safetensors_bytes(undef), ValueError);
  StateDict reserved;
  reserved.insert("__metadata__", affine(DType::Float32, {1}, 0, 1));
  EXPECT_THROW(to_safetensors_bytes(reserved), ValueError);
  StateDict bad_utf8;
  bad_utf8.insert("bad\xff", affine(DType::Float32, {1}, 0, 1));
  EXPECT_THROW(to_safetensors_bytes(bad_utf8), ValueError);
  EXPECT_THROW(to_safetensors_bytes(sd, {{"k", "bad\xc3"}}), ValueError);
  EXPECT_FALSE(fs::exists(path("m.safetensors")));
}

TEST_F(SafetensorsTest, LoadIOErrors) {
  try {
    load_safetensors(path("missing.safetensors"));
    ADD_FAILURE() << "no IOError";
  } catch (const FormatError& e) {
    ADD_FAILURE() << "a missing file is an IOError, not a FormatError: " << e.what();
  } catch (const IOError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("missing.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  }
  EXPECT_THROW(load_safetensors(dir_), IOError);

  // A malformed file on disk: FormatError naming the path.
  StateDict sd;
  sd.insert("w", affine(DType::Float32, {4}, 0, 1));
  std::string good = to_safetensors_bytes(sd);
  write_file(path("trunc.safetensors"), good.substr(0, good.size() - 3));
  try {
    load_safetensors(path("trunc.safetensors"));
    ADD_FAILURE() << "no FormatError";
  } catch (const FormatError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path("trunc.safetensors") + ": tensor 'w': data_offsets [0, 16]", 0), 0u) << msg;
  }
}

// ---------------------------------------------------------------------------------------
// Malformed input: each case is refused with a FormatError that says what is wrong
// ---------------------------------------------------------------------------------------

TEST(SafetensorsMalformed, TooShortOrBadHeaderLength) {
  expect_format_error("", {"0 bytes", "too short"});
  expect_format_error(std::string(7, '\0'), {"7 bytes", "too short"});
  expect_format_error(le64(100) + "{}", {"header length 100", "2 bytes"});
  expect_format_error(le64(std::uint64_t{1} << 40) + "{}", {"header length 1099511627776", "limit"});
  expect_format_error(le64(~std::uint64_t{0}), {"header length 18446744073709551615"});
  expect_format_error(std::string("PK\x03\x04\x14\x00\x00\x00", 8) + "zipzipzip", {"zip archive"});
}

TEST(SafetensorsMalformed, HeaderNotJsonObject) {
  expect_format_error(make_file(""), {"not valid JSON"});
  expect_format_error(make_file("{\"a\": "), {"not valid JSON"});
  expect_format_error(make_file("not json at all"), {"not valid JSON"});
  expect_format_error(make_file("{} trailing"), {"not valid JSON"});
  expect_format_error(make_file("[1, 2]"), {"header is a JSON array"});
  expect_format_error(make_file("\"str\""), {"header is a JSON string"});
  expect_format_error(make_file("{\"a\": 5}"), {"tensor 'a'", "entry is a JSON number"});
  expect_format_error(make_file("{\"a\": \"\xff\"}"), {"not valid JSON"});  // invalid UTF-8
  expect_format_error(make_file("{\"a\": " + std::string(50, '[') + std::string(50, ']') + "}"), {"nested"});
  // Deep nesting must not blow the stack either.
  expect_format_error(make_file(std::string(200000, '[')), {"nested"});
}

TEST(SafetensorsMalformed, MissingFields) {
  expect_format_error(make_file(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", f32_bytes({1})),
                      {"tensor 'w'", "no \"dtype\""});
  expect_format_error(make_file(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", f32_bytes({1})),
                      {"tensor 'w'", "no \"shape\""});
  expect_format_error(make_file(R"({"w":{"dtype":"F32","shape":[1]}})", f32_bytes({1})),
                      {"tensor 'w'", "no \"data_offsets\""});
}

TEST(SafetensorsMalformed, BadDType) {
  expect_format_error(make_file("{\"w\":" + entry("F33", "[1]", "[0,4]") + "}", f32_bytes({1})),
                      {"tensor 'w'", "unknown dtype 'F33'", "F32"});
  expect_format_error(make_file("{\"w\":" + entry("f32", "[1]", "[0,4]") + "}", f32_bytes({1})),
                      {"unknown dtype 'f32'"});
  expect_format_error(make_file("{\"w\":" + entry("I8", "[4]", "[0,4]") + "}", f32_bytes({1})),
                      {"tensor 'w'", "dtype 'I8' is not supported by krill"});
  expect_format_error(make_file(R"({"w":{"dtype":5,"shape":[1],"data_offsets":[0,4]}})", f32_bytes({1})),
                      {"tensor 'w'", "dtype must be a string"});
}

TEST(SafetensorsMalformed, BadShape) {
  const std::string d = f32_bytes({1, 2});
  expect_format_error(make_file("{\"w\":" + entry("F32", "[-2]", "[0,8]") + "}", d),
                      {"tensor 'w'", "shape must be a list of non-negative integers", "[-2]"});
  expect_format_error(make_file("{\"w\":" + entry("F32", "[2.0]", "[0,8]") + "}", d), {"non-negative integers"});
  expect_format_error(make_file("{\"w\":" + entry("F32", "[1e0, 2]", "[0,8]") + "}", d), {"non-negative integers"});
  expect_format_error(make_file("{\"w\":" + entry("F32", "\"2\"", "[0,8]") + "}", d), {"non-negative integers"});
  expect_format_error(make_file("{\"w\":" + entry("F32", "[\"2\"]", "[0,8]") + "}", d), {"non-negative integers"});
  expect_format_error(make_file("{\"w\":" + entry("F32", "[null]", "[0,8]") + "}", d), {"non-negative integers"});
  expect_format_error(make_file("{\"w\":" + entry("F32", "{}", "[0,8]") + "}", d), {"non-negative integers"});
  expect_format_error(make_file("{\"w\":" + entry("F32", "[99999999999999999999999]", "[0,8]") + "}", d),
                      {"non-negative integers"});
  expect_format_error(make_file("{\"w\":" + entry("F32", "[1,1,1,1,1,1,2]", "[0,8]") + "}", d),
                      {"tensor 'w'", "7 dimensions", "at most 6"});
  // Element counts that overflow, with or without a zero dimension.
  expect_format_error(make_file("{\"w\":" + entry("F32", "[4294967296,4294967296]", "[0,8]") + "}", d),
                      {"tensor 'w'", "too many elements"});
  expect_format_error(make_file("{\"w\":" + entry("F32", "[4294967296,4294967296,0]", "[0,0]") + "}"),
                      {"too many elements"});
  expect_format_error(make_file("{\"w\":" + entry("F64", "[2305843009213693952]", "[0,8]") + "}", d),
                      {"too many elements"});
  expect_format_error(make_file("{\"w\":" + entry("F32", "[3]", "[0,8]") + "}", d),
                      {"tensor 'w': data_offsets [0, 8] hold 8 bytes but float32 [3] needs 12 bytes"});
}

TEST(SafetensorsMalformed, BadDataOffsets) {
  const std::string d = f32_bytes({1, 2});
  for (const char* bad : {"[8,0]"}) {
    expect_format_error(make_file("{\"w\":" + entry("F32", "[2]", bad) + "}", d), {"tensor 'w'", "begin > end"});
  }
  for (const char* bad : {"[0]", "[0,8,8]", "[]", "[\"0\",\"8\"]", "[-8,0]", "[0,8.0]", "8", "{\"0\":8}",
                          "[0,18446744073709551616]", "null"}) {
    expect_format_error(make_file("{\"w\":" + entry("F32", "[2]", bad) + "}", d),
                        {"tensor 'w'", "data_offsets must be [begin, end]"});
  }
  expect_format_error(make_file("{\"w\":" + entry("F32", "[2]", "[0,16]") + "}", d),
                      {"tensor 'w'", "data_offsets [0, 16] go past the end of the data buffer (8 bytes"});
  expect_format_error(make_file("{\"w\":" + entry("F32", "[2]", "[8,16]") + "}", d), {"past the end"});
  expect_format_error(
      make_file("{\"w\":" + entry("F32", "[2]", "[18446744073709551608,18446744073709551615]") + "}", d),
      {"past the end"});
  // The brief's example: offsets that hold the wrong number of bytes for dtype x shape.
  expect_format_error(make_file("{\"fc1.weight\":" + entry("F32", "[10,4]", "[0,200]") + "}", std::string(200, 'x')),
                      {"bad.safetensors: tensor 'fc1.weight': data_offsets [0, 200] hold 200 bytes but float32 "
                       "[10, 4] needs 160 bytes"});
  expect_format_error(make_file("{\"s\":" + entry("I64", "[]", "[0,4]") + "}", d),
                      {"tensor 's'", "int64 [] needs 8 bytes"});
}

TEST(SafetensorsMalformed, OverlapsHolesAndTrailingData) {
  const std::string d12 = f32_bytes({1, 2, 3});
  expect_format_error(
      make_file("{\"a\":" + entry("F32", "[2]", "[0,8]") + ",\"b\":" + entry("F32", "[2]", "[4,12]") + "}", d12),
      {"tensor 'b'", "overlap tensor 'a' [0, 8]"});
  // Same region twice.
  expect_format_error(
      make_file("{\"a\":" + entry("F32", "[2]", "[0,8]") + ",\"b\":" + entry("F32", "[2]", "[0,8]") + "}",
                f32_bytes({1, 2})),
      {"overlap"});
  // A zero-size tensor placed inside another.
  expect_format_error(
      make_file("{\"a\":" + entry("F32", "[2]", "[0,8]") + ",\"z\":" + entry("F32", "[0]", "[4,4]") + "}",
                f32_bytes({1, 2})),
      {"tensor 'z'", "overlap tensor 'a'"});
  // Contained in a bigger tensor listed later in the header.
  expect_format_error(
      make_file("{\"small\":" + entry("F32", "[1]", "[4,8]") + ",\"big\":" + entry("F32", "[3]", "[0,12]") + "}", d12),
      {"tensor 'small'", "overlap tensor 'big'"});
  expect_format_error(
      make_file("{\"a\":" + entry("F32", "[1]", "[0,4]") + ",\"b\":" + entry("F32", "[1]", "[8,12]") + "}", d12),
      {"bytes [4, 8) of the data buffer belong to no tensor"});
  expect_format_error(make_file("{\"a\":" + entry("F32", "[1]", "[4,8]") + "}", f32_bytes({1, 2})),
                      {"bytes [0, 4)", "no tensor"});
  expect_format_error(make_file("{\"a\":" + entry("F32", "[2]", "[0,8]") + "}", d12),
                      {"bytes [8, 12) at the end of the data buffer belong to no tensor"});
  expect_format_error(make_file("{}", "x"), {"bytes [0, 1)"});
}

TEST(SafetensorsMalformed, DuplicateNamesAndKeys) {
  const std::string d = f32_bytes({1, 2});
  expect_format_error(
      make_file("{\"a\":" + entry("F32", "[1]", "[0,4]") + ",\"a\":" + entry("F32", "[1]", "[4,8]") + "}", d),
      {"tensor name 'a' appears twice"});
  expect_format_error(make_file(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d),
                      {"key 'dtype' twice"});
  expect_format_error(
      make_file(R"({"__metadata__":{},"__metadata__":{},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d),
      {"'__metadata__' appears twice"});
}

TEST(SafetensorsMalformed, BadMetadata) {
  const std::string e = "\"a\":" + entry("F32", "[1]", "[0,4]");
  const std::string d = f32_bytes({1});
  expect_format_error(make_file("{\"__metadata__\":[1]," + e + "}", d), {"\"__metadata__\" is a JSON array"});
  expect_format_error(make_file("{\"__metadata__\":\"x\"," + e + "}", d), {"\"__metadata__\" is a JSON string"});
  expect_format_error(make_file("{\"__metadata__\":{\"k\":1}," + e + "}", d),
                      {"\"__metadata__\" entry 'k' is a JSON number", "must be strings"});
  expect_format_error(make_file("{\"__metadata__\":{\"k\":null}," + e + "}", d), {"entry 'k'"});
  // Valid metadata, read even when the caller does not ask for it.
  std::string ok = make_file("{\"__metadata__\":{\"k\":\"v\"}," + e + "}", d);
  Meta m;
  EXPECT_EQ(from_safetensors_bytes(ok.data(), ok.size(), "ok", &m).size(), 1u);
  EXPECT_EQ(m, (Meta{{"k", "v"}}));
}

TEST(SafetensorsMalformed, BoolBytesMustBeZeroOrOne) {
  expect_format_error(make_file("{\"m\":" + entry("BOOL", "[3]", "[0,3]") + "}", std::string("\x01\x00\x02", 3)),
                      {"tensor 'm'", "bool element 2 is the byte 2"});
}

TEST(SafetensorsMalformed, NamesInMessagesArePrintable) {
  expect_format_error(make_file("{\"a\\nb\":" + entry("X", "[1]", "[0,4]") + "}", f32_bytes({1})),
                      {"tensor 'a\\x0ab'", "unknown dtype"});
}

// ---------------------------------------------------------------------------------------
// Fuzzing: damaged files load or throw krill::Error; they never crash or read out of bounds
// ---------------------------------------------------------------------------------------

namespace {

std::string fuzz_base() {
  std::mt19937_64 rng(42);
  StateDict sd;
  sd.insert("fc1.weight", random_tensor(DType::Float32, {3, 2}, rng));
  sd.insert("fc1.bias", random_tensor(DType::Float32, {3}, rng));
  sd.insert("steps", random_tensor(DType::Int64, {}, rng));
  sd.insert("mask", random_tensor(DType::Bool, {5}, rng));
  sd.insert("empty", random_tensor(DType::Float16, {0, 2}, rng));
  sd.insert("h", random_tensor(DType::BFloat16, {2, 1, 2}, rng));
  return to_safetensors_bytes(sd, {{"format", "pt"}});
}

// Returns "ok", "error" or fails the test for an exception that is not a krill::Error.
// The bytes are copied into an exactly-sized heap buffer so that ASan catches any overread.
std::string try_load(const std::string& bytes, const std::string& what) {
  std::unique_ptr<char[]> buf(new char[bytes.size() ? bytes.size() : 1]);
  std::memcpy(buf.get(), bytes.data(), bytes.size());
  try {
    StateDict sd = from_safetensors_bytes(buf.get(), bytes.size(), "fuzz");
    std::size_t total = 0;
    for (const auto& [n, t] : sd) total += t.nbytes();
    EXPECT_LE(total, bytes.size()) << what;
    return "ok";
  } catch (const krill::Error&) {
    return "error";
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": non-krill exception " << typeid(e).name() << ": " << e.what();
    return "bad";
  }
}

}  // namespace

TEST(SafetensorsFuzz, EveryTruncationIsRefused) {
  const std::string good = fuzz_base();
  ASSERT_EQ(try_load(good, "intact"), "ok");
  for (std::size_t len = 0; len < good.size(); ++len)
    EXPECT_EQ(try_load(good.substr(0, len), "truncated to " + std::to_string(len)), "error") << len;
  // Extra bytes at the end are refused as well.
  EXPECT_EQ(try_load(good + "x", "appended"), "error");
}

TEST(SafetensorsFuzz, RandomByteFlips) {
  const std::string good = fuzz_base();
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(good[i]);
  std::mt19937_64 rng(krill::test::run_seed() + 2);
  const std::string interesting = "{}[]\",:0123456789-+.eE \\u";
  int ok = 0, err = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string b = good;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      std::size_t pos;
      switch (rng() % 4) {
        case 0: pos = rng() % 8; break;                 // the length field
        case 1: pos = rng() % b.size(); break;          // anywhere
        default: pos = 8 + rng() % n; break;            // the header
      }
      if (rng() % 2) b[pos] = interesting[rng() % interesting.size()];
      else b[pos] = static_cast<char>(rng());
    }
    (try_load(b, "flip iteration " + std::to_string(iter)) == "ok" ? ok : err)++;
    if (HasFailure()) break;
  }
  std::cerr << "byte flips: " << ok << " loaded, " << err << " refused\n";
  EXPECT_GT(err, 0);
}

TEST(SafetensorsFuzz, HeaderNumberMutations) {
  // Replace numbers in the header with hostile values (keeping the length field right), which
  // reaches the shape / offset validation far more often than random flips.
  const std::string good = fuzz_base();
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(good[i]);
  const std::string header = good.substr(8, n), data = good.substr(8 + n);
  std::vector<std::pair<std::size_t, std::size_t>> numbers;  // [start, end) of digit runs
  for (std::size_t i = 0; i < header.size();) {
    if (std::isdigit(static_cast<unsigned char>(header[i]))) {
      std::size_t j = i;
      while (j < header.size() && std::isdigit(static_cast<unsigned char>(header[j]))) ++j;
      numbers.emplace_back(i, j);
      i = j;
    } else {
      ++i;
    }
  }
  ASSERT_GT(numbers.size(), 10u);
  const std::vector<std::string> hostile = {"0", "1", "2", "3", "4", "7", "8", "12", "16", "24", "-1", "-0", "1.5",
                                            "1e3", "4294967296", "9223372036854775807", "9223372036854775808",
                                            "18446744073709551615", "18446744073709551616", "99999999999999999999999",
                                            "2305843009213693952", "null", "\"4\"", "[]"};
  std::mt19937_64 rng(krill::test::run_seed() + 3);
  int ok = 0, err = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string h = header;
    int muts = 1 + static_cast<int>(rng() % 3);
    // Mutate from the back so earlier positions stay valid.
    std::vector<std::size_t> picks;
    for (int m = 0; m < muts; ++m) picks.push_back(rng() % numbers.size());
    std::sort(picks.rbegin(), picks.rend());
    picks.erase(std::unique(picks.begin(), picks.end()), picks.end());
    for (auto k : picks) h.replace(numbers[k].first, numbers[k].second - numbers[k].first, hostile[rng() % hostile.size()]);
    std::string d = data;
    if (rng() % 4 == 0) d.resize(rng() % (data.size() + 16), 'x');
    (try_load(make_file(h, d), "number mutation " + std::to_string(iter) + ": " + h) == "ok" ? ok : err)++;
    if (HasFailure()) break;
  }
  std::cerr << "number mutations: " << ok << " loaded, " << err << " refused\n";
  EXPECT_GT(err, 0);
  EXPECT_GT(ok, 0);
}

// ---------------------------------------------------------------------------------------
// Interop with PyTorch
// ---------------------------------------------------------------------------------------

TEST_F(SafetensorsTest, LoadsFilesWrittenFromPyTorch) {
  const auto seed = krill::test::run_seed();
  krill::test::run_oracle("safetensors_oracle.py", {"write", dir_, std::to_string(seed)});

  // Reference: name dtype shape hexbytes, in data order; meta lines.
  struct Ref {
    std::string name, dtype;
    Shape shape;
    std::string bytes;
  };
  std::vector<Ref> refs;
  Meta want_meta;
  std::ifstream f(path("reference.txt"));
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string a, b, c, d;
    ls >> a >> b >> c;
    if (a == "meta") {
      want_meta[unhex(b)] = unhex(c);
      continue;
    }
    ls >> d;
    Shape s;
    if (c != "-") {
      std::stringstream cs(c);
      std::string dim;
      while (std::getline(cs, dim, 'x')) s.push_back(std::stoll(dim));
    }
    refs.push_back({a, b, s, unhex(d)});
  }
  ASSERT_GE(refs.size(), 10u);

  for (const char* file : {"torch.safetensors", "torch_unpadded.safetensors"}) {
    SCOPED_TRACE(file);
    Meta meta;
    StateDict sd = load_safetensors(path(file), &meta);
    EXPECT_EQ(meta, want_meta);
    ASSERT_EQ(sd.size(), refs.size());
    std::vector<std::string> want_order;
    for (const auto& r : refs) {
      want_order.push_back(r.name);
      const Tensor* t = sd.find(r.name);
      ASSERT_NE(t, nullptr) << r.name;
      EXPECT_EQ(dtype_name(t->dtype()), r.dtype) << r.name;
      EXPECT_EQ(t->shape(), r.shape) << r.name << ": " << t->shape().str() << " vs " << r.shape.str();
      EXPECT_EQ(hex(bytes_of(*t)), hex(r.bytes)) << r.name;
    }
    // The reference-layout file lists tensors in data order: krill keeps that order.
    if (std::string(file) == "torch.safetensors") {
      EXPECT_EQ(sd.keys(), want_order);
    }
  }

  // Re-saving what PyTorch wrote gives a file that loads back identically.
  StateDict sd = load_safetensors(path("torch.safetensors"));
  save_safetensors(sd, path("resaved.safetensors"), want_meta);
  Meta meta;
  expect_same(load_safetensors(path("resaved.safetensors"), &meta), sd);
  EXPECT_EQ(meta, want_meta);
}

TEST_F(SafetensorsTest, PyTorchReadsFilesWrittenByKrill) {
  struct Spec {
    std::string name;
    Tensor t;
    std::string kind;  // oracle spec after the shape
  };
  std::vector<Spec> specs;
  auto add_affine = [&](const std::string& name, DType dt, const Shape& s, const std::string& start,
                        const std::string& step) {
    specs.push_back({name, affine(dt, s, std::stod(start), std::stod(step)), "affine " + start + " " + step});
  };
  add_affine("fc1.weight", DType::Float32, {10, 5}, "-1.375", "0.0625");
  add_affine("fc1.bias", DType::Float32, {10}, "0.5", "-0.25");
  add_affine("bn.num_batches_tracked", DType::Int64, {}, "123456789012", "0");
  add_affine("index", DType::Int64, {2, 3}, "-1099511627776", "7");
  add_affine("i32", DType::Int32, {4}, "-2", "3");
  add_affine("u8", DType::UInt8, {3, 2}, "250", "1");
  add_affine("mask", DType::Bool, {5}, "-2", "1");
  add_affine("f64", DType::Float64, {3}, "0.125", "0.375");
  add_affine("f16", DType::Float16, {2, 2}, "-1", "0.5");
  add_affine("bf16", DType::BFloat16, {3}, "2", "-0.75");
  add_affine("empty", DType::Float32, {0, 3}, "0", "1");
  add_affine("deep", DType::Float32, {1, 2, 1, 2, 1, 2}, "3", "0.5");
  // Non-contiguous inputs.
  Tensor base = affine(DType::Float32, {2, 3}, 1, 1);
  specs.push_back({"transposed", base.t(), "affineT 1 1"});
  Tensor big = affine(DType::Float32, {4, 6}, 0, 1);
  Tensor sl = big.slice(1, 1, 6, 2);
  std::string want_sl;
  for (int r = 0; r < 4; ++r)
    for (int j = 0; j < 3; ++j) want_sl += f32_bytes({static_cast<float>(6 * r + 1 + 2 * j)});
  specs.push_back({"sliced", sl, "hex " + hex(want_sl)});
  specs.push_back({"row", big.select(0, 3), "affine 18 1"});
  // Random float bits (NaN payloads, denormals, -0.0) must arrive bit-exact.
  std::mt19937_64 rng(krill::test::run_seed() + 4);
  Tensor rnd = random_tensor(DType::Float32, {17}, rng);
  specs.push_back({"random", rnd, "hex " + hex(bytes_of(rnd))});

  Meta meta{{"format", "pt"}, {"krill", "unicode \xc3\xa9 \xe4\xb8\xad \"q\" \\ \n end"}};
  StateDict sd;
  std::ostringstream spec;
  for (const auto& s : specs) {
    sd.insert(s.name, s.t);
    std::string shape = "-";
    if (s.t.dim() > 0) {
      shape.clear();
      for (int i = 0; i < s.t.dim(); ++i) shape += (i ? "x" : "") + std::to_string(s.t.size(i));
    }
    spec << "tensor " << s.name << " " << dtype_name(s.t.dtype()) << " " << shape << " " << s.kind << "\n";
  }
  for (const auto& [k, v] : meta) spec << "meta " << hex(k) << " " << hex(v) << "\n";
  write_file(path("spec.txt"), spec.str());
  save_safetensors(sd, path("krill.safetensors"), meta);
  std::string out =
      krill::test::run_oracle("safetensors_oracle.py", {"check", path("krill.safetensors"), path("spec.txt")});
  EXPECT_NE(out.find("ok: " + std::to_string(specs.size()) + " tensors"), std::string::npos) << out;

  // The oracle must notice a wrong value (guards against a check that always passes).
  std::string bytes = read_file(path("krill.safetensors"));
  bytes[bytes.size() - 1] ^= 0x40;
  write_file(path("broken.safetensors"), bytes);
  std::string broken_out;
  int rc = krill::test::run_command(std::string(KRILL_TEST_PYTHON) + " " + krill::test::source_dir() +
                                        "/tests/oracle/safetensors_oracle.py check " + path("broken.safetensors") +
                                        " " + path("spec.txt"),
                                    &broken_out);
  EXPECT_NE(rc, 0) << broken_out;
  EXPECT_NE(broken_out.find("random: values differ"), std::string::npos) << broken_out;
}
