#include "daemon/window_clock.h"

#include <algorithm>

#include "common/log.h"

namespace perfwatch::daemon {

WindowClock::WindowClock(Duration length, ClockReading now)
    : length_(length), start_(now.wall), mono_start_(now.mono) {}

Duration WindowClock::until_close(ClockReading now) const {
  const Duration since_epoch = std::chrono::duration_cast<Duration>(now.wall.time_since_epoch());
  Duration wait = (since_epoch / length_ + 1) * length_ - since_epoch;
  if (wait < length_ / 2) wait += length_;
  return wait;
}

WindowSpan WindowClock::close(ClockReading now) {
  const auto ran = now.mono - mono_start_;
  const auto drift = now.wall - (start_ + ran);
  // NTP slews the wall clock by at most 500 ppm: anything past this is a step.
  const auto tolerance = std::max<profile::Clock::duration>(std::chrono::seconds(1), length_ / 100);
  WindowSpan span{start_, now.wall};
  if (drift > tolerance || drift < -tolerance) {
    span.start = now.wall - ran;
    log::warn("the wall clock was stepped; the window is recorded as long as it ran, ending now",
              {{"step_s", std::chrono::duration<double>(drift).count()},
               {"window_s", std::chrono::duration<double>(ran).count()}});
  }
  start_ = span.end;
  mono_start_ = now.mono;
  return span;
}

}  // namespace perfwatch::daemon
