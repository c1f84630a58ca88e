// Mid-sized and large float32 GEMMs through oneDNN's matmul (created once per shape and kept, like
// the convolutions): its AVX-512 kernels take a third to a half of OpenBLAS's time for LeNet's
// fully connected layers (64x400x120: 21 vs 36 us, 120x400x64: 21 vs 69 us with the Haswell
// kernels that OPENBLAS_CORETYPE=Haswell forces here), and it shares OpenBLAS's OpenMP pool.
// Shapes past kMaxEntries distinct ones go to OpenBLAS, so a program whose shapes never repeat
// does not grow the cache without bound.
#include <atomic>

#include "cpu/kernels.hpp"
#include "cpu/onednn.hpp"

namespace krill::cpu {
namespace {

namespace dn = onednn;

constexpr int kMaxEntries = 512;
std::atomic<int> g_entries{0};

struct MatmulEntry : dn::Entry {
  dnnl::memory::desc a, b, c, scratch;
  dnnl::primitive prim;
};

// A row-major [rows, cols] operand with leading dimension ld, or its transpose.
dnnl::memory::desc operand(std::int64_t rows, std::int64_t cols, std::int64_t ld, bool trans) {
  return dnnl::memory::desc({rows, cols}, dnnl::memory::data_type::f32,
                            trans ? dnnl::memory::dims{1, ld} : dnnl::memory::dims{ld, 1});
}

std::unique_ptr<dn::Entry> make_entry(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                                      std::int64_t lda, std::int64_t ldb, float beta, std::int64_t ldc) {
  auto e = std::make_unique<MatmulEntry>();
  e->a = operand(m, k, lda, ta);
  e->b = operand(k, n, ldb, tb);
  e->c = operand(m, n, ldc, false);
  dnnl::primitive_attr attr = dn::default_attr();
  if (alpha != 1.f) attr.set_output_scales(0, {alpha});
  if (beta != 0.f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(e->a, e->b, e->c), attr, dn::engine());
  e->prim = dnnl::matmul(pd);
  e->scratch = pd.scratchpad_desc();
  dn::note_primitive_created();
  g_entries.fetch_add(1, std::memory_order_relaxed);
  return e;
}

}  // namespace

bool onednn_sgemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                  std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  dn::Key key;
  key.kind = 6;
  for (std::int64_t v : {m, n, k, lda, ldb, ldc, static_cast<std::int64_t>(ta) | (static_cast<std::int64_t>(tb) << 1)})
    key.push(v);
  key.push_double(alpha);
  key.push_double(beta);
  auto* found = static_cast<MatmulEntry*>(dn::find(key));
  if (!found) {
    if (g_entries.load(std::memory_order_relaxed) >= kMaxEntries) return false;
    found = &dn::get<MatmulEntry>(key, [&] { return make_entry(ta, tb, m, n, k, alpha, lda, ldb, beta, ldc); });
  }
  const MatmulEntry& e = *found;
  dn::execute(e.prim, e.scratch,
              {{DNNL_ARG_SRC, &e.a, const_cast<float*>(a)}, {DNNL_ARG_WEIGHTS, &e.b, const_cast<float*>(b)},
               {DNNL_ARG_DST, &e.c, c}});
  return true;
}

}  // namespace krill::cpu
