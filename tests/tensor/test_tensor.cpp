// Tensor core behaviour: creation and dtypes, from_blob ownership, shapes and strides, views
// and storage sharing, geometry of view ops, conversion, item(), printing (against PyTorch's
// repr through tests/oracle/nn_oracle.py), devices, in-place ops, and the seeded generator
// (bit-exact against torch.manual_seed for the same sequence of draws).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/expect.hpp"
#include "krill/krill.hpp"
#include "support/oracle.hpp"

using namespace krill;

namespace {

std::vector<float> fvec(const Tensor& t) { return t.to_vector<float>(); }
std::vector<std::int64_t> ivec(const Tensor& t) { return t.to_vector<std::int64_t>(); }

// Runs `f`, expects it to throw E, and returns the message.
using krill::test::contains;
using krill::test::error_of;

}  // namespace

// ---------------------------------------------------------------- creation and dtypes

TEST(TensorCreate, ZerosOnesFullPerDType) {
  Tensor z = zeros({2, 3});
  EXPECT_EQ(z.dtype(), DType::Float32);
  EXPECT_EQ(z.shape(), Shape({2, 3}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.nbytes(), 24u);
  EXPECT_EQ(fvec(z), std::vector<float>(6, 0.f));

  Tensor o = ones({4}, kInt64);
  EXPECT_EQ(o.dtype(), DType::Int64);
  EXPECT_EQ(o.nbytes(), 32u);
  EXPECT_EQ(ivec(o), std::vector<std::int64_t>(4, 1));

  Tensor b = full({3}, 2.0, kBool);
  EXPECT_EQ(b.dtype(), DType::Bool);
  EXPECT_EQ(b.nbytes(), 3u);
  for (bool v : b.to_vector<bool>()) EXPECT_TRUE(v);
  Tensor bz = zeros({2}, kBool);
  for (bool v : bz.to_vector<bool>()) EXPECT_FALSE(v);

  Tensor d = full({2, 2}, 0.1, DType::Float64);
  EXPECT_EQ(d.dtype(), DType::Float64);
  EXPECT_EQ(d.nbytes(), 32u);
  for (double v : d.to_vector<double>()) EXPECT_EQ(v, 0.1);  // not rounded through float

  Tensor f = full({2}, -3.5);
  EXPECT_EQ(fvec(f), (std::vector<float>{-3.5f, -3.5f}));

  // *_like keep dtype and shape
  Tensor zl = zeros_like(o);
  EXPECT_EQ(zl.dtype(), DType::Int64);
  EXPECT_EQ(zl.shape(), Shape({4}));
  EXPECT_EQ(ivec(zl), std::vector<std::int64_t>(4, 0));
  EXPECT_EQ(full_like(d, 7.0).to_vector<double>(), std::vector<double>(4, 7.0));

  // 0-d tensors
  Tensor s = scalar_tensor(2.5);
  EXPECT_EQ(s.ndim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item<float>(), 2.5f);

  // zero-sized
  Tensor e = zeros({0, 3});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_EQ(e.shape(), Shape({0, 3}));

  EXPECT_THROW(zeros({2, -1}), ShapeError);
}

TEST(TensorCreate, RequiresGradOption) {
  Tensor a = zeros({2}, TensorOptions().requires_grad());
  EXPECT_TRUE(a.requires_grad());
  EXPECT_TRUE(a.is_leaf());
  EXPECT_THROW(zeros({2}, TensorOptions(kInt64).requires_grad()), AutogradError);
}

TEST(TensorCreate, Arange) {
  Tensor a = arange(5);
  EXPECT_EQ(a.dtype(), DType::Int64);
  EXPECT_EQ(ivec(a), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));

  Tensor b = arange(0.0, 1.0, 0.25);
  EXPECT_EQ(b.dtype(), DType::Float32);
  EXPECT_EQ(fvec(b), (std::vector<float>{0.f, 0.25f, 0.5f, 0.75f}));

  // like torch.arange(1, 2.5, 0.5) -> [1.0, 1.5, 2.0]; end excluded
  EXPECT_EQ(fvec(arange(1.0, 2.5, 0.5)), (std::vector<float>{1.f, 1.5f, 2.f}));
  // negative step
  EXPECT_EQ(fvec(arange(3.0, 0.0, -1.0)), (std::vector<float>{3.f, 2.f, 1.f}));
  // ceil((10 - 0) / 3) = 4 elements
  EXPECT_EQ(ivec(arange(0.0, 10.0, 3.0, kInt64)), (std::vector<std::int64_t>{0, 3, 6, 9}));
  Tensor c = arange(0.0, 3.0, 1.0, DType::Float64);
  EXPECT_EQ(c.dtype(), DType::Float64);
  EXPECT_EQ(c.to_vector<double>(), (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(arange(0).numel(), 0);

  EXPECT_THROW(arange(0.0, 1.0, 0.0), ValueError);
  EXPECT_THROW(arange(0.0, 1.0, -1.0), ValueError);
  EXPECT_THROW(arange(0.0, 3.0, 1.0, kBool), DTypeError);
}

TEST(TensorCreate, FromLists) {
  Tensor f = tensor({1.f, 2.f, 3.f});
  EXPECT_EQ(f.dtype(), DType::Float32);
  EXPECT_EQ(f.shape(), Shape({3}));

  Tensor d = tensor({0.5, 1.5}, {2, 1});  // double literals -> float32, like torch.tensor
  EXPECT_EQ(d.dtype(), DType::Float32);
  EXPECT_EQ(d.shape(), Shape({2, 1}));
  EXPECT_EQ(fvec(d), (std::vector<float>{0.5f, 1.5f}));

  Tensor i = tensor({0, 2, 1});
  EXPECT_EQ(i.dtype(), DType::Int64);
  EXPECT_EQ(ivec(i), (std::vector<std::int64_t>{0, 2, 1}));

  Tensor iv = tensor(std::vector<std::int64_t>{5, 6, 7, 8}, {2, 2});
  EXPECT_EQ(iv.shape(), Shape({2, 2}));
  EXPECT_EQ(iv[1][0].item<std::int64_t>(), 7);

  Tensor fv = tensor(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::Float64);
  EXPECT_EQ(fv.dtype(), DType::Float64);
  EXPECT_EQ(fv[1][2].item<double>(), 6.0);

  std::string msg = error_of<ShapeError>([] { tensor({1.f, 2.f, 3.f}, {2, 2}); });
  EXPECT_TRUE(contains(msg, "3 values")) << msg;
  EXPECT_THROW(tensor(std::vector<std::int64_t>{1, 2}, {3}), ShapeError);
}

TEST(TensorCreate, FromBlobDeleterRunsOnceWhenLastViewDies) {
  float buf[6] = {1, 2, 3, 4, 5, 6};
  int calls = 0;
  void* seen = nullptr;
  Tensor survivor;
  {
    Tensor t = from_blob(buf, {2, 3}, kFloat32, [&](void* p) {
      ++calls;
      seen = p;
    });
    EXPECT_EQ(t.raw_data(), static_cast<void*>(buf));  // no copy
    EXPECT_EQ(t.dtype(), DType::Float32);
    EXPECT_TRUE(t.is_contiguous());
    buf[4] = 50;  // the tensor sees the caller's memory
    EXPECT_EQ(t[1][1].item<float>(), 50.f);
    Tensor v1 = t.transpose(0, 1);
    survivor = t.select(0, 1);
    Tensor c = t.clone();  // own storage: dropping it must not run the deleter
  }
  EXPECT_EQ(calls, 0) << "deleter ran while a view was alive";
  EXPECT_EQ(fvec(survivor), (std::vector<float>{4, 50, 6}));
  Tensor second = survivor;  // another handle to the same view
  survivor = Tensor();
  EXPECT_EQ(calls, 0);
  second = Tensor();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, static_cast<void*>(buf));

  // Without a deleter, nothing is freed (stack memory here).
  std::int64_t ibuf[4] = {1, 2, 3, 4};
  {
    Tensor ti = from_blob(ibuf, {4}, kInt64);
    ti.mul_(2.0);  // writes through to the caller's memory
  }
  EXPECT_EQ(ibuf[3], 8);

  double dbuf[2] = {0.25, 0.5};
  Tensor td = from_blob(dbuf, {2}, DType::Float64);
  EXPECT_EQ(td.to_vector<double>(), (std::vector<double>{0.25, 0.5}));
}

// ---------------------------------------------------------------- shapes, strides, contiguity

TEST(TensorShape, UpToSixDimensions) {
  Tensor t = zeros({1, 2, 1, 3, 1, 2});
  EXPECT_EQ(t.ndim(), 6);
  EXPECT_EQ(t.numel(), 12);
  EXPECT_EQ(t.strides(), Shape({12, 6, 6, 2, 2, 1}));
  EXPECT_EQ(t.size(-1), 2);
  EXPECT_EQ(t.size(3), 3);
  EXPECT_THROW(t.size(6), IndexError);
  EXPECT_THROW(t.size(-7), IndexError);

  std::string msg = error_of<ShapeError>([] { Shape s{1, 2, 3, 4, 5, 6, 7}; });
  EXPECT_TRUE(contains(msg, "7 dimensions")) << msg;
  EXPECT_TRUE(contains(msg, "at most 6")) << msg;
  EXPECT_THROW(zeros(std::vector<std::int64_t>{1, 1, 1, 1, 1, 1, 1}), ShapeError);
  EXPECT_THROW(t.unsqueeze(0), ShapeError);
  Shape six{1, 1, 1, 1, 1, 1};
  EXPECT_THROW(six.push_back(1), ShapeError);
}

TEST(TensorShape, StridesAndContiguity) {
  Tensor t = zeros({2, 3, 4});
  EXPECT_EQ(t.strides(), Shape({12, 4, 1}));
  EXPECT_EQ(t.stride(0), 12);
  EXPECT_EQ(t.stride(-1), 1);
  EXPECT_TRUE(t.is_contiguous());

  Tensor tr = t.transpose(0, 2);
  EXPECT_EQ(tr.shape(), Shape({4, 3, 2}));
  EXPECT_EQ(tr.strides(), Shape({1, 4, 12}));
  EXPECT_FALSE(tr.is_contiguous());

  // size-1 dimensions do not affect contiguity (PyTorch's rule)
  Tensor u = zeros({3, 1, 4});
  EXPECT_TRUE(u.transpose(0, 1).is_contiguous());

  EXPECT_FALSE(t.slice(2, 0, 4, 2).is_contiguous());
  EXPECT_TRUE(t.narrow(0, 1, 1).is_contiguous());
  EXPECT_FALSE(t.narrow(1, 0, 2).is_contiguous());
  EXPECT_FALSE(zeros({3, 1}).expand({3, 4}).is_contiguous());
  EXPECT_TRUE(zeros({0, 5}).is_contiguous());
  EXPECT_TRUE(scalar_tensor(1.0).is_contiguous());
}

// ---------------------------------------------------------------- views

TEST(TensorView, ViewsShareStorage) {
  Tensor base = arange(0.0, 12.0, 1.0).reshape({3, 4});
  EXPECT_TRUE(base.is_contiguous());

  Tensor v = base.view({4, 3});
  EXPECT_EQ(v.impl()->storage.get(), base.impl()->storage.get());
  v.data_ptr<float>()[5] = 100.f;
  EXPECT_EQ(base[1][1].item<float>(), 100.f);

  Tensor row = base.select(0, 2);  // [8, 9, 10, 11]
  row.fill_(-1.0);
  EXPECT_EQ(fvec(base.select(0, 2)), std::vector<float>(4, -1.f));

  Tensor col = base.select(1, 0);  // strided view
  EXPECT_EQ(col.stride(0), 4);
  col.add_(1000.0);
  EXPECT_EQ(fvec(base), (std::vector<float>{1000, 1, 2, 3, 1004, 100, 6, 7, 999, -1, -1, -1}));

  Tensor tr = base.t();
  tr.select(0, 3).mul_(0.0);  // column 3 of base
  EXPECT_EQ(base[0][3].item<float>(), 0.f);
  EXPECT_EQ(base[1][3].item<float>(), 0.f);

  Tensor sl = base.slice(1, 1, std::nullopt, 2);  // columns 1 and 3
  EXPECT_EQ(sl.shape(), Shape({3, 2}));
  sl.copy_(full({2}, 5.0));
  EXPECT_EQ(fvec(base.select(0, 0)), (std::vector<float>{1000, 5, 2, 5}));

  // detach shares too
  Tensor det = base.detach();
  EXPECT_EQ(det.impl()->storage.get(), base.impl()->storage.get());
}

TEST(TensorView, ReshapeOfNonContiguousCopiesAndViewRefuses) {
  Tensor base = arange(0.0, 6.0, 1.0).reshape({2, 3});
  Tensor tr = base.t();  // [3, 2], not contiguous
  ASSERT_FALSE(tr.is_contiguous());

  std::string msg = error_of<ShapeError>([&] { tr.view({6}); });
  EXPECT_TRUE(contains(msg, "view")) << msg;
  EXPECT_TRUE(contains(msg, "reshape")) << msg;  // says what to do instead
  EXPECT_TRUE(contains(msg, "[3, 2]")) << msg;

  Tensor r = tr.reshape({6});
  EXPECT_NE(r.impl()->storage.get(), base.impl()->storage.get()) << "reshape of a transposed tensor must copy";
  EXPECT_EQ(fvec(r), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  r.fill_(9.0);
  EXPECT_EQ(base[0][0].item<float>(), 0.f);

  // reshape of a contiguous tensor is a view
  Tensor r2 = base.reshape({3, -1});
  EXPECT_EQ(r2.shape(), Shape({3, 2}));
  EXPECT_EQ(r2.impl()->storage.get(), base.impl()->storage.get());

  // non-contiguous but viewable: a slice of rows of a [4, 3] tensor merged with its trailing dims
  Tensor big = arange(0.0, 24.0, 1.0).reshape({4, 2, 3});
  Tensor rows = big.slice(0, 1, 3);  // [2, 2, 3], contiguous in its last two dims
  Tensor flat = rows.view({2, 6});
  EXPECT_EQ(flat.impl()->storage.get(), big.impl()->storage.get());
  EXPECT_EQ(flat[0][0].item<float>(), 6.f);

  EXPECT_THROW(base.view({4}), ShapeError);
  EXPECT_THROW(base.reshape({-1, -1}), ShapeError);
  EXPECT_THROW(base.reshape({4, -1}), ShapeError);
}

TEST(TensorView, Geometry) {
  Tensor t = arange(0.0, 24.0, 1.0).reshape({2, 3, 4});

  Tensor p = t.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), Shape({4, 2, 3}));
  EXPECT_EQ(p.strides(), Shape({1, 12, 4}));
  EXPECT_EQ(p[3][1][2].item<float>(), t[1][2][3].item<float>());
  EXPECT_THROW(t.permute({0, 0, 1}), ShapeError);
  EXPECT_THROW(t.permute({0, 1}), ShapeError);

  Tensor tr = t.transpose(-1, 0);
  EXPECT_EQ(tr.shape(), Shape({4, 3, 2}));
  EXPECT_THROW(t.t(), ShapeError);
  EXPECT_THROW(t.transpose(0, 3), IndexError);

  // slice with step and negative bounds: t[:, -2:, 1::2]
  Tensor s = t.slice(1, -2, std::nullopt).slice(2, 1, std::nullopt, 2);
  EXPECT_EQ(s.shape(), Shape({2, 2, 2}));
  EXPECT_EQ(s.strides(), Shape({12, 4, 2}));
  EXPECT_EQ(s.storage_offset(), 5);
  EXPECT_EQ(fvec(s), (std::vector<float>{5, 7, 9, 11, 17, 19, 21, 23}));
  EXPECT_EQ(t.slice(2, 1, 3, 5).shape(), Shape({2, 3, 1}));
  EXPECT_EQ(t.slice(2, 3, 1).shape(), Shape({2, 3, 0}));  // empty, like Python
  EXPECT_EQ(t.slice(2, 2, 100).shape(), Shape({2, 3, 2}));  // clamped
  EXPECT_THROW(t.slice(0, 0, 1, 0), ValueError);

  Tensor sel = t.select(1, -1);
  EXPECT_EQ(sel.shape(), Shape({2, 4}));
  EXPECT_EQ(sel.storage_offset(), 8);
  EXPECT_EQ(fvec(sel), (std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23}));
  std::string msg = error_of<IndexError>([&] { t.select(1, 3); });
  EXPECT_TRUE(contains(msg, "index 3 is out of bounds")) << msg;

  Tensor n = t.narrow(2, 1, 2);
  EXPECT_EQ(n.shape(), Shape({2, 3, 2}));
  EXPECT_EQ(n.storage_offset(), 1);
  EXPECT_EQ(n[1][2][1].item<float>(), 22.f);
  EXPECT_THROW(t.narrow(2, 3, 2), IndexError);

  Tensor col = arange(0.0, 3.0, 1.0).reshape({3, 1});
  Tensor e = col.expand({2, 3, 4});
  EXPECT_EQ(e.shape(), Shape({2, 3, 4}));
  EXPECT_EQ(e.strides(), Shape({0, 1, 0}));
  EXPECT_EQ(e.impl()->storage.get(), col.impl()->storage.get());
  EXPECT_EQ(e[1][2][3].item<float>(), 2.f);
  EXPECT_EQ(col.expand({-1, 5}).shape(), Shape({3, 5}));
  EXPECT_THROW(col.expand({2, 4}), ShapeError);
  EXPECT_THROW(col.expand({3}), ShapeError);
  EXPECT_EQ(col.expand_as(zeros({3, 7})).shape(), Shape({3, 7}));

  Tensor u = t.unsqueeze(1);
  EXPECT_EQ(u.shape(), Shape({2, 1, 3, 4}));
  EXPECT_EQ(t.unsqueeze(-1).shape(), Shape({2, 3, 4, 1}));
  EXPECT_EQ(t.unsqueeze(3).shape(), Shape({2, 3, 4, 1}));
  EXPECT_THROW(t.unsqueeze(5), IndexError);

  Tensor q = zeros({1, 3, 1, 2});
  EXPECT_EQ(q.squeeze().shape(), Shape({3, 2}));
  EXPECT_EQ(q.squeeze(2).shape(), Shape({1, 3, 2}));
  EXPECT_EQ(q.squeeze(1).shape(), Shape({1, 3, 1, 2}));  // size 3: unchanged
  EXPECT_EQ(zeros({1, 1}).squeeze().ndim(), 0);

  EXPECT_EQ(t.flatten().shape(), Shape({24}));
  EXPECT_EQ(t.flatten(1).shape(), Shape({2, 12}));
  EXPECT_EQ(t.flatten(0, 1).shape(), Shape({6, 4}));
  EXPECT_EQ(scalar_tensor(1.0).flatten().shape(), Shape({1}));
  EXPECT_THROW(t.flatten(2, 1), ValueError);
  // flatten of a non-contiguous tensor copies, values in logical order
  EXPECT_EQ(fvec(t.transpose(0, 2).flatten()).at(1), 12.f);
}

