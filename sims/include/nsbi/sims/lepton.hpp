#pragma once
// lepton (specs/simulators.md §3): a new particle A -> mu nu with mass m and spin 0 or 1. The marginal
// likelihood is intractable; only the per-event spin log ratio is exact (spin_log_ratio below).

#include "nsbi/core/rng.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::sims {

struct Lepton {
  static constexpr int n_parameters = 2;  // m [GeV], spin
  static constexpr int n_observables = 5;
  static constexpr bool has_exact_likelihood = false;

  static constexpr double pi = 3.14159265358979323846;
  static constexpr double pt_shape = 2.0;           // pT_raw ~ Gamma(2, m/5)
  static constexpr double pt_scale_per_mass = 0.2;
  static constexpr double met_shape = 2.0;          // extra MET ~ Gamma(2, 0.0375 m)
  static constexpr double met_scale_per_mass = 0.0375;
  static constexpr double met_response_sigma = 0.2;  // MET_raw = alpha * pT_raw * N(1, 0.2^2) + ...
  static constexpr double muon_resolution = 0.05;
  static constexpr double met_resolution = 0.08;
  static constexpr double spin1_kappa = 2.5;         // von Mises concentration of delta phi around pi
  static constexpr double log_i0_kappa = 1.1908386711960282;  // log I0(2.5); the specs round it to 1.19084

  static SimulatorInfo info() {
    SimulatorInfo info;
    info.name = "lepton";
    info.doc = "A -> mu nu: muon and missing transverse momentum for a particle of mass m and spin 0 or 1";
    info.parameters = {{"m", 400.0, 1000.0, {}, "mass of A in GeV"},
                       {"spin", 0.0, 1.0, {0.0, 1.0}, "spin hypothesis: 0 or 1"}};
    info.observables = {"muon_pt", "muon_eta", "muon_phi", "MET", "MET_phi"};
    return info;
  }

  KOKKOS_INLINE_FUNCTION static double alpha(double m) {
    const double a = 0.8 - 0.3 * (m - 400.0) / 600.0;
    return a < 0.4 ? 0.4 : (a > 0.8 ? 0.8 : a);
  }

  KOKKOS_INLINE_FUNCTION void sample(rng::Stream& stream, const double* theta, double* x) const {
    const double m = theta[0];
    const bool spin1 = theta[1] >= 0.5;
    const double pt_raw = rng::gamma(stream, pt_shape, pt_scale_per_mass * m);
    double met_raw = alpha(m) * pt_raw * rng::normal(stream, 1.0, met_response_sigma) +
                     rng::gamma(stream, met_shape, met_scale_per_mass * m);
    met_raw = met_raw > 0.0 ? met_raw : 0.0;
    const double muon_phi = stream.uniform(-pi, pi);
    const double width = 1.0 + (m - 400.0) / 600.0;
    const double muon_eta = rng::normal(stream, 0.0, width);
    const double delta_phi = spin1 ? rng::von_mises(stream, pi, spin1_kappa) : stream.uniform(-pi, pi);
    x[0] = pt_raw * rng::normal(stream, 1.0, muon_resolution);
    x[1] = muon_eta;
    x[2] = muon_phi;
    x[3] = met_raw * rng::normal(stream, 1.0, met_resolution);
    x[4] = rng::wrap_angle(muon_phi + delta_phi);
  }

  /// Exact per-event log p(x|spin 1) / p(x|spin 0) = -2.5 cos(delta phi) - log I0(2.5) (specs §3).
  KOKKOS_INLINE_FUNCTION static double spin_log_ratio(const double* x) {
    const double delta_phi = rng::wrap_angle(x[4] - x[2]);
    return -spin1_kappa * Kokkos::Experimental::cos(delta_phi) - log_i0_kappa;
  }
};

}  // namespace nsbi::sims
