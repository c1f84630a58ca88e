// The image data loader alone: Fashion-MNIST training images, batches of 64, shuffled, with
// ToTensor + Normalize(0.2860, 0.3530) (and optionally RandomCrop(28, padding=2) +
// RandomHorizontalFlip), read by a DataLoader with 0 workers (filled inside next()) and with
// 1..N workers. Prints one JSON line per setting: images/s as the consumer sees them, and the
// consumer's own CPU seconds per epoch (what loading takes away from the model's thread).
//
// Usage: bench_loader [--data DIR] [--epochs E] [--batch B] [--max-workers N] [--augment]
//                     [--consumer-us U]   U microseconds of busy work per batch (a stand-in model)
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include "krill/data/dataloader.hpp"
#include "krill/data/image.hpp"

using namespace krill;
using clk = std::chrono::steady_clock;

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void busy(double us) {
  const auto until = clk::now() + std::chrono::duration<double, std::micro>(us);
  while (clk::now() < until) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/usr/share/datasets/fashion-mnist";
  int epochs = 3, batch = 64, max_workers = 2;
  bool augment = false;
  double consumer_us = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--data") dir = next();
    else if (a == "--epochs") epochs = std::stoi(next());
    else if (a == "--batch") batch = std::stoi(next());
    else if (a == "--max-workers") max_workers = std::stoi(next());
    else if (a == "--augment") augment = true;
    else if (a == "--consumer-us") consumer_us = std::stod(next());
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  const auto t_open = clk::now();
  data::ImageData d = data::open_image_data(dir);
  const double open_s = std::chrono::duration<double>(clk::now() - t_open).count();
  data::Transforms t = data::Transforms().normalize({0.2860f}, {0.3530f});
  if (augment) t = data::Transforms().random_crop(28, 2).random_horizontal_flip().normalize({0.2860f}, {0.3530f});
  auto train = d.train->with_transforms(t);
  std::printf("{\"bench\": \"open\", \"data\": \"%s\", \"images\": %lld, \"seconds\": %.3f}\n", dir.c_str(),
              static_cast<long long>(train->size()), open_s);

  for (int workers = 0; workers <= max_workers; ++workers) {
    data::DataLoader loader(train, data::DataLoaderOptions(batch).shuffle(true).num_workers(workers).prefetch(4));
    double best = 0, cpu_per_epoch = 0;
    for (int e = 0; e <= epochs; ++e) {  // epoch 0 warms up
      data::Batch b;
      double checksum = 0;
      const double cpu0 = thread_cpu_seconds();
      const auto t0 = clk::now();
      loader.begin_epoch();
      std::int64_t n = 0;
      while (loader.next(b)) {
        checksum += b.input.data_ptr<float>()[0];
        n += b.size();
        if (consumer_us > 0) busy(consumer_us);
      }
      const double s = std::chrono::duration<double>(clk::now() - t0).count();
      const double cpu = thread_cpu_seconds() - cpu0;
      if (e > 0) {
        best = std::max(best, static_cast<double>(n) / s);
        cpu_per_epoch += cpu / epochs;
      }
      if (checksum == 12345.678) std::printf("#");
    }
    std::printf(
        "{\"bench\": \"loader\", \"workers\": %d, \"batch\": %d, \"augment\": %s, \"consumer_us\": %.0f, "
        "\"images_per_s\": %.0f, \"consumer_cpu_s_per_epoch\": %.4f}\n",
        workers, batch, augment ? "true" : "false", consumer_us, best, cpu_per_epoch);
    std::fflush(stdout);
  }
  return 0;
}
