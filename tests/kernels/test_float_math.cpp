// The float32 elementary functions of the activation kernels against libm in double, on dense grids.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "nsbi/kernels/float_math.hpp"

namespace {

namespace float_math = nsbi::kernels::float_math;

// |f - exact| in units in the last place of the float nearest to exact: the largest over a grid of n + 1
// points from lo to hi.
double max_ulp_error(const std::function<float(float)>& f, const std::function<double(double)>& exact,
                     float lo, float hi, int n = 200000) {
  double worst = 0.0;
  for (int k = 0; k <= n; ++k) {
    const float x = lo + (hi - lo) * static_cast<float>(k) / static_cast<float>(n);
    const double want = exact(x);
    const float nearest = static_cast<float>(want);
    const double ulp =
        std::nextafter(std::fabs(nearest), std::numeric_limits<float>::infinity()) - std::fabs(nearest);
    worst = std::max(worst, std::fabs(static_cast<double>(f(x)) - want) / ulp);
  }
  return worst;
}

double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
double softplus(double z) { return z > 0.0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }

TEST(FloatMath, WithinAFewUlpOfLibm) {
  // Measured: exp 0.94, sigmoid 2.1, tanh 1.5 (0.5 near 0), softplus 2.7, log1p 2.6 ulp; each bound is the
  // next integer up.
  const auto exp = [](double x) { return std::exp(x); };
  const auto tanh = [](double x) { return std::tanh(x); };
  const auto log1p = [](double x) { return std::log1p(x); };
  EXPECT_LE(max_ulp_error(float_math::exp_nonpositive, exp, -87.0f, 0.0f), 2.0);
  EXPECT_LE(max_ulp_error(float_math::sigmoid, sigmoid, -80.0f, 80.0f), 3.0);
  EXPECT_LE(max_ulp_error(float_math::tanh, tanh, -10.0f, 10.0f), 2.0);
  EXPECT_LE(max_ulp_error(float_math::tanh, tanh, -1e-3f, 1e-3f), 1.0);  // relative accuracy near 0
  EXPECT_LE(max_ulp_error(float_math::softplus, softplus, -80.0f, 80.0f), 3.0);
  EXPECT_LE(max_ulp_error(float_math::log1p_unit, log1p, 0.0f, 1.0f), 3.0);
}

TEST(FloatMath, ExtremeArgumentsStayFiniteAndSaturate) {
  for (float z : {-1e30f, -1000.0f, -88.0f, 88.0f, 1000.0f, 1e30f}) {
    EXPECT_TRUE(std::isfinite(float_math::sigmoid(z))) << z;
    EXPECT_TRUE(std::isfinite(float_math::softplus(z))) << z;
    EXPECT_EQ(z > 0 ? 1.0f : -1.0f, float_math::tanh(z)) << z;
  }
  EXPECT_EQ(1.0f, float_math::sigmoid(1000.0f));
  EXPECT_LE(float_math::sigmoid(-1000.0f), 2e-38f);  // exp(-87) instead of 0: see exp_nonpositive
  EXPECT_EQ(1000.0f, float_math::softplus(1000.0f));
  EXPECT_LE(float_math::softplus(-1000.0f), 2e-38f);
  EXPECT_EQ(0.0f, float_math::tanh(0.0f));
  EXPECT_EQ(1.0f, float_math::exp_nonpositive(0.0f));
}

}  // namespace
