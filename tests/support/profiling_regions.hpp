#pragma once
// Records the Kokkos profiling regions opened and closed while an object of RecordedRegions lives, through
// the callbacks a Kokkos tool registers (Kokkos::Tools::Experimental::set_push/pop_region_callback): "+name"
// for a push, "-" for a pop, in order. One recorder at a time; no tool library may be loaded.
#include <Kokkos_Core.hpp>
#include <string>
#include <vector>

namespace nsbi::test {

class RecordedRegions {
 public:
  RecordedRegions() {
    recorded().clear();
    Kokkos::Tools::Experimental::set_push_region_callback(
        [](const char* name) { recorded().push_back(std::string("+") + name); });
    Kokkos::Tools::Experimental::set_pop_region_callback([] { recorded().push_back("-"); });
  }
  ~RecordedRegions() {
    Kokkos::Tools::Experimental::set_push_region_callback(nullptr);
    Kokkos::Tools::Experimental::set_pop_region_callback(nullptr);
  }
  RecordedRegions(const RecordedRegions&) = delete;
  RecordedRegions& operator=(const RecordedRegions&) = delete;

  const std::vector<std::string>& events() const { return recorded(); }

 private:
  static std::vector<std::string>& recorded() {
    static std::vector<std::string> all;
    return all;
  }
};

}  // namespace nsbi::test
