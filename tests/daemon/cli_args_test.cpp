// Argument parsing of the perfwatch CLI's latency and alerts commands (pure).
#include <gtest/gtest.h>

#include "daemon/cli.h"

namespace perfwatch::cli {
namespace {

Result<Options> parse(std::initializer_list<std::string> args) {
  std::vector<std::string> v(args);
  return parse_args(v, profile::TimePoint(std::chrono::seconds(1'800'000'000)));
}

TEST(CliArgs, LatencyTakesATargetAnOperationARangeAndAFormat) {
  auto o = parse({"latency", "--target", "api", "--op", "lookup", "--since", "1h", "--format", "json"});
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->command, Command::latency);
  EXPECT_EQ(o->target, "api");
  EXPECT_EQ(o->operation, "lookup");
  EXPECT_EQ(o->format, "json");
  EXPECT_EQ(o->range.to - o->range.from, std::chrono::hours(1));
  auto defaults = parse({"latency", "--target", "api"});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->format, "table");
  EXPECT_EQ(defaults->operation, "");
}

TEST(CliArgs, LatencyRejectsWhatDoesNotFit) {
  EXPECT_EQ(parse({"latency"}).error().message, "latency needs --target NAME");
  EXPECT_EQ(parse({"latency", "--target", "a", "--format", "folded"}).error().message,
            "--format must be table or json, got 'folded'");
  EXPECT_EQ(parse({"flame", "--target", "a", "--op", "x"}).error().message, "--op only goes with latency");
  EXPECT_EQ(parse({"targets", "--target", "a"}).error().message, "--target goes with flame, latency and cache");
}

TEST(CliArgs, AlertsLookBackADayByDefault) {
  auto o = parse({"alerts"});
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->command, Command::alerts);
  EXPECT_EQ(o->format, "table");
  EXPECT_EQ(o->range.to - o->range.from, std::chrono::hours(24));
  auto json = parse({"alerts", "--since", "2h", "--format", "json"});
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->format, "json");
  EXPECT_EQ(json->range.to - json->range.from, std::chrono::hours(2));
  EXPECT_EQ(parse({"alerts", "--target", "a"}).error().message, "--target goes with flame, latency and cache");
  EXPECT_EQ(parse({"alerts", "--format", "folded"}).error().message, "--format must be table or json, got 'folded'");
}

}  // namespace
}  // namespace perfwatch::cli