TEST(TensorView, ContiguousAndClone) {
  Tensor t = arange(0.0, 6.0, 1.0).reshape({2, 3});
  Tensor c = t.contiguous();
  EXPECT_EQ(c.impl(), t.impl()) << "contiguous() of a contiguous tensor returns it";

  Tensor tr = t.t();
  Tensor tc = tr.contiguous();
  EXPECT_TRUE(tc.is_contiguous());
  EXPECT_NE(tc.impl()->storage.get(), t.impl()->storage.get());
  EXPECT_EQ(tc.strides(), Shape({2, 1}));
  EXPECT_EQ(fvec(tc), (std::vector<float>{0, 3, 1, 4, 2, 5}));

  Tensor cl = t.clone();
  EXPECT_NE(cl.impl()->storage.get(), t.impl()->storage.get());
  EXPECT_EQ(fvec(cl), fvec(t));
  cl.fill_(1.0);
  EXPECT_EQ(t[1][2].item<float>(), 5.f);
  // clone of a strided view is contiguous with the view's values
  Tensor cv = t.slice(1, 0, 3, 2).clone();
  EXPECT_TRUE(cv.is_contiguous());
  EXPECT_EQ(fvec(cv), (std::vector<float>{0, 2, 3, 5}));
  Tensor ci = tensor({1, 2, 3}).clone();
  EXPECT_EQ(ci.dtype(), DType::Int64);
}

