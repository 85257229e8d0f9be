// lensing against what its model (docs/simulators.md) fixes independently of the code: distances, the
// Einstein radius and nbar from a separate evaluation with the standard library, the subhalo count and mass
// distributions, one subhalo's deflection from a numerical integral of its projected mass, the gold score as
// the derivative of log p(z|theta) and E[r] = 1, and the rows' independence of blocking. Statistical
// tolerances are 4 standard errors (or p-values above 1e-4) with fixed seeds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "nsbi/core/error.hpp"
#include "nsbi/sims/lensing.hpp"
#include "nsbi/sims/registry.hpp"
#include "statistics.hpp"

namespace nsbi::sims {
namespace {

using namespace nsbi::test;

constexpr double z_tolerance = 4.0;
constexpr double pi = 3.14159265358979323846;
constexpr double arcsec = 180.0 / pi * 3600.0;

// ---- An independent evaluation of the model's host-side quantities (std:: functions, Simpson's rule) ------

namespace reference {

constexpr double c = 299792.458, G = 4.30091e-9, H0 = 67.74, Om = 0.3075;

double comoving(double z) {
  const int cells = 2000;  // Simpson: error ~ (z/cells)^4, far below 1e-12 relative
  const auto f = [](double t) { return 1.0 / std::sqrt(Om * std::pow(1.0 + t, 3) + 1.0 - Om); };
  const double h = z / cells;
  double sum = f(0.0) + f(z);
  for (int i = 1; i < cells; ++i) sum += (i % 2 == 1 ? 4.0 : 2.0) * f(i * h);
  return c / H0 * sum * h / 3.0;
}

double concentration(double m) {
  const double coefficients[6] = {37.5153, -1.5093, 1.636e-2, 3.66e-4, -2.89237e-5, 5.32e-7};
  double sum = 0.0;
  for (int i = 0; i < 6; ++i) sum += coefficients[i] * std::pow(std::log(m * 0.7), i);
  return sum;
}

double rho_crit() { return 3.0 * H0 * H0 / (8.0 * pi * G); }

// r_s (Mpc) of a halo of mass m.
double scale_radius(double m) {
  return std::cbrt(3.0 * m / (4.0 * pi * 200.0 * rho_crit())) / concentration(m);
}

double nfw_f(double x) {
  if (x < 1.0) return std::atanh(std::sqrt(1.0 - x * x)) / std::sqrt(1.0 - x * x);
  return std::atan(std::sqrt(x * x - 1.0)) / std::sqrt(x * x - 1.0);
}

struct Host {
  double d_l, d_s, d_ls, theta_e, m200, theta_s, nbar_factor;
};

Host host(double z_l, double sigma_v) {
  const double chi_l = comoving(z_l), chi_s = comoving(1.5);
  Host h;
  h.d_l = chi_l / (1.0 + z_l);
  h.d_s = chi_s / 2.5;
  h.d_ls = (chi_s - chi_l) / 2.5;
  h.theta_e = 4.0 * pi * std::pow(sigma_v / c, 2) * h.d_ls / h.d_s * arcsec;
  h.m200 = 1e12 * std::pow(10.0, 0.09 + 3.48 * std::log10(sigma_v / 100.0));
  h.theta_s = scale_radius(h.m200) / h.d_l * arcsec;
  const double x = 2.0 * h.theta_e / h.theta_s;
  h.nbar_factor = std::log(x / 2.0) + nfw_f(x);
  return h;
}

double nbar(const Host& h, double f_sub, double beta) {
  const double a = 1e7 / 1e9, b = 0.01 * h.m200 / 1e9;
  const double A = std::pow(a, beta + 1) - std::pow(b, beta + 1);
  const double B = std::abs(beta + 2.0) < 1e-12
                       ? std::log(b / a)
                       : (std::pow(b, beta + 2) - std::pow(a, beta + 2)) / (beta + 2);
  return h.nbar_factor * f_sub * h.m200 / 1e9 * A / ((-beta - 1.0) * B);
}

}  // namespace reference

std::unique_ptr<Lensing> lensing(const SimulatorOptions& options = {}) {
  auto sim = make_simulator("lensing", options);
  return std::unique_ptr<Lensing>(static_cast<Lensing*>(sim.release()));
}

const SimulatorOptions all_fixed = {{"fixed", "[lens_redshift, velocity_dispersion, source_offset]"}};

Matrix rows_at(const std::vector<double>& theta, std::size_t n) {
  Matrix t = make_matrix("theta", n, theta.size());
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t p = 0; p < theta.size(); ++p) t(i, p) = theta[p];
  return t;
}

TEST(Lensing, DefaultsGiveTheEinsteinRadiusAndSubhaloCountOfAnIndependentEvaluation) {
  const auto sim = lensing(all_fixed);
  const double theta[2] = {0.05, -1.9};
  const LensingLatent z = sim->latent(theta, 0, 1);
  const reference::Host h = reference::host(std::pow(10.0, -0.25), 225.0);
  EXPECT_NEAR(z.host.d_l, h.d_l, 1e-9 * h.d_l);
  EXPECT_NEAR(z.host.d_ls, h.d_ls, 1e-9 * h.d_ls);
  EXPECT_NEAR(z.host.theta_e, h.theta_e, 1e-9 * h.theta_e);
  EXPECT_NEAR(z.host.theta_s, h.theta_s, 1e-9 * h.theta_s);
  EXPECT_NEAR(z.nbar, reference::nbar(h, 0.05, -1.9), 1e-9 * z.nbar);
  // The model's advertised values at the defaults.
  EXPECT_NEAR(z.host.theta_e, 0.76, 0.01);
  EXPECT_NEAR(z.nbar, 100.0, 5.0);
  // beta = -2 exactly (the limit of B), next to it (the series) and beyond the series.
  for (const double beta : {-2.0, -2.03, -2.07}) {
    const double at[2] = {0.05, beta};
    EXPECT_NEAR(sim->latent(at, 0, 1).nbar, reference::nbar(h, 0.05, beta), 1e-9 * z.nbar) << beta;
  }
  // Continuous through -2, where the closed form would divide 0 by 0 (d nbar / d beta is O(nbar)).
  const double at_limit[2] = {0.05, -2.0};
  const double next_to_it[2] = {0.05, -2.0 + 1e-9};
  EXPECT_NEAR(sim->latent(next_to_it, 0, 1).nbar, sim->latent(at_limit, 0, 1).nbar, 1e-8 * z.nbar);
}

TEST(Lensing, DrawnHostsFollowTheirPopulation) {
  // With every host quantity drawn: each row's distances and theta_E against the independent evaluation at
  // its own draws, and the draws' distributions by KS tests.
  const auto sim = lensing();
  const double theta[2] = {0.05, -1.9};
  std::vector<double> log10_z, sigma, offset;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    const LensingLatent z = sim->latent(theta, i, 7);
    log10_z.push_back(std::log10(z.host.redshift));
    sigma.push_back(z.host.velocity_dispersion);
    offset.push_back(z.host.offset_x / 0.2);
    offset.push_back(z.host.offset_y / 0.2);
    if (i < 20) {
      const reference::Host h = reference::host(z.host.redshift, z.host.velocity_dispersion);
      EXPECT_NEAR(z.host.theta_e, h.theta_e, 1e-9 * h.theta_e);
      EXPECT_NEAR(z.nbar, reference::nbar(h, 0.05, -1.9), 1e-9 * z.nbar);
    }
  }
  const double truncation = normal_cdf(1.0);  // N(-0.25, 0.25) below 0
  const auto redshift = ks_statistic_pvalue(
      log10_z, [&](double v) { return std::min(1.0, normal_cdf((v + 0.25) / 0.25) / truncation); });
  EXPECT_GT(redshift.pvalue, 1e-4);
  const auto dispersion = ks_statistic_pvalue(sigma, [](double v) { return normal_cdf((v - 225.0) / 50.0); });
  EXPECT_GT(dispersion.pvalue, 1e-4);
  const auto offsets = ks_statistic_pvalue(offset, [](double v) { return normal_cdf(v); });
  EXPECT_GT(offsets.pvalue, 1e-4);
}

