// oneDNN glue for the CNN ops (internal): the CPU engine and stream, a cache of primitives
// keyed by shape and parameters (a primitive costs ~0.2 ms to create, so each distinct
// configuration is created once per process and kept), and wrapping of krill tensors as
// oneDNN memory. krill tensors stay NCHW contiguous; an entry that uses a blocked layout
// holds the reorders to and from it.
//
// Entries are created under one mutex and never destroyed before process exit, so an
// autograd node may keep a raw pointer to the entry of its forward (the backward then needs
// no lookup). Executing a primitive takes no lock: the primitives are stateless (user-mode
// scratchpad, one buffer per thread).
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <utility>

#include "krill/tensor/tensor.hpp"

namespace krill::cpu::onednn {

dnnl::engine& engine();
dnnl::stream& stream();

// Number of oneDNN primitives (convolutions, pooling, batch norm, reorders) created so far in
// this process. A training loop whose shapes do not change stops increasing it after its
// first step (tests check this).
std::size_t primitive_count();
// Number of cache entries (configurations) held.
std::size_t cache_entries();
// Call after constructing a primitive (counts it).
void note_primitive_created();

// Cache key: an op kind and up to 24 integers (shapes, parameters, flags, double bits).
struct Key {
  std::int32_t kind = 0;
  std::int32_t n = 0;
  std::int64_t v[24] = {};
  void push(std::int64_t x) { v[n++] = x; }
  void push_double(double d) {
    std::int64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    push(bits);
  }
  bool operator==(const Key& o) const {
    return kind == o.kind && n == o.n && std::memcmp(v, o.v, sizeof(std::int64_t) * static_cast<std::size_t>(n)) == 0;
  }
};

// Base of the cached per-configuration state (primitives, descriptors).
struct Entry {
  virtual ~Entry() = default;
};

// Returns the entry for `key`, creating it with `make()` (under the cache lock) the first
// time. The reference stays valid for the life of the process.
Entry& lookup(const Key& key, const std::function<std::unique_ptr<Entry>()>& make);
template <typename E, typename F>
E& get(const Key& key, F&& make) {
  // The make lambda is only converted to std::function on a miss path inside lookup; the
  // conversion itself does not allocate for small captureless-or-reference lambdas.
  return static_cast<E&>(lookup(key, [&]() -> std::unique_ptr<Entry> { return make(); }));
}
// The entry for `key` when there is one, else nullptr (creates nothing).
Entry* find(const Key& key);
// Runs `fn` under the cache lock.
void locked(const std::function<void()>& fn);
// Lazy creation inside an entry (a backward primitive on the first backward): runs `make`
// under the cache lock unless `ready` is set, then sets it; safe when several threads race.
template <typename F>
void create_once(std::atomic<bool>& ready, F&& make) {
  if (ready.load(std::memory_order_acquire)) return;
  locked([&] {
    if (ready.load(std::memory_order_relaxed)) return;
    make();
    ready.store(true, std::memory_order_release);
  });
}

// The attribute every cached primitive is created with: user-mode scratchpad (see execute).
dnnl::primitive_attr default_attr();

// Runs oneDNN single-threaded while alive when `single` (else does nothing): for primitives so
// small that an OpenMP fork/join costs more than the work (LeNet at batch 4). Wrap both the
// creation of such a primitive (oneDNN fixes a JIT kernel's thread split when it is created)
// and its executions.
class ThreadScope {
 public:
  explicit ThreadScope(bool single);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int prev_ = 0;
};
// Work below which a primitive runs single-threaded: convolution flops (2 x multiply-adds;
// KRILL_SINGLE_THREAD_FLOPS) and pooling input elements (KRILL_SINGLE_THREAD_ELEMS). Off (0)
// by default: on an idle machine two threads win even for LeNet's convolutions (Fashion-MNIST
// 44.5k vs 38k images/s, batch 4 5.1k vs 4.3k steps/s); on a machine where another process
// holds a core, single-threaded small ops avoid OpenMP waiting for a descheduled thread
// (LeNet batch 4: 230 us a step instead of 1-3 ms), so a shared machine may want them on.
std::int64_t single_thread_conv_flops();
std::int64_t single_thread_elems();

// Plain descriptors.
dnnl::memory::desc plain_desc(std::initializer_list<std::int64_t> dims, dnnl::memory::format_tag tag);

// One argument of an execute call: the oneDNN argument id, its descriptor and the data.
struct Arg {
  int id;
  const dnnl::memory::desc* md;
  void* data;
};
// Executes `p` on the stream with the given arguments and a thread-local scratchpad sized for
// `pd_scratch` (the primitive descriptor's scratchpad_desc), then waits.
void execute(const dnnl::primitive& p, const dnnl::memory::desc& scratch_md, std::span<const Arg> args);
inline void execute(const dnnl::primitive& p, const dnnl::memory::desc& scratch_md, std::initializer_list<Arg> args) {
  execute(p, scratch_md, std::span<const Arg>(args.begin(), args.size()));
}

// Bytes of a descriptor, rounded up to whole float32 elements; a krill buffer of that many
// float elements holds a tensor in the descriptor's layout.
std::int64_t float_elems(const dnnl::memory::desc& md);

// One edge of a primitive: the user's (plain) layout and the primitive's. When they differ,
// `reorder` converts between them (direction fixed at creation: to the primitive for inputs,
// from it for outputs).
struct Port {
  dnnl::memory::desc user, prim;
  dnnl::primitive reorder;
  dnnl::memory::desc reorder_scratch;
  bool active = false;
};
// Port for an input (user -> prim) or an output (prim -> user).
Port make_port(const dnnl::memory::desc& user, const dnnl::memory::desc& prim, bool input);
// For an input port: returns `data` when no reorder is needed, else reorders it into `buf`
// (a fresh krill buffer) and returns that.
void* port_in(const Port& p, void* data, Tensor& buf);
// For an output port: where the primitive should write (`user_data`, or a fresh buffer in `buf`).
void* port_out_target(const Port& p, void* user_data, Tensor& buf);
// For an output port: reorders the primitive's result from `buf` into `user_data` (no-op when
// the port is inactive).
void port_out_finish(const Port& p, void* user_data, const Tensor& buf);

}  // namespace krill::cpu::onednn