// ---------------------------------------------------------------- conversion, item

TEST(TensorConvert, ToDType) {
  Tensor f = tensor({2.7f, -2.7f, 0.f, 1.f});
  Tensor i = f.to(kInt64);
  EXPECT_EQ(i.dtype(), DType::Int64);
  EXPECT_EQ(ivec(i), (std::vector<std::int64_t>{2, -2, 0, 1}));  // truncation, like torch

  Tensor b = f.to(kBool);
  EXPECT_EQ(b.to_vector<bool>(), (std::vector<bool>{true, true, false, true}));
  EXPECT_EQ(fvec(b.to(kFloat32)), (std::vector<float>{1, 1, 0, 1}));

  Tensor d = tensor({1, 2}).to(DType::Float64);
  EXPECT_EQ(d.dtype(), DType::Float64);
  EXPECT_EQ(d.to_vector<double>(), (std::vector<double>{1.0, 2.0}));

  Tensor dd = full({1}, 0.1, DType::Float64);
  EXPECT_EQ(dd.to(kFloat32).item<float>(), 0.1f);  // rounded to nearest float

  EXPECT_EQ(f.to(kFloat32).impl(), f.impl()) << "to() the same dtype returns the tensor itself";
  // conversion of a strided view
  Tensor m = arange(0.0, 6.0, 1.0).reshape({2, 3}).t().to(kInt64);
  EXPECT_EQ(ivec(m), (std::vector<std::int64_t>{0, 3, 1, 4, 2, 5}));
  // to_vector converts too
  EXPECT_EQ(i.to_vector<float>(), (std::vector<float>{2, -2, 0, 1}));
}