// The chi-square p-value of the subhalo counts of 3000 rows (the host fixed) against Poisson(nbar); nbar too.
double count_pvalue(const Lensing& sim, const double* theta, std::uint64_t seed, double& nbar) {
  std::vector<std::int64_t> counts;
  for (std::uint64_t i = 0; i < 3000; ++i) {
    const LensingLatent z = sim.latent(theta, i, seed);
    counts.push_back(static_cast<std::int64_t>(z.n));
    nbar = z.nbar;
  }
  return chi2_discrete_gof(counts, [&](std::int64_t k) { return poisson_pmf(k, nbar); }).pvalue;
}

TEST(Lensing, SubhaloCountsArePoissonAndMassesFollowTheMassFunction) {
  const auto sim = lensing(all_fixed);
  for (const double beta : {-1.9, -2.0, -2.4}) {
    const double theta[2] = {0.02, beta};
    double nbar = 0.0;
    EXPECT_GT(count_pvalue(*sim, theta, 11, nbar), 1e-4) << beta << " nbar " << nbar;

    std::vector<double> masses;
    for (std::uint64_t i = 0; masses.size() < 5000; ++i) {
      const std::vector<double> m = sim->subhalo_masses(theta, i, 12);
      masses.insert(masses.end(), m.begin(), m.end());
    }
    const double lo = 1e7, hi = 0.01 * sim->latent(theta, 0, 12).host.m200;
    // The CDF of m^beta on [lo, hi].
    const auto cdf = [&](double m) {
      const double e = beta + 1.0;
      return (std::pow(m, e) - std::pow(lo, e)) / (std::pow(hi, e) - std::pow(lo, e));
    };
    EXPECT_GT(ks_statistic_pvalue(masses, cdf).pvalue, 1e-4) << beta;
  }
}

