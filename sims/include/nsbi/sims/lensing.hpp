#pragma once
// lensing (docs/simulators.md): 64x64 strong-lensing images of a Sérsic source behind a singular isothermal
// host with a population of NFW dark-matter subhalos, theta = (f_sub, beta), with gold (the joint log ratio
// and score from each image's subhalo count n and mass sum S = sum ln(m_i / 1e9 M_sun)).
//
// One image is one work item. Its stages are separate functions, so that each can be timed on its own:
//   host_of             the lens and source of the image (drawn or fixed, see the options);
//   add_subhalos        n ~ Poisson(nbar), then each subhalo, drawn from its own blocks, adds its deflection
//                       to every pixel (a loop over pixels that vectorises, in float);
//   expected_counts     the host's deflection, the lens equation, the source and the sky: mu per pixel;
//   blur                the PSF, 7 taps along x then along y, periodic;
//   add_noise           x = Poisson(PSF * mu) per pixel, a vectorised rejection sampler.
// Units: angles in arcsec, masses in M_sun, distances in Mpc, velocities in km/s.
//
// The image's stream, block by block (rng::StreamBlocks of (seed, simulate, row)):
//   offset_block          the source offset, one Box–Muller pair (x, y);
//   redshift_block + k    candidate k of the lens redshift's rejection (the first normal of the pair);
//   dispersion_block + k  candidate k of the velocity dispersion's rejection (likewise);
//   count_block (+ k)     the subhalo count: its uniform (inversion, nbar < 10) or PTRS candidate k;
//   subhalo_block + 2j    subhalo j's mass and radius uniforms; + 2j + 1: its azimuth (first uniform);
//   noise_block + 4096 p + k   candidate k of pixel p's Poisson draw (p = 64 row + column).
// A fixed host quantity leaves its blocks unused. Each rejection has room for 2^8 candidates (host
// quantities) or 2^12 (pixels) before it would reach the next region; needing that many has a negligible
// probability (the acceptances are 0.84 and above).

#include <cstdint>
#include <memory>
#include <vector>

#include "nsbi/core/kernel_math.hpp"
#include "nsbi/core/rng.hpp"
#include "nsbi/sims/registry.hpp"
#include "nsbi/sims/simulator.hpp"

namespace nsbi::sims {

/// One image's lens and source, and what follows from them for every subhalo (and for gold).
struct LensingHost {
  double redshift = 0.0;             // z_l
  double velocity_dispersion = 0.0;  // sigma_v, km/s
  double offset_x = 0.0;             // source position, arcsec
  double offset_y = 0.0;
  double d_l = 0.0;  // angular diameter distances, Mpc
  double d_s = 0.0;
  double d_ls = 0.0;
  double theta_e = 0.0;   // the host's Einstein radius, arcsec
  double m200 = 0.0;      // the host's halo mass
  double theta_s = 0.0;   // the host's NFW scale radius, arcsec
  double roi = 0.0;       // F_ROI: ln(x/2) + F(x) at x = 2 theta_e / theta_s
  double sigma_cr = 0.0;  // critical surface density, M_sun / Mpc^2
  double log_b = 0.0;     // ln(m_max / m0), m_max = 0.01 m200
};

/// What gold needs of an image (its latent history z): the host, nbar at the row's theta, n and S.
struct LensingLatent {
  LensingHost host;
  double nbar = 0.0;
  std::uint64_t n = 0;
  double mass_log_sum = 0.0;  // S = sum_i ln(m_i / m0)
};

/// One subhalo as the pixel loop uses it: its position, K = 4 kappa_s and 1/theta_s^2 (float), and
/// ln(m / m0) for S.
struct LensingSubhalo {
  double x = 0.0;
  double y = 0.0;
  double log_mass = 0.0;
  float strength = 0.0f;      // 4 kappa_s
  float inv_theta_s2 = 0.0f;  // 1 / theta_s^2, arcsec^-2
};

/// The per-image buffers of the stages (one work item's scratch memory).
struct LensingWorkspace {
  float* alpha_x;  // the subhalos' deflection per pixel
  float* alpha_y;
  double* mu;             // expected counts per pixel
  double* blurred;        // the PSF's intermediate pass, then add_noise's outcomes
  std::int32_t* pending;  // add_noise's pixels still pending
};

struct LensingModel {
  static constexpr int n_parameters = 2;
  static constexpr int width = 64;  // pixels per side
  static constexpr int n_pixels = width * width;
  static constexpr double pixel = 0.1;  // arcsec
  static constexpr double pi = 3.14159265358979323846;
  static constexpr double ln10 = 2.30258509299404568402;
  static constexpr double arcsec_per_radian = 206264.80624709636;

  // Cosmology (flat LCDM) and the constants of the model.
  static constexpr double speed_of_light = 299792.458;  // km/s
  static constexpr double gravitational = 4.30091e-9;   // Mpc (km/s)^2 / M_sun
  static constexpr double hubble = 67.74;               // km/s/Mpc
  static constexpr double omega_m = 0.3075;
  static constexpr double source_redshift = 1.5;
  static constexpr double mass_unit = 1e9;                     // m0
  static constexpr double log_min_mass = -4.6051701859880914;  // ln(m_min / m0), m_min = 1e7
  static constexpr double max_mass_fraction = 0.01;            // m_max / M200 of the host
  static constexpr double source_radius = 0.2;                 // theta_e of the Sérsic profile, arcsec
  static constexpr double sersic_b1 = 1.67839;
  static constexpr double exposure = 1610.0;          // s
  static constexpr double pixel_area = 0.01;          // arcsec^2
  static constexpr double psf_sigma = 0.18 / 2.3548;  // arcsec
  static constexpr int psf_half_width = 3;

