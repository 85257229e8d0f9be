#pragma once
// The precision seam: the element type the network's GEMMs read. It is chosen in one place, the oneDNN GEMM
// wrapper (kernels/src/gemm.hpp), from the value its caller passes; everything around the GEMMs (the Kokkos
// kernels, the parameters, the optimizer state, the losses and every sum) stays float.
//   f32:  float inputs, float accumulation.
//   bf16: the GEMMs' two inputs (weights and activations) rounded to bfloat16 (round to nearest even) just
//         before each GEMM; float accumulation and float output. Needs a CPU with native bf16 arithmetic
//         (AVX512-BF16 or AMX): elsewhere oneDNN would emulate it slowly, so nsbi refuses instead.

#include <optional>
#include <string>

namespace nsbi::kernels {

enum class Precision { f32, bf16 };

/// "f32", "bf16": the name in settings, files and messages.
std::string to_string(Precision precision);

/// The precision named `name` (as to_string writes it), or nothing for a name nsbi does not know: the caller
/// names the setting or file in its error.
std::optional<Precision> parse_precision(const std::string& name);

/// Why this machine cannot compute `precision` natively, or "" when it can: bf16 needs the instruction set
/// oneDNN reports to include AVX512-BF16 or AMX. The caller names the setting in its error.
std::string unsupported_reason(Precision precision);

}  // namespace nsbi::kernels
