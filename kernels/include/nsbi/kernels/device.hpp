#pragma once
// The device seam: where the networks' numerics run. Today everything runs on the host: Kokkos kernels on
// Kokkos's host execution space and the GEMMs on oneDNN's CPU engine. A GPU (CUDA) build plugs in here: a
// Device::cuda value selects Kokkos's Cuda execution space and device memory for the views in views.hpp, and
// the GEMM wrapper (kernels/src/gemm.hpp), the one place that creates a oneDNN engine and stream, maps it to
// a oneDNN GPU engine (or cuBLAS), so no other code names an engine.

#include <string>

namespace nsbi::kernels {

enum class Device { host };

/// "host": the name in messages.
std::string to_string(Device device);

}  // namespace nsbi::kernels
