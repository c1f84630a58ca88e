#include "krill/util/runtime_info.hpp"

#include <cblas.h>
#include <omp.h>

#include <cstdlib>
#include <oneapi/dnnl/dnnl.hpp>

#include "krill/util/error.hpp"

extern "C" {
char* openblas_get_corename(void);
char* openblas_get_config(void);
int openblas_get_parallel(void);
}

namespace krill {

const char* version() { return KRILL_VERSION; }

static std::string isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

RuntimeInfo runtime_info() {
  RuntimeInfo r;
  r.blas_core = openblas_get_corename();
  r.blas_config = openblas_get_config();
  switch (openblas_get_parallel()) {
    case 0: r.blas_threading = "sequential"; break;
    case 1: r.blas_threading = "pthreads"; break;
    case 2: r.blas_threading = "OpenMP"; break;
    default: r.blas_threading = "unknown";
  }
  if (const char* e = std::getenv("OPENBLAS_CORETYPE")) r.blas_coretype_env = e;
  r.dnnl_isa = isa_name(dnnl::get_effective_cpu_isa());
  const dnnl_version_t* v = dnnl_version();
  r.dnnl_version = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  r.omp_threads = omp_get_max_threads();
  return r;
}

void set_num_threads(int n) {
  if (n < 1) throw ValueError("set_num_threads: the number of threads must be at least 1, got " + std::to_string(n));
  omp_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

std::string describe_runtime() {
  RuntimeInfo r = runtime_info();
  std::string s = "krill " + std::string(version()) + "\n";
  s += "  BLAS: OpenBLAS core " + r.blas_core + ", threading " + r.blas_threading + " (" + r.blas_config +
       "); matrix products above 64x64x64 run on oneDNN's matmul\n";
  if (!r.blas_coretype_env.empty())
    s += "  note: OPENBLAS_CORETYPE=" + r.blas_coretype_env +
         " is set and forces that kernel family (on AVX-512 CPUs Haswell kernels run at about half speed); "
         "unset it for the auto-detected core\n";
  s += "  oneDNN " + r.dnnl_version + ", ISA " + r.dnnl_isa + "\n";
  s += "  OpenMP threads: " + std::to_string(r.omp_threads) + "\n";
  return s;
}

}  // namespace krill
