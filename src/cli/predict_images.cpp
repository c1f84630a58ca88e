// krill predict / krill inspect for image classifiers (the module's "Score Image Model"): new
// images go through the evaluation transforms saved with the model (resize, normalise) and the
// model in eval mode; the output is the class, its probability and the top classes, as text, JSON
// lines or a CSV file.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "krill/autograd/grad_mode.hpp"
#include "krill/data/image.hpp"
#include "krill/tensor/ops.hpp"
#include "krill/train/image_model_dir.hpp"
#include "train_common.hpp"

namespace krill::cli {

namespace {

namespace fs = std::filesystem;

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* e : {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".ppm", ".pgm"})
    if (ext == e) return true;
  return false;
}

// --image files, or every image under --input DIR (sorted, sub-folders included).
std::vector<std::string> image_files(const PredictArgs& a) {
  std::vector<std::string> files = a.images;
  if (!a.input.empty()) {
    std::error_code ec;
    if (!fs::is_directory(a.input, ec))
      throw ValueError("--input " + a.input + ": an image model takes a directory of images (or --image FILE)");
    for (auto it = fs::recursive_directory_iterator(a.input, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_regular_file(ec) && is_image_file(it->path())) files.push_back(it->path().string());
    if (ec) throw IOError("--input " + a.input + ": cannot list: " + ec.message());
    std::sort(files.begin() + static_cast<std::ptrdiff_t>(a.images.size()), files.end());
    if (files.size() == a.images.size())
      throw ValueError("--input " + a.input + " holds no images (.png, .jpg, .jpeg, .bmp, .gif, .tga, .ppm, .pgm)");
  }
  if (files.empty()) throw ValueError("give the images to classify: --image FILE (repeatable) or --input DIR");
  return files;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

}  // namespace

int run_predict_images(const PredictArgs& a) {
  if (!a.features.empty() || !a.row.empty())
    throw ValueError("--features and --row are for CSV models; " + a.model_dir + " classifies images: use --image FILE or --input DIR");
  if (!a.output.empty() && fs::is_directory(a.output)) throw ValueError("--output " + a.output + " is a directory; give a file name");
  training::SavedImageModel m = training::load_image_model_dir(a.model_dir);
  const auto& cfg = m.config;
  const std::vector<std::string> files = image_files(a);

  // Each image through the evaluation transforms of training (an image of another size than
  // the model's input is resized to it when training had no --resize), in batches of 64.
  const std::int64_t nc = static_cast<std::int64_t>(cfg.classes.size());
  const std::int64_t batch = 64;
  std::vector<float> probs;
  probs.reserve(files.size() * static_cast<std::size_t>(nc));
  bool resized_note = false;
  NoGradGuard no_grad;
  for (std::size_t first = 0; first < files.size(); first += batch) {
    const std::int64_t n = std::min<std::int64_t>(batch, static_cast<std::int64_t>(files.size() - first));
    Tensor x = empty({n, cfg.in_channels, cfg.height, cfg.width});
    for (std::int64_t k = 0; k < n; ++k) {
      Tensor img = data::read_image(files[first + static_cast<std::size_t>(k)], cfg.in_channels);
      const std::int64_t h = img.size(1), w = img.size(2);
      data::Transforms t;
      if (cfg.resize_height > 0) {
        t.resize(cfg.resize_height, cfg.resize_width);
      } else if (h != cfg.height || w != cfg.width) {
        t.resize(cfg.height, cfg.width);
        if (!resized_note)
          std::fprintf(stderr, "krill predict: note: images other than %lldx%lld are resized to it (the model's input size)\n",
                       static_cast<long long>(cfg.height), static_cast<long long>(cfg.width));
        resized_note = true;
      }
      if (!cfg.mean.empty()) t.normalize(cfg.mean, cfg.std);
      data::ImageDataset one(img.reshape({1, cfg.in_channels, h, w}), {0}, cfg.classes, files[first + static_cast<std::size_t>(k)]);
      one.set_transforms(t);
      const std::int64_t index = 0;
      one.fill_batch(&index, 1, 0, x.data_ptr<float>() + k * cfg.in_channels * cfg.height * cfg.width, nullptr);
    }
    Tensor p = softmax(m.model->forward(x), 1).contiguous();
    probs.insert(probs.end(), p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
  }
  auto ranked = [&](std::size_t i) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(nc));
    for (std::int64_t c = 0; c < nc; ++c) order[static_cast<std::size_t>(c)] = c;
    const float* p = probs.data() + i * static_cast<std::size_t>(nc);
    std::stable_sort(order.begin(), order.end(), [p](std::int64_t x, std::int64_t y) { return p[x] > p[y]; });
    return order;
  };

  if (!a.output.empty()) {
    std::ostringstream os;
    os << "image,class,class_id,probability";
    for (const auto& c : cfg.classes) os << "," << csv_field("p_" + c);
    os << "\n";
    for (std::size_t i = 0; i < files.size(); ++i) {
      const auto order = ranked(i);
      const float* p = probs.data() + i * static_cast<std::size_t>(nc);
      os << csv_field(files[i]) << "," << csv_field(cfg.classes[static_cast<std::size_t>(order[0])]) << "," << order[0]
         << "," << strf("%.9g", p[order[0]]);
      for (std::int64_t c = 0; c < nc; ++c) os << strf(",%.9g", p[c]);
      os << "\n";
    }
    const std::string tmp = a.output + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary);
      f << os.str();
      f.flush();
      if (!f) {
        const int err = errno;
        std::remove(tmp.c_str());
        throw IOError("--output " + a.output + ": cannot write: " + std::strerror(err));
      }
    }
    if (std::rename(tmp.c_str(), a.output.c_str()) != 0) {
      const int err = errno;
      std::remove(tmp.c_str());
      throw IOError("--output " + a.output + ": cannot move the file into place: " + std::strerror(err));
    }
    std::printf("Classified %zu images; written to %s\n", files.size(), a.output.c_str());
    return 0;
  }
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto order = ranked(i);
    const float* p = probs.data() + i * static_cast<std::size_t>(nc);
    if (a.format == "json") {
      nlohmann::json j;
      j["image"] = files[i];
      j["class"] = cfg.classes[static_cast<std::size_t>(order[0])];
      j["class_id"] = order[0];
      j["probabilities"] = std::vector<double>(p, p + nc);
      std::cout << j.dump() << "\n";
    } else {
      std::printf("%s: %s (id %lld, probability %.4f)", files[i].c_str(), cfg.classes[static_cast<std::size_t>(order[0])].c_str(),
                  static_cast<long long>(order[0]), p[order[0]]);
      const std::int64_t shown = std::min<std::int64_t>(a.top, nc);
      if (shown > 1) {
        std::printf("; top %lld:", static_cast<long long>(shown));
        for (std::int64_t k = 0; k < shown; ++k)
          std::printf(" %s=%.4f", cfg.classes[static_cast<std::size_t>(order[k])].c_str(), p[order[k]]);
      }
      std::printf("\n");
    }
  }
  return 0;
}

int run_inspect_image(const InspectArgs& a) {
  training::SavedImageModel m = training::load_image_model_dir(a.model_dir);
  const auto& c = m.config;
  std::int64_t params = 0;
  for (const auto& p : m.model->parameters()) params += p.numel();
  std::printf("Model directory: %s\n", a.model_dir.c_str());
  std::printf("Architecture: %s, input %lldx%lldx%lld, %zu classes, %lld parameters\n", c.architecture.c_str(),
              static_cast<long long>(c.in_channels), static_cast<long long>(c.height), static_cast<long long>(c.width),
              c.classes.size(), static_cast<long long>(params));
  std::printf("Classes:");
  for (std::size_t i = 0; i < c.classes.size(); ++i) std::printf("%s %s=%zu", i ? "," : "", c.classes[i].c_str(), i);
  std::printf("\nPreprocessing: %s\n", c.eval_transforms().str().c_str());
  std::cout << *m.model << "\n";
  std::printf("\nWeights and buffers:\n");
  for (const auto& [name, t] : m.model->state_dict()) {
    std::cout << name << " " << t.shape().str() << "\n";
    if (a.full) std::cout << t << "\n";
  }
  return 0;
}

}  // namespace krill::cli
