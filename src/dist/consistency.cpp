// Agreement between ranks: structure hashes (broadcast_parameters, broadcast_optimizer_state,
// the DistributedOptimizer's layout), check_same_across_ranks (dataset sizes) and
// check_parameters_in_sync (the end-of-training check). A disagreement is found by every rank
// from the same gathered data, so every rank raises the same DistributedError: no rank is left
// waiting in a collective the others skipped (the hangs of Horovod #100, #832, #1540).
#include <algorithm>
#include <cstring>
#include <sstream>

#include "internal.hpp"
#include "krill/autograd/grad_mode.hpp"
#include "stall_inspector.hpp"

namespace krill::dist {
namespace detail {

std::uint64_t hash_string(const std::string& s, std::uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::uint64_t hash_bytes(const void* data, std::size_t n) {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ULL;
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t lane[4] = {0x243F6A8885A308D3ULL, 0x13198A2E03707344ULL, 0xA4093822299F31D0ULL, 0x082EFA98EC4E6C89ULL};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      std::uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      lane[k] = (lane[k] ^ w) * kMul;
      lane[k] ^= lane[k] >> 29;
    }
  }
  std::uint64_t h = 14695981039346656037ULL ^ n;
  for (; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  for (std::uint64_t l : lane) h = (h ^ l) * kMul ^ (h >> 31);
  return h;
}

std::string describe_tensor(const char* kind, const std::string& name, const Tensor& t) {
  if (!t.defined()) return std::string(kind) + " " + name + " undefined";
  return std::string(kind) + " " + name + " " + std::string(dtype_name(t.dtype())) + " " + t.shape().str();
}

std::vector<std::int64_t> allgather_int64(ProcessGroup& g, const std::vector<std::int64_t>& values) {
  Tensor t = empty(Shape{static_cast<std::int64_t>(values.size())}, TensorOptions(DType::Int64));
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(std::int64_t));
  Tensor all = g.allgather(t);
  const auto* p = static_cast<const std::int64_t*>(all.raw_data());
  return std::vector<std::int64_t>(p, p + all.numel());
}

namespace {
Tensor pack(const std::string& s) {
  const std::int64_t words = static_cast<std::int64_t>((s.size() + 7) / 8);
  Tensor t = zeros(Shape{words + 1}, TensorOptions(DType::Int64));
  auto* p = static_cast<std::int64_t*>(t.raw_data());
  p[0] = static_cast<std::int64_t>(s.size());
  if (!s.empty()) std::memcpy(p + 1, s.data(), s.size());
  return t;
}
std::string unpack(const std::int64_t* p) {
  return std::string(reinterpret_cast<const char*>(p + 1), static_cast<std::size_t>(p[0]));
}
}  // namespace

std::string broadcast_string(ProcessGroup& g, const std::string& s, int root) {
  Tensor len = scalar_tensor(0, TensorOptions(DType::Int64)).reshape({1}).contiguous();
  if (g.rank() == root) *static_cast<std::int64_t*>(len.raw_data()) = static_cast<std::int64_t>(s.size());
  g.broadcast(len, root);
  const std::int64_t n = *static_cast<const std::int64_t*>(len.raw_data());
  Tensor t = g.rank() == root ? pack(s) : zeros(Shape{(n + 7) / 8 + 1}, TensorOptions(DType::Int64));
  g.broadcast(t, root);
  return unpack(static_cast<const std::int64_t*>(t.raw_data()));
}

std::vector<std::string> allgather_strings(ProcessGroup& g, const std::string& s) {
  const std::vector<std::int64_t> sizes = allgather_int64(g, {static_cast<std::int64_t>((s.size() + 7) / 8 + 1)});
  Tensor all = g.allgather(pack(s));
  const auto* p = static_cast<const std::int64_t*>(all.raw_data());
  std::vector<std::string> out;
  std::int64_t off = 0;
  for (std::int64_t words : sizes) {
    out.push_back(unpack(p + off));
    off += words;
  }
  return out;
}

namespace {

std::string join_lines(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) s += e + "\n";
  return s;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> v;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] == '\n') {
      v.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return v;
}

std::uint64_t hash_entries(const std::vector<std::string>& entries) {
  std::uint64_t h = hash_string(std::to_string(entries.size()));
  for (const auto& e : entries) h = hash_string(e + "\n", h);
  return h;
}

