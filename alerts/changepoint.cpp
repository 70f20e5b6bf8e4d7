#include "alerts/changepoint.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace perfwatch::alerts {
namespace {

// Continued fraction of the regularized incomplete beta function (modified Lentz), valid for
// x < (a + 1) / (a + b + 2); the caller uses the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) otherwise.
double beta_continued_fraction(double a, double b, double x) {
  constexpr double tiny = 1e-300;
  constexpr double epsilon = 1e-14;
  double c = 1.0;
  double d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < tiny) d = tiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 500; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
    d = 1.0 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double step = d * c;
    h *= step;
    if (std::fabs(step - 1.0) < epsilon) break;
  }
  return h;
}

double regularized_incomplete_beta(double a, double b, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1.0) / (a + b + 2.0)) return std::exp(log_front) * beta_continued_fraction(a, b, x) / a;
  return 1.0 - std::exp(log_front) * beta_continued_fraction(b, a, 1.0 - x) / b;
}

// Sums over the series, so any segment's mean and variance cost O(1).
class PrefixSums {
 public:
  explicit PrefixSums(std::span<const double> xs) : sum_(xs.size() + 1), squares_(xs.size() + 1) {
    // Centred first: the squares of large values (latencies in ns) would lose the variance to rounding.
    double centre = 0;
    for (double x : xs) centre += x / static_cast<double>(xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const double v = xs[i] - centre;
      sum_[i + 1] = sum_[i] + v;
      squares_[i + 1] = squares_[i] + v * v;
    }
    centre_ = centre;
  }
  double mean(std::size_t from, std::size_t to) const { return centre_ + centred_mean(from, to); }
  double variance(std::size_t from, std::size_t to) const {
    const double n = static_cast<double>(to - from);
    const double s = sum_[to] - sum_[from];
    return std::max(0.0, (squares_[to] - squares_[from] - s * s / n) / (n - 1.0));
  }
  // How much of the segment's spread a split at k explains: k(n-k)/n times the squared difference of
  // the means (E-divisive's statistic for a shift in mean, with alpha = 2).
  double split_score(std::size_t from, std::size_t k, std::size_t to) const {
    const double left = static_cast<double>(k - from);
    const double right = static_cast<double>(to - k);
    const double delta = centred_mean(k, to) - centred_mean(from, k);
    return left * right / (left + right) * delta * delta;
  }
  TTest test(std::size_t from, std::size_t k, std::size_t to) const {
    return welch_t_test(k - from, mean(from, k), variance(from, k), to - k, mean(k, to), variance(k, to));
  }

 private:
  double centred_mean(std::size_t from, std::size_t to) const {
    return (sum_[to] - sum_[from]) / static_cast<double>(to - from);
  }
  std::vector<double> sum_;
  std::vector<double> squares_;
  double centre_ = 0;
};

double relative(double before, double after) {
  if (before == 0) return after == 0 ? 0.0 : std::copysign(std::numeric_limits<double>::infinity(), after);
  return (after - before) / std::fabs(before);
}

void split(const PrefixSums& sums, std::size_t from, std::size_t to, const ChangePointOptions& options,
           std::vector<std::size_t>& out) {
  const std::size_t m = options.min_segment;
  if (to - from < 2 * m) return;
  std::size_t best = 0;
  double best_score = -1;
  for (std::size_t k = from + m; k <= to - m; ++k) {
    const double score = sums.split_score(from, k, to);
    if (score > best_score) {
      best_score = score;
      best = k;
    }
  }
  if (sums.test(from, best, to).pvalue >= options.max_pvalue) return;
  split(sums, from, best, options, out);
  out.push_back(best);
  split(sums, best, to, options, out);
}

}  // namespace

double ChangePoint::relative_change() const { return relative(before, after); }

double student_t_pvalue(double t, double df) {
  if (std::isnan(t) || df <= 0) return 1.0;
  if (std::isinf(t)) return 0.0;
  return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
}

TTest welch_t_test(std::size_t n1, double mean1, double var1, std::size_t n2, double mean2, double var2) {
  TTest out;
  if (n1 < 2 || n2 < 2) return out;
  const double a = var1 / static_cast<double>(n1);
  const double b = var2 / static_cast<double>(n2);
  const double se2 = a + b;
  if (se2 <= 0) {
    // Two constant segments: identical, or as different as can be.
    out.pvalue = mean1 == mean2 ? 1.0 : 0.0;
    out.t = mean1 == mean2 ? 0.0 : std::copysign(std::numeric_limits<double>::infinity(), mean2 - mean1);
    out.df = static_cast<double>(n1 + n2 - 2);
    return out;
  }
  out.t = (mean2 - mean1) / std::sqrt(se2);
  out.df = se2 * se2 / (a * a / static_cast<double>(n1 - 1) + b * b / static_cast<double>(n2 - 1));
  out.pvalue = student_t_pvalue(out.t, out.df);
  return out;
}

std::vector<ChangePoint> detect_change_points(std::span<const double> series, const ChangePointOptions& options) {
  ChangePointOptions o = options;
  o.min_segment = std::max<std::size_t>(o.min_segment, 2);  // a variance needs two points
  const PrefixSums sums(series);
  std::vector<std::size_t> indexes;
  split(sums, 0, series.size(), o, indexes);

  // Merge: test each change point between its neighbours and drop the weakest failure, until none fails.
  std::vector<ChangePoint> points;
  for (;;) {
    points.clear();
    for (std::size_t i = 0; i < indexes.size(); ++i) {
      const std::size_t from = i == 0 ? 0 : indexes[i - 1];
      const std::size_t to = i + 1 == indexes.size() ? series.size() : indexes[i + 1];
      points.push_back({indexes[i], sums.mean(from, indexes[i]), sums.mean(indexes[i], to),
                        sums.test(from, indexes[i], to).pvalue});
    }
    std::ptrdiff_t weakest = -1;
    for (std::size_t i = 0; i < points.size(); ++i)
      if (points[i].pvalue >= o.max_pvalue && (weakest < 0 || points[i].pvalue > points[weakest].pvalue))
        weakest = static_cast<std::ptrdiff_t>(i);
    if (weakest < 0)
      for (std::size_t i = 0; i < points.size(); ++i)
        if (std::fabs(points[i].relative_change()) < o.min_change &&
            (weakest < 0 ||
             std::fabs(points[i].relative_change()) < std::fabs(points[weakest].relative_change())))
          weakest = static_cast<std::ptrdiff_t>(i);
    if (weakest < 0) return points;
    indexes.erase(indexes.begin() + weakest);
  }
}

}  // namespace perfwatch::alerts
