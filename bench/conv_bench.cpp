// CNN micro-benchmarks (krill side; bench/conv_torch.py is the PyTorch side, same workloads):
//   lenet_step     LeNet-5 on 28x28 (conv 1->6 5x5 pad 2, ReLU, maxpool 2, conv 6->16 5x5, ReLU,
//                  maxpool 2, flatten, linear 400->120->84->10, cross_entropy), SGD(0.01) step:
//                  zero_grad + forward + loss + backward + step
//   lenet_convs    the two LeNet convolutions (+ReLU+pool) forward+backward only
//   resnet_conv    one ResNet-50 stage-1 3x3 conv 64->64 on 56x56, no bias, BN, ReLU, fwd+bwd
//   lenet_cifar    krill's LeNet model (the CIFAR-10 tutorial net, 3x32x32), SGD(0.001, momentum 0.9) step
//   resnet18_32    ResNet-18 on 3x32x32, 10 classes, SGD(0.01, momentum 0.9) step
//   resnet50_224   ResNet-50 on 3x224x224, 1000 classes, SGD(0.01, momentum 0.9) step
// usage: bench_conv <workload> <batch> <iterations>   -> one JSON line: us per iteration (median of 5 blocks)
// (run with OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1, interleaved with bench/conv_torch.py)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "krill/krill.hpp"
#include "krill/nn/conv.hpp"
#include "krill/nn/models/registry.hpp"
#include "krill/optim/sgd.hpp"

using namespace krill;

namespace {

struct LeNet : nn::Module {
  std::shared_ptr<nn::Conv2d> c1, c2;
  std::shared_ptr<nn::Linear> f1, f2, f3;
  bool fused;
  explicit LeNet(bool fused) : Module("LeNet"), fused(fused) {
    c1 = register_module("conv1", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 6, 5).padding(2)));
    c2 = register_module("conv2", std::make_shared<nn::Conv2d>(6, 16, 5));
    f1 = register_module("fc1", std::make_shared<nn::Linear>(400, 120));
    f2 = register_module("fc2", std::make_shared<nn::Linear>(120, 84));
    f3 = register_module("fc3", std::make_shared<nn::Linear>(84, 10));
  }
  Tensor conv_relu(nn::Conv2d& c, const Tensor& x) {
    const auto& o = c.options;
    return fused ? conv2d_relu(x, c.weight, c.bias, o.stride_, o.padding_) : relu(c(x));
  }
  Tensor features(const Tensor& x) {
    Tensor h = max_pool2d(conv_relu(*c1, x), {2, 2});
    return max_pool2d(conv_relu(*c2, h), {2, 2});
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = features(x).flatten(1);
    h = relu((*f1)(h));
    h = relu((*f2)(h));
    return (*f3)(h);
  }
};

double now_us() {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s lenet_step|lenet_step_fused|lenet_convs|resnet_conv|lenet_cifar|resnet18_32|resnet50_224 BATCH ITERS\n", argv[0]);
    return 2;
  }
  const std::string w = argv[1];
  const std::int64_t batch = std::atoll(argv[2]);
  const int iters = std::atoi(argv[3]);
  manual_seed(0);
  std::function<void()> step;
  std::shared_ptr<LeNet> net;
  std::shared_ptr<nn::Module> model;
  std::unique_ptr<optim::SGD> opt;
  Tensor x, y, wgt, rm, rv, g, b;
  if (w.rfind("lenet", 0) == 0 && w != "lenet_cifar") {
    net = std::make_shared<LeNet>(w == "lenet_step_fused");
    opt = std::make_unique<optim::SGD>(net->parameters(), optim::SGDOptions(0.01));
    x = randn({batch, 1, 28, 28});
    y = randint(0, 10, {batch});
    if (w == "lenet_convs") {
      step = [&] {
        net->zero_grad();
        sum(net->features(x)).backward();
      };
    } else {
      step = [&] {
        opt->zero_grad();
        Tensor loss = cross_entropy(net->forward(x), y);
        loss.item<float>();
        loss.backward();
        opt->step();
      };
    }
  } else if (w == "lenet_cifar" || w == "resnet18_32" || w == "resnet50_224") {
    const bool lenet = w == "lenet_cifar";
    const std::int64_t px = w == "resnet50_224" ? 224 : 32, classes = w == "resnet50_224" ? 1000 : 10;
    model = nn::make_model(lenet ? "lenet" : w.substr(0, 8), 3, px, px, classes);
    model->train();
    opt = std::make_unique<optim::SGD>(model->parameters(), optim::SGDOptions(lenet ? 0.001 : 0.01).momentum(0.9));
    x = randn({batch, 3, px, px});
    y = randint(0, classes, {batch});
    step = [&] {
      opt->zero_grad();
      Tensor loss = cross_entropy(model->forward(x), y);
      loss.item<float>();
      loss.backward();
      opt->step();
    };
  } else if (w == "resnet_conv") {
    x = randn({batch, 64, 56, 56});
    wgt = mul(randn({64, 64, 3, 3}), 0.05).requires_grad_();
    rm = zeros({64});
    rv = ones({64});
    g = ones({64}).requires_grad_();
    b = zeros({64}).requires_grad_();
    step = [&] {
      Tensor h = relu(batch_norm(conv2d(x, wgt, Tensor(), {1, 1}, {1, 1}), rm, rv, g, b, true));
      sum(h).backward();
      wgt.zero_grad(true);
      g.zero_grad(true);
      b.zero_grad(true);
    };
  } else {
    std::fprintf(stderr, "unknown workload %s\n", w.c_str());
    return 2;
  }
  for (int i = 0; i < std::max(3, iters / 10); ++i) step();
  std::vector<double> blocks;
  for (int r = 0; r < 5; ++r) {
    const double t0 = now_us();
    for (int i = 0; i < iters; ++i) step();
    blocks.push_back((now_us() - t0) / iters);
  }
  std::sort(blocks.begin(), blocks.end());
  std::printf("{\"side\": \"krill\", \"workload\": \"%s\", \"batch\": %lld, \"us_per_iter\": %.2f}\n", w.c_str(),
              static_cast<long long>(batch), blocks[2]);
  return 0;
}