TEST(Lensing, CountsFromTheLatentSummaryAtSmallMeansArePoissonToo) {
  // nbar < 10 takes the inversion branch of the count's Poisson draw.
  const auto sim = lensing(all_fixed);
  const double theta[2] = {0.003, -1.9};
  double nbar = 0.0;
  EXPECT_GT(count_pvalue(*sim, theta, 13, nbar), 1e-4);
  EXPECT_LT(nbar, 10.0);
}

TEST(Lensing, SubhaloDeflectionMatchesTheIntegralOfItsProjectedMass) {
  // alpha(r) = 4 G M(<r) / (c^2 r) D_ls / (D_l D_s) (r an angle, in radians), M(<r) the projected mass of
  // the NFW profile within r, integrated numerically from its density here.
  const auto sim = lensing(all_fixed);
  const double theta[2] = {0.05, -1.9};
  const LensingLatent z = sim->latent(theta, 0, 1);
  const rng::StreamBlocks draws(1, rng::Purpose::simulate, 0);
  ASSERT_GT(z.n, 3u);
  for (std::uint64_t j = 0; j < 3; ++j) {
    const LensingSubhalo s = LensingModel::subhalo(draws, j, theta[1], z.host);
    const double m = 1e9 * std::exp(s.log_mass);
    const double cm = reference::concentration(m);
    const double r_s = reference::scale_radius(m);
    const double rho_s = m / (4.0 * pi * std::pow(r_s, 3) * (std::log(1.0 + cm) - cm / (1.0 + cm)));
    // Projected mass within R (Mpc): 2 pi int_0^R Sigma(R') R' dR', Sigma(R) = 2 int_0^inf rho(sqrt(R^2+l^2))
    // dl; by the substitution of the shell radius, M(<R) = M3d(inf)-weighted closed... computed here as the
    // mass of the sphere of radius R plus the part of the cylinder outside it, both by quadrature in r:
    // M(<R) = int_0^inf 4 pi r^2 rho(r) w(r) dr, w = 1 for r < R and 1 - sqrt(1 - R^2/r^2) beyond.
    const auto rho = [&](double r) { return rho_s / ((r / r_s) * std::pow(1.0 + r / r_s, 2)); };
    const auto projected_mass = [&](double R) {
      // In t = ln r, Simpson on a fine grid; the cylinder's weight has an integrable sqrt kink at r = R,
      // handled by splitting there and substituting r = R cosh(u) beyond.
      const int cells = 20000;
      double inner = 0.0;
      {
        const double t0 = std::log(R) - 30.0, t1 = std::log(R), h = (t1 - t0) / cells;
        for (int i = 0; i <= cells; ++i) {
          const double r = std::exp(t0 + i * h);
          const double f = 4.0 * pi * r * r * rho(r) * r;
          inner += (i == 0 || i == cells ? 1.0 : (i % 2 == 1 ? 4.0 : 2.0)) * f;
        }
        inner *= h / 3.0;
      }
      double outer = 0.0;
      {
        const double u1 = 40.0, h = u1 / cells;
        for (int i = 0; i <= cells; ++i) {
          const double u = i * h;
          const double r = R * std::cosh(u);
          // 1 - sqrt(1 - R^2/r^2) = 1 - tanh(u); dr = R sinh(u) du.
          const double f = 4.0 * pi * r * r * rho(r) * (1.0 - std::tanh(u)) * R * std::sinh(u);
          outer += (i == 0 || i == cells ? 1.0 : (i % 2 == 1 ? 4.0 : 2.0)) * f;
        }
        outer *= h / 3.0;
      }
      return inner + outer;
    };
    float alpha_x[LensingModel::n_pixels] = {};
    float alpha_y[LensingModel::n_pixels] = {};
    LensingModel::add_deflection(s, alpha_x, alpha_y);
    for (const int p : {0, 1000, 2080, 4095, 2016, 2047}) {
      const double dx = LensingModel::pixel_centre(p % 64) - s.x,
                   dy = LensingModel::pixel_centre(p / 64) - s.y;
      const double r = std::hypot(dx, dy);  // arcsec
      const double R = r / arcsec * z.host.d_l;
      const double alpha = 4.0 * reference::G * projected_mass(R) /
                           (reference::c * reference::c * (r / arcsec)) * z.host.d_ls /
                           (z.host.d_l * z.host.d_s) * arcsec;
      const double got = std::hypot(alpha_x[p], alpha_y[p]);
      // Float evaluation: relative error ~1e-6; the quadrature is better than 1e-8.
      EXPECT_NEAR(got, alpha, 2e-5 * alpha + 1e-9) << "subhalo " << j << " pixel " << p << " r " << r;
      EXPECT_NEAR(alpha_x[p] * dy - alpha_y[p] * dx, 0.0, 1e-5 * alpha * r);  // radial
      EXPECT_GT(alpha_x[p] * dx + alpha_y[p] * dy, 0.0);                      // away from the subhalo
    }
  }
}