// What differs between rank `root`'s entries and this rank's, in words.
std::string first_difference(const std::vector<std::string>& root_entries, const std::vector<std::string>& mine,
                             int root, int me) {
  const std::string r = "rank " + std::to_string(root), m = "rank " + std::to_string(me);
  const std::size_t n = std::min(root_entries.size(), mine.size());
  for (std::size_t i = 0; i < n; ++i)
    if (root_entries[i] != mine[i])
      return "entry " + std::to_string(i + 1) + ": " + r + " has '" + root_entries[i] + "', " + m + " has '" + mine[i] +
             "'";
  if (root_entries.size() != mine.size()) {
    std::string s = r + " has " + std::to_string(root_entries.size()) + " entries, " + m + " has " +
                    std::to_string(mine.size());
    if (mine.size() > n) s += " (" + m + "'s first extra one: '" + mine[n] + "')";
    else s += " (" + r + "'s first extra one: '" + root_entries[n] + "')";
    return s;
  }
  return "";
}

}  // namespace

void check_same_structure(ProcessGroup& g, const std::vector<std::string>& entries, const std::string& what, int root) {
  if (g.size() == 1) return;
  const std::uint64_t h = hash_entries(entries);
  const std::vector<std::int64_t> hashes = allgather_int64(g, {static_cast<std::int64_t>(h)});
  const std::int64_t root_hash = hashes[static_cast<std::size_t>(root)];
  std::vector<int> differ;
  for (int r = 0; r < g.size(); ++r)
    if (hashes[static_cast<std::size_t>(r)] != root_hash) differ.push_back(r);
  if (differ.empty()) return;
  // Every rank takes part from here on (all saw the same hashes).
  const std::vector<std::string> root_entries = split_lines(broadcast_string(g, join_lines(entries), root));
  const bool i_differ = hashes[static_cast<std::size_t>(g.rank())] != root_hash;
  const std::string mine = i_differ ? first_difference(root_entries, entries, root, g.rank()) : "";
  const std::vector<std::string> diffs = allgather_strings(g, mine);
  std::ostringstream os;
  os << what << ": the ranks disagree (structure hashes differ): rank" << (differ.size() == 1 ? " " : "s ");
  for (std::size_t i = 0; i < differ.size() && i < 16; ++i) os << (i ? ", " : "") << differ[i];
  if (differ.size() > 16) os << ", ...";
  os << (differ.size() == 1 ? " differs" : " differ") << " from rank " << root << " (of " << g.size() << " ranks). ";
  int shown = 0;
  for (int r : differ) {
    if (shown++ == 4) {
      os << "; ...";
      break;
    }
    const std::string& d = diffs[static_cast<std::size_t>(r)];
    os << (shown > 1 ? "; " : "") << (d.empty() ? "rank " + std::to_string(r) + ": same entries, different hash" : d);
  }
  throw DistributedError(os.str());
}

}  // namespace detail

using detail::check_root;

namespace {

ProcessGroup& initialized_world(const char* op) {
  if (!is_initialized())
    throw DistributedError(std::string("dist::") + op + ": krill::dist is not initialised; call dist::init() first");
  return world();
}

// Broadcasts `t` (any layout) from root into itself; `what` names it for the stall inspector.
void broadcast_into(ProcessGroup& g, Tensor& t, int root, const std::string& what) {
  detail::StallContext ctx(&what);
  if (t.is_contiguous()) {
    g.broadcast(t, root);
    return;
  }
  Tensor tmp = t.contiguous();
  g.broadcast(tmp, root);
  NoGradGuard ng;
  t.copy_(tmp);
}

}  // namespace

void broadcast_parameters(nn::Module& module, int root) {
  ProcessGroup& g = initialized_world("broadcast_parameters");
  check_root(g, root, "broadcast_parameters");
  if (g.size() == 1) return;
  auto params = module.named_parameters();
  auto buffers = module.named_buffers();
  std::vector<std::string> entries;
  for (const auto& [name, t] : params) entries.push_back(detail::describe_tensor("parameter", name, t));
  for (const auto& [name, t] : buffers) entries.push_back(detail::describe_tensor("buffer", name, t));
  detail::check_same_structure(g, entries, "dist::broadcast_parameters", root);
  for (auto& [name, t] : params) broadcast_into(g, t, root, "parameter " + name);
  for (auto& [name, t] : buffers) broadcast_into(g, t, root, "buffer " + name);
}

