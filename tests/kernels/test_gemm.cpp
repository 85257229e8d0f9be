// The oneDNN GEMM wrapper (kernels/src/gemm.hpp): its products with and without bias and post-op, the
// precision and device names, and oneDNN failures reported as nsbi::InternalError with the shapes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gemm.hpp"
#include "nsbi/core/error.hpp"

namespace nsbi::kernels {
namespace {

using detail::Gemm;
using detail::GemmContext;
using detail::Tag;

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
  EXPECT_EQ(parse_precision("bf16"), std::nullopt);
  EXPECT_EQ(to_string(Device::host), "host");
}

}  // namespace
}  // namespace nsbi::kernels