  // The host population's defaults.
  static constexpr double default_redshift = 0.56234132519034908;  // 10^-0.25
  static constexpr double default_dispersion = 225.0;

  static constexpr std::uint32_t offset_block = 0;
  static constexpr std::uint32_t redshift_block = 1u << 8;
  static constexpr std::uint32_t dispersion_block = 2u << 8;
  static constexpr std::uint32_t count_block = 3u << 8;
  static constexpr std::uint32_t subhalo_block = 1u << 12;
  static constexpr std::uint32_t noise_block = 1u << 24;
  static constexpr std::uint32_t noise_blocks_per_pixel = 1u << 12;
  // Subhalo j uses blocks subhalo_block + 2j and + 2j + 1, below noise_block for j < 2^23 - 2^11: nbar stays
  // below 10^6 over the parameter ranges and the host population.

  // Which host quantities each image draws, and the fixed values of the others.
  bool draw_redshift = true;
  bool draw_dispersion = true;
  bool draw_offset = true;
  double fixed_redshift = default_redshift;
  double fixed_dispersion = default_dispersion;
  double fixed_offset_x = 0.0;
  double fixed_offset_y = 0.0;
  // Comoving distances (Mpc) to the source and, for a fixed redshift, to the lens: computed once.
  double chi_source = 0.0;
  double chi_fixed_lens = 0.0;
  // The PSF's taps at offsets -3 .. 3 pixels, normalised to sum 1.
  double psf[2 * psf_half_width + 1] = {};

  LensingModel() = default;
  /// Sets the fields above that follow from the options (distances, PSF taps); Lensing's constructor calls
  /// it.
  void prepare();

  static SimulatorInfo info();

  // ---- Cosmology and halos -------------------------------------------------------------------------------

  /// chi(z) = (c/H0) int_0^z dz'/E(z'), E = sqrt(Om (1+z)^3 + 1 - Om), by 16-point Gauss–Legendre.
  KOKKOS_INLINE_FUNCTION static double comoving_distance(double z) {
    constexpr double nodes[8] = {0.09501250983763745, 0.2816035507792589, 0.45801677765722737,
                                 0.6178762444026438,  0.755404408355003,  0.8656312023878318,
                                 0.9445750230732326,  0.9894009349916499};
    constexpr double weights[8] = {0.18945061045506859,  0.1826034150449236,  0.16915651939500262,
                                   0.14959598881657676,  0.12462897125553403, 0.09515851168249259,
                                   0.062253523938647706, 0.027152459411754037};
    const double half = 0.5 * z;
    double sum = 0.0;
    for (int i = 0; i < 8; ++i) {
      const double below = 1.0 + half * (1.0 - nodes[i]);
      const double above = 1.0 + half * (1.0 + nodes[i]);
      sum += weights[i] * (1.0 / kernel_math::sqrt(omega_m * below * below * below + (1.0 - omega_m)) +
                           1.0 / kernel_math::sqrt(omega_m * above * above * above + (1.0 - omega_m)));
    }
    return speed_of_light / hubble * half * sum;
  }

  /// ln(200 rho_crit 4 pi / 3), rho_crit = 3 H0^2 / (8 pi G): r200^3 = m / that.
  KOKKOS_INLINE_FUNCTION static double log_r200_cube_density() {
    return kernel_math::log(100.0 * hubble * hubble / gravitational);  // 200 (4 pi/3) 3 H0^2 / (8 pi G)
  }

  /// The concentration c200 of a halo of mass exp(log_mass) (M_sun).
  KOKKOS_INLINE_FUNCTION static double concentration(double log_mass) {
    constexpr double ln_h = -0.35667494393873238;  // ln 0.7
    const double l = log_mass + ln_h;
    return 37.5153 + l * (-1.5093 + l * (1.636e-2 + l * (3.66e-4 + l * (-2.89237e-5 + l * 5.32e-7))));
  }

  /// F(x) of the projected NFW profile (arctanh(sqrt(1-x^2))/sqrt(1-x^2) below 1, arctan(sqrt(x^2-1))/...
  /// above, the series in w = 1 - x^2 near 1), in double for the host-side quantities.
  KOKKOS_INLINE_FUNCTION static double nfw_f(double x) {
    const double w = 1.0 - x * x;
    const double aw = w < 0.0 ? -w : w;
    const double q = kernel_math::sqrt(aw);
    if (aw < 0.01) {
      double sum = 0.0;
      for (int k = 8; k >= 0; --k) sum = 1.0 / (2 * k + 1) + w * sum;
      return sum;
    }
    if (w > 0.0) return kernel_math::log((1.0 + q) / x) / q;
    return kernel_math::acos(1.0 / x) / q;
  }

  // ---- The stages of one image ----------------------------------------------------------------------------

