// train.precision and infer.precision against the machine: accepted where oneDNN reports native bf16, a
// ConfigError naming the file, the key and the instruction set elsewhere. Registered twice
// (tests/jobs/CMakeLists.txt): as is, and with DNNL_MAX_CPU_ISA=AVX512_CORE, which caps oneDNN below bf16 as
// on a CPU without AVX512-BF16 or AMX.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "nsbi/core/error.hpp"
#include "nsbi/jobs/inference_config.hpp"
#include "nsbi/jobs/stages.hpp"
#include "nsbi/jobs/train_schema.hpp"
#include "nsbi/kernels/precision.hpp"

namespace nsbi::jobs {
namespace {

// `key` (train.precision or infer.precision) = `precision`, in the file (so that errors name it).
Campaign campaign_with(const std::string& key, const std::string& precision) {
  const std::string train = key == "train.precision" ? "train: {precision: " + precision + "}\n" : "";
  const std::string infer = key == "infer.precision" ? ", precision: " + precision : "";
  config::Config config = config::Config::parse(
      "campaign: {seed: 1, dir: /tmp/nsbi-test-precision}\n"
      "simulator: {name: gaussian2d}\n" +
          train + "infer: {estimators: [exact]" + infer + "}\n",
      "precision.yaml");
  config.validate(campaign_schema(config));
  return Campaign(std::move(config), collect_provenance({"test"}, 1));
}

// The error each key gives, or "" when it is accepted.
std::string error_of(const std::string& key, const std::string& precision) {
  const Campaign campaign = campaign_with(key, precision);
  try {
    if (key == "train.precision")
      train_settings(campaign.config);
    else
      load_inference(Communicator(), campaign, "infer", false);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Precision, Bf16IsAcceptedExactlyWhereOneDnnHasIt) {
  const bool native = kernels::unsupported_reason(kernels::Precision::bf16).empty();
  const char* cap = std::getenv("DNNL_MAX_CPU_ISA");
  if (cap != nullptr && std::string(cap) == "AVX512_CORE") {
    EXPECT_FALSE(native);
  }
  for (const std::string key : {"train.precision", "infer.precision"}) {
    EXPECT_EQ(error_of(key, "f32"), "") << key;
    const std::string error = error_of(key, "bf16");
    if (native) {
      EXPECT_EQ(error, "") << key;
      continue;
    }
    EXPECT_NE(error.find("precision.yaml"), std::string::npos) << error;
    EXPECT_NE(error.find(key), std::string::npos) << error;
    EXPECT_NE(error.find("AVX512-BF16 or AMX"), std::string::npos) << error;
    if (cap != nullptr) {
      EXPECT_NE(error.find(cap), std::string::npos) << error;
    }
  }
}

}  // namespace
}  // namespace nsbi::jobs