// g(x)/x^2 = (ln(x/2) + F(x))/x^2 in long double at x^2 (a float, so that the comparison sees only the
// profile's own error): F from the series in w = 1 - x^2 near 1, from ln((1 + s)/x)/s or atan(s)/s, s =
// sqrt|w|, elsewhere; the cancellation of ln(x/2) and F at x = 1e-3 costs 2e6 of long double's 1e-19.
long double profile_reference(float x2f) {
  const long double x2 = x2f;
  const long double w = 1.0L - x2;
  const long double x = std::sqrt(x2);
  long double f = 0.0L;
  if (std::abs(w) < 1e-3L) {
    for (int k = 12; k >= 0; --k) f = 1.0L / (2 * k + 1) + w * f;
  } else if (w > 0.0L) {
    const long double s = std::sqrt(w);
    f = std::log((1.0L + s) / x) / s;
  } else {
    const long double s = std::sqrt(-w);
    f = std::atan(s) / s;
  }
  return (std::log(x / 2.0L) + f) / x2;
}

TEST(Lensing, DeflectionProfileMatchesALongDoubleReference) {
  // Over x in [1e-3, 1e4], densely, and the 64 floats on each side of every switch point of the float
  // kernel (x^2 = 0.02, 0.5, 1, 2, 5, 17), and that the profiles for rows beyond the core, far and remote
  // give the full profile's bits where they apply. Bounds (measured: 4.2e-6, 2.9e-5, 7.2e-7; the kernel
  // before the division-free forms had 4.2e-6, 3.0e-5, 3.9e-6): from x^2 = 0.5 up 2e-6 relative, a few float
  // roundings amplified up to 3x where ln(x/2) and F partly cancel; in [0.02, 0.5) 5e-5, where they cancel by
  // up to 120x (at x^2 = 0.02); below, the series in its place: 1e-5 (truncation 3e-6).
  std::vector<float> x2s;
  for (double x2 = 1e-6; x2 <= 1e8; x2 *= 1.0002) x2s.push_back(static_cast<float>(x2));
  for (const float edge : {0.02f, 0.5f, 1.0f, 2.0f, 5.0f, 17.0f}) {
    float below = edge, above = edge;
    for (int i = 0; i < 64; ++i) {
      x2s.push_back(below = std::nextafter(below, 0.0f));
      x2s.push_back(above = std::nextafter(above, 10.0f));
    }
    x2s.push_back(edge);
  }
  double worst[3] = {};
  for (const float x2 : x2s) {
    const long double expected = profile_reference(x2);
    const float got = LensingModel::deflection_profile(x2);
    const double error = static_cast<double>(std::abs((got - expected) / expected));
    const int band = x2 < 0.02f ? 0 : (x2 < 0.5f ? 1 : 2);
    worst[band] = std::max(worst[band], error);
    constexpr double bound[3] = {1e-5, 5e-5, 2e-6};
    ASSERT_LT(error, bound[band]) << "x^2 = " << x2;
    using Reach = LensingModel::Reach;
    if (x2 >= 1.0f) {
      ASSERT_EQ(LensingModel::deflection_profile<Reach::beyond_core>(x2), got) << "x^2 = " << x2;
    }
    if (x2 >= 5.0f) {
      ASSERT_EQ(LensingModel::deflection_profile<Reach::far>(x2), got) << "x^2 = " << x2;
    }
    if (x2 >= 17.0f) {
      ASSERT_EQ(LensingModel::deflection_profile<Reach::remote>(x2), got) << "x^2 = " << x2;
    }
  }
  std::printf("deflection profile: max relative error %.3g (x^2 < 0.02), %.3g (to 0.5), %.3g (above)\n",
              worst[0], worst[1], worst[2]);
}

