// DistributedOptimizer: the glue between autograd hooks, the fusion buffers, the controller's
// communication thread, the timeline and the wrapped optimizer. See dist.hpp for the contract.
//
// One step with overlap (more than one bucket, MPI_THREAD_MULTIPLE):
//   backward   each parameter's post-accumulate-grad hook fills its slot (usually nothing to
//              copy: .grad is a view of the slot) and counts it; a complete bucket is queued to
//              the communication thread, which allreduces buckets 0, 1, ... strictly in order on
//              its own communicator and divides by the size
//   step()     fills and queues what backward left (parameters without a gradient: zeros),
//              waits for the communication thread, publishes the averaged gradients as .grad
//              and steps the wrapped optimizer
// Otherwise (one bucket, overlap off, or MPI without MPI_THREAD_MULTIPLE) step() fills and
// allreduces every bucket on the training thread: with one bucket there is nothing to overlap
// (it is complete only when backward ends) and no thread hand-off is worth its latency.
// Only one collective is in flight per rank at a time: on two cores, two concurrent 25 MB
// allreduces measured slower than the same two in sequence.
#include <algorithm>
#include <cstring>

#include "controller.hpp"
#include "fusion_buffer.hpp"
#include "internal.hpp"
#include "stall_inspector.hpp"
#include "timeline.hpp"

namespace krill::dist {

struct DistributedOptimizer::Impl {
  optim::Optimizer* inner = nullptr;
  ProcessGroup* group = nullptr;
  int size = 1;
  DistributedOptions options;
  bool hooks_fill = false;  // hooks fill buckets (overlap with communication buckets)
  std::unique_ptr<ProcessGroup> comm_group;  // the communication thread's channel
  std::unique_ptr<ProcessGroup> main_group;  // the training thread's channel (no communication thread)
  detail::FusionBufferManager fb;
  detail::Controller controller;
  detail::Timeline timeline;
  std::vector<std::uint8_t> ready;            // per slot: gradient in place this step
  std::vector<std::int64_t> bucket_first_us;  // per bucket: first gradient this step (timeline)
  std::int64_t first_hook_us = 0, last_hook_us = 0;
  std::vector<Tensor> hooked;                 // parameters carrying our hook

  struct GradHook {
    Impl* impl;
    int slot;
    void operator()(Tensor&) const { impl->on_grad_ready(slot); }
  };

  void on_grad_ready(int s) {
    std::int64_t now = 0;
    if (timeline.enabled()) {
      now = detail::now_us();
      if (first_hook_us == 0) first_hook_us = now;
      last_hook_us = now;
    }
    if (!hooks_fill) return;
    const detail::ParamSlot& p = fb.slot(s);
    if (ready[static_cast<std::size_t>(s)])
      throw DistributedError(
          "DistributedOptimizer: the gradient of " + p.name +
          " was accumulated a second time before step(): with overlap, every backward() must be followed by step() "
          "(its gradients are already being allreduced); to accumulate gradients over several backward passes, "
          "construct the DistributedOptimizer with DistributedOptions::overlap = false");
    ready[static_cast<std::size_t>(s)] = 1;
    if (timeline.enabled() && bucket_first_us[static_cast<std::size_t>(p.bucket)] == 0)
      bucket_first_us[static_cast<std::size_t>(p.bucket)] = now;
    fb.fill(s);
    if (controller.param_ready(p.bucket) && timeline.enabled())
      timeline.event("fill", "fill", detail::Timeline::kTrainingThread, bucket_first_us[static_cast<std::size_t>(p.bucket)],
                     detail::now_us(), p.bucket, fb.bucket(p.bucket).grad_elems * 4);
  }

  // Allreduce (sum) of bucket b on group g, then the division; runs on either thread.
  void reduce(int b, ProcessGroup& g, detail::Timeline::Thread tid) {
    detail::Bucket& bk = fb.bucket(b);
    detail::StallContext ctx(&bk.description);
    const std::int64_t t0 = timeline.enabled() ? detail::now_us() : 0;
    g.allreduce(bk.buffer, ReduceOp::Sum);
    fb.average(b, size);
    if (timeline.enabled())
      timeline.event("allreduce", "allreduce", tid, t0, detail::now_us(), b, static_cast<std::int64_t>(bk.buffer.nbytes()));
  }
  static void reduce_on_comm_thread(void* ctx, int b) {
    auto* self = static_cast<Impl*>(ctx);
    self->reduce(b, *self->comm_group, detail::Timeline::kCommThread);
  }

