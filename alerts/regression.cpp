#include "alerts/regression.h"

#include <algorithm>
#include <map>

namespace perfwatch::alerts {
namespace {

// Consecutive windows merged until each point holds at least min_samples samples (a short remainder
// joins the last point), so that a point's shares are not dominated by sampling noise.
struct Bucket {
  std::size_t first = 0;  // window indexes [first, last)
  std::size_t last = 0;
  std::uint64_t samples = 0;
};

std::vector<Bucket> buckets_of(std::span<const CpuWindow> windows, std::uint64_t min_samples) {
  std::vector<Bucket> out;
  Bucket current;
  for (std::size_t i = 0; i < windows.size(); ++i) {
    if (windows[i].samples == 0) continue;
    if (current.samples == 0) current.first = i;
    current.samples += windows[i].samples;
    current.last = i + 1;
    if (current.samples >= min_samples) {
      out.push_back(current);
      current = Bucket{};
    }
  }
  if (current.samples > 0) {
    if (out.empty()) {
      out.push_back(current);
    } else {
      out.back().last = current.last;
      out.back().samples += current.samples;
    }
  }
  return out;
}

const FunctionCount* find(const CpuWindow& window, std::uint32_t function) {
  auto it = std::lower_bound(window.functions.begin(), window.functions.end(), function,
                             [](const FunctionCount& c, std::uint32_t f) { return c.function < f; });
  return it != window.functions.end() && it->function == function ? &*it : nullptr;
}

struct ShareSeries {
  std::vector<Point> self;
  std::vector<Point> total;
};

ShareSeries shares_of(std::span<const CpuWindow> windows, std::span<const Bucket> buckets, std::uint32_t function) {
  ShareSeries out;
  for (const Bucket& b : buckets) {
    std::uint64_t self = 0, total = 0;
    for (std::size_t i = b.first; i < b.last; ++i)
      if (const FunctionCount* c = find(windows[i], function)) {
        self += c->self;
        total += c->total;
      }
    const double n = static_cast<double>(b.samples);
    out.self.push_back({windows[b.first].start, windows[b.last - 1].end, static_cast<double>(self) / n});
    out.total.push_back({windows[b.first].start, windows[b.last - 1].end, static_cast<double>(total) / n});
  }
  return out;
}

double mean(std::span<const Point> points, std::size_t from, std::size_t to) {
  double sum = 0;
  for (std::size_t i = from; i < to; ++i) sum += points[i].value;
  return to > from ? sum / static_cast<double>(to - from) : 0.0;
}

}  // namespace

std::optional<Shift> latest_rise(std::span<const Point> series, const ChangePointOptions& options) {
  std::vector<double> values;
  values.reserve(series.size());
  for (const Point& p : series) values.push_back(p.value);
  const std::vector<ChangePoint> points = detect_change_points(values, options);
  if (points.empty()) return std::nullopt;
  const ChangePoint& last = points.back();
  if (!(last.after > last.before) || last.relative_change() < options.min_change) return std::nullopt;
  Shift s;
  s.before_begin = points.size() > 1 ? points[points.size() - 2].index : 0;
  s.change = last.index;
  s.before_from = series[s.before_begin].start;
  s.before_to = series[s.change].start;
  s.after_from = series[s.change].start;
  s.after_to = series.back().end;
  s.first_after_end = series[s.change].end;
  s.before = last.before;
  s.after = last.after;
  s.pvalue = last.pvalue;
  return s;
}

std::vector<FunctionRegression> cpu_regressions(std::span<const CpuWindow> windows,
                                                const CpuRegressionOptions& options) {
  const std::vector<Bucket> buckets = buckets_of(windows, options.min_samples);
  const std::size_t m = std::max<std::size_t>(options.detect.min_segment, 2);
  if (buckets.size() < 2 * m) return {};

  // Candidates: functions holding at least min_share of the samples of the last m points, since a
  // regression's "after" segment holds at least m points.
  std::map<std::uint32_t, std::pair<std::uint64_t, std::uint64_t>> recent;  // self, total
  std::uint64_t recent_samples = 0;
  for (std::size_t b = buckets.size() - m; b < buckets.size(); ++b) {
    recent_samples += buckets[b].samples;
    for (std::size_t i = buckets[b].first; i < buckets[b].last; ++i)
      for (const FunctionCount& c : windows[i].functions) {
        recent[c.function].first += c.self;
        recent[c.function].second += c.total;
      }
  }
  const double floor = options.min_share * static_cast<double>(recent_samples);

  std::vector<FunctionRegression> out;
  for (const auto& [function, counts] : recent) {
    if (static_cast<double>(std::max(counts.first, counts.second)) < floor) continue;
    const ShareSeries series = shares_of(windows, buckets, function);
    std::optional<Shift> self = latest_rise(series.self, options.detect);
    std::optional<Shift> total = latest_rise(series.total, options.detect);
    if (self && self->after < options.min_share) self.reset();
    if (total && total->after < options.min_share) total.reset();
    if (!self && !total) continue;
    const bool use_self = self && (!total || self->after - self->before >= total->after - total->before);
    FunctionRegression r;
    r.function = function;
    r.kind = use_self ? ShareKind::self : ShareKind::total;
    r.shift = use_self ? *self : *total;
    const std::size_t end = series.self.size();
    r.self_before = mean(series.self, r.shift.before_begin, r.shift.change);
    r.self_after = mean(series.self, r.shift.change, end);
    r.total_before = mean(series.total, r.shift.before_begin, r.shift.change);
    r.total_after = mean(series.total, r.shift.change, end);
    out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const FunctionRegression& a, const FunctionRegression& b) {
    return a.shift.after - a.shift.before > b.shift.after - b.shift.before;
  });
  if (out.size() > options.top) out.resize(options.top);
  return out;
}

}  // namespace perfwatch::alerts
