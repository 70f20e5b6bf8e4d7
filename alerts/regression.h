#pragma once
// Regressions against a baseline, found by change-point detection on per-window series (pure logic):
// the series is the baseline followed by what came after it; a regression is its most recent change
// point when that is a significant rise of at least min_change. The segment before that change point
// (back to the previous one) is the "before", the rest of the series the "after".
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "alerts/changepoint.h"
#include "alerts/sources.h"

namespace perfwatch::alerts {

struct Point {
  TimePoint start;
  TimePoint end;
  double value = 0;
};

struct Shift {
  TimePoint before_from;  // the segment before the change point
  TimePoint before_to;
  TimePoint after_from;   // the segment after it, up to the end of the series
  TimePoint after_to;
  TimePoint first_after_end;  // end of the first point after the change: a deploy up to here may explain it
  std::size_t before_begin = 0;  // point indexes: [before_begin, change) and [change, end of series)
  std::size_t change = 0;
  double before = 0;  // means of the segments
  double after = 0;
  double pvalue = 1;
  double relative() const { return ChangePoint{change, before, after, pvalue}.relative_change(); }
};

// The latest change point of the series when it is a rise (higher is worse) that passes the options;
// nullopt otherwise.
std::optional<Shift> latest_rise(std::span<const Point> series, const ChangePointOptions& options);

struct CpuRegressionOptions {
  ChangePointOptions detect;
  std::uint64_t min_samples = 200;  // consecutive windows are merged into points of at least this many samples
  double min_share = 0.01;         // a function's share after the change must reach this to be reported
  std::size_t top = 5;
};

enum class ShareKind { self, total };

struct FunctionRegression {
  std::uint32_t function = 0;
  ShareKind kind = ShareKind::self;  // the share whose rise was detected (the larger one when both rose)
  Shift shift;                       // of that share (values in 0..1)
  double self_before = 0, self_after = 0;    // both shares over the shift's segments
  double total_before = 0, total_after = 0;
};

// Functions whose self or total share of the target's samples rose, the largest rise (in share
// points) first, at most options.top.
std::vector<FunctionRegression> cpu_regressions(std::span<const CpuWindow> windows, const CpuRegressionOptions& options);

}  // namespace perfwatch::alerts
