#pragma once
// The precision seam: the element type the network's GEMMs compute in. It is chosen in one place, the oneDNN
// GEMM wrapper (kernels/src/gemm.hpp), from the value its caller passes; everything around the GEMMs (the
// Kokkos kernels, the parameters, the optimizer state) stays float. f32 is the only precision today; bf16
// GEMMs (float accumulation) are planned as the next one.

#include <optional>
#include <string>

namespace nsbi::kernels {

enum class Precision { f32 };

/// "f32": the name in settings, files and messages.
std::string to_string(Precision precision);

/// The precision named `name` (as to_string writes it), or nothing for a name nsbi does not know: the caller
/// names the setting or file in its error.
std::optional<Precision> parse_precision(const std::string& name);

}  // namespace nsbi::kernels