TEST(TensorConvert, Item) {
  EXPECT_EQ(tensor({3.5f}).item<float>(), 3.5f);
  EXPECT_EQ(tensor({3.5f}).item<double>(), 3.5);
  EXPECT_EQ(full({1, 1, 1}, 4.0).item<float>(), 4.f);
  EXPECT_EQ(tensor({7}).item<std::int64_t>(), 7);
  EXPECT_EQ(tensor({7}).item<float>(), 7.f);
  EXPECT_TRUE(full({1}, 1.0, kBool).item<bool>());
  Tensor t = arange(0.0, 6.0, 1.0).reshape({2, 3});
  EXPECT_EQ(t[1][2].item<float>(), 5.f);

  std::string msg = error_of<ValueError>([&] { t.item<float>(); });
  EXPECT_TRUE(contains(msg, "6 elements")) << msg;
  EXPECT_TRUE(contains(msg, "[2, 3]")) << msg;
  EXPECT_THROW(zeros({0}).item<float>(), ValueError);
  EXPECT_THROW(Tensor().item<float>(), ValueError);
  EXPECT_THROW(t.data_ptr<std::int64_t>(), DTypeError);
}

// ---------------------------------------------------------------- devices

TEST(TensorDevice, CpuOnlyBuild) {
  Tensor t = zeros({2});
  EXPECT_TRUE(t.device().is_cpu());
  EXPECT_EQ(t.device(), kCPU);
  EXPECT_EQ(t.device().str(), "cpu");
  EXPECT_EQ(t.to(kCPU).impl(), t.impl());

  EXPECT_EQ(Device::parse("cpu"), kCPU);
  Device c = Device::parse("cuda");
  EXPECT_TRUE(c.is_cuda());
  EXPECT_EQ(c.index, 0);
  EXPECT_EQ(Device::parse("cuda:1").index, 1);
  EXPECT_EQ(Device::parse("cuda:1").str(), "cuda:1");
  EXPECT_THROW(Device::parse("tpu"), ValueError);
  EXPECT_THROW(Device::parse("cudax"), ValueError);

  std::string msg = error_of<Error>([&] { zeros({2}, Device(DeviceType::CUDA)); });
  EXPECT_TRUE(contains(msg, "cuda")) << msg;
  EXPECT_TRUE(contains(msg, "CUDA")) << msg;  // says the backend is missing from this build
  EXPECT_THROW(empty({2}, TensorOptions().device(Device::parse("cuda:0"))), Error);
  msg = error_of<Error>([&] { t.to(Device::parse("cuda")); });
  EXPECT_TRUE(contains(msg, "cuda")) << msg;
}

