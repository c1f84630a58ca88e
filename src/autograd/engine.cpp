// The backward engine. Two passes over the graph reachable from the root: count how many
// consumers each node has (its dependencies), then run nodes whose consumers have all
// delivered, newest first. Work lists are thread-local vectors that keep their capacity, so
// a steady-state backward allocates nothing.
#include "krill/autograd/engine.hpp"

#include <vector>

#include "../tensor/cpu/kernels.hpp"
#include "../tensor/internal.hpp"
#include "krill/autograd/grad_mode.hpp"
#include "krill/autograd/node.hpp"

namespace krill::autograd {
namespace {

thread_local std::uint64_t t_epoch = 0;
thread_local std::vector<Node*> t_stack;
thread_local std::vector<Node*> t_ready;
thread_local std::vector<Tensor> t_grads;

// Leaves with hooks (AutogradExtra) reached by this backward: their incoming gradients are
// summed over all edges and accumulated once, after the last edge delivered, so that tensor
// hooks and post-accumulate-grad hooks see the total gradient once per backward (PyTorch's
// AccumulateGrad node behaves the same). Other leaves accumulate edge by edge (same result).
struct PendingLeaf {
  TensorImpl* leaf;
  std::int32_t remaining;
  Tensor grad;
};
thread_local std::vector<PendingLeaf> t_leaves;

// Adds `g` into `slot` (which may be undefined). Takes over g's buffer when nobody else holds it.
void add_into(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) {
    slot = g;
    return;
  }
  if (slot.impl()->use_count() == 1 && slot.impl()->storage->use_count() == 1 && slot.is_contiguous() &&
      slot.shape() == g.shape()) {
    cpu::add_inplace(slot, g, 1.0);
  } else {
    slot = add(slot, g);
  }
}

}  // namespace

void accumulate_grad(TensorImpl* leaf_impl, const Tensor& incoming) {
  Tensor leaf(Ref<TensorImpl>::share(leaf_impl));
  Tensor grad = incoming;
  if (!(grad.shape() == leaf.shape()))
    throw AutogradError("gradient of shape " + grad.shape().str() + " for a leaf of shape " + leaf.shape().str());
  if (leaf_impl->extra) {
    for (auto& hook : leaf_impl->extra->grad_hooks)
      if (auto r = hook(grad)) grad = *r;
  }
  if (!leaf_impl->grad) {
    // Store the incoming gradient itself when it is ours alone (as PyTorch's AccumulateGrad
    // does), else a private contiguous copy.
    if (grad.impl()->use_count() <= 2 && grad.impl()->storage->use_count() == 1 && grad.is_contiguous() &&
        !grad.requires_grad() && grad.storage_offset() == 0)
      leaf_impl->grad = grad.impl_ref();
    else
      leaf_impl->grad = grad.detach().clone().impl_ref();
  } else {
    Tensor g(leaf_impl->grad);
    cpu::add_inplace(g, grad, 1.0);
    g.bump_version();
  }
  if (leaf_impl->extra) {
    Tensor g(leaf_impl->grad);
    for (auto& hook : leaf_impl->extra->post_accumulate_hooks) hook(leaf);
    (void)g;
  }
}

