// An ordered name -> tensor map: what Module::state_dict() returns and safetensors stores.
// Insertion order is kept (PyTorch's state_dict is an OrderedDict).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "krill/tensor/tensor.hpp"

namespace krill {

class StateDict {
 public:
  using Item = std::pair<std::string, Tensor>;

  // Adds or replaces `name`.
  void insert(const std::string& name, const Tensor& t);
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  // Null when absent.
  const Tensor* find(const std::string& name) const;
  // Throws ValueError naming the missing key.
  const Tensor& at(const std::string& name) const;
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  const std::vector<Item>& items() const { return items_; }
  std::vector<std::string> keys() const;

 private:
  std::vector<Item> items_;
};

}  // namespace krill