// ---------------------------------------------------------------- in-place ops

TEST(TensorInplace, BroadcastingAndErrors) {
  Tensor a = zeros({2, 3});
  a.add_(tensor({1.f, 2.f, 3.f}));  // row broadcast
  EXPECT_EQ(fvec(a), (std::vector<float>{1, 2, 3, 1, 2, 3}));
  a.add_(tensor({10.f, 20.f}, {2, 1}), 0.5);  // column broadcast with alpha
  EXPECT_EQ(fvec(a), (std::vector<float>{6, 7, 8, 11, 12, 13}));
  a.sub_(ones({2, 3}), 2.0);
  EXPECT_EQ(fvec(a), (std::vector<float>{4, 5, 6, 9, 10, 11}));
  a.mul_(tensor({1.f, 0.f, -1.f}));
  EXPECT_EQ(fvec(a), (std::vector<float>{4, 0, -6, 9, 0, -11}));
  a.div_(tensor({2.f, 1.f}, {2, 1}));
  EXPECT_EQ(fvec(a), (std::vector<float>{2, 0, -3, 9, 0, -11}));
  a.mul_(2.0).add_(1.0).div_(2.0);
  EXPECT_EQ(fvec(a), (std::vector<float>{2.5, 0.5, -2.5, 9.5, 0.5, -10.5}));
  a.fill_(0.25);
  EXPECT_EQ(fvec(a), std::vector<float>(6, 0.25f));
  a.zero_();
  EXPECT_EQ(fvec(a), std::vector<float>(6, 0.f));

  // copy_ broadcasts and converts dtype
  a.copy_(tensor({1, 2, 3}));
  EXPECT_EQ(fvec(a), (std::vector<float>{1, 2, 3, 1, 2, 3}));
  Tensor i = zeros({3}, kInt64);
  i.copy_(tensor({1.9f, -1.9f, 3.f}));
  EXPECT_EQ(ivec(i), (std::vector<std::int64_t>{1, -1, 3}));
  // into a strided view
  Tensor base = zeros({3, 3});
  base.t().select(0, 1).copy_(tensor({7.f, 8.f, 9.f}));  // column 1
  EXPECT_EQ(fvec(base), (std::vector<float>{0, 7, 0, 0, 8, 0, 0, 9, 0}));
  // int64 arithmetic in place
  Tensor k = tensor({1, 2, 3});
  k.add_(tensor({10, 10, 10}), 2.0);
  EXPECT_EQ(ivec(k), (std::vector<std::int64_t>{21, 22, 23}));

  // shape errors: the result must fit the target
  std::string msg = error_of<ShapeError>([&] { zeros({3}).add_(zeros({2, 3})); });
  EXPECT_TRUE(contains(msg, "add_")) << msg;
  EXPECT_TRUE(contains(msg, "[2, 3]")) << msg;
  EXPECT_THROW(zeros({2, 3}).add_(zeros({4})), ShapeError);
  EXPECT_THROW(zeros({2, 3}).mul_(zeros({2})), ShapeError);
  EXPECT_THROW(zeros({2, 3}).div_(zeros({3, 3})), ShapeError);
  EXPECT_THROW(zeros({2, 3}).copy_(zeros({3, 2})), ShapeError);
  EXPECT_THROW(zeros({1, 3}).copy_(zeros({2, 3})), ShapeError);
  EXPECT_THROW(zeros({2}).copy_(Tensor()), ValueError);
}