  // Fills the slots of bucket b that no hook filled.
  void fill_rest(int b) {
    const std::int64_t t0 = timeline.enabled() ? detail::now_us() : 0;
    bool any = false;
    for (int s : fb.bucket(b).slots)
      if (!ready[static_cast<std::size_t>(s)]) {
        fb.fill(s);
        any = true;
      }
    if (any && timeline.enabled())
      timeline.event("fill", "fill", detail::Timeline::kTrainingThread, t0, detail::now_us(), b, fb.bucket(b).grad_elems * 4);
  }

  void step() {
    const int B = fb.num_buckets();
    const int C = controller.num_comm_buckets();
    if (timeline.enabled() && first_hook_us != 0)
      timeline.event("backward", "backward", detail::Timeline::kTrainingThread, first_hook_us, last_hook_us);
    // An error (a gradient of the wrong dtype or shape, a failed collective) is raised only after
    // every bucket went through its collective, so this rank never leaves the others waiting in
    // one it skipped, and the communication thread is idle when step() throws.
    std::exception_ptr error;
    auto attempt = [&error](auto&& fn) {
      try {
        fn();
      } catch (...) {
        if (!error) error = std::current_exception();
      }
    };
    // Communication buckets that backward did not complete (parameters without a gradient).
    for (int b = 0; b < C; ++b)
      if (!controller.is_queued(b)) {
        attempt([&] { fill_rest(b); });
        controller.queue(b);
      }
    // The training thread's buckets (all of them when there is no communication thread).
    for (int b = C; b < B; ++b) {
      attempt([&] { fill_rest(b); });
      attempt([&] { reduce(b, *main_group, detail::Timeline::kTrainingThread); });
    }
    const std::int64_t t_wait = timeline.enabled() ? detail::now_us() : 0;
    attempt([&] { controller.wait_all(); });  // (always: the communication thread must be idle before we go on)
    if (timeline.enabled() && C > 0)
      timeline.event("wait for communication", "wait", detail::Timeline::kTrainingThread, t_wait, detail::now_us());
    std::fill(ready.begin(), ready.end(), 0);
    std::fill(bucket_first_us.begin(), bucket_first_us.end(), 0);
    first_hook_us = last_hook_us = 0;
    if (error) std::rethrow_exception(error);
    for (int b = 0; b < B; ++b) fb.publish(b);
  }

  void remove_hooks() {
    for (Tensor& p : hooked) {
      AutogradExtra* ex = p.impl()->extra.get();
      if (!ex) continue;
      auto& hooks = ex->post_accumulate_hooks;
      hooks.erase(std::remove_if(hooks.begin(), hooks.end(),
                                 [&](const std::function<void(Tensor&)>& f) {
                                   const GradHook* h = f.target<GradHook>();
                                   return h && h->impl == this;
                                 }),
                  hooks.end());
    }
    hooked.clear();
  }
};

DistributedOptimizer::DistributedOptimizer(std::unique_ptr<optim::Optimizer> inner, nn::Module& module,
                                           DistributedOptions options)
    : inner_(std::move(inner)), impl_(std::make_unique<Impl>()) {
  if (!inner_) throw ValueError("DistributedOptimizer: the wrapped optimizer is null");
  if (options.bucket_bytes <= 0)
    throw ValueError("DistributedOptimizer: bucket_bytes must be > 0, got " + std::to_string(options.bucket_bytes));
  ProcessGroup* group = options.process_group;
  if (!group) {
    if (!is_initialized())
      throw DistributedError("DistributedOptimizer: krill::dist is not initialised; call dist::init() first");
    group = &world();
  }
  // Our groups mirror the wrapped optimizer's, so zero_grad() and params() work on this object.
  for (std::size_t g = 0; g < inner_->num_param_groups(); ++g) add_group_params(inner_->params(g));

  Impl& m = *impl_;
  m.inner = inner_.get();
  m.group = group;
  m.size = group->size();
  m.options = options;

  // Names for messages and the timeline: the module's, else "parameter <i>".
  const std::vector<Tensor> params = inner_->parameters();
  std::vector<std::string> names(params.size());
  const auto named = module.named_parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    names[i] = "parameter " + std::to_string(i);
    for (const auto& [n, t] : named)
      if (t.impl() == params[i].impl()) {
        names[i] = n;
        break;
      }
  }

