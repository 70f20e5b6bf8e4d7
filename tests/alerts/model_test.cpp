// Alert identity (fingerprints) and the pending/firing/resolved state machine every rule shares.
#include "alerts/model.h"

#include <gtest/gtest.h>

namespace perfwatch::alerts {
namespace {

using namespace std::chrono_literals;

TimePoint at(int seconds) { return TimePoint(std::chrono::seconds(1'800'000'000 + seconds)); }

TEST(Fingerprint, IsPrometheusLabelSetFingerprint) {
  // FNV-1a's offset basis: Prometheus' fingerprint of the empty label set.
  EXPECT_EQ(fingerprint({}), "cbf29ce484222325");
  const Labels labels{{"alertname", "CpuRegression"}, {"host", "web-01"}, {"target", "api"}};
  EXPECT_EQ(fingerprint(labels).size(), 16u);
  EXPECT_EQ(fingerprint(labels), fingerprint(Labels(labels.rbegin(), labels.rend())));  // order does not matter
  // The separator keeps "a"="bc" and "ab"="c" apart.
  EXPECT_NE(fingerprint({{"a", "bc"}}), fingerprint({{"ab", "c"}}));
  Labels other = labels;
  other["host"] = "web-02";
  EXPECT_NE(fingerprint(labels), fingerprint(other));
}

struct Window {
  int start;
  bool condition;
};

// Feeds 10-second windows; returns the transitions.
std::vector<Transition> feed(Progress& p, const Hold& hold, std::initializer_list<Window> windows) {
  std::vector<Transition> out;
  for (const Window& w : windows) out.push_back(step(p, at(w.start), at(w.start + 10), w.condition, hold));
  return out;
}

TEST(Step, FiresAfterForAndResolvesAfterStayingClearForFor) {
  const Hold hold{30s, 30s, 10s};
  Progress p;
  EXPECT_EQ(feed(p, hold, {{0, true}, {10, true}}),
            (std::vector<Transition>{Transition::pending, Transition::none}));
  EXPECT_EQ(p.state, State::pending);
  EXPECT_EQ(step(p, at(20), at(30), true, hold), Transition::firing);  // held from 0 to 30
  EXPECT_EQ(p.fired_at, at(30));
  EXPECT_EQ(p.active_since, at(0));
  // Clear for 20s, then violating again: still firing, the clear clock restarts.
  EXPECT_EQ(feed(p, hold, {{30, false}, {40, false}, {50, true}}),
            (std::vector<Transition>{Transition::none, Transition::none, Transition::none}));
  EXPECT_EQ(p.state, State::firing);
  EXPECT_EQ(feed(p, hold, {{60, false}, {70, false}}), (std::vector<Transition>{Transition::none, Transition::none}));
  EXPECT_EQ(step(p, at(80), at(90), false, hold), Transition::resolved);  // clear from 60 to 90
  EXPECT_EQ(p.state, State::inactive);
}

TEST(Step, PendingThatClearsIsCancelled) {
  const Hold hold{30s, 30s, 10s};
  Progress p;
  EXPECT_EQ(feed(p, hold, {{0, true}, {10, false}, {20, false}}),
            (std::vector<Transition>{Transition::pending, Transition::cancelled, Transition::none}));
  EXPECT_EQ(p.state, State::inactive);
}

TEST(Step, ZeroForFiresAndResolvesAtOnce) {
  const Hold hold{};
  Progress p;
  EXPECT_EQ(step(p, at(0), at(0), true, hold), Transition::firing);
  EXPECT_EQ(step(p, at(60), at(60), true, hold), Transition::none);
  EXPECT_EQ(step(p, at(120), at(120), false, hold), Transition::resolved);
}

TEST(Step, AGapRestartsTheClocks) {
  const Hold hold{30s, 30s, 10s};
  Progress p;
  // Violating at 0-20, then nothing known until 100: the violation has not been seen for 30s in a row.
  EXPECT_EQ(feed(p, hold, {{0, true}, {10, true}, {100, true}}),
            (std::vector<Transition>{Transition::pending, Transition::none, Transition::none}));
  EXPECT_EQ(p.active_since, at(100));
  EXPECT_EQ(feed(p, hold, {{110, true}, {120, true}}), (std::vector<Transition>{Transition::none, Transition::firing}));
}

TEST(Step, ResolveAfterCountsAcrossInstantEvaluations) {
  // Regressions: examined every minute, resolved after 5 minutes without being found.
  const Hold hold{0s, 5min};
  Progress p;
  EXPECT_EQ(step(p, at(0), at(0), true, hold), Transition::firing);
  for (int minute = 1; minute < 6; ++minute)
    EXPECT_EQ(step(p, at(60 * minute), at(60 * minute), false, hold), Transition::none) << minute;
  EXPECT_EQ(step(p, at(360), at(360), false, hold), Transition::resolved);
}

}  // namespace
}  // namespace perfwatch::alerts
