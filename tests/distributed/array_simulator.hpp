#pragma once
// A test-only simulator with an array observable (tests only): x is an image of shape {1, 3, 4} of counts,
// stored as float32, so that the dataset path's handling of arrays is tested without the lensing simulator.
// Pixel p of row i is floor(u_p · rate · (p + 1) · 1000), u_p the p-th uniform of the row's stream
// (seed, Purpose::simulate, first_index + i): integers below 2^24, exact in float32, and a row's values do
// not depend on how rows are blocked. With fail_from_row, rows from there on fail (InputError), as a run
// that stops midway.

#include <Kokkos_Core.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "nsbi/core/error.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::test {

class ArraySimulator final : public sims::Simulator {
 public:
  explicit ArraySimulator(std::uint64_t fail_from_row = std::numeric_limits<std::uint64_t>::max())
      : fail_from_row_(fail_from_row) {
    info_.name = "array_test";
    info_.doc = "a 1x3x4 image of counts (tests only)";
    info_.parameters = {{"rate", 1.0, 100.0, {}, "mean count scale"}};
    info_.observables = {"image"};
    info_.observable_shape = {1, 3, 4};
    info_.x_float32 = true;
  }

  const sims::SimulatorInfo& info() const override { return info_; }

  using sims::Simulator::simulate;

  void simulate(const ExecutionSpace&, const ConstMatrix& theta, const Matrix& x, std::uint64_t first_index,
                std::uint64_t seed) const override {
    const auto theta_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), theta);
    const auto x_host = Kokkos::create_mirror_view(x);
    for (std::size_t i = 0; i < x.extent(0); ++i) {
      if (first_index + i >= fail_from_row_)
        throw InputError("array_test: row " + std::to_string(first_index + i) + " fails (test)");
      rng::Stream stream(seed, rng::Purpose::simulate, first_index + i);
      for (std::size_t p = 0; p < x.extent(1); ++p)
        x_host(i, p) = std::floor(stream.uniform() * theta_host(i, 0) * static_cast<double>(p + 1) * 1000.0);
    }
    Kokkos::deep_copy(x, x_host);
  }

 private:
  sims::SimulatorInfo info_;
  std::uint64_t fail_from_row_;
};

}  // namespace nsbi::test