  /// The image's host: drawn from its blocks or fixed, and the quantities that follow.
  KOKKOS_INLINE_FUNCTION LensingHost host_of(const rng::StreamBlocks& draws) const {
    LensingHost h;
    if (draw_redshift) {
      rng::first_accepted<rng::unlimited_candidates>(draws, redshift_block, RedshiftCandidate{}, h.redshift);
    } else {
      h.redshift = fixed_redshift;
    }
    if (draw_dispersion) {
      rng::first_accepted<rng::unlimited_candidates>(draws, dispersion_block, DispersionCandidate{},
                                                     h.velocity_dispersion);
    } else {
      h.velocity_dispersion = fixed_dispersion;
    }
    if (draw_offset) {
      const rng::NormalPair offset = rng::normal_pair(draws.uniforms(offset_block));
      h.offset_x = 0.2 * offset.first;
      h.offset_y = 0.2 * offset.second;
    } else {
      h.offset_x = fixed_offset_x;
      h.offset_y = fixed_offset_y;
    }
    const double chi_l = draw_redshift ? comoving_distance(h.redshift) : chi_fixed_lens;
    h.d_l = chi_l / (1.0 + h.redshift);
    h.d_s = chi_source / (1.0 + source_redshift);
    h.d_ls = (chi_source - chi_l) / (1.0 + source_redshift);
    const double v = h.velocity_dispersion / speed_of_light;
    h.theta_e = 4.0 * pi * v * v * h.d_ls / h.d_s * arcsec_per_radian;
    // log10(M200 / 1e12) = 0.09 + 3.48 log10(sigma_v / 100).
    const double log_m200 = ln10 * (12.09) + 3.48 * kernel_math::log(h.velocity_dispersion / 100.0);
    h.m200 = kernel_math::exp(log_m200);
    h.theta_s = scale_radius(log_m200, h.d_l);
    const double x_roi = 2.0 * h.theta_e / h.theta_s;
    h.roi = kernel_math::log(0.5 * x_roi) + nfw_f(x_roi);
    h.sigma_cr = speed_of_light * speed_of_light * h.d_s / (4.0 * pi * gravitational * h.d_l * h.d_ls);
    h.log_b = log_m200 + kernel_math::log(max_mass_fraction / mass_unit);
    return h;
  }

  /// nbar(theta) for the host: F_ROI f_sub (M200 / m0) A(beta) / ((-beta - 1) B(beta)).
  KOKKOS_INLINE_FUNCTION static double mean_subhalos(const LensingHost& h, double f_sub, double beta) {
    const SlopeTerms t = slope_terms(beta, h.log_b);
    return h.roi * f_sub * (h.m200 / mass_unit) * t.a / ((-beta - 1.0) * t.b);
  }

  /// Subhalo j of an image at slope beta (its blocks subhalo_block + 2j, + 2j + 1).
  KOKKOS_INLINE_FUNCTION static LensingSubhalo subhalo(const rng::StreamBlocks& draws, std::uint64_t j,
                                                       double beta, const LensingHost& h) {
    const std::uint32_t block = subhalo_block + 2u * static_cast<std::uint32_t>(j);
    const rng::UniformPair u = draws.uniforms(block);
    const double u_angle = draws.uniforms(block + 1).first;
    // Inverse CDF of m^beta on [m_min, m_max] in units of m0: y^p = (1 - u) a^p + u b^p, p = beta + 1.
    const double p = beta + 1.0;
    const double a_p = kernel_math::exp(p * log_min_mass);
    const double b_p = kernel_math::exp(p * h.log_b);
    LensingSubhalo s;
    s.log_mass = kernel_math::log((1.0 - u.first) * a_p + u.first * b_p) / p;
    const double radius = 2.0 * h.theta_e * kernel_math::sqrt(u.second);
    const kernel_math::SinCos angle = kernel_math::sin_cos_turns(u_angle);
    s.x = radius * angle.cos;
    s.y = radius * angle.sin;
    // The subhalo's NFW profile: theta_s, and kappa_s = rho_s r_s / Sigma_cr with
    // rho_s = m / (4 pi r_s^3 [ln(1 + c) - c / (1 + c)]).
    const double log_mass = s.log_mass + kernel_math::log(mass_unit);
    const double c = concentration(log_mass);
    const double r_s = kernel_math::exp((log_mass - log_r200_cube_density()) / 3.0) / c;
    const double theta_s = r_s / h.d_l * arcsec_per_radian;
    const double m = kernel_math::exp(log_mass);
    const double rho_s = m / (4.0 * pi * r_s * r_s * r_s * (kernel_math::log(1.0 + c) - c / (1.0 + c)));
    s.strength = static_cast<float>(4.0 * rho_s * r_s / h.sigma_cr);
    s.inv_theta_s2 = static_cast<float>(1.0 / (theta_s * theta_s));
    return s;
  }

  /// Where the pixels of a row may lie relative to a subhalo, in x^2 = r^2 / theta_s^2: anywhere, at least
  /// 1 (the row at least theta_s away), at least 5 or at least 17. The profile for a narrower reach leaves
  /// out the forms it cannot need and gives the same bits as the full one.
  enum class Reach { any, beyond_core, far, remote };

