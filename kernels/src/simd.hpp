#pragma once
// A SIMD sum over a loop (OpenMP simd with a reduction clause, enabled by -fopenmp-simd without the OpenMP
// runtime): the compiler may reorder the sum, the same way on every run of a given build. Host code only;
// on a GPU every row is a thread.

#include "nsbi/core/kernel_math.hpp"  // NSBI_SIMD_LOOP and its conditions

#if defined(NSBI_HAS_OPENMP_SIMD) && !defined(__CUDA_ARCH__)
#define NSBI_KERNELS_PRAGMA(text) _Pragma(#text)
#define NSBI_SIMD_SUM(variable) NSBI_KERNELS_PRAGMA(omp simd reduction(+ : variable))
#else
#define NSBI_SIMD_SUM(variable)
#endif
