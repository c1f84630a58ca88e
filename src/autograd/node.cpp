#include "krill/autograd/node.hpp"

#include "krill/autograd/grad_mode.hpp"

namespace krill::autograd {

Node::~Node() {
  if (inputs != inline_inputs) {
    for (int i = 0; i < num_inputs; ++i) inputs[i].~Edge();
    host_allocator::deallocate(inputs, sizeof(Edge) * static_cast<std::size_t>(num_inputs));
  }
}

void Node::set_num_inputs(int n) {
  num_inputs = n;
  if (n > kInlineInputs) {
    void* mem = host_allocator::allocate(sizeof(Edge) * static_cast<std::size_t>(n));
    inputs = static_cast<Edge*>(mem);
    for (int i = 0; i < n; ++i) new (&inputs[i]) Edge();
  }
}

void Node::save(int slot, const Tensor& t) {
  saved[slot] = t;
  saved_version[slot] = t.defined() ? t.impl()->storage->version : 0;
}

const Tensor& Node::saved_tensor(int slot) const {
  if (released)
    throw AutogradError(std::string("backward through ") + name +
                        " a second time: its saved tensors were freed after the first backward; pass "
                        "retain_graph=true to the first backward if you need to backward twice");
  const Tensor& t = saved[slot];
  if (t.defined() && t.impl()->storage->version != saved_version[slot])
    throw AutogradError(std::string("one of the tensors needed for gradient computation (saved by ") + name +
                        ") has been modified by an in-place operation since it was saved");
  return t;
}

void Node::release_saved() {
  for (auto& t : saved) t = Tensor();
  released = true;
}

bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!is_grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

static void wire(Node* node, int i, const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return;
  node->inputs[i].dtype = t.dtype();
  if (t.grad_fn()) node->inputs[i].node = Ref<Node>::share(t.grad_fn());
  else node->inputs[i].leaf = t.impl_ref();
}

Node* record(const char* name, BackwardFn backward, std::initializer_list<const Tensor*> inputs, Tensor& output) {
  Node* node = new Node;
  node->name = name;
  node->backward = backward;
  node->set_num_inputs(static_cast<int>(inputs.size()));
  int i = 0;
  for (const Tensor* t : inputs) wire(node, i++, *t);
  output.impl()->grad_fn = Ref<Node>::adopt(node);
  output.impl()->requires_grad = true;
  return node;
}

Node* record(const char* name, BackwardFn backward, const Tensor* inputs, int n, Tensor& output) {
  Node* node = new Node;
  node->name = name;
  node->backward = backward;
  node->set_num_inputs(n);
  for (int i = 0; i < n; ++i) wire(node, i, inputs[i]);
  output.impl()->grad_fn = Ref<Node>::adopt(node);
  output.impl()->requires_grad = true;
  return node;
}

}  // namespace krill::autograd