  /// g(x)/x^2 with g(x) = ln(x/2) + F(x), of x2 = x^2 > 0: the deflection of an NFW halo at x = r / theta_s
  /// is 4 kappa_s theta_s g(x)/x, so its vector at offset d (arcsec) is 4 kappa_s (g(x)/x^2) d. Branch-free
  /// (every form computed and selected), in float with one division, one square root, fused multiply-adds (kernel_math::fmaf) and division-free
  /// logarithms. With t = x^2 - 1, F(x) = h(t), h(t) = arctan(sqrt t)/sqrt t for t >= 0 and its continuation
  /// artanh(sqrt w)/sqrt w, w = -t, below:
  ///   x^2 in [17, inf)   h = (pi/2) sqrt(v) - v P2(v), v = 1/t (from arctan(s) = pi/2 - arctan(1/s));
  ///   x^2 in [5, 17)     h = (pi/2) sqrt(v) - v P5(v);
  ///   x^2 in [2, 5)      h = (pi/2) sqrt(v) - v P(v);
  ///   x^2 in [1, 2)      h = P(t);
  ///   x^2 in [0.5, 1)    h = Q(w);
  ///   x^2 in (0, 0.5)    F = ln((1 + s)/x)/s, s = sqrt(w) (artanh(s)/s without its cancellation);
  ///   x^2 < 0.02         g's series at small x, where ln(x/2) and F cancel.
  /// P, P5, P2 and Q are polynomials (atan_ratio, atan_ratio_far, atan_ratio_remote, atanh_ratio). The one
  /// division gives 1/x^2 and 1/sqrt|t| where a form needs it. Relative error (against long double,
  /// tests/sims/test_lensing.cpp) within 1e-6 from x^2 = 0.5 up, 3e-5 in [0.02, 0.5) where ln(x/2) and F
  /// cancel, 5e-6 below (the series): absolute errors in the deflection of order 1e-7 arcsec, far below a
  /// pixel. reach: beyond_core for x2 >= 1 only, far for x2 >= 5 only, remote for x2 >= 17 only (see Reach).
  template <Reach reach = Reach::any>
  KOKKOS_FORCEINLINE_FUNCTION static float deflection_profile(float x2_in) {
    using kernel_math::fmaf;
    using kernel_math::detail::select;
    constexpr bool may_be_inside = reach == Reach::any;
    constexpr bool may_be_near = reach == Reach::any || reach == Reach::beyond_core;
    constexpr float ln2f = 0.69314718f;
    constexpr float half_pi = 1.57079633f;
    // x^2 at least 1e-30, a normal float as logf_polynomial needs: a pixel on a subhalo's centre gets
    // deflection 0 (integer select, see kernel_math::detail::select: GCC may turn a float one into a branch,
    // which stops vectorisation).
    const float x2 = may_be_inside ? select(x2_in > 1e-30f, x2_in, 1e-30f) : x2_in;
    const float t = x2 - 1.0f;
    const float a = may_be_inside && t < 0.0f ? -t : t;
    const float root = kernel_math::sqrtf(a);  // sqrt|x^2 - 1|
    const bool far = t > 1.0f;
    const bool deep = x2 < 0.5f;
    const float m = may_be_near ? select(far | (may_be_inside & deep), root, 1.0f) : root;
    const float d = 1.0f / (x2 * m);
    const float inv_x2 = m * d;
    const float inv_root = x2 * d;  // 1/sqrt|t| where m = root
    const float v = inv_root * inv_root;
    const float ln_half_x = log_x_over_two(x2);
    const float remote = fmaf(-v, atan_ratio_remote(v), half_pi * inv_root);
    if constexpr (reach == Reach::remote) {
      return (ln_half_x + remote) * inv_x2;
    }
    const float distant = select(x2 >= 17.0f, remote, fmaf(-v, atan_ratio_far(v), half_pi * inv_root));
    if constexpr (!may_be_near) {
      return (ln_half_x + distant) * inv_x2;
    }
    const float p = atan_ratio(select(far, v, t));
    const float outside = select(x2 >= 5.0f, distant, select(far, fmaf(-v, p, half_pi * inv_root), p));
    if constexpr (!may_be_inside) {
      return (ln_half_x + outside) * inv_x2;
    }
    const float below = (kernel_math::logf_polynomial(1.0f + root) - (ln_half_x + ln2f)) * inv_root;
    const float f = select(t >= 0.0f, outside, select(deep, below, atanh_ratio(a)));
    const float general = (ln_half_x + f) * inv_x2;
    // x^2 < 0.02: g/x^2 = l/2 - 1/4 + x^2 (3l/8 - 7/32) + x^4 (5l/16 - 37/192), l = ln(2/x), where g's two
    // terms would cancel (relative truncation error below 3e-6).
    const float l = -ln_half_x;
    const float small = fmaf(x2, fmaf(x2, fmaf(0.3125f, l, -0.19270833f), fmaf(0.375f, l, -0.21875f)),
                             fmaf(0.5f, l, -0.25f));
    return select(x2 < 0.02f, small, general);
  }

  /// ln(x/2) = (1/2) ln x^2 - ln 2 of x2 = x^2 (a normal float): x^2 = 2^k (1 + f)
  /// (kernel_math::reduce_logf), ln(1 + f) = f - f^2/2 + f^3 R(f) with R of degree 5 on f in [sqrt(2)/2 - 1,
  /// sqrt(2) - 1] (fitted as logf_polynomial's, two degrees lower: absolute error 6e-8, 1e-7 with the
  /// roundings, about an ulp of ln(x/2) over most rows), the halves and -ln 2 folded into its coefficients
  /// and into (k - 2) ln(2)/2.
  KOKKOS_FORCEINLINE_FUNCTION static float log_x_over_two(float x2) {
    constexpr float half_ln2_hi = 0x1.62e3p-2f;  // (k - 2) half_ln2_hi is exact
    constexpr float half_ln2_lo = 0x1.2fefa2p-18f;
    // R / 2.
    constexpr float r0 = 0x1.5558e4p-3f, r1 = -0x1.ff9a26p-4f, r2 = 0x1.97c2fep-4f, r3 = -0x1.5f940ep-4f;
    constexpr float r4 = 0x1.4a9236p-4f, r5 = -0x1.a2c838p-5f;
    const kernel_math::LogfReduced reduced = kernel_math::reduce_logf(x2);
    const float f = reduced.f;
    const float k = reduced.k - 2.0f;
    using kernel_math::fmaf;
    const float z = f * f;
    const float r = fmaf(fmaf(r5, f, r4), z * z, fmaf(fmaf(r3, f, r2), z, fmaf(r1, f, r0)));
    return fmaf(k, half_ln2_hi, fmaf(0.5f, f, fmaf(-0.25f, z, fmaf(z * f, r, k * half_ln2_lo))));
  }