TEST(Lensing, DeflectionProfileIsContinuousAcrossItsForms) {
  // g(x)/x^2 against a double evaluation with the standard library, across the switch points of the float
  // kernel (x^2 = 0.02 for the small-x series, 0.5, 1, 2 and 5 between the forms of F).
  for (double x2 = 1e-8; x2 < 1e4; x2 *= 1.01) {
    const double x = std::sqrt(x2);
    const double exact = (std::log(x / 2.0) + reference::nfw_f(x)) / x2;
    // Where ln(x/2) and F cancel, compare with the series g/x^2 ~ ln(2/x)/2 - 1/4 computed in double.
    const double expected =
        x2 < 1e-3 ? 0.5 * std::log(2.0 / x) - 0.25 + x2 * (0.375 * std::log(2.0 / x) - 0.21875) : exact;
    if (std::abs(1.0 - x2) < 1e-7) continue;  // the std:: forms themselves lose precision there
    const float x2f = static_cast<float>(x2);
    EXPECT_NEAR(LensingModel::deflection_profile(x2f), expected, 3e-5 * expected) << x2;
  }
}

TEST(Lensing, DeflectionProfileIsFiniteWhereXSquaredRoundsToOne) {
  // x^2 == 1.0f exactly once made 0 * inf of the old kernel's 1/x and hung the noise sampler downstream.
  float x2 = 1.0f;
  for (int i = 0; i < 8; ++i) x2 = std::nextafter(x2, 0.0f);
  for (int i = 0; i < 17; ++i, x2 = std::nextafter(x2, 2.0f)) {
    EXPECT_TRUE(std::isfinite(LensingModel::deflection_profile(x2))) << x2;
    EXPECT_NEAR(LensingModel::deflection_profile(x2), std::log(0.5) + 1.0, 1e-5) << x2;  // g(1) = ln(1/2) + 1
  }
}

// add_noise with its own scratch.
void add_noise(const rng::StreamBlocks& draws, const std::vector<double>& mean, std::vector<double>& x) {
  std::vector<std::int32_t> pending(LensingModel::n_pixels);
  std::vector<double> outcome(LensingModel::n_pixels);
  LensingModel::add_noise(draws, mean.data(), x.data(), pending.data(), outcome.data());
}

// add_noise out of line, so that the compiler cannot move its arithmetic across the changes of the
// floating-point traps around the call.
__attribute__((noinline)) void add_noise_untrapped(const std::vector<double>& mean, std::vector<double>& x) {
  add_noise(rng::StreamBlocks(5, rng::Purpose::simulate, 0), mean, x);
}

