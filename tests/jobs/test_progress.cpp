#include <gtest/gtest.h>

#include <cmath>

#include "nsbi/jobs/progress.hpp"

namespace nsbi::jobs {
namespace {

TEST(Progress, DurationsReadLikeAPersonWritesThem) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(0.4), "0s");
  EXPECT_EQ(format_duration(59), "59s");
  // Rounded before the unit is chosen: never "60s".
  EXPECT_EQ(format_duration(59.9), "1m00s");
  EXPECT_EQ(format_duration(61), "1m01s");
  EXPECT_EQ(format_duration(3599.6), "1h00m");
  EXPECT_EQ(format_duration(3725), "1h02m");
  EXPECT_EQ(format_duration(86399), "23h59m");
  EXPECT_EQ(format_duration(86400 + 3 * 3600 + 59), "1d03h");
  EXPECT_EQ(format_duration(400 * 86400.0), "400d00h");
}

TEST(Progress, UnknownDurationsReadAsQuestionMark) {
  EXPECT_EQ(format_duration(INFINITY), "?");
  EXPECT_EQ(format_duration(-INFINITY), "?");
  EXPECT_EQ(format_duration(NAN), "?");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(1e300), "?");
}

TEST(Progress, LinesCarryRateAndEta) {
  testing::internal::CaptureStderr();
  {
    Progress progress("simulate", 1000, "events", /*speaks=*/true, /*already_done=*/100,
                      /*interval_seconds=*/0.0);
    progress.update(550);
    progress.finish();
  }
  const std::string text = testing::internal::GetCapturedStderr();
  // Not a terminal under ctest: one line per update, then the final line.
  EXPECT_NE(text.find("simulate:  55.0% 550/1000 events, "), std::string::npos) << text;
  EXPECT_NE(text.find("events/s, ETA "), std::string::npos) << text;
  EXPECT_NE(text.find("simulate: 550 events in "), std::string::npos) << text;
}

TEST(Progress, SilentRanksPrintNothing) {
  testing::internal::CaptureStderr();
  Progress progress("simulate", 10, "events", /*speaks=*/false, 0, 0.0);
  progress.update(5);
  progress.finish();
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace nsbi::jobs
