#pragma once
// Named regions of a stage's phases for Kokkos tools (kokkos-tools' space-time-stack, Caliper, ...): a
// tool loaded through KOKKOS_PROFILE_LIBRARY sees each region open and close and attributes the time and the
// kernels inside it to the phase. Without a tool a region costs two branches. The header includes no Kokkos
// header, so the orchestration layer can use it.
#include <string>

namespace nsbi::profiling {

/// Opens the Kokkos profiling region `name` for the lifetime of the object (Kokkos::Profiling::pushRegion,
/// popRegion). Regions nest; names are "nsbi/<stage>/<phase>" (docs/development.md, "Profiling").
class Region {
 public:
  explicit Region(const std::string& name);
  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
};

}  // namespace nsbi::profiling