TEST(Lensing, NoiseOfANonFiniteMeanIsNaNNotAHang) {
  std::vector<double> mean(LensingModel::n_pixels, 300.0), x(LensingModel::n_pixels);
  mean[77] = std::numeric_limits<double>::quiet_NaN();
  mean[78] = std::numeric_limits<double>::infinity();
  // The candidates of such a mean compute with NaN, an invalid operation that tests/mpi_main.cpp traps.
  fedisableexcept(FE_INVALID);
  add_noise_untrapped(mean, x);
  feclearexcept(FE_ALL_EXCEPT);
  feenableexcept(FE_INVALID);
  EXPECT_TRUE(std::isnan(x[77]));
  EXPECT_TRUE(std::isnan(x[78]));
  EXPECT_TRUE(std::isfinite(x[76]) && std::isfinite(x[79]));
}

struct Gold {
  Matrix x;
  Vector log_r;
  Matrix score;
};

Gold gold_rows(const Simulator& sim, const Matrix& theta, const Matrix& gold_theta, const double* theta0,
               std::uint64_t first, std::uint64_t seed) {
  const std::size_t n = theta.extent(0);
  Gold g{make_matrix("x", n, sim.info().n_observables()), Vector("log_r", n), make_matrix("score", n, 2)};
  sim.simulate_gold(ExecutionSpace(), theta, g.x, gold_theta, theta0, g.log_r, g.score, first, seed);
  Kokkos::fence();
  return g;
}

TEST(Lensing, GoldRowsEqualPlainRowsAndDoNotDependOnBlocking) {
  const auto sim = lensing();
  const std::size_t n = 6;
  Matrix theta = make_matrix("theta", n, 2);
  for (std::size_t i = 0; i < n; ++i) {
    theta(i, 0) = 0.01 + 0.03 * i;
    theta(i, 1) = -2.4 + 0.17 * i;
  }
  Matrix gold_theta = rows_at({0.07, -1.85}, n);
  const double theta0[2] = {0.05, -1.9};
  Matrix plain = make_matrix("plain", n, sim->info().n_observables());
  sim->simulate(theta, plain, 100, 3);
  const Gold whole = gold_rows(*sim, theta, gold_theta, theta0, 100, 3);
  const std::size_t bytes = sizeof(double) * sim->info().n_observables();
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(std::memcmp(&plain(i, 0), &whole.x(i, 0), bytes), 0) << i;
  // Rows 2..5 alone (first index 102) equal rows 2..5 of the block.
  const std::size_t skip = 2;
  Matrix tail = make_matrix("tail", n - skip, 2);
  Matrix gold_tail = rows_at({0.07, -1.85}, n - skip);
  for (std::size_t i = skip; i < n; ++i)
    for (int p = 0; p < 2; ++p) tail(i - skip, p) = theta(i, p);
  const Gold split = gold_rows(*sim, tail, gold_tail, theta0, 100 + skip, 3);
  for (std::size_t i = skip; i < n; ++i) {
    EXPECT_EQ(std::memcmp(&whole.x(i, 0), &split.x(i - skip, 0), bytes), 0) << i;
    EXPECT_EQ(whole.log_r(i), split.log_r(i - skip));
    EXPECT_EQ(whole.score(i, 1), split.score(i - skip, 1));
  }
  // Counts are non-negative integers (float32-exact) and the sky sets their scale.
  double sum = 0.0;
  for (std::size_t d = 0; d < sim->info().n_observables(); ++d) {
    const double v = plain(0, d);
    ASSERT_EQ(v, std::floor(v));
    ASSERT_GE(v, 0.0);
    ASSERT_LT(v, 1 << 24);
    sum += v;
  }
  EXPECT_GT(sum / 4096.0, 255.0 - 4.0 * std::sqrt(255.0 / 4096.0));
}

