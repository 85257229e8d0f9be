// The one test main: the runtime (HDF5 -> MPI -> Kokkos) -> RUN_ALL_TESTS -> the runtime ends in reverse.
// Floating-point invalid operations trap, so a test that produces a NaN fails loudly where it happens.
#include <fenv.h>
#include <gtest/gtest.h>

#include <cstdint>

#include "nsbi/core/communicator.hpp"
#include "nsbi/core/runtime.hpp"

int main(int argc, char** argv) {
  const nsbi::Runtime runtime(argc, argv, nsbi::Runtime::KokkosSettings::command_line);
  ::testing::InitGoogleTest(&argc, argv);
  const nsbi::Communicator world;
  if (!world.is_root()) {
    // Only rank 0 prints the gtest report; failures on other ranks still fail the exit code.
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  feenableexcept(FE_INVALID);
  const int result = RUN_ALL_TESTS();
  fedisableexcept(FE_INVALID);
  return static_cast<int>(world.max(std::int64_t{result}));
}
