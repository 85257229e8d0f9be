// The oneDNN GEMM wrapper (kernels/src/gemm.hpp): its products with and without bias and post-op, the
// precision and device names, and oneDNN failures reported as nsbi::InternalError with the shapes; bf16
// products against float products of bf16-rounded operands, and the refusal of bf16 without native support.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "gemm.hpp"
#include "nsbi/core/error.hpp"
#include "test_helpers.hpp"

namespace nsbi::kernels {
namespace {

using detail::Gemm;
using detail::GemmContext;
using detail::Tag;
using test::round_to_bf16;

TEST(Gemm, MultipliesRowMajorAndTransposedOperands) {
  const GemmContext context(Device::host, Precision::f32);
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};      // [2, 3]
  const std::vector<float> w = {1, 0, -1, 2, 0.5f, 1};  // W [2, 3] row-major: W^T [3, 2] in "ba"
  std::vector<float> out(4, -1.0f);
  Kokkos::View<char*, Kokkos::HostSpace> scratchpad;
  const Gemm gemm(context, 2, 3, 2, Tag::ab, Tag::ba);
  detail::share_scratchpad({&gemm}, scratchpad, "test_gemm::scratchpad");
  gemm.run(context, a.data(), w.data(), out.data());
  context.wait();
  EXPECT_EQ(out, (std::vector<float>{-2, 6, -2, 16.5f}));

  // With a bias and a relu post-op: max(a W^T + b, 0).
  const std::vector<float> bias = {3, -10};
  const Gemm fused(context, 2, 3, 2, Tag::ab, Tag::ba, /*with_bias=*/true,
                   detail::Eltwise{dnnl::algorithm::eltwise_relu, 0.0f});
  detail::share_scratchpad({&fused}, scratchpad, "test_gemm::scratchpad");
  fused.run(context, a.data(), w.data(), out.data(), bias.data());
  context.wait();
  EXPECT_EQ(out, (std::vector<float>{1, 0, 1, 6.5f}));
}

TEST(Gemm, OneDnnFailuresAreInternalErrorsWithTheShapes) {
  const GemmContext context(Device::host, Precision::f32);
  try {
    const Gemm gemm(context, 4, -3, 2, Tag::ab, Tag::ab);
    FAIL() << "a negative dimension was accepted";
  } catch (const InternalError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("f32 matmul [4, -3] (ab) × [-3, 2] (ab)"), std::string::npos) << what;
    EXPECT_NE(what.find("invalid arguments"), std::string::npos) << what;
    EXPECT_EQ(e.code(), ExitCode::internal);
  }
}

TEST(Precision, NamesReadBack) {
  EXPECT_EQ(to_string(Precision::f32), "f32");
  EXPECT_EQ(parse_precision("f32"), Precision::f32);
  EXPECT_EQ(to_string(Precision::bf16), "bf16");
  EXPECT_EQ(parse_precision("bf16"), Precision::bf16);
  EXPECT_EQ(parse_precision("f16"), std::nullopt);
  EXPECT_EQ(to_string(Device::host), "host");
}

bool native_bf16() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
}

TEST(Precision, Bf16NeedsAvx512Bf16OrAmx) {
  for (const dnnl::cpu_isa isa :
       {dnnl::cpu_isa::avx2, dnnl::cpu_isa::avx512_core, dnnl::cpu_isa::avx512_core_vnni}) {
    EXPECT_EQ(detail::unsupported_reason(Precision::f32, isa), "");
    const std::string why = detail::unsupported_reason(Precision::bf16, isa);
    EXPECT_EQ(why.rfind("bf16 needs a CPU with AVX512-BF16 or AMX", 0), 0u) << why;
    EXPECT_NE(why.find(isa == dnnl::cpu_isa::avx2 ? "AVX2" : "AVX512_CORE"), std::string::npos) << why;
  }
  EXPECT_EQ(detail::unsupported_reason(Precision::bf16, dnnl::cpu_isa::avx512_core_bf16), "");
  EXPECT_EQ(detail::unsupported_reason(Precision::bf16, dnnl::cpu_isa::avx512_core_amx), "");
}

