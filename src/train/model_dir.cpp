#include "krill/train/model_dir.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "krill/autograd/grad_mode.hpp"
#include "krill/io/safetensors.hpp"
#include "krill/tensor/generator.hpp"
#include "krill/tensor/ops.hpp"
#include "krill/util/runtime_info.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace krill::training {

std::string model_config_json(const MlpArchitecture& arch, const data::FeaturePipeline& pipeline,
                              const std::string& training_json) {
  json cfg;
  cfg["format"] = "krill-model";
  cfg["format_version"] = 1;
  cfg["krill_version"] = version();
  cfg["architecture"] = {{"type", "mlp"},
                         {"in_features", arch.in_features},
                         {"hidden", arch.hidden},
                         {"num_classes", arch.num_classes},
                         {"activation", "relu"},
                         {"output", "log_softmax"}};
  cfg["preparation"] = json::parse(pipeline.to_json());
  cfg["training"] = training_json.empty() ? json::object() : json::parse(training_json);
  return cfg.dump(2) + "\n";
}

namespace {

[[noreturn]] void bad(const std::string& dir, const std::string& what) {
  throw InvalidModelDirectoryError(dir + " is not a valid krill model directory: " + what);
}

std::string read_text(const std::string& dir, const std::string& name) {
  const fs::path p = fs::path(dir) / name;
  std::error_code ec;
  if (!fs::exists(p, ec)) bad(dir, name + " is missing (was it written by krill train?)");
  std::ifstream f(p, std::ios::binary);
  if (!f) bad(dir, "cannot read " + name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

SavedModel load_model_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw InvalidModelDirectoryError(dir + ": no such model directory");
  if (!fs::is_directory(dir, ec)) throw InvalidModelDirectoryError(dir + " is a file, not a model directory");
  SavedModel m;
  m.directory = dir;
  const std::string text = read_text(dir, "config.json");
  json cfg;
  try {
    cfg = json::parse(text);
  } catch (const json::exception& e) {
    bad(dir, std::string("config.json is not valid JSON (") + e.what() + ")");
  }
  try {
    if (!cfg.is_object() || cfg.value("format", "") != "krill-model")
      bad(dir, "config.json is not a krill model configuration (no \"format\": \"krill-model\")");
    if (cfg.value("format_version", 0) != 1)
      bad(dir, "config.json has format_version " + cfg.value("format_version", json(0)).dump() +
                   "; this krill reads version 1");
    const json& a = cfg.at("architecture");
    if (a.value("type", "") != "mlp") bad(dir, "config.json: unsupported architecture type " + a.value("type", json("")).dump());
    m.architecture.in_features = a.at("in_features").get<std::int64_t>();
    m.architecture.hidden = a.at("hidden").get<std::vector<std::int64_t>>();
    m.architecture.num_classes = a.at("num_classes").get<std::int64_t>();
    if (!cfg.contains("preparation")) bad(dir, "config.json has no \"preparation\" section");
    m.pipeline = data::FeaturePipeline::from_json(cfg.at("preparation").dump(), dir + "/config.json");
    if (cfg.contains("training")) m.training_json = cfg.at("training").dump();
  } catch (const json::exception& e) {
    bad(dir, std::string("config.json is incomplete or has a wrong type: ") + e.what());
  }
  if (m.pipeline.num_features() != m.architecture.in_features)
    bad(dir, "config.json lists " + std::to_string(m.pipeline.num_features()) + " features but the network takes " +
                 std::to_string(m.architecture.in_features));
  if (m.pipeline.num_classes() != m.architecture.num_classes)
    bad(dir, "config.json lists " + std::to_string(m.pipeline.num_classes()) + " classes but the network outputs " +
                 std::to_string(m.architecture.num_classes));
  const fs::path weights = fs::path(dir) / "model.safetensors";
  if (!fs::exists(weights, ec)) bad(dir, "model.safetensors is missing");
  StateDict sd;
  try {
    sd = io::load_safetensors(weights.string());
  } catch (const Error& e) {
    bad(dir, std::string("model.safetensors is unreadable: ") + e.what());
  }
  try {
    Generator unused(0);  // initial values are overwritten by the saved weights
    m.model = std::make_shared<nn::MLP>(m.architecture.in_features, m.architecture.hidden, m.architecture.num_classes,
                                        &unused);
    m.model->load_state_dict(sd);
  } catch (const ValueError& e) {
    bad(dir, std::string("model.safetensors does not match config.json: ") + e.what());
  }
  m.model->eval();
  return m;
}

Predictions predict(nn::MLP& model, const Tensor& features) {
  NoGradGuard no_grad;
  model.eval();
  Tensor logp = model.forward(features);
  Predictions p;
  p.probabilities = exp(logp);
  p.class_ids = argmax(logp, 1);
  return p;
}

}  // namespace krill::training