  /// arctan(sqrt v)/sqrt v for v in [0, 1/16] (x^2 >= 17): a degree-2 polynomial, fitted to minimise the
  /// relative error of the profile, v (P2 - h) / g (3.7e-8 measured; |P2 - h| <= 2e-6, which v shrinks).
  KOKKOS_FORCEINLINE_FUNCTION static float atan_ratio_remote(float v) {
    constexpr float c0 = 0x1p0f, c1 = -0x1.550748p-2f, c2 = 0x1.7eb726p-3f;
    return kernel_math::fmaf(kernel_math::fmaf(c2, v, c1), v, c0);
  }

  /// arctan(sqrt v)/sqrt v for v in [0, 1/4] (x^2 >= 5): a degree-5 polynomial, fitted as atan_ratio's on
  /// [0, 1/4]. Error 0.92 float ulp (measured).
  KOKKOS_FORCEINLINE_FUNCTION static float atan_ratio_far(float v) {
    constexpr float c0 = 0x1p0f, c1 = -0x1.5554f6p-2f, c2 = 0x1.997634p-3f, c3 = -0x1.221de4p-3f;
    constexpr float c4 = 0x1.9ea14ap-4f, c5 = -0x1.9ff9d0p-5f;
    using kernel_math::fmaf;
    const float v2 = v * v;
    return fmaf(v, fmaf(c5, v2 * v2, fmaf(fmaf(c4, v, c3), v2, fmaf(c2, v, c1))), c0);
  }

  /// arctan(sqrt t)/sqrt t for t in [0, 1] (1 at t = 0): a degree-9 polynomial, fitted by least squares at
  /// 4000 Chebyshev nodes of [0, 1] in numpy against long double, its coefficients rounded to float;
  /// evaluated as c0 + t E(t), E by Estrin's scheme (a short dependency chain: the pixel loop has only four
  /// vectors per row to overlap). Error 1.6 float ulp (measured, rounding included).
  KOKKOS_FORCEINLINE_FUNCTION static float atan_ratio(float t) {
    constexpr float c0 = 0x1p0f, c1 = -0x1.555534p-2f, c2 = 0x1.999052p-3f, c3 = -0x1.2413b8p-3f;
    constexpr float c4 = 0x1.c01c4cp-4f, c5 = -0x1.56eb74p-4f, c6 = 0x1.d6bdd0p-5f, c7 = -0x1.f74692p-6f;
    constexpr float c8 = 0x1.5dfc5ep-7f, c9 = -0x1.c919cep-10f;
    using kernel_math::fmaf;
    const float t2 = t * t;
    const float t4 = t2 * t2;
    const float low = fmaf(fmaf(c4, t, c3), t2, fmaf(c2, t, c1));
    const float high = fmaf(fmaf(c8, t, c7), t2, fmaf(c6, t, c5));
    return fmaf(t, fmaf(c9, t4 * t4, fmaf(high, t4, low)), c0);
  }

  /// artanh(sqrt w)/sqrt w for w in [0, 1/2] (1 at w = 0): a degree-8 polynomial, fitted and evaluated as
  /// atan_ratio's, on [0, 1/2]. Error 1.6 float ulp (measured).
  KOKKOS_FORCEINLINE_FUNCTION static float atanh_ratio(float w) {
    constexpr float c0 = 0x1p0f, c1 = 0x1.55545ap-2f, c2 = 0x1.99fe3cp-3f, c3 = 0x1.1ce08ep-3f;
    constexpr float c4 = 0x1.2df39ap-3f, c5 = -0x1.a29246p-4f, c6 = 0x1.5108e0p-1f, c7 = -0x1.c40802p-1f;
    constexpr float c8 = 0x1.817280p-1f;
    using kernel_math::fmaf;
    const float w2 = w * w;
    const float low = fmaf(fmaf(c4, w, c3), w2, fmaf(c2, w, c1));
    const float high = fmaf(fmaf(c8, w, c7), w2, fmaf(c6, w, c5));
    return fmaf(w, fmaf(high, w2 * w2, low), c0);
  }

  /// Adds one subhalo's deflection to every pixel's (alpha_x, alpha_y), in float. A row whose centre is at
  /// least theta_s from the subhalo's (y^2 / theta_s^2 >= 1, so x^2 >= 1 at each of its pixels, also after
  /// rounding) takes the profile without the forms for x < 1, one at least sqrt(5) theta_s away (x^2 >= 5)
  /// only the forms for x^2 >= 5, one at least sqrt(17) theta_s away (most rows: nearly all the time goes
  /// there) only the form for x^2 >= 17, each with the same bits as the full profile. x^2 and the
  /// deflection's factors per column and per row come first: x^2 = dx^2 / theta_s^2 + dy^2 / theta_s^2, the
  /// deflection (strength dx, strength dy) g(x)/x^2.
  KOKKOS_INLINE_FUNCTION static void add_deflection(const LensingSubhalo& s, float* alpha_x, float* alpha_y) {
    const float strength = s.strength;
    const float inv_theta_s2 = s.inv_theta_s2;
    float column_x2[width];
    float column_factor[width];
    for (int i = 0; i < width; ++i) {
      const float dx = static_cast<float>(pixel_centre(i) - s.x);
      column_x2[i] = dx * dx * inv_theta_s2;
      column_factor[i] = strength * dx;
    }
    for (int row = 0; row < width; ++row) {
      const float dy = static_cast<float>(pixel_centre(row) - s.y);
      const float row_x2 = dy * dy * inv_theta_s2;
      const float row_factor = strength * dy;
      float* ax = alpha_x + row * width;
      float* ay = alpha_y + row * width;
      if (row_x2 >= 17.0f)
        add_deflection_row<Reach::remote>(column_x2, column_factor, row_x2, row_factor, ax, ay);
      else if (row_x2 >= 5.0f)
        add_deflection_row<Reach::far>(column_x2, column_factor, row_x2, row_factor, ax, ay);
      else if (row_x2 >= 1.0f)
        add_deflection_row<Reach::beyond_core>(column_x2, column_factor, row_x2, row_factor, ax, ay);
      else
        add_deflection_row<Reach::any>(column_x2, column_factor, row_x2, row_factor, ax, ay);
    }
  }