TEST(Lensing, ScoreIsTheDerivativeOfLogPOfTheLatentSummary) {
  // Central finite differences of log p(z|theta) at fixed z, also at and next to beta = -2 (where B's series
  // takes over) and beyond the series; the step's truncation error (~h^2 |d^3 log p|) is far below the
  // tolerance.
  const auto sim = lensing();
  for (std::uint64_t row = 0; row < 3; ++row) {
    for (const double beta : {-2.4, -2.06, -2.04, -2.0001, -2.0, -1.9999, -1.97, -1.6}) {
      const double theta[2] = {0.05, beta};
      const LensingLatent z = sim->latent(theta, row, 21);
      double score[2];
      LensingModel::joint_score(z, theta, score);
      const double h_f = 1e-6, h_b = 1e-5;
      const double f_plus[2] = {0.05 + h_f, beta}, f_minus[2] = {0.05 - h_f, beta};
      const double b_plus[2] = {0.05, beta + h_b}, b_minus[2] = {0.05, beta - h_b};
      const double d_f = (LensingModel::log_p(z, f_plus) - LensingModel::log_p(z, f_minus)) / (2 * h_f);
      const double d_b = (LensingModel::log_p(z, b_plus) - LensingModel::log_p(z, b_minus)) / (2 * h_b);
      EXPECT_NEAR(score[0], d_f, 1e-5 * (1.0 + std::abs(d_f))) << row << " " << beta;
      EXPECT_NEAR(score[1], d_b, 1e-5 * (1.0 + std::abs(d_b))) << row << " " << beta;
    }
  }
}

TEST(Lensing, GoldRatioHasUnitMeanAndScoreZeroMean) {
  // E_theta0[exp(log r(theta, theta0))] = 1 and E_theta[t] = 0, over the latent summaries of many rows (the
  // images add nothing to gold); 4 standard errors from the sample itself. simulate_gold's rows give the
  // same values from their latent summaries.
  const auto sim = lensing();
  const double theta0[2] = {0.05, -1.9};
  const std::size_t n = 20000;
  for (const auto& theta : {std::vector<double>{0.04, -1.95}, std::vector<double>{0.07, -1.85}}) {
    std::vector<double> ratio;
    for (std::uint64_t i = 0; i < n; ++i)
      ratio.push_back(
          std::exp(LensingModel::joint_log_ratio(sim->latent(theta0, i, 31), theta.data(), theta0)));
    const auto m = sample_moments(ratio);
    EXPECT_NEAR(m.mean, 1.0, z_tolerance * mean_standard_error(m.variance, n)) << theta[0] << " " << theta[1];
    for (int p = 0; p < 2; ++p) {
      std::vector<double> score;
      for (std::uint64_t i = 0; i < n; ++i) {
        double t[2];
        LensingModel::joint_score(sim->latent(theta.data(), i, 32), theta.data(), t);
        score.push_back(t[p]);
      }
      const auto s = sample_moments(score);
      EXPECT_NEAR(s.mean, 0.0, z_tolerance * mean_standard_error(s.variance, n)) << p;
    }
  }
  // simulate_gold's log r and score are those of the rows' latent summaries.
  const std::size_t rows = 3;
  Matrix theta = rows_at({0.05, -1.9}, rows);
  Matrix gold_theta = rows_at({0.07, -1.85}, rows);
  const Gold g = gold_rows(*sim, theta, gold_theta, theta0, 500, 33);
  for (std::size_t i = 0; i < rows; ++i) {
    const LensingLatent z = sim->latent(theta0, 500 + i, 33);
    const double at[2] = {0.07, -1.85};
    EXPECT_EQ(g.log_r(i), LensingModel::joint_log_ratio(z, at, theta0));
    double t[2];
    LensingModel::joint_score(z, theta0, t);
    EXPECT_EQ(g.score(i, 0), t[0]);
    EXPECT_EQ(g.score(i, 1), t[1]);
  }
}

TEST(Lensing, VectorisedNoiseEqualsTheScalarDrawsAndIsPoisson) {
  // The vectorised passes (the squeeze of every pixel's first candidate, then the pending pixels' next
  // candidates in full) give the bits of the plain rejection loop; the counts at one mean are Poisson
  // (chi-square).
  std::vector<double> mean(LensingModel::n_pixels), x(LensingModel::n_pixels);
  for (int p = 0; p < LensingModel::n_pixels; ++p) mean[p] = p < 2048 ? 300.0 : 255.0 + 0.5 * p;
  std::vector<std::int64_t> counts;
  for (std::uint64_t image = 0; image < 20; ++image) {
    const rng::StreamBlocks draws(5, rng::Purpose::simulate, image);
    add_noise(draws, mean, x);
    for (int p = 0; p < LensingModel::n_pixels; ++p) {
      double k = 0.0;
      rng::first_accepted<rng::unlimited_candidates>(
          draws, LensingModel::noise_block + LensingModel::noise_blocks_per_pixel * p,
          rng::PoissonPtrs(mean[p]), k);
      ASSERT_EQ(x[p], k) << image << " " << p;
      if (p < 2048) counts.push_back(static_cast<std::int64_t>(k));
    }
  }
  EXPECT_GT(chi2_discrete_gof(counts, [](std::int64_t k) { return poisson_pmf(k, 300.0); }).pvalue, 1e-4);
}

