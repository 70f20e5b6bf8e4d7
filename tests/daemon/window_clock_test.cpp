// The window clock against a simulated machine whose wall clock is stepped while windows run: windows
// keep closing at their length, and the times they record stay sane (no negative, overlapping or
// hour-long windows).
#include "daemon/window_clock.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace perfwatch::daemon {
namespace {

using namespace std::chrono_literals;

constexpr Duration length = 60s;

// The monotonic clock only moves forward; the wall clock is it plus an offset that steps.
class Machine {
 public:
  explicit Machine(std::chrono::seconds wall_at_start) : offset_(wall_at_start - mono_.time_since_epoch()) {}
  ClockReading now() const { return {profile::TimePoint(mono_.time_since_epoch() + offset_), mono_}; }
  void advance(Duration d) { mono_ += d; }
  void step_wall(Duration d) { offset_ += d; }

 private:
  std::chrono::steady_clock::time_point mono_{std::chrono::hours(1000)};
  std::chrono::nanoseconds offset_;
};

struct Closed {
  WindowSpan span;
  Duration waited;  // monotonic time the timer ran for this window
};

// 2026-12-07T10:00:25Z, 25 s into a minute.
constexpr std::chrono::seconds start_wall{1'796'637'625};

class WindowClockTest : public testing::Test {
 protected:
  // Runs the timer for `windows` windows, stepping the wall clock half-way through the first of them.
  void run(int windows, Duration step_half_way = Duration::zero()) {
    for (int i = 0; i < windows; ++i) {
      const Duration wait = clock_.until_close(machine_.now());
      if (step_half_way != Duration::zero()) {
        machine_.advance(wait / 2);
        machine_.step_wall(step_half_way);
        machine_.advance(wait - wait / 2);
        step_half_way = Duration::zero();
      } else {
        machine_.advance(wait);
      }
      closed_.push_back({clock_.close(machine_.now()), wait});
    }
  }
  // Every window: positive and at most 1.5 lengths long, each timer wait as long; none overlaps the
  // one before it, except the window after a step back (the wall clock repeats those times).
  void expect_sane(std::size_t stepped_back = SIZE_MAX) const {
    for (std::size_t i = 0; i < closed_.size(); ++i) {
      const WindowSpan& s = closed_[i].span;
      EXPECT_GT(s.end, s.start) << "window " << i;
      EXPECT_LE(s.end - s.start, length * 3 / 2) << "window " << i;
      EXPECT_GE(closed_[i].waited, i == 0 ? Duration::zero() : length / 2) << "window " << i;
      EXPECT_LE(closed_[i].waited, length * 3 / 2) << "window " << i;
      if (i > 0 && i != stepped_back) {
        EXPECT_GE(s.start, closed_[i - 1].span.end) << "window " << i << " overlaps the one before";
      }
    }
  }
  static bool on_multiple(profile::TimePoint t) { return t.time_since_epoch() % length == Duration::zero(); }

  Machine machine_{start_wall};
  WindowClock clock_{length, machine_.now()};
  std::vector<Closed> closed_;
};

TEST_F(WindowClockTest, WindowsEndOnWallClockMultiplesOneAfterAnother) {
  run(5);
  expect_sane();
  EXPECT_EQ(closed_[0].span.start, profile::TimePoint(start_wall));
  EXPECT_EQ(closed_[0].waited, 35s);
  for (std::size_t i = 0; i < closed_.size(); ++i) {
    EXPECT_TRUE(on_multiple(closed_[i].span.end)) << i;
    if (i > 0) {
      EXPECT_EQ(closed_[i].span.start, closed_[i - 1].span.end) << "contiguous";
      EXPECT_EQ(closed_[i].span.end - closed_[i].span.start, length);
    }
  }
}

TEST_F(WindowClockTest, AClockSteppedBackAnHourDoesNotStopWindows) {
  run(3);
  run(1, -1h);  // stepped back half-way through the fourth window
  run(3);
  expect_sane(/*stepped_back=*/3);
  const WindowSpan& stepped = closed_[3].span;
  EXPECT_EQ(stepped.end - stepped.start, length) << "as long as the timer ran";
  EXPECT_EQ(stepped.end, profile::TimePoint(start_wall) + 35s + 3 * length - 1h) << "ends at the wall clock";
  for (std::size_t i = 4; i < closed_.size(); ++i) {
    EXPECT_TRUE(on_multiple(closed_[i].span.end)) << i;
    EXPECT_EQ(closed_[i].span.start, closed_[i - 1].span.end);
    EXPECT_EQ(closed_[i].span.end - closed_[i].span.start, length);
  }
}

TEST_F(WindowClockTest, AClockSteppedForwardAnHourMakesNoHourLongWindow) {
  run(3);
  run(1, 1h);
  run(3);
  expect_sane();
  const WindowSpan& stepped = closed_[3].span;
  EXPECT_EQ(stepped.end - stepped.start, length) << "as long as the timer ran";
  EXPECT_EQ(stepped.end, profile::TimePoint(start_wall) + 35s + 3 * length + 1h) << "ends at the wall clock";
  for (std::size_t i = 4; i < closed_.size(); ++i) {
    EXPECT_TRUE(on_multiple(closed_[i].span.end)) << i;
    EXPECT_EQ(closed_[i].span.end, closed_[i].span.start + length);
  }
}

// A step that is not a whole number of windows: one window of odd length re-aligns them.
TEST_F(WindowClockTest, AStepOfOddLengthIsReAlignedWithinAWindow) {
  run(2);
  run(1, 17s);
  run(3);
  expect_sane();
  for (std::size_t i = 3; i < closed_.size(); ++i) EXPECT_TRUE(on_multiple(closed_[i].span.end)) << i;
}

}  // namespace
}  // namespace perfwatch::daemon