  /// One row of add_deflection: the columns' x^2 and factors, the row's.
  template <Reach reach>
  KOKKOS_FORCEINLINE_FUNCTION static void add_deflection_row(const float* column_x2,
                                                             const float* column_factor, float row_x2,
                                                             float row_factor, float* ax, float* ay) {
    NSBI_SIMD_LOOP
    for (int column = 0; column < width; ++column) {
      const float profile = deflection_profile<reach>(column_x2[column] + row_x2);
      ax[column] = kernel_math::fmaf(profile, column_factor[column], ax[column]);
      ay[column] = kernel_math::fmaf(profile, row_factor, ay[column]);
    }
  }

  /// Draws the subhalo count n ~ Poisson(nbar) and adds every subhalo's deflection
  /// to (alpha_x, alpha_y), which it first zeroes; returns n and S = sum ln(m_i / m0) in z.
  KOKKOS_INLINE_FUNCTION static void add_subhalos(const rng::StreamBlocks& draws, double beta,
                                                  const LensingHost& h, LensingLatent& z, float* alpha_x,
                                                  float* alpha_y) {
    for (int p = 0; p < n_pixels; ++p) alpha_x[p] = alpha_y[p] = 0.0f;
    z.n = rng::poisson(draws, count_block, z.nbar);
    double sum = 0.0;
    for (std::uint64_t j = 0; j < z.n; ++j) {
      const LensingSubhalo s = subhalo(draws, j, beta, h);
      sum += s.log_mass;
      add_deflection(s, alpha_x, alpha_y);
    }
    z.mass_log_sum = sum;
  }

  /// mu per pixel: the lens equation beta = theta - alpha_host - alpha_subhalos at each pixel centre, the
  /// Sérsic source there and the sky, in counts.
  KOKKOS_INLINE_FUNCTION static void expected_counts(const LensingHost& h, const float* alpha_x,
                                                     const float* alpha_y, double* mu) {
    const double flux = kernel_math::exp(-0.4 * ln10 * (23.0 - 25.5));  // counts/s
    const double f_e = flux / (3.8 * pi * source_radius * source_radius);
    const double sky = kernel_math::exp(-0.4 * ln10 * (22.5 - 25.5));  // counts/s/arcsec^2
    const double counts = exposure * pixel_area;
    const double inv_radius = 1.0 / source_radius;
    const double theta_e = h.theta_e, offset_x = h.offset_x, offset_y = h.offset_y;
    // The host's deflection theta_E theta/|theta| first, its factor theta_E/|theta| in mu: computed in the
    // loop below, GCC carries the square root from one pixel to the next, which stops vectorisation.
    NSBI_SIMD_LOOP
    for (int p = 0; p < n_pixels; ++p) {
      const double x = pixel_centre(p % width);
      const double y = pixel_centre(p / width);
      mu[p] = theta_e / kernel_math::sqrt(x * x + y * y);
    }
    NSBI_SIMD_LOOP
    for (int p = 0; p < n_pixels; ++p) {
      const double x = pixel_centre(p % width);
      const double y = pixel_centre(p / width);
      const double host = mu[p];
      const double bx = x - host * x - static_cast<double>(alpha_x[p]) - offset_x;
      const double by = y - host * y - static_cast<double>(alpha_y[p]) - offset_y;
      const double r = kernel_math::sqrt(bx * bx + by * by) * inv_radius;
      mu[p] = -sersic_b1 * (r - 1.0);
    }
    // exp in a loop of its own: with arithmetic around it GCC splits exp's argument clamp into branches (the
    // clamped paths folded to constants), which stops vectorisation.
    NSBI_SIMD_LOOP
    for (int p = 0; p < n_pixels; ++p) mu[p] = kernel_math::exp(mu[p]);
    NSBI_SIMD_LOOP
    for (int p = 0; p < n_pixels; ++p) mu[p] = (f_e * mu[p] + sky) * counts;
  }

  /// The PSF on mu, in place: the 7 taps along x, then along y, wrapping around the edges.
  KOKKOS_INLINE_FUNCTION void blur(double* mu, double* work) const {
    constexpr int h = psf_half_width;
    for (int row = 0; row < width; ++row) {
      double padded[width + 2 * h];
      const double* in = mu + row * width;
      for (int i = 0; i < width + 2 * h; ++i) padded[i] = in[(i - h + width) % width];
      double* out = work + row * width;
      NSBI_SIMD_LOOP
      for (int column = 0; column < width; ++column) {
        double sum = 0.0;
        for (int t = 0; t <= 2 * h; ++t) sum += psf[t] * padded[column + t];
        out[column] = sum;
      }
    }
    for (int row = 0; row < width; ++row) {
      const double* rows[2 * h + 1];
      for (int t = 0; t <= 2 * h; ++t) rows[t] = work + ((row + t - h + width) % width) * width;
      double* out = mu + row * width;
      NSBI_SIMD_LOOP
      for (int column = 0; column < width; ++column) {
        double sum = 0.0;
        for (int t = 0; t <= 2 * h; ++t) sum += psf[t] * rows[t][column];
        out[column] = sum;
      }
    }
  }