  if (!options.timeline_path.empty())
    m.timeline.open(detail::timeline_path_for_rank(options.timeline_path, group->rank(), group->size()), group->rank());
  if (m.size == 1) return;  // a world of one: step() only forwards

  m.fb.build(params, names, options.bucket_bytes);
  const int B = m.fb.num_buckets();
  const int C = (options.overlap && group->concurrent_collectives() && B > 1) ? B : 0;
  m.hooks_fill = C > 0;

  // Every rank must bucket the same parameters alike and talk on the same channels.
  std::vector<std::string> entries;
  entries.push_back("buckets " + std::to_string(B) + ", on the communication thread " + std::to_string(C));
  for (std::size_t i = 0; i < params.size(); ++i) entries.push_back(detail::describe_tensor("parameter", names[i], params[i]));
  detail::check_same_structure(*group, entries, "DistributedOptimizer", 0);

  if (C > 0) m.comm_group = group->duplicate();
  else m.main_group = group->duplicate();
  m.ready.assign(static_cast<std::size_t>(m.fb.num_slots()), 0);
  m.bucket_first_us.assign(static_cast<std::size_t>(B), 0);
  std::vector<int> per_bucket(static_cast<std::size_t>(B));
  for (int b = 0; b < B; ++b) per_bucket[static_cast<std::size_t>(b)] = static_cast<int>(m.fb.bucket(b).slots.size());
  m.controller.start(per_bucket, C, &Impl::reduce_on_comm_thread, &m);

  if (m.hooks_fill || m.timeline.enabled()) {
    for (int s = 0; s < m.fb.num_slots(); ++s) {
      Tensor p = m.fb.slot(s).param;
      if (!p.requires_grad()) continue;  // never gets a gradient: filled (zeros) by step()
      p.register_post_accumulate_grad_hook(Impl::GradHook{&m, s});
      m.hooked.push_back(p);
    }
  }
}

DistributedOptimizer::~DistributedOptimizer() {
  impl_->controller.stop();
  impl_->remove_hooks();
}

void DistributedOptimizer::step() {
  Impl& m = *impl_;
  if (m.size > 1) m.step();
  const std::int64_t t0 = m.timeline.enabled() ? detail::now_us() : 0;
  inner_->step();
  if (m.timeline.enabled()) m.timeline.event("optimizer step", "step", detail::Timeline::kTrainingThread, t0, detail::now_us());
}

double DistributedOptimizer::lr(std::size_t group) const { return inner_->lr(group); }
void DistributedOptimizer::set_lr(std::size_t group, double lr) { inner_->set_lr(group, lr); }
std::string_view DistributedOptimizer::name() const { return inner_ ? inner_->name() : "DistributedOptimizer"; }
StateDict DistributedOptimizer::state_dict() const { return inner_->state_dict(); }
void DistributedOptimizer::load_state_dict(const StateDict& state) { inner_->load_state_dict(state); }
void DistributedOptimizer::init_state() { inner_->init_state(); }

std::vector<DistributedOptimizer::BucketInfo> DistributedOptimizer::buckets() const {
  std::vector<BucketInfo> out;
  const auto& fb = impl_->fb;
  for (int b = 0; b < fb.num_buckets(); ++b) {
    BucketInfo info;
    for (int s : fb.bucket(b).slots) info.params.push_back(fb.slot(s).name);
    info.bytes = fb.bucket(b).grad_elems * static_cast<std::int64_t>(sizeof(float));
    out.push_back(std::move(info));
  }
  return out;
}

std::string DistributedOptimizer::timeline_file() const { return impl_->timeline.path(); }

}  // namespace krill::dist
