// nsbi::profiling::Region as a Kokkos tool sees it: each region pushes its name when it opens and pops when
// it closes, nested regions in order.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nsbi/core/profiling.hpp"
#include "profiling_regions.hpp"

namespace nsbi {
namespace {

TEST(Profiling, RegionsPushAndPopTheirNamesNested) {
  const test::RecordedRegions regions;
  {
    const profiling::Region stage("nsbi/train/epoch");
    { const profiling::Region inner("nsbi/train/validation"); }
    { const profiling::Region inner("nsbi/train/checkpoint"); }
  }
  EXPECT_EQ(regions.events(), (std::vector<std::string>{"+nsbi/train/epoch", "+nsbi/train/validation", "-",
                                                        "+nsbi/train/checkpoint", "-", "-"}));
}

TEST(Profiling, NothingIsRecordedWithoutARegion) {
  const test::RecordedRegions regions;
  Kokkos::parallel_for("nsbi::test::no_region", 4, KOKKOS_LAMBDA(int){});
  EXPECT_TRUE(regions.events().empty());
}

}  // namespace
}  // namespace nsbi
