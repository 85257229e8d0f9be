// The one test main: MPI_Init -> Kokkos::initialize -> RUN_ALL_TESTS -> finalize, in reverse order.
// Floating-point invalid operations trap, so a test that produces a NaN fails loudly where it happens.
#include <fenv.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <Kokkos_Core.hpp>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  Kokkos::initialize(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    // Only rank 0 prints the gtest report; failures on other ranks still fail the exit code.
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  feenableexcept(FE_INVALID);
  int result = RUN_ALL_TESTS();
  fedisableexcept(FE_INVALID);
  int worst = 0;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  Kokkos::finalize();
  MPI_Finalize();
  return worst;
}
