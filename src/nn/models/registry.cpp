#include "krill/nn/models/registry.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "krill/nn/models/densenet.hpp"
#include "krill/nn/models/lenet.hpp"
#include "krill/nn/models/resnet.hpp"

namespace krill::nn {

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"lenet", "resnet18", "resnet34", "resnet50", "densenet121"};
  return names;
}

bool is_model_name(const std::string& name) {
  const auto& n = model_names();
  return std::find(n.begin(), n.end(), name) != n.end();
}

static std::string known_names() {
  std::string s;
  for (const auto& n : model_names()) {
    if (!s.empty()) s += ", ";
    s += n;
  }
  return s;
}

static void check_name(const std::string& name) {
  if (!is_model_name(name))
    throw ValueError("unknown model '" + name + "'; known models: " + known_names());
}

std::int64_t min_image_size(const std::string& name) {
  check_name(name);
  if (name == "lenet") return LeNet::kMinImageSize;
  // conv0 7x7/2 pad 3 and pool0 3x3/2 pad 1 must leave 8 pixels for three 2x2 transitions:
  // 29 -> 15 -> 8 -> 4 -> 2 -> 1.
  if (name == "densenet121") return 29;
  return 1;
}

static void check_sizes(const std::string& name, std::int64_t in_channels, std::int64_t height, std::int64_t width,
                        std::int64_t num_classes) {
  check_name(name);
  auto positive = [&](const char* what, std::int64_t v) {
    if (v <= 0) throw ValueError(name + ": " + what + " must be positive, got " + std::to_string(v));
  };
  positive("in_channels", in_channels);
  positive("height", height);
  positive("width", width);
  positive("num_classes", num_classes);
  const std::int64_t min = min_image_size(name);
  if (height < min || width < min)
    throw ValueError(name + ": images of " + std::to_string(height) + "x" + std::to_string(width) +
                     " pixels are too small; " + name + " needs at least " + std::to_string(min) + "x" +
                     std::to_string(min));
}

std::shared_ptr<Module> make_model(const std::string& name, std::int64_t in_channels, std::int64_t height,
                                   std::int64_t width, std::int64_t num_classes, Generator* gen) {
  check_sizes(name, in_channels, height, width, num_classes);
  if (name == "lenet") return std::make_shared<LeNet>(in_channels, height, width, num_classes, gen);
  if (name == "resnet18") return resnet18(in_channels, num_classes, gen);
  if (name == "resnet34") return resnet34(in_channels, num_classes, gen);
  if (name == "resnet50") return resnet50(in_channels, num_classes, gen);
  return densenet121(in_channels, num_classes, gen);
}

std::shared_ptr<Module> make_model(const ModelSpec& spec, Generator* gen) {
  return make_model(spec.name, spec.in_channels, spec.height, spec.width, spec.num_classes, gen);
}

void ModelSpec::validate() const { check_sizes(name, in_channels, height, width, num_classes); }

std::string ModelSpec::to_json() const {
  nlohmann::ordered_json j;
  j["type"] = name;
  j["in_channels"] = in_channels;
  j["height"] = height;
  j["width"] = width;
  j["num_classes"] = num_classes;
  return j.dump();
}

ModelSpec ModelSpec::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(std::string("model architecture: not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) throw ValueError("model architecture: expected a JSON object, got " + j.dump());
  ModelSpec s;
  if (!j.contains("type") || !j["type"].is_string())
    throw ValueError("model architecture: \"type\" must be a model name (one of " + known_names() + ")");
  s.name = j["type"].get<std::string>();
  auto integer = [&](const char* key) -> std::int64_t {
    if (!j.contains(key) || !j[key].is_number_integer())
      throw ValueError(std::string("model architecture: \"") + key + "\" must be an integer" +
                       (j.contains(key) ? ", got " + j[key].dump() : " (missing)"));
    return j[key].get<std::int64_t>();
  };
  s.in_channels = integer("in_channels");
  s.height = integer("height");
  s.width = integer("width");
  s.num_classes = integer("num_classes");
  s.validate();
  return s;
}

}  // namespace krill::nn
