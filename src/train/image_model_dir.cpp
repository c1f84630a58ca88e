#include "krill/train/image_model_dir.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "krill/io/safetensors.hpp"
#include "krill/nn/models/registry.hpp"
#include "krill/util/runtime_info.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace krill::training {

data::Transforms ImageModelConfig::eval_transforms() const {
  data::Transforms t;
  if (resize_height > 0) t.resize(resize_height, resize_width);
  if (!mean.empty()) t.normalize(mean, std);
  return t;
}

std::string image_model_config_json(const ImageModelConfig& c, const std::string& training_json) {
  json cfg;
  cfg["format"] = "krill-model";
  cfg["format_version"] = 1;
  cfg["krill_version"] = version();
  cfg["architecture"] = {{"type", c.architecture}, {"in_channels", c.in_channels}, {"height", c.height},
                         {"width", c.width},       {"num_classes", static_cast<std::int64_t>(c.classes.size())}};
  json prep = {{"kind", "image"}, {"classes", c.classes}};
  prep["resize"] = c.resize_height > 0 ? json::array({c.resize_height, c.resize_width}) : json(nullptr);
  prep["normalize"] = c.mean.empty() ? json(nullptr) : json{{"mean", c.mean}, {"std", c.std}};
  cfg["preparation"] = std::move(prep);
  cfg["training"] = training_json.empty() ? json::object() : json::parse(training_json);
  return cfg.dump(2) + "\n";
}

namespace {

[[noreturn]] void bad(const std::string& dir, const std::string& what) {
  throw InvalidModelDirectoryError(dir + " is not a valid krill model directory: " + what);
}

json read_config(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw InvalidModelDirectoryError(dir + ": no such model directory");
  if (!fs::is_directory(dir, ec)) throw InvalidModelDirectoryError(dir + " is a file, not a model directory");
  const fs::path p = fs::path(dir) / "config.json";
  if (!fs::exists(p, ec)) bad(dir, "config.json is missing (was it written by krill train?)");
  std::ifstream f(p, std::ios::binary);
  if (!f) bad(dir, "cannot read config.json");
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    json j = json::parse(ss.str());
    if (!j.is_object() || j.value("format", "") != "krill-model") bad(dir, "config.json is not a krill model config");
    if (!j.contains("architecture") || !j["architecture"].is_object() || !j["architecture"].contains("type") ||
        !j["architecture"]["type"].is_string())
      bad(dir, "config.json has no architecture type");
    return j;
  } catch (const json::exception& e) {
    bad(dir, std::string("config.json: ") + e.what());
  }
}

}  // namespace

std::string model_dir_kind(const std::string& dir) {
  const json j = read_config(dir);
  const bool image = j.contains("preparation") && j["preparation"].is_object() &&
                     j["preparation"].value("kind", "") == "image";
  return image ? "image" : "mlp";
}

std::shared_ptr<nn::Module> build_image_model(const ImageModelConfig& c) {
  return nn::make_model(c.architecture, c.in_channels, c.height, c.width, static_cast<std::int64_t>(c.classes.size()));
}

SavedImageModel load_image_model_dir(const std::string& dir) {
  const json j = read_config(dir);
  SavedImageModel m;
  m.directory = dir;
  ImageModelConfig& c = m.config;
  try {
    const json& a = j.at("architecture");
    c.architecture = a.at("type").get<std::string>();
    c.in_channels = a.at("in_channels").get<std::int64_t>();
    c.height = a.at("height").get<std::int64_t>();
    c.width = a.at("width").get<std::int64_t>();
    const json& p = j.at("preparation");
    if (p.value("kind", "") != "image") bad(dir, "config.json: preparation.kind is not \"image\"");
    c.classes = p.at("classes").get<std::vector<std::string>>();
    if (static_cast<std::int64_t>(c.classes.size()) != a.at("num_classes").get<std::int64_t>())
      bad(dir, "config.json: num_classes differs from the number of classes");
    if (!p.at("resize").is_null()) {
      auto r = p.at("resize").get<std::vector<std::int64_t>>();
      if (r.size() != 2 || r[0] <= 0 || r[1] <= 0) bad(dir, "config.json: preparation.resize must be [height, width]");
      c.resize_height = r[0], c.resize_width = r[1];
    }
    if (!p.at("normalize").is_null()) {
      c.mean = p.at("normalize").at("mean").get<std::vector<float>>();
      c.std = p.at("normalize").at("std").get<std::vector<float>>();
    }
    m.training_json = j.contains("training") ? j["training"].dump() : "{}";
  } catch (const json::exception& e) {
    bad(dir, std::string("config.json: ") + e.what());
  }
  if (c.in_channels <= 0 || c.height <= 0 || c.width <= 0 || c.classes.empty())
    bad(dir, "config.json: the architecture's sizes must be positive");
  try {
    m.model = build_image_model(c);
  } catch (const Error& e) {
    bad(dir, std::string("config.json: ") + e.what());
  }
  const fs::path w = fs::path(dir) / "model.safetensors";
  std::error_code ec;
  if (!fs::exists(w, ec)) bad(dir, "model.safetensors is missing");
  StateDict state;
  try {
    state = io::load_safetensors(w.string());
  } catch (const Error& e) {
    bad(dir, e.what());
  }
  try {
    m.model->load_state_dict(state);
  } catch (const Error& e) {
    bad(dir, std::string("model.safetensors does not fit the ") + c.architecture + " of config.json: " + e.what());
  }
  m.model->eval();
  return m;
}

}  // namespace krill::training
