#include "onednn.hpp"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

#include "../internal.hpp"
#include "krill/tensor/allocator.hpp"
#include "krill/util/error.hpp"

namespace krill::cpu::onednn {

namespace {

struct KeyHash {
  std::size_t operator()(const Key& k) const noexcept {
    std::uint64_t h = 0x9e3779b97f4a7c15ull ^ static_cast<std::uint64_t>(k.kind);
    for (int i = 0; i < k.n; ++i) {
      h ^= static_cast<std::uint64_t>(k.v[i]) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    }
    return static_cast<std::size_t>(h);
  }
};

struct Cache {
  std::mutex mu;
  std::unordered_map<Key, std::unique_ptr<Entry>, KeyHash> map;
};

Cache& cache() {
  // Leaked on purpose: autograd nodes and other static objects may still point into entries
  // while statics are destroyed at exit.
  static Cache* c = new Cache();
  return *c;
}

std::atomic<std::size_t> g_primitives{0};

// A per-thread scratchpad buffer, grown as needed (oneDNN's user-mode scratchpad).
struct Scratch {
  void* p = nullptr;
  std::size_t size = 0;
  ~Scratch() {
    if (p) host_allocator::deallocate(p, size);
  }
  void* get(std::size_t n) {
    if (n > size) {
      if (p) host_allocator::deallocate(p, size);
      p = nullptr;
      size = 0;
      p = host_allocator::allocate(n);
      size = n;
    }
    return p;
  }
};

void check(dnnl_status_t st, const char* what) {
  if (st != dnnl_success) throw Error(std::string("oneDNN: ") + what + " failed (status " + std::to_string(st) + ")");
}

}  // namespace

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

std::size_t primitive_count() { return g_primitives.load(std::memory_order_relaxed); }

std::size_t cache_entries() {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  return c.map.size();
}

void note_primitive_created() { g_primitives.fetch_add(1, std::memory_order_relaxed); }

Entry* find(const Key& key) {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  auto it = c.map.find(key);
  return it == c.map.end() ? nullptr : it->second.get();
}

Entry& lookup(const Key& key, const std::function<std::unique_ptr<Entry>()>& make) {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  auto it = c.map.find(key);
  if (it != c.map.end()) return *it->second;
  std::unique_ptr<Entry> e = make();
  Entry& ref = *e;
  c.map.emplace(key, std::move(e));
  return ref;
}

void locked(const std::function<void()>& fn) {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  fn();
}

namespace {
std::int64_t env_int(const char* name, std::int64_t dflt) {
  const char* e = std::getenv(name);
  return e && *e ? std::atoll(e) : dflt;
}
}  // namespace

std::int64_t single_thread_conv_flops() {
  static const std::int64_t v = env_int("KRILL_SINGLE_THREAD_FLOPS", 0);
  return v;
}

std::int64_t single_thread_elems() {
  static const std::int64_t v = env_int("KRILL_SINGLE_THREAD_ELEMS", 0);
  return v;
}

ThreadScope::ThreadScope(bool single) {
  if (!single) return;
  prev_ = omp_get_max_threads();
  if (prev_ > 1) omp_set_num_threads(1);
}

ThreadScope::~ThreadScope() {
  if (prev_ > 1) omp_set_num_threads(prev_);
}

dnnl::primitive_attr default_attr() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

dnnl::memory::desc plain_desc(std::initializer_list<std::int64_t> dims, dnnl::memory::format_tag tag) {
  return dnnl::memory::desc(dnnl::memory::dims(dims), dnnl::memory::data_type::f32, tag);
}

void execute(const dnnl::primitive& p, const dnnl::memory::desc& scratch_md, std::span<const Arg> args) {
  // Memory objects wrap krill buffers for the duration of the call (no copies).
  constexpr int kMax = 12;
  dnnl_memory_t mems[kMax];
  dnnl_exec_arg_t exec[kMax];
  int n = 0;
  const dnnl_engine_t eng = engine().get();
  auto add = [&](int id, const dnnl_memory_desc_t* md, void* data) {
    if (n == kMax) throw Error("oneDNN: too many arguments");
    check(dnnl_memory_create(&mems[n], md, eng, data), "memory_create");
    exec[n].arg = id;
    exec[n].memory = mems[n];
    ++n;
  };
  static thread_local Scratch scratch;
  try {
    for (const Arg& a : args) add(a.id, &a.md->data, a.data);
    const std::size_t ss = scratch_md.get_size();
    if (ss) add(DNNL_ARG_SCRATCHPAD, &scratch_md.data, scratch.get(ss));
    check(dnnl_primitive_execute(p.get(), stream().get(), n, exec), "primitive execute");
    check(dnnl_stream_wait(stream().get()), "stream wait");
  } catch (...) {
    for (int i = 0; i < n; ++i) dnnl_memory_destroy(mems[i]);
    throw;
  }
  for (int i = 0; i < n; ++i) dnnl_memory_destroy(mems[i]);
}

std::int64_t float_elems(const dnnl::memory::desc& md) {
  return static_cast<std::int64_t>((md.get_size() + sizeof(float) - 1) / sizeof(float));
}

Port make_port(const dnnl::memory::desc& user, const dnnl::memory::desc& prim, bool input) {
  Port p;
  p.user = user;
  p.prim = prim;
  if (user == prim) return p;
  p.active = true;
  const dnnl::primitive_attr attr = default_attr();
  dnnl::reorder::primitive_desc pd = input ? dnnl::reorder::primitive_desc(engine(), user, engine(), prim, attr)
                                           : dnnl::reorder::primitive_desc(engine(), prim, engine(), user, attr);
  p.reorder = dnnl::reorder(pd);
  p.reorder_scratch = pd.scratchpad_desc();
  note_primitive_created();
  return p;
}

void* port_in(const Port& p, void* data, Tensor& buf) {
  if (!p.active) return data;
  buf = detail::make_tensor(Shape{float_elems(p.prim)}, DType::Float32);
  execute(p.reorder, p.reorder_scratch, {{DNNL_ARG_FROM, &p.user, data}, {DNNL_ARG_TO, &p.prim, buf.raw_data()}});
  return buf.raw_data();
}

void* port_out_target(const Port& p, void* user_data, Tensor& buf) {
  if (!p.active) return user_data;
  buf = detail::make_tensor(Shape{float_elems(p.prim)}, DType::Float32);
  return buf.raw_data();
}

void port_out_finish(const Port& p, void* user_data, const Tensor& buf) {
  if (!p.active) return;
  execute(p.reorder, p.reorder_scratch, {{DNNL_ARG_FROM, &p.prim, buf.raw_data()}, {DNNL_ARG_TO, &p.user, user_data}});
}

}  // namespace krill::cpu::onednn
