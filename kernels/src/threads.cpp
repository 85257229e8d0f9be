#include "nsbi/kernels/threads.hpp"

#include <dnnl.hpp>
#include <string>

#include "nsbi/core/error.hpp"

#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
#include <omp.h>
#elif DNNL_CPU_THREADING_RUNTIME != DNNL_RUNTIME_SEQ
#error "nsbi::kernels controls oneDNN's threads for its OpenMP and sequential builds only"
#endif

namespace nsbi::kernels {

void set_gemm_threads(int threads) {
  if (threads < 1)
    throw ConfigError("nsbi::kernels::set_gemm_threads: the thread count must be at least 1, got " +
                      std::to_string(threads));
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
  omp_set_num_threads(threads);  // oneDNN's OpenMP runtime reads the calling thread's setting
#else
  if (threads != 1)
    throw ConfigError("nsbi::kernels::set_gemm_threads: this oneDNN build is sequential, threads must be 1");
#endif
}

int gemm_threads() {
#if DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace nsbi::kernels
