#pragma once
// Change-point detection on a series of per-window values, the way Apache Otava (formerly Hunter)
// does it: split recursively at the most significant point, then merge away the change points that
// are no longer significant, or too small, once their neighbours are known.
//
// split: in a segment, the candidate is the index that maximises Welch's |t| between the points
//        before and after it (at least min_segment on each side); it is kept when the two-sided
//        p-value of that t-test is below max_pvalue, and both halves are split again.
// merge: each change point is tested again between its neighbouring change points; the weakest one
//        (highest p-value, or smallest relative change when every p-value passes) is removed while
//        any fails max_pvalue or min_change, and the rest are tested again.
// Pure functions: unit-tested on synthetic series with known shifts (tests/alerts/changepoint_test.cpp
// reports precision and recall).
#include <cstddef>
#include <span>
#include <vector>

namespace perfwatch::alerts {

struct ChangePointOptions {
  double max_pvalue = 0.001;     // significance a change point must reach
  std::size_t min_segment = 5;   // points on each side of a change point
  double min_change = 0.0;       // |after - before| / |before| a change point must reach (0.1 = 10%)
};

struct ChangePoint {
  std::size_t index = 0;  // the first point after the change
  double before = 0;      // mean of the segment before (back to the previous change point)
  double after = 0;       // mean of the segment after (up to the next change point)
  double pvalue = 1;
  // (after - before) / |before|; +-infinity when before is 0 and after is not.
  double relative_change() const;
};

struct TTest {
  double t = 0;
  double df = 0;
  double pvalue = 1;  // two-sided
};

// Two-sided p-value of Student's t distribution with df degrees of freedom.
double student_t_pvalue(double t, double df);

// Welch's unequal-variances t-test of two samples given by their sizes, means and (n - 1) variances.
TTest welch_t_test(std::size_t n1, double mean1, double var1, std::size_t n2, double mean2, double var2);

// Change points of the series, by index, ascending.
std::vector<ChangePoint> detect_change_points(std::span<const double> series, const ChangePointOptions& options);

}  // namespace perfwatch::alerts
