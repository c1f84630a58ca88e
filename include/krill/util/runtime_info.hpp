// What the numeric libraries picked on this machine: BLAS core and threading, oneDNN ISA,
// OpenMP threads. Logged by `--verbose`.
#pragma once
#include <string>

namespace krill {

struct RuntimeInfo {
  std::string blas_core;         // OpenBLAS kernel family in use, e.g. "SkylakeX" or "Haswell"
  std::string blas_config;       // openblas_get_config()
  std::string blas_threading;    // "sequential", "pthreads" or "OpenMP"
  std::string blas_coretype_env; // $OPENBLAS_CORETYPE, empty when unset
  std::string dnnl_isa;          // oneDNN's effective ISA, e.g. "avx512_core"
  std::string dnnl_version;
  int omp_threads = 1;
};

RuntimeInfo runtime_info();
// Threads of krill's kernels (oneDNN and BLAS share OpenMP's pool), like torch.set_num_threads:
// for the calling thread, and before the first kernel runs (oneDNN fixes a primitive's thread
// split when it creates it, and krill keeps its primitives). Default: OMP_NUM_THREADS, else
// every core. n must be >= 1.
void set_num_threads(int n);
int get_num_threads();
// Multi-line human-readable summary, with a warning when OPENBLAS_CORETYPE forces an older core.
std::string describe_runtime();
const char* version();

}  // namespace krill