void backward(const Tensor& root, const Tensor& gradient, bool retain_graph) {
  if (!root.defined()) throw AutogradError("backward: the tensor is undefined");
  if (!root.requires_grad())
    throw AutogradError(
        "backward: the tensor does not require grad and has no grad_fn (did you compute it under NoGradGuard, "
        "or from tensors that do not require grad?)");
  Tensor seed = gradient;
  if (!seed.defined()) {
    if (root.numel() != 1)
      throw AutogradError("backward: grad can be implicitly created only for one-element outputs; this tensor has "
                          "shape " + root.shape().str() + ", pass a gradient of that shape");
    seed = ones(root.shape(), TensorOptions(root.dtype()));
  } else if (!(seed.shape() == root.shape())) {
    throw AutogradError("backward: gradient of shape " + seed.shape().str() + " for an output of shape " +
                        root.shape().str());
  }
  // Gradients computed by backward functions are not themselves recorded.
  GradModeGuard no_grad(false);

  Node* root_node = root.grad_fn();
  if (!root_node) {  // the root is a leaf
    accumulate_grad(root.impl(), seed);
    return;
  }
  if (root_node->released && !root_node->backward)
    throw AutogradError("backward: the graph was already freed by an earlier backward; pass retain_graph=true");

  // Pass 1: dependencies (number of consumers inside the reachable graph).
  const std::uint64_t epoch = ++t_epoch;
  t_stack.clear();
  t_stack.push_back(root_node);
  root_node->visit_epoch = epoch;
  root_node->dependencies = 0;
  for (auto& p : t_leaves) p.grad = Tensor();  // (left over only if an earlier backward threw)
  t_leaves.clear();
  while (!t_stack.empty()) {
    Node* n = t_stack.back();
    t_stack.pop_back();
    for (int i = 0; i < n->num_inputs; ++i) {
      if (TensorImpl* lf = n->inputs[i].leaf.get(); lf && lf->extra) {
        AutogradExtra& ex = *lf->extra;
        if (ex.engine_epoch != epoch) {
          ex.engine_epoch = epoch;
          ex.engine_slot = static_cast<std::int32_t>(t_leaves.size());
          t_leaves.push_back({lf, 0, Tensor()});
        }
        ++t_leaves[static_cast<std::size_t>(ex.engine_slot)].remaining;
      }
      Node* next = n->inputs[i].node.get();
      if (!next) continue;
      if (next->visit_epoch != epoch) {
        next->visit_epoch = epoch;
        next->dependencies = 0;
        next->pending_grad = Tensor();
        t_stack.push_back(next);
      }
      ++next->dependencies;
    }
  }

  // Pass 2: run nodes once all their consumers have delivered.
  root_node->pending_grad = seed;
  t_ready.clear();
  t_ready.push_back(root_node);
  while (!t_ready.empty()) {
    Node* n = t_ready.back();
    t_ready.pop_back();
    Tensor grad_out = std::move(n->pending_grad);
    n->pending_grad = Tensor();
    if (!n->backward)
      throw AutogradError(std::string("backward through ") + n->name + " a second time: the graph was freed; pass "
                          "retain_graph=true to the first backward");
    t_grads.resize(static_cast<std::size_t>(n->num_inputs));
    Tensor* grads = t_grads.data();
    for (int i = 0; i < n->num_inputs; ++i) grads[i] = Tensor();
    if (grad_out.defined()) {  // undefined when no consumer produced a gradient
      if (n->retained_output) {
        Tensor keep = grad_out.detach().clone();
        TensorImpl* out = n->retained_output;
        out->grad = out->grad ? add(Tensor(out->grad), keep).impl_ref() : keep.impl_ref();
      }
      n->backward(*n, grad_out, grads);
    }
    if (!retain_graph) {
      n->release_saved();
      n->backward = nullptr;
    }
    for (int i = 0; i < n->num_inputs; ++i) {
      Edge& e = n->inputs[i];
      if (!e.valid()) continue;
      Tensor& g = grads[i];
      // a gradient computed in a promoted dtype goes back to the input's dtype
      if (g.defined() && g.dtype() != e.dtype) g = g.to(e.dtype);
      if (e.leaf) {
        TensorImpl* lf = e.leaf.get();
        if (lf->extra && lf->extra->engine_epoch == epoch) {
          PendingLeaf& p = t_leaves[static_cast<std::size_t>(lf->extra->engine_slot)];
          if (g.defined()) add_into(p.grad, g);
          if (--p.remaining == 0 && p.grad.defined()) {
            Tensor total = std::move(p.grad);
            p.grad = Tensor();
            accumulate_grad(lf, total);
          }
        } else if (g.defined()) {
          accumulate_grad(lf, g);
        }
      } else {
        Node* next = e.node.get();
        if (g.defined()) add_into(next->pending_grad, g);
        if (--next->dependencies == 0) t_ready.push_back(next);
      }
      g = Tensor();
    }
  }
}

}  // namespace krill::autograd
