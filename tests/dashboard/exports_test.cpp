#include <Poco/InflatingStream.h>
#include <gtest/gtest.h>

#include <sstream>

#include "dashboard/exports.h"
#include "dashboard/metrics.h"
#include "profile.pb.h"

namespace perfwatch::dashboard {
namespace {

using profile::FrameKind;

// main -> parse -> vfs_read (kernel) x3, main -> serve x2, python handler x1.
profile::Profile sample_profile() {
  profile::Profile p;
  p.frames = {{FrameKind::native, "main", "/bin/app"},
              {FrameKind::native, "parse", "/bin/app"},
              {FrameKind::kernel, "vfs_read", "[kernel]"},
              {FrameKind::native, "serve", "/lib/libserve.so"},
              {FrameKind::python, "app.handler", "/srv/app.py:42"}};
  p.stacks = {{0, {0, 1, 2}, 3}, {0, {0, 3}, 2}, {0, {0, 4}, 1}};
  return p;
}

ExportInfo info() {
  return {"api", {profile::TimePoint(std::chrono::seconds(1000)), profile::TimePoint(std::chrono::seconds(1060))}, 100};
}

std::string gunzip(const std::string& data) {
  std::istringstream in(data);
  Poco::InflatingInputStream z(in, Poco::InflatingStreamBuf::STREAM_GZIP);
  std::ostringstream out;
  out << z.rdbuf();
  return out.str();
}

TEST(Export, PprofCarriesStacksLeafFirstWithCountsAndCpuTime) {
  perftools::profiles::Profile p;
  ASSERT_TRUE(p.ParseFromString(gunzip(to_pprof_gzip(sample_profile(), info()))));
  const auto str = [&](std::int64_t i) { return p.string_table(static_cast<int>(i)); };
  EXPECT_EQ(str(0), "");
  ASSERT_EQ(p.sample_type_size(), 2);
  EXPECT_EQ(str(p.sample_type(0).type()), "samples");
  EXPECT_EQ(str(p.sample_type(0).unit()), "count");
  EXPECT_EQ(str(p.sample_type(1).type()), "cpu");
  EXPECT_EQ(str(p.sample_type(1).unit()), "nanoseconds");
  EXPECT_EQ(p.period(), 10'000'000);  // 100 Hz
  EXPECT_EQ(p.time_nanos(), 1000'000'000'000);
  EXPECT_EQ(p.duration_nanos(), 60'000'000'000);
  // The main binary (most native frames) is the first mapping.
  EXPECT_EQ(str(p.mapping(0).filename()), "/bin/app");

  auto function_name = [&](std::uint64_t location_id) {
    for (const auto& loc : p.location())
      if (loc.id() == location_id)
        for (const auto& fn : p.function())
          if (fn.id() == loc.line(0).function_id()) return str(fn.name());
    return std::string("?");
  };
  ASSERT_EQ(p.sample_size(), 3);
  const auto& first = p.sample(0);
  ASSERT_EQ(first.location_id_size(), 3);
  EXPECT_EQ(function_name(first.location_id(0)), "vfs_read");
  EXPECT_EQ(function_name(first.location_id(2)), "main");
  EXPECT_EQ(first.value(0), 3);
  EXPECT_EQ(first.value(1), 30'000'000);
  // Python frames carry their file and line.
  for (const auto& fn : p.function())
    if (str(fn.name()) == "app.handler") {
      EXPECT_EQ(str(fn.filename()), "/srv/app.py");
      EXPECT_EQ(fn.start_line(), 42);
    }
}

TEST(Export, SpeedscopeSampledProfileIsRootFirstAndWeighted) {
  const nlohmann::json doc = to_speedscope(sample_profile(), info());
  EXPECT_EQ(doc["$schema"], "https://www.speedscope.app/file-format-schema.json");
  const auto& frames = doc["shared"]["frames"];
  ASSERT_EQ(frames.size(), 5u);
  EXPECT_EQ(frames[4], (nlohmann::json{{"name", "app.handler"}, {"file", "/srv/app.py"}, {"line", 42}}));
  const auto& prof = doc["profiles"][0];
  EXPECT_EQ(prof["type"], "sampled");
  EXPECT_EQ(prof["unit"], "none");
  EXPECT_EQ(prof["endValue"], 6);
  EXPECT_EQ(prof["samples"][0], (nlohmann::json{0, 1, 2}));
  EXPECT_EQ(prof["weights"], (nlohmann::json{3, 2, 1}));
}

TEST(Metrics, WritesTheTextFormatWithEscapedLabels) {
  MetricsWriter out;
  out.counter("perfwatch_samples_total", "Samples\ncounted", 42);
  out.family("perfwatch_lost_total", MetricsWriter::Type::counter, "Lost")
      .sample(1, {{"reason", "map \"full\"\\"}})
      .sample(2.5, {{"reason", "x"}, {"cpu", "0"}});
  EXPECT_EQ(out.text(),
            "# HELP perfwatch_samples_total Samples\\ncounted\n"
            "# TYPE perfwatch_samples_total counter\n"
            "perfwatch_samples_total 42\n"
            "# HELP perfwatch_lost_total Lost\n"
            "# TYPE perfwatch_lost_total counter\n"
            "perfwatch_lost_total{reason=\"map \\\"full\\\"\\\\\"} 1\n"
            "perfwatch_lost_total{reason=\"x\",cpu=\"0\"} 2.5\n");
  MetricsWriter nan;
  nan.gauge("lag_seconds", "lag", std::nan(""));
  EXPECT_NE(nan.text().find("lag_seconds NaN\n"), std::string::npos);
}

TEST(Metrics, WritesSummariesWithTheirSumAndCount) {
  MetricsWriter out;
  out.family("op_seconds", MetricsWriter::Type::summary, "Durations")
      .sample(0.25, {{"op", "a"}, {"quantile", "0.5"}})
      .sample(7.5, {{"op", "a"}}, "_sum")
      .sample(30, {{"op", "a"}}, "_count");
  EXPECT_EQ(out.text(),
            "# HELP op_seconds Durations\n"
            "# TYPE op_seconds summary\n"
            "op_seconds{op=\"a\",quantile=\"0.5\"} 0.25\n"
            "op_seconds_sum{op=\"a\"} 7.5\n"
            "op_seconds_count{op=\"a\"} 30\n");
}

TEST(Metrics, RejectsInvalidNames) {
  MetricsWriter out;
  EXPECT_THROW(out.counter("1bad", "x", 1), std::invalid_argument);
  EXPECT_THROW(out.family("ok", MetricsWriter::Type::gauge, "x").sample(1, {{"bad-label", "v"}}), std::invalid_argument);
}

}  // namespace
}  // namespace perfwatch::dashboard