TEST(TensorInplace, BumpsStorageVersion) {
  Tensor a = zeros({4});
  Tensor v = a.slice(0, 1, 3);
  const auto v0 = a.impl()->storage->version;
  v.add_(1.0);
  EXPECT_GT(a.impl()->storage->version, v0) << "writing through a view bumps the shared version";
  const auto v1 = a.impl()->storage->version;
  a.fill_(2.0);
  a.copy_(ones({4}));
  EXPECT_EQ(a.impl()->storage->version, v1 + 2);
}

// ---------------------------------------------------------------- printing against PyTorch

namespace {

struct ReprCase {
  std::string name;
  Tensor t;
};

std::string format_value(double v, DType dt) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  if (dt == DType::Float64) std::snprintf(buf, sizeof buf, "%.17g", v);
  else if (dt == DType::Float32) std::snprintf(buf, sizeof buf, "%.9g", v);
  else std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

// Writes the cases file the oracle reads (values of each tensor in logical row-major order).
void write_cases(const std::string& path, const std::vector<ReprCase>& cases) {
  std::ofstream f(path);
  for (const auto& c : cases) {
    f << "case " << c.name << " " << dtype_name(c.t.dtype()) << " " << (c.t.requires_grad() ? 1 : 0) << " "
      << c.t.ndim();
    for (auto d : c.t.shape()) f << " " << d;
    f << "\n";
    std::vector<double> vals;
    if (c.t.dtype() == DType::Bool) {
      for (bool b : c.t.to_vector<bool>()) vals.push_back(b ? 1 : 0);
    } else if (c.t.dtype() == DType::Int64) {
      for (auto x : c.t.to_vector<std::int64_t>()) vals.push_back(static_cast<double>(x));
    } else {
      vals = c.t.detach().to_vector<double>();
    }
    for (std::size_t i = 0; i < vals.size(); ++i) f << (i ? " " : "") << format_value(vals[i], c.t.dtype());
    f << "\n";
  }
}

std::map<std::string, std::string> parse_sections(const std::string& out, const std::string& marker) {
  std::map<std::string, std::string> res;
  std::istringstream in(out);
  std::string line, current, body;
  bool have = false;
  while (std::getline(in, line)) {
    if (line.rfind(marker, 0) == 0 || line == "@@end") {
      if (have) {
        if (!body.empty() && body.back() == '\n') body.pop_back();
        res[current] = body;
      }
      have = line != "@@end";
      current = have ? line.substr(marker.size()) : "";
      body.clear();
      continue;
    }
    body += line + "\n";
  }
  return res;
}

Tensor seq_values(const Shape& shape, double scale, double shift) {
  Tensor t = empty(shape);
  float* p = t.data_ptr<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>((static_cast<double>(i) + shift) * scale);
  return t;
}

}  // namespace

