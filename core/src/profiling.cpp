#include "nsbi/core/profiling.hpp"

#include <Kokkos_Core.hpp>

namespace nsbi::profiling {

Region::Region(const std::string& name) { Kokkos::Profiling::pushRegion(name); }

Region::~Region() { Kokkos::Profiling::popRegion(); }

}  // namespace nsbi::profiling