  /// x[p] = Poisson(mean[p]) for every pixel (means >= 10, as the sky alone gives 255) with the bits of
  /// rng::poisson's PTRS from the pixel's blocks (candidate c of pixel p from block noise_block +
  /// noise_blocks_per_pixel p + c), in vectorised passes: the first keeps candidate 0 wherever its squeeze
  /// accepts it (about 86 % of the pixels, without the exact test's logarithms); each later pass tests the
  /// next candidate in full for the pixels still pending, listed in `pending` (n_pixels entries) with their
  /// outcomes in `outcome` (n_pixels). A mean that is not finite (a bug upstream) would never accept: its
  /// pixel becomes NaN, which the dataset stage reports as a non-finite value of its row, instead of hanging.
  KOKKOS_INLINE_FUNCTION static void add_noise(const rng::StreamBlocks& draws, const double* mean, double* x,
                                               std::int32_t* pending, double* outcome) {
    // Pass 1: every pixel's candidate 0 into x, and in outcome whether its squeeze accepted it (1) or not
    // (0).
    for (int row = 0; row < width; ++row) {
      NSBI_SIMD_LOOP
      for (int column = 0; column < width; ++column) {
        const int p = row * width + column;
        double k = 0.0;
        outcome[p] = squeezed_candidate(draws, mean[p], p, k);
        x[p] = k;
      }
    }
    // The list of the others, in place (entry n <= p is written after entry p is read).
    int n = 0;
    for (int p = 0; p < n_pixels; ++p) {
      constexpr std::uint64_t exponent = 0x7ff0000000000000u;
      const bool finite = (kernel_math::detail::bits_of(mean[p]) & exponent) != exponent;
      const bool open = outcome[p] == 0.0;
      if (open & !finite) x[p] = kernel_math::detail::from_bits(0x7ff8000000000000u);
      pending[n] = p;
      n += open & finite;
    }
    // -1 marks a rejected candidate (an accepted one is >= 0).
    for (std::uint32_t c = 0; n > 0; ++c) {
      NSBI_SIMD_LOOP
      for (int i = 0; i < n; ++i) {
        const int p = pending[i];
        outcome[i] = accepted_candidate(draws, mean[p], p, c);
      }
      int still = 0;
      for (int i = 0; i < n; ++i) {
        const int p = pending[i];
        x[p] = outcome[i];
        pending[still] = p;
        still += outcome[i] < 0.0;
      }
      n = still;
    }
  }

  // add_noise's steps per pixel, in functions of their own: a structure (the uniforms) declared in the body
  // of a SIMD loop becomes an array of them, which GCC does not vectorise.

  /// Pixel p's candidate 0 (into k) and whether its squeeze accepts it: 1 or 0.
  KOKKOS_FORCEINLINE_FUNCTION static double squeezed_candidate(const rng::StreamBlocks& draws, double mean,
                                                               int p, double& k) {
    const rng::PoissonPtrs sampler(mean);
    const rng::UniformPair u = draws.uniforms(noise_block_of(p));
    k = sampler.value(u);
    return sampler.squeezed(u) ? 1.0 : 0.0;
  }

  /// Pixel p's candidate c if it is accepted, else -1.
  KOKKOS_FORCEINLINE_FUNCTION static double accepted_candidate(const rng::StreamBlocks& draws, double mean,
                                                               int p, std::uint32_t c) {
    double k = 0.0;
    const bool accepted = rng::PoissonPtrs(mean).candidate(draws.uniforms(noise_block_of(p) + c), k);
    return accepted ? k : -1.0;
  }

  /// The first of pixel p's noise blocks.
  KOKKOS_FORCEINLINE_FUNCTION static std::uint32_t noise_block_of(int p) {
    return noise_block + noise_blocks_per_pixel * static_cast<std::uint32_t>(p);
  }

  /// One image at theta = (f_sub, beta) into x (n_pixels values), with its latent summary.
  KOKKOS_INLINE_FUNCTION void sample(const rng::StreamBlocks& draws, const double* theta,
                                     const LensingWorkspace& work, double* x, LensingLatent& z) const {
    z.host = host_of(draws);
    z.nbar = mean_subhalos(z.host, theta[0], theta[1]);
    add_subhalos(draws, theta[1], z.host, z, work.alpha_x, work.alpha_y);
    expected_counts(z.host, work.alpha_x, work.alpha_y, work.mu);
    blur(work.mu, work.blurred);
    add_noise(draws, work.mu, x, work.pending, work.blurred);
  }

  // ---- Gold -----------------------------------------------------------------------------------------------

  /// log p(z | theta) up to a constant: n ln nbar - nbar + n [ln(-beta - 1) - ln A(beta)] + beta S.
  KOKKOS_INLINE_FUNCTION static double log_p(const LensingLatent& z, const double* theta) {
    const double nbar = mean_subhalos(z.host, theta[0], theta[1]);
    const double beta = theta[1];
    const SlopeTerms t = slope_terms(beta, z.host.log_b);
    const double n = static_cast<double>(z.n);
    return n * kernel_math::log(nbar) - nbar + n * (kernel_math::log(-beta - 1.0) - kernel_math::log(t.a)) +
           beta * z.mass_log_sum;
  }

  /// log p(z | theta_a) - log p(z | theta_b).
  KOKKOS_INLINE_FUNCTION static double joint_log_ratio(const LensingLatent& z, const double* theta_a,
                                                       const double* theta_b) {
    return log_p(z, theta_a) - log_p(z, theta_b);
  }