TEST(TensorPrint, MatchesPyTorchRepr) {
  manual_seed(krill::test::run_seed());
  const float nan = std::nanf(""), inf = INFINITY;
  std::vector<ReprCase> cases = {
      {"ints_as_float", tensor({1.f, 2.f, 3.f, 4.f}, {2, 2})},
      {"torch_example", tensor({-0.0033f, 0.2399f})},
      {"fixed", tensor({-1.5f, 0.25f, 10.125f, 3.f, -0.001f, 7.7f}, {2, 3})},
      {"sci_small", tensor({1e-5f, 0.5f})},
      {"sci_ratio", tensor({0.001f, 10.5f, -3.f})},
      {"sci_big", tensor({1e9f, 1.5f})},
      {"int_sci_ratio", tensor({1.f, 100000.f})},
      {"int_sci_big", tensor({123456789.f, 2.f, -4.f})},
      {"int_negative", tensor({-1.f, 20.f, 0.f})},
      {"nan_inf", tensor({nan, inf, -inf, 1.5f})},
      {"nan_int", tensor({nan, 1.f, 2.f})},
      {"only_nonfinite", tensor({nan, -inf})},
      {"all_zero", zeros({3})},
      {"neg_zero", tensor({-0.f, 1.5f})},
      {"scalar", scalar_tensor(3.25)},
      {"scalar_int", scalar_tensor(7, kInt64)},
      {"scalar_small", scalar_tensor(1e-7)},
      {"empty1", zeros({0})},
      {"empty2", zeros({2, 0})},
      {"empty_int", zeros({0}, kInt64)},
      {"empty_f64_3d", zeros({0, 2, 3}, DType::Float64)},
      {"int64", tensor(std::vector<std::int64_t>{1, -20, 3, 400, 5, 6}, {2, 3})},
      {"bool", tensor({1.f, 0.f, 1.f}).to(kBool)},
      {"bool_true", ones({2}, kBool)},
      {"float64", tensor({1.5f, 2.25f}).to(DType::Float64)},
      {"float64_int", tensor({1.f, 2.f}).to(DType::Float64)},
      {"float64_precise", full({2}, 0.1, DType::Float64)},
      {"three_d", seq_values({2, 2, 3}, 0.37, -5)},
      {"four_d", seq_values({2, 1, 2, 2}, -1.25, 0)},
      {"six_d", seq_values({1, 2, 1, 2, 1, 2}, 0.5, 1)},
      {"long_1d", seq_values({30}, 0.123, -15)},
      {"long_int", arange(0.0, 40.0, 1.0, kInt64).mul_(123.0)},
      {"wide_rows", seq_values({3, 17}, 1.01, -20)},
      {"summary_1d", seq_values({2000}, 0.5, 0)},
      {"summary_2d", seq_values({50, 40}, 0.01, -1000)},
      {"summary_3d", seq_values({10, 10, 20}, 1.0, 0)},
      {"summary_int", arange(0.0, 1500.0, 1.0, kInt64)},
      {"randn", randn({4, 5})},
      {"randn_small", randn({3, 3}).mul_(1e-3)},
      {"rand_big", rand({2, 4}).mul_(1e5)},
      {"requires_grad", tensor({1.5f, 2.f}, Shape{-1}, TensorOptions().requires_grad())},
      {"requires_grad_wrap", seq_values({2, 8}, 1.1, -7).requires_grad_()},
      {"transposed_view", seq_values({3, 4}, 0.75, -3).t()},
      {"strided_view", seq_values({4, 6}, 2.0, 0).slice(1, 1, std::nullopt, 2).select(0, 2)},
  };
  const std::string dir = krill::test::make_temp_dir("repr");
  const std::string path = dir + "/cases.txt";
  write_cases(path, cases);
  const std::string out = krill::test::run_oracle("nn_oracle.py", {"repr", path});
  auto expected = parse_sections(out, "@@case ");
  ASSERT_EQ(expected.size(), cases.size()) << out;
  int mismatches = 0;
  for (const auto& c : cases) {
    ASSERT_TRUE(expected.count(c.name)) << c.name;
    EXPECT_EQ(c.t.str(), expected[c.name]) << "case " << c.name;
    if (c.t.str() != expected[c.name]) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
  std::filesystem::remove_all(dir);
}

TEST(TensorPrint, HandWrittenExamples) {
  // Values checked by hand against PyTorch 1.13's repr.
  EXPECT_EQ(tensor({1.f, 2.f}, {1, 2}).str(), "tensor([[1., 2.]])");
  EXPECT_EQ(tensor({-0.0033f, 0.2399f}, {1, 2}).str(), "tensor([[-0.0033,  0.2399]])");
  EXPECT_EQ(tensor({1, -20, 3}).str(), "tensor([  1, -20,   3])");
  EXPECT_EQ(tensor({1.f, 0.f}).to(kBool).str(), "tensor([ True, False])");
  EXPECT_EQ(zeros({2}, DType::Float64).str(), "tensor([0., 0.], dtype=torch.float64)");
  EXPECT_EQ(zeros({0}, kInt64).str(), "tensor([], dtype=torch.int64)");
  EXPECT_EQ(zeros({2, 0}).str(), "tensor([], size=(2, 0))");
  EXPECT_EQ(scalar_tensor(0.5).str(), "tensor(0.5000)");
  EXPECT_EQ(tensor({1e-5f, 1.f}).str(), "tensor([1.0000e-05, 1.0000e+00])");
  Tensor x = tensor({1.f, 2.f}, Shape{-1}, TensorOptions().requires_grad());
  EXPECT_EQ(x.str(), "tensor([1., 2.], requires_grad=True)");
  EXPECT_EQ((x * x).str(), "tensor([1., 4.], grad_fn=<MulBackward0>)");
  {
    NoGradGuard g;
    EXPECT_EQ((x * x).str(), "tensor([1., 4.])");
  }
  std::ostringstream os;
  os << tensor({3, 4});
  EXPECT_EQ(os.str(), "tensor([3, 4])");
  EXPECT_EQ(Tensor().str(), "tensor(undefined)");
}

// ---------------------------------------------------------------- generator vs torch.manual_seed

namespace {

struct Draw {
  std::string dtype;
  std::vector<double> values;
};

std::map<std::string, Draw> parse_draws(const std::string& out) {
  std::map<std::string, Draw> res;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string name, dtype;
    std::size_t n = 0;
    if (!(ls >> name >> dtype >> n)) continue;
    Draw d;
    d.dtype = dtype;
    std::string tok;
    while (ls >> tok) d.values.push_back(std::strtod(tok.c_str(), nullptr));
    EXPECT_EQ(d.values.size(), n) << line;
    res[name] = d;
  }
  return res;
}

// Compares krill's tensor with the oracle's draw: exact when tol == 0, else |a-b| <= tol * max(1, |b|).
void expect_draw(const std::map<std::string, Draw>& draws, const std::string& name, const Tensor& t, double tol) {
  auto it = draws.find(name);
  ASSERT_NE(it, draws.end()) << "oracle did not produce " << name;
  const Draw& d = it->second;
  EXPECT_EQ(d.dtype, std::string(dtype_name(t.dtype()))) << name;
  std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), d.values.size()) << name;
  int bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double want = d.values[i];
    const bool ok = tol == 0 ? got[i] == want : std::abs(got[i] - want) <= tol * std::max(1.0, std::abs(want));
    if (!ok && ++bad <= 3)
      ADD_FAILURE() << name << "[" << i << "]: krill " << got[i] << ", torch " << want;
  }
  EXPECT_EQ(bad, 0) << name << ": " << bad << " of " << got.size() << " values differ";
}

}  // namespace

