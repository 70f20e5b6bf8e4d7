#pragma once
// Retry delays: exponential (initial x 2^(attempt - 1), capped at max) with jitter, so that receivers
// that come back are not hit by every queued notification at once.
#include <algorithm>
#include <chrono>

#include "common/duration.h"

namespace perfwatch::alerts {

// The delay before retry number `attempt` (1 for the first retry); `random` in [0, 1) draws the
// jitter: the delay is uniform in [half, full] of the exponential step.
inline Duration backoff_delay(int attempt, Duration initial, Duration max, double random) {
  Duration step = initial;
  for (int i = 1; i < attempt && step < max; ++i) step *= 2;
  step = std::min(step, max);
  return Duration(static_cast<Duration::rep>(static_cast<double>(step.count()) * (0.5 + 0.5 * random)));
}

}  // namespace perfwatch::alerts