// Registered a second time with DNNL_MAX_CPU_ISA=AVX512_CORE (tests/kernels/CMakeLists.txt): oneDNN capped
// below bf16, as on a CPU without it; the check reads oneDNN's effective instruction set, and the GEMM
// context refuses too. (The jobs turn the reason into a ConfigError naming the key: tests/jobs.)
TEST(Precision, Bf16RefusedWhereOneDnnLacksIt) {
  if (native_bf16()) {
    EXPECT_EQ(unsupported_reason(Precision::bf16), "");
    EXPECT_NO_THROW(GemmContext(Device::host, Precision::bf16));
  } else {
    EXPECT_NE(unsupported_reason(Precision::bf16), "");
    EXPECT_THROW(GemmContext(Device::host, Precision::bf16), InternalError);
  }
  const char* cap = std::getenv("DNNL_MAX_CPU_ISA");
  if (cap != nullptr && std::string(cap) == "AVX512_CORE") {
    EXPECT_FALSE(native_bf16());
  }
}

// A bf16 GEMM equals the float GEMM of the bf16-rounded operands up to float accumulation: the products of
// two bf16 values are exact in float, so the two differ only in the order and rounding of k float sums,
// |Δ| <= k 2^-24 Σ_j |a_j w_j| (a rigorous bound on either sum's error, doubled for the two).
TEST(Gemm, Bf16IsFloatGemmOfRoundedOperands) {
  if (!native_bf16()) GTEST_SKIP() << "no AVX512-BF16 or AMX on this machine";
  const GemmContext bf16(Device::host, Precision::bf16);
  const GemmContext f32(Device::host, Precision::f32);
  const int m = 67, k = 130, n = 33;
  std::mt19937 generator(7);
  std::normal_distribution<float> normal;
  std::vector<float> a(m * k), w(n * k), bias(n);
  for (float& v : a) v = normal(generator);
  for (float& v : w) v = normal(generator);
  for (float& v : bias) v = normal(generator);
  std::vector<float> a_rounded(a), w_rounded(w);
  for (float& v : a_rounded) v = round_to_bf16(v);
  for (float& v : w_rounded) v = round_to_bf16(v);
  for (const Tag src_tag : {Tag::ab, Tag::ba}) {
    const Gemm low(bf16, m, k, n, src_tag, Tag::ba, /*with_bias=*/true);
    const Gemm high(f32, m, k, n, src_tag, Tag::ba, /*with_bias=*/true);
    Kokkos::View<char*, Kokkos::HostSpace> scratchpad;
    detail::share_scratchpad({&low, &high}, scratchpad, "test_gemm::scratchpad");
    std::vector<float> out(m * n), expected(m * n);
    low.run(bf16, a.data(), w.data(), out.data(), bias.data());
    bf16.wait();
    high.run(f32, a_rounded.data(), w_rounded.data(), expected.data(), bias.data());
    f32.wait();
    double largest_change = 0.0;
    for (int i = 0; i < m; ++i)
      for (int o = 0; o < n; ++o) {
        double magnitude = std::abs(bias[o]);
        for (int j = 0; j < k; ++j) {
          const float x = src_tag == Tag::ab ? a_rounded[i * k + j] : a_rounded[j * m + i];
          magnitude += std::abs(double(x) * w_rounded[o * k + j]);
        }
        const double bound = 2.0 * (k + 1) * std::ldexp(magnitude, -24);
        ASSERT_LE(std::abs(double(out[i * n + o]) - expected[i * n + o]), bound) << i << ", " << o;
        largest_change =
            std::max(largest_change, std::abs(double(out[i * n + o]) - double(expected[i * n + o])));
      }
    // ... and the rounding happened: the float GEMM of the unrounded operands differs by far more.
    std::vector<float> exact(m * n);
    high.run(f32, a.data(), w.data(), exact.data(), bias.data());
    f32.wait();
    double rounding_effect = 0.0;
    for (int i = 0; i < m * n; ++i)
      rounding_effect = std::max(rounding_effect, std::abs(double(exact[i]) - out[i]));
    EXPECT_GT(rounding_effect, 10.0 * largest_change);
  }
  // The implementation that ran, as outputs record it: oneDNN's bf16 kernels, not a reference loop.
  const std::string names = bf16.implementations();
  EXPECT_NE(names.find("bf16"), std::string::npos) << names;
  EXPECT_EQ(names.find("ref"), std::string::npos) << names;
  EXPECT_NE(f32.implementations(), "");
}

}  // namespace
}  // namespace nsbi::kernels