TEST(Lensing, PsfIsTheNormalisedSevenTapGaussianWithPeriodicEdges) {
  const auto sim = lensing();
  const LensingModel& model = sim->model();
  const double sigma = 0.18 / 2.3548;
  double norm = 0.0;
  for (int d = -3; d <= 3; ++d) norm += std::exp(-0.01 * d * d / (2 * sigma * sigma));
  std::vector<double> mu(LensingModel::n_pixels, 0.0), work(LensingModel::n_pixels);
  mu[1 * 64 + 62] = 1000.0;  // a point next to the top right corner: its blur wraps around both edges
  model.blur(mu.data(), work.data());
  double total = 0.0;
  for (int row = 0; row < 64; ++row)
    for (int column = 0; column < 64; ++column) {
      const int dy = ((row - 1 + 32 + 64) % 64) - 32, dx = ((column - 62 + 32 + 64) % 64) - 32;
      const double expected =
          std::abs(dx) <= 3 && std::abs(dy) <= 3
              ? 1000.0 * std::exp(-0.01 * (dx * dx + dy * dy) / (2 * sigma * sigma)) / (norm * norm)
              : 0.0;
      EXPECT_NEAR(mu[row * 64 + column], expected, 1e-12 * 1000.0) << row << " " << column;
      total += mu[row * 64 + column];
    }
  EXPECT_NEAR(total, 1000.0, 1e-10);
}

TEST(Lensing, OptionsFixTheHostAndAreValidated) {
  const auto sim = lensing({{"fixed", "[lens_redshift, source_offset]"},
                            {"lens_redshift", "0.4"},
                            {"source_offset_x", "0.1"},
                            {"source_offset_y", "-0.05"}});
  const double theta[2] = {0.05, -1.9};
  const LensingLatent a = sim->latent(theta, 0, 1), b = sim->latent(theta, 1, 1);
  EXPECT_EQ(a.host.redshift, 0.4);
  EXPECT_EQ(b.host.redshift, 0.4);
  EXPECT_EQ(a.host.offset_x, 0.1);
  EXPECT_EQ(a.host.offset_y, -0.05);
  EXPECT_NE(a.host.velocity_dispersion, b.host.velocity_dispersion);  // still drawn
  const reference::Host h = reference::host(0.4, a.host.velocity_dispersion);
  EXPECT_NEAR(a.host.theta_e, h.theta_e, 1e-9 * h.theta_e);

  EXPECT_THROW(make_simulator("lensing", {{"fixed", "[redshift]"}}), ConfigError);
  EXPECT_THROW(make_simulator("lensing", {{"fixed", "lens_redshift"}}), ConfigError);
  EXPECT_THROW(make_simulator("lensing", {{"lens_redshift", "0.3"}}),
               ConfigError);  // drawn: would be ignored
  EXPECT_THROW(make_simulator("lensing", {{"fixed", "[velocity_dispersion]"}, {"velocity_dispersion", "-5"}}),
               ConfigError);
  EXPECT_THROW(make_simulator("lensing", {{"fixed", "[lens_redshift]"}, {"lens_redshift", "x"}}),
               ConfigError);
  EXPECT_THROW(make_simulator("lensing", {{"sigma", "1"}}), ConfigError);
  // The defaults, as the configuration passes them, are accepted.
  SimulatorOptions defaults;
  for (const auto& option : simulator_options("lensing")) defaults[option.key] = option.default_value;
  EXPECT_NO_THROW(make_simulator("lensing", defaults));
}

}  // namespace
}  // namespace nsbi::sims