  /// score[p] = d log p(z | theta) / d theta_p.
  KOKKOS_INLINE_FUNCTION static void joint_score(const LensingLatent& z, const double* theta, double* score) {
    const double f_sub = theta[0];
    const double beta = theta[1];
    const double nbar = mean_subhalos(z.host, f_sub, beta);
    const SlopeTerms t = slope_terms(beta, z.host.log_b);
    const double n = static_cast<double>(z.n);
    const double a_ratio = t.a_derivative / t.a;
    const double dlog_nbar = a_ratio - 1.0 / (beta + 1.0) - t.b_log_derivative;
    score[0] = (n - nbar) / f_sub;
    score[1] = (n - nbar) * dlog_nbar + n * (1.0 / (beta + 1.0) - a_ratio) + z.mass_log_sum;
  }

  /// The centre of pixel i along either axis, arcsec.
  KOKKOS_FORCEINLINE_FUNCTION static double pixel_centre(int i) {
    return (static_cast<double>(i) + 0.5) * pixel - 0.5 * width * pixel;
  }

  /// The mass function's beta-dependent integrals, a = m_min/m0, b = m_max/m0, eps = beta + 2:
  ///   A = a^(beta+1) - b^(beta+1), A' = dA/dbeta, B = (b^eps - a^eps)/eps, and B'/B = d ln B / dbeta.
  /// B and B'/B are computed from the series in eps near beta = -2 (their limits at beta = -2 are
  /// ln(b/a) and (ln b + ln a)/2), from the closed forms elsewhere.
  struct SlopeTerms {
    double a, a_derivative, b, b_log_derivative;
  };

  KOKKOS_INLINE_FUNCTION static SlopeTerms slope_terms(double beta, double log_b) {
    const double la = log_min_mass;
    const double lb = log_b;
    const double p = beta + 1.0;
    const double a_p = kernel_math::exp(p * la);
    const double b_p = kernel_math::exp(p * lb);
    SlopeTerms t;
    t.a = a_p - b_p;
    t.a_derivative = a_p * la - b_p * lb;
    const double eps = beta + 2.0;
    if (eps > -0.05 && eps < 0.05) {
      // B = sum_k eps^k (lb^(k+1) - la^(k+1)) / (k+1)!, dB/deps = sum_k eps^k (lb^(k+2) - la^(k+2)) / ((k+2)
      // k!).
      double b = 0.0;
      double db = 0.0;
      double term = 1.0;  // eps^k / k!
      double pa = la;     // la^(k+1)
      double pb = lb;
      for (int k = 0; k < 16; ++k) {
        b += term * (pb - pa) / (k + 1);
        db += term * (pb * lb - pa * la) / (k + 2);
        term *= eps / (k + 1);
        pa *= la;
        pb *= lb;
      }
      t.b = b;
      t.b_log_derivative = db / b;
    } else {
      const double a_e = kernel_math::exp(eps * la);
      const double b_e = kernel_math::exp(eps * lb);
      t.b = (b_e - a_e) / eps;
      t.b_log_derivative = (b_e * lb - a_e * la) / (b_e - a_e) - 1.0 / eps;
    }
    return t;
  }

  // ---- Draws ----------------------------------------------------------------------------------------------

  /// z_l = 10^N(-0.25, 0.25), accepted if <= 1.
  struct RedshiftCandidate {
    KOKKOS_INLINE_FUNCTION bool candidate(const rng::UniformPair& u, double& z) const {
      const double log10_z = -0.25 + 0.25 * rng::normal_pair(u).first;
      z = kernel_math::exp(ln10 * log10_z);
      return log10_z <= 0.0;
    }
  };

  /// sigma_v ~ N(225, 50) km/s, accepted if > 0.
  struct DispersionCandidate {
    KOKKOS_INLINE_FUNCTION bool candidate(const rng::UniformPair& u, double& sigma) const {
      sigma = default_dispersion + 50.0 * rng::normal_pair(u).first;
      return sigma > 0.0;
    }
  };

 private:
  /// theta_s (arcsec) of an NFW halo of mass exp(log_mass) at distance d_l.
  KOKKOS_INLINE_FUNCTION static double scale_radius(double log_mass, double d_l) {
    const double r200 = kernel_math::exp((log_mass - log_r200_cube_density()) / 3.0);
    return r200 / concentration(log_mass) / d_l * arcsec_per_radian;
  }
};

/// lensing as a Simulator: simulate and gold.
class Lensing final : public Simulator {
 public:
  explicit Lensing(const LensingModel& model);

  const SimulatorInfo& info() const override { return info_; }
  const LensingModel& model() const { return model_; }

  using Simulator::simulate;
  void simulate(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                std::uint64_t first_index, std::uint64_t seed) const override;
  void simulate_gold(const ExecutionSpace& space, const ConstMatrix& theta, const Matrix& x,
                     const ConstMatrix& gold_theta, const double* theta0, const Vector& log_r,
                     const Matrix& score, std::uint64_t first_index, std::uint64_t seed) const override;

  /// The latent summary of row `index` of stream `seed` at theta (host side, for tests): its host, nbar, n
  /// and S, the same as simulate draws, without the image.
  LensingLatent latent(const double* theta, std::uint64_t index, std::uint64_t seed) const;
  /// The masses (M_sun) of that row's subhalos, in draw order.
  std::vector<double> subhalo_masses(const double* theta, std::uint64_t index, std::uint64_t seed) const;

 private:
  LensingModel model_;
  SimulatorInfo info_;
};

/// The options lensing declares: fixed, lens_redshift, velocity_dispersion, source_offset_x, source_offset_y.
std::vector<SimulatorOption> lensing_options();
/// lensing configured by `options` (validated: ConfigError "simulator.<key>: ...").
std::unique_ptr<Simulator> make_lensing(const SimulatorOptions& options);

}  // namespace nsbi::sims
