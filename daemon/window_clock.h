#pragma once
// When windows close, and the times they record. A window's length is measured on the monotonic
// clock, so a step of the wall clock neither stops windows nor makes one hours long; windows end on
// wall-clock multiples of the length, so that hosts' windows line up, and re-align within one window
// after a step. A window is recorded on the wall clock: contiguous with the one before while the two
// clocks agree; across a step, as long as it really ran, ending at the wall clock's now (after a step
// back its times repeat some already recorded, as the wall clock did).
#include <chrono>

#include "common/duration.h"
#include "common/profile.h"

namespace perfwatch::daemon {

// Both clocks, read together.
struct ClockReading {
  profile::TimePoint wall;                     // CLOCK_REALTIME: what windows record
  std::chrono::steady_clock::time_point mono;  // CLOCK_MONOTONIC: what the window timer runs on
  static ClockReading now() { return {profile::Clock::now(), std::chrono::steady_clock::now()}; }
};

struct WindowSpan {
  profile::TimePoint start;
  profile::TimePoint end;
};

class WindowClock {
 public:
  WindowClock(Duration length, ClockReading now);

  // How long after `now` the open window closes: until the next wall-clock multiple of the length,
  // at least half a length away (so a timer that fires early makes no sliver of a window).
  Duration until_close(ClockReading now) const;
  // Closes the open window at `now` and opens the next; returns the closed window's times.
  WindowSpan close(ClockReading now);

 private:
  Duration length_;
  profile::TimePoint start_;                          // recorded start of the open window
  std::chrono::steady_clock::time_point mono_start_;  // when it opened, on the monotonic clock
};

}  // namespace perfwatch::daemon
