#pragma once
// lepton (docs/simulators.md): a new particle A -> mu nu with mass m and spin 0 or 1. The marginal
// likelihood is intractable; only the per-event spin log ratio is exact (spin_log_ratio below).

#include <string>

#include "nsbi/core/rng.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::sims {

struct Lepton {
  static constexpr int n_parameters = 2;  // m [GeV], spin
  static constexpr int n_observables = 5;
  static constexpr bool has_exact_likelihood = false;

  static constexpr double pi = 3.14159265358979323846;
  static constexpr double pt_shape = 2.0;  // pT_raw ~ Gamma(2, m/5)
  static constexpr double pt_scale_per_mass = 0.2;
  static constexpr double met_shape = 2.0;  // extra MET ~ Gamma(2, 0.0375 m)
  static constexpr double met_scale_per_mass = 0.0375;
  static constexpr double met_response_sigma = 0.2;  // MET_raw = alpha * pT_raw * N(1, 0.2^2) + ...
  static constexpr double muon_resolution = 0.05;
  static constexpr double met_resolution = 0.08;
  static constexpr double spin1_kappa = 2.5;  // von Mises concentration of delta phi around pi
  static constexpr double log_i0_kappa = 1.1908386711960282;  // log I0(2.5) = 1.19084 rounded

  static SimulatorInfo info() {
    SimulatorInfo info;
    info.name = "lepton";
    info.doc = "A -> mu nu: muon and missing transverse momentum for a particle of mass m and spin 0 or 1";
    info.parameters = {{"m", 400.0, 1000.0, {}, "mass of A in GeV"},
                       {"spin", 0.0, 1.0, {0.0, 1.0}, "spin hypothesis: 0 or 1"}};
    info.observables = {"muon_pt", "muon_eta", "muon_phi", "MET", "MET_phi"};
    return info;
  }

  KOKKOS_FORCEINLINE_FUNCTION static double alpha(double m) {
    const double a = 0.8 - 0.3 * (m - 400.0) / 600.0;
    return a < 0.4 ? 0.4 : (a > 0.8 ? 0.8 : a);
  }

  // Spin 1's delta phi by Best–Fisher rejection (74% of candidates accepted at kappa = 2.5): 3 candidates
  // leave 1.8% of spin-1 rows to the scalar continuation.
  static constexpr int vector_candidates = 3;
  rng::VonMisesBestFisher spin1_delta_phi{spin1_kappa};

  /// The row's stream, block by block (two uniforms each): 0 and 1, the two Gamma(2) draws (pT_raw, extra
  /// MET); 2, Box–Muller pair (MET response, muon_eta); 3, pair (muon and MET smearing); 4, muon_phi and then
  /// delta phi (spin 0) or the side of pi it falls on (spin 1); 5 + k, von Mises candidate k (spin 1).
  template <int max_candidates>
  KOKKOS_FORCEINLINE_FUNCTION bool sample(const rng::StreamBlocks& draws, const double* theta,
                                          double* x) const {
    const double m = theta[0];
    const bool spin1 = theta[1] >= 0.5;
    const double pt_raw = rng::gamma2(draws.uniforms(0), pt_scale_per_mass * m);
    const rng::NormalPair response_eta = rng::normal_pair(draws.uniforms(2));
    double met_raw = alpha(m) * pt_raw * (1.0 + met_response_sigma * response_eta.first) +
                     rng::gamma2(draws.uniforms(1), met_scale_per_mass * m);
    met_raw = met_raw > 0.0 ? met_raw : 0.0;
    const rng::UniformPair angles = draws.uniforms(4);
    const double muon_phi = -pi + 2.0 * pi * angles.first;
    const double width = 1.0 + (m - 400.0) / 600.0;
    const double muon_eta = width * response_eta.second;
    double cos_theta = 1.0;
    const bool found = rng::first_accepted<max_candidates>(draws, 5, spin1_delta_phi, cos_theta);
    const double delta_phi =
        spin1 ? rng::wrap_angle_sum(rng::VonMisesBestFisher::angle(pi, cos_theta, angles.second))
              : -pi + 2.0 * pi * angles.second;
    const rng::NormalPair smearing = rng::normal_pair(draws.uniforms(3));
    x[0] = pt_raw * (1.0 + muon_resolution * smearing.first);
    x[1] = muon_eta;
    x[2] = muon_phi;
    x[3] = met_raw * (1.0 + met_resolution * smearing.second);
    x[4] = rng::wrap_angle_sum(muon_phi + delta_phi);
    return found || !spin1;
  }

  /// Exact per-event log p(x|spin 1) / p(x|spin 0) = -2.5 cos(delta phi) - log I0(2.5) (docs/simulators.md).
  KOKKOS_INLINE_FUNCTION static double spin_log_ratio(const double* x) {
    const double delta_phi = rng::wrap_angle(x[4] - x[2]);
    return -spin1_kappa * Kokkos::Experimental::cos(delta_phi) - log_i0_kappa;
  }

  /// The exact ratios lepton has: between spin hypotheses at one mass (the mass dependence is intractable).
  static std::string exact_ratio_unavailable(const double* theta_a, const double* theta_b) {
    if (theta_a[0] == theta_b[0]) return "";
    return "lepton's likelihood is exact only in the spin at a fixed mass: there is no exact ratio between "
           "masses " +
           std::to_string(theta_a[0]) + " and " + std::to_string(theta_b[0]) + " GeV";
  }
  /// log p(x|theta_a)/p(x|theta_b) at theta_a[0] == theta_b[0]: (spin_a − spin_b) · spin_log_ratio(x).
  KOKKOS_INLINE_FUNCTION double exact_log_ratio(const double* theta_a, const double* theta_b,
                                                const double* x) const {
    const double spin_a = theta_a[1] >= 0.5 ? 1.0 : 0.0;
    const double spin_b = theta_b[1] >= 0.5 ? 1.0 : 0.0;
    return (spin_a - spin_b) * spin_log_ratio(x);
  }
};

}  // namespace nsbi::sims
