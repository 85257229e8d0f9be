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

  /// The events of nsbi's own regions ("nsbi/..."): their pushes and the pops that close them, in order;
  /// regions that Kokkos or a library open are left out.
  std::vector<std::string> nsbi_events() const {
    std::vector<std::string> kept;
    std::vector<bool> open;  // per region open now: whether it is nsbi's
    for (const std::string& event : recorded()) {
      if (event == "-") {
        if (!open.empty() && open.back()) kept.push_back(event);
        if (!open.empty()) open.pop_back();
        continue;
      }
      open.push_back(event.compare(0, 6, "+nsbi/") == 0);
      if (open.back()) kept.push_back(event);
    }
    return kept;
  }

 private:
  static std::vector<std::string>& recorded() {
    static std::vector<std::string> all;
    return all;
  }
};

}  // namespace nsbi::test
