#include "nsbi/inference/toys.hpp"

#include "nsbi/core/error.hpp"
#include "nsbi/core/rng.hpp"

namespace nsbi::inference {

std::uint64_t toy_seed(std::uint64_t campaign_seed, ToyStage stage, std::uint64_t theta_index) {
  NSBI_ASSERT(theta_index < (std::uint64_t{1} << 32), "toy θ index beyond 2^32");
  rng::Stream stream(campaign_seed, rng::Purpose::toy,
                     (static_cast<std::uint64_t>(stage) << 32) | theta_index);
  return stream.next_u64();
}

void simulate_toys(const sims::Simulator& simulator, const double* theta, std::uint64_t campaign_seed,
                   ToyStage stage, std::uint64_t theta_index, std::uint64_t first_toy, std::size_t n_events,
                   const Matrix& x) {
  const std::size_t rows = x.extent(0);
  const std::size_t n_parameters = simulator.info().n_parameters();
  NSBI_ASSERT(n_events > 0 && rows % n_events == 0, "toy rows are not a whole number of experiments");
  Matrix thetas(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nsbi::inference::toy_theta"), rows,
                n_parameters);
  auto host = Kokkos::create_mirror_view(thetas);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t p = 0; p < n_parameters; ++p) host(i, p) = theta[p];
  Kokkos::deep_copy(thetas, host);
  simulator.simulate(thetas, x, first_toy * n_events, toy_seed(campaign_seed, stage, theta_index));
}

}  // namespace nsbi::inference