TEST(TensorGenerator, MatchesTorchManualSeed) {
  const std::uint64_t seed = krill::test::run_seed();
  const auto draws = parse_draws(krill::test::run_oracle("nn_oracle.py", {"rng", std::to_string(seed)}));

  manual_seed(seed);
  EXPECT_EQ(default_generator().initial_seed(), seed);
  expect_draw(draws, "rand5", rand({5}), 0);
  Tensor u = empty({3, 4});
  uniform_(u, -2, 3);
  expect_draw(draws, "uniform34", u, 0);
  expect_draw(draws, "randperm10", randperm(10), 0);
  expect_draw(draws, "randint7", randint(0, 10, {7}), 0);
  // torch uses a vectorised (AVX2) Box-Muller for >= 16 float32 elements: float rounding differs
  expect_draw(draws, "randn20", randn({20}), 1e-6);
  expect_draw(draws, "randn5", randn({5}), 0);  // scalar double Box-Muller: exact
  expect_draw(draws, "rand3d", rand({3}, DType::Float64), 0);
  expect_draw(draws, "randn3", randn({3}), 0);  // starts with the cached second sample
  expect_draw(draws, "randint43", randint(-5, 5, {4, 3}), 0);
  expect_draw(draws, "randperm3", randperm(3), 0);
  expect_draw(draws, "randint_big", randint(0, std::int64_t{1} << 40, {3}), 0);
  expect_draw(draws, "randn37", randn({37}), 1e-6);
  Tensor d = empty({6}, DType::Float64);
  uniform_(d, -1, 1);
  expect_draw(draws, "uniform6d", d, 0);
  expect_draw(draws, "randn20d", randn({20}, DType::Float64), 1e-14);
  expect_draw(draws, "randn7d", randn({7}, DType::Float64), 0);
  Tensor n = empty({2, 10});
  normal_(n, 3.0, 0.5);
  expect_draw(draws, "normal210", n, 1e-6);
  expect_draw(draws, "randperm50", randperm(50), 0);
  expect_draw(draws, "rand_after", rand({4}), 0);
  Generator g(seed + 1);
  expect_draw(draws, "gen_rand4", rand({4}, {}, &g), 0);
  expect_draw(draws, "gen_randperm6", randperm(6, &g), 0);
  expect_draw(draws, "default_after_gen", rand({2}), 0);  // the private generator left the default alone
}

TEST(TensorGenerator, ReseedingRepeatsAndRangesHold) {
  manual_seed(123);
  Tensor a = rand({100});
  Tensor ia = randint(3, 7, {50});
  manual_seed(123);
  EXPECT_TRUE(equal(rand({100}), a));
  EXPECT_TRUE(equal(randint(3, 7, {50}), ia));
  for (float v : fvec(a)) {
    EXPECT_GE(v, 0.f);
    EXPECT_LT(v, 1.f);
  }
  for (auto v : ivec(ia)) {
    EXPECT_GE(v, 3);
    EXPECT_LT(v, 7);
  }
  auto perm = ivec(randperm(20));
  std::sort(perm.begin(), perm.end());
  for (std::int64_t i = 0; i < 20; ++i) EXPECT_EQ(perm[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(randperm(0).numel(), 0);
  EXPECT_THROW(randint(5, 5, {2}), ValueError);
  EXPECT_THROW(randperm(-1), ValueError);
  Tensor ints = zeros({2}, kInt64);
  EXPECT_THROW(uniform_(ints), DTypeError);
  Tensor nc = zeros({3, 4}).t();
  EXPECT_THROW(uniform_(nc), ValueError);
  Tensor bad = zeros({2});
  EXPECT_THROW(uniform_(bad, 1.0, 0.0), ValueError);
  EXPECT_THROW(normal_(bad, 0.0, -1.0), ValueError);
}
