#include "krill/tensor/state_dict.hpp"

namespace krill {

void StateDict::insert(const std::string& name, const Tensor& t) {
  for (auto& item : items_)
    if (item.first == name) {
      item.second = t;
      return;
    }
  items_.emplace_back(name, t);
}

const Tensor* StateDict::find(const std::string& name) const {
  for (const auto& item : items_)
    if (item.first == name) return &item.second;
  return nullptr;
}

const Tensor& StateDict::at(const std::string& name) const {
  if (const Tensor* t = find(name)) return *t;
  std::string keys;
  for (const auto& item : items_) keys += (keys.empty() ? "" : ", ") + item.first;
  throw ValueError("state dict has no entry '" + name + "' (entries: " + (keys.empty() ? "none" : keys) + ")");
}

std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> k;
  k.reserve(items_.size());
  for (const auto& item : items_) k.push_back(item.first);
  return k;
}

}  // namespace krill
