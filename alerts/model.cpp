#include "alerts/model.h"

#include <cstdint>
#include <cstdio>

namespace perfwatch::alerts {
namespace {

constexpr std::uint64_t fnv_offset = 14695981039346656037ull;
constexpr std::uint64_t fnv_prime = 1099511628211ull;
constexpr unsigned char separator = 0xff;

std::uint64_t fnv_add(std::uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) h = (h ^ c) * fnv_prime;
  return h;
}

}  // namespace

std::string fingerprint(const Labels& labels) {
  std::uint64_t h = fnv_offset;
  const std::string_view sep(reinterpret_cast<const char*>(&separator), 1);
  for (const auto& [name, value] : labels) h = fnv_add(fnv_add(fnv_add(fnv_add(h, name), sep), value), sep);
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

std::string_view to_string(State state) {
  switch (state) {
    case State::inactive: return "inactive";
    case State::pending: return "pending";
    case State::firing: return "firing";
  }
  return "inactive";
}

std::optional<State> parse_state(std::string_view text) {
  for (State s : {State::inactive, State::pending, State::firing})
    if (text == to_string(s)) return s;
  return std::nullopt;
}

Transition step(Progress& p, TimePoint start, TimePoint end, bool condition, const Hold& hold) {
  const bool gap = p.last_end && start > *p.last_end &&
                   std::chrono::duration_cast<Duration>(start - *p.last_end) > hold.max_gap;
  p.last_end = end;
  const auto held = [&](TimePoint since, Duration needed) {
    return std::chrono::duration_cast<Duration>(end - since) >= needed;
  };
  if (condition) {
    if (p.state == State::firing) {
      p.clear_since.reset();
      return Transition::none;
    }
    const bool entered = p.state == State::inactive;
    if (entered || gap) {
      p.state = State::pending;
      p.active_since = start;
    }
    if (!held(p.active_since, hold.for_)) return entered ? Transition::pending : Transition::none;
    p.state = State::firing;
    p.fired_at = end;
    return Transition::firing;
  }
  switch (p.state) {
    case State::inactive:
      return Transition::none;
    case State::pending:
      p = Progress{.last_end = end};
      return Transition::cancelled;
    case State::firing:
      if (!p.clear_since || gap) p.clear_since = start;
      if (!held(*p.clear_since, hold.clear_for)) return Transition::none;
      p = Progress{.last_end = end};
      return Transition::resolved;
  }
  return Transition::none;
}

}  // namespace perfwatch::alerts