void broadcast_optimizer_state(optim::Optimizer& optimizer, int root) {
  ProcessGroup& g = initialized_world("broadcast_optimizer_state");
  check_root(g, root, "broadcast_optimizer_state");
  if (g.size() == 1) return;
  optimizer.init_state();
  StateDict sd = optimizer.state_dict();
  std::vector<std::string> entries;
  entries.push_back("optimizer " + std::string(optimizer.name()));
  for (const auto& [key, t] : sd) entries.push_back(detail::describe_tensor("state", key, t));
  detail::check_same_structure(g, entries, "dist::broadcast_optimizer_state", root);
  for (const auto& item : sd) {
    Tensor t = item.second;
    broadcast_into(g, t, root, "optimizer state " + item.first);
  }
  optimizer.load_state_dict(sd);
}

void check_same_across_ranks(std::int64_t value, const std::string& what) {
  ProcessGroup& g = initialized_world("check_same_across_ranks");
  if (g.size() == 1) return;
  const std::vector<std::int64_t> all = detail::allgather_int64(g, {value});
  if (std::all_of(all.begin(), all.end(), [&](std::int64_t v) { return v == all[0]; })) return;
  std::ostringstream os;
  os << what << " differs across ranks: ";
  for (std::size_t r = 0; r < all.size() && r < 16; ++r) os << (r ? ", " : "") << "rank " << r << ": " << all[r];
  if (all.size() > 16) os << ", ...";
  os << " (every rank must see the same value, or the ranks would run different numbers of steps and wait for "
        "each other forever)";
  throw DistributedError(os.str());
}

void check_parameters_in_sync(const nn::Module& module) {
  ProcessGroup& g = initialized_world("check_parameters_in_sync");
  if (g.size() == 1) return;
  const auto params = module.named_parameters();
  std::vector<std::int64_t> hashes;
  hashes.reserve(params.size() + 1);
  std::uint64_t all_h = detail::hash_string(std::to_string(params.size()));
  for (const auto& [name, t0] : params) {
    Tensor t = t0.is_contiguous() ? t0 : t0.contiguous();
    std::uint64_t h = detail::hash_string(detail::describe_tensor("", name, t));
    h ^= detail::hash_bytes(t.raw_data(), t.nbytes()) * 0x9E3779B97F4A7C15ULL;
    hashes.push_back(static_cast<std::int64_t>(h));
    all_h = (all_h ^ h) * 1099511628211ULL;
  }
  // One small allgather of the combined hash (the cheap check); the per-parameter hashes only
  // when it fails, to name the parameter.
  const std::vector<std::int64_t> combined = detail::allgather_int64(g, {static_cast<std::int64_t>(all_h)});
  if (std::all_of(combined.begin(), combined.end(), [&](std::int64_t v) { return v == combined[0]; })) return;
  std::vector<std::string> names;
  for (const auto& p : params) names.push_back(p.first);
  std::vector<std::string> entries;
  for (const auto& [name, t] : params) entries.push_back(detail::describe_tensor("parameter", name, t));
  detail::check_same_structure(g, entries, "dist::check_parameters_in_sync", 0);
  const std::vector<std::int64_t> per = detail::allgather_int64(g, hashes);
  const std::size_t P = hashes.size();
  std::ostringstream os;
  os << "dist::check_parameters_in_sync: the ranks' parameters are not bit-identical: ";
  int shown = 0;
  for (int r = 1; r < g.size(); ++r) {
    std::size_t first = P;
    std::size_t count = 0;
    for (std::size_t i = 0; i < P; ++i)
      if (per[static_cast<std::size_t>(r) * P + i] != per[i]) {
        if (first == P) first = i;
        ++count;
      }
    if (first == P) continue;
    if (shown++ == 4) {
      os << "; ...";
      break;
    }
    os << (shown > 1 ? "; " : "") << "rank " << r << " differs from rank 0 in " << count << " of " << P
       << " parameters (first: " << names[first] << ")";
  }
  os << ". Training diverged across ranks: were parameters broadcast at the start, and do all ranks average "
        "gradients (DistributedOptimizer) and run the same number of steps?";
  throw DistributedError(os.str());
}

}  // namespace krill::dist
