#include "alerts/engine.h"

#include <algorithm>
#include <map>

#include "alerts/pg_sources.h"
#include "alerts/regression.h"
#include "alerts/rules.h"
#include "common/log.h"

namespace perfwatch::alerts {
namespace {

using namespace std::chrono_literals;

// Where a window-by-window rule starts the first time: a daemon that was never run (or whose rule is
// new) does not judge days of history.
constexpr auto initial_lookback = 10min;
constexpr auto retention_interval = 1h;
// The burn rate reads up to the longest window (3 days by default) of totals: once a minute is plenty
// next to short windows of 5 minutes and more.
constexpr auto burn_rate_interval = 1min;
// Functions below this share of a window's samples are not kept in the regression series: they are
// far below any min_share worth reporting, and the long tail would dominate the memory.
constexpr std::uint64_t kept_share_per_mille = 1;
// Functions are interned per target for as long as its series lives; beyond this many the series is
// read again from scratch, so a process that invents names (JIT code) cannot grow it without bound.
constexpr std::size_t max_functions = 200000;

profile::Clock::duration to_clock(Duration d) { return std::chrono::duration_cast<profile::Clock::duration>(d); }

void prune(CpuWindow& w) {
  std::erase_if(w.functions, [&](const FunctionCount& c) { return c.total * 1000 < w.samples * kept_share_per_mille; });
}

// Windows grouped by what they measure, each group in order of start.
std::map<std::pair<std::string, std::string>, std::vector<LatencyWindow>> by_operation(
    std::span<const LatencyWindow> windows) {
  std::map<std::pair<std::string, std::string>, std::vector<LatencyWindow>> out;
  for (const LatencyWindow& w : windows) out[{w.target, w.operation}].push_back(w);
  return out;
}

}  // namespace

struct Engine::Session {
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<AlertStore> store;
  Sources sources;
  Evaluator evaluator{{}};
  std::map<std::string, TimePoint> cursors;
};

Sources stored_sources(pqxx::connection& conn) {
  Sources s;
  s.latency = pg_latency_source(conn);
  s.profile = pg_profile_source(conn);
  s.deploys = pg_deploy_source(conn);
  s.cache = pg_cache_source(conn);
  return s;
}

Engine::Engine(EngineOptions options, SourcesFactory sources)
    : options_(std::move(options)), sources_factory_(std::move(sources)) {
  thread_ = std::thread([this] { run(); });
}

Engine::~Engine() { stop(); }

void Engine::reconfigure(config::Alerts alerts, std::vector<std::string> profiled_targets) {
  {
    std::lock_guard lock(mutex_);
    const config::RegressionRule& before = options_.alerts.regression;
    const config::RegressionRule& after = alerts.regression;
    reset_caches_ = reset_caches_ || before.baseline != after.baseline || before.baseline_from != after.baseline_from ||
                    before.baseline_to != after.baseline_to || before.current != after.current;
    options_.alerts = std::move(alerts);
    options_.profiled_targets = std::move(profiled_targets);
  }
  wake();
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Engine::run() {
  std::unique_ptr<Session> session;
  std::chrono::milliseconds backoff{0};
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const EngineOptions options = options_;
    if (reset_caches_) {
      latency_ = {};
      cpu_.clear();
      reset_caches_ = false;
    }
    woken_ = false;
    lock.unlock();

    Result<void> outcome;
    if (!session) {
      auto conn = storage::connect_database(options.connect);
      if (conn) {
        session = std::make_unique<Session>();
        session->conn = std::move(*conn);
        session->store = std::make_unique<AlertStore>(*session->conn, options.host);
        session->sources = sources_factory_(*session->conn);
        auto active = session->store->load_active();
        auto cursors = active ? session->store->load_cursors() : active.error();
        if (!active || !cursors) {
          outcome = active ? cursors.error() : active.error();
          session.reset();
        } else {
          session->evaluator.load(std::move(*active));
          session->cursors = std::move(*cursors);
        }
      } else {
        outcome = conn.error();
      }
    }
    if (session) {
      try {
        outcome = evaluate(*session, options, profile::Clock::now());
      } catch (const std::exception& e) {
        outcome = make_error(e.what());
      }
      // State in memory may be ahead of the database: read it back after reconnecting.
      if (!outcome) session.reset();
    }

    lock.lock();
    if (!outcome) {
      ++stats_.errors;
      if (backoff.count() == 0) log::warn("alert evaluation failed; retrying", {{"error", outcome.error().message}});
      backoff = std::clamp(backoff * 2, options.reconnect_min, options.reconnect_max);
      sleep(lock, backoff, false);
      continue;
    }
    if (backoff.count() > 0) log::info("alert evaluation works again");
    backoff = std::chrono::milliseconds(0);
    sleep(lock, std::chrono::duration_cast<std::chrono::milliseconds>(options.alerts.evaluation_interval));
  }
}

Result<void> Engine::evaluate(Session& s, const EngineOptions& options, TimePoint now) {
  const config::Alerts& cfg = options.alerts;
  const RuleContext context{options.host, cfg.external_url};
  s.evaluator.set_receivers(cfg.receivers);
  Batch batch;

  // Window-by-window rules: what was stored since their cursor.
  const auto judge_windows = [&](const char* rule, auto fetch, auto rounds_of) -> Result<void> {
    auto cursor = s.cursors.find(rule);
    const TimePoint after = cursor != s.cursors.end() ? cursor->second : now - initial_lookback;
    auto windows = fetch(after);
    if (!windows) return windows.error();
    for (const Round& round : rounds_of(*windows)) s.evaluator.apply(round, batch);
    if (!windows->empty()) batch.cursors[rule] = s.cursors[rule] = windows->back().start;
    return {};
  };
  if (s.sources.latency && cfg.tier.enabled) {
    auto outcome = judge_windows(
        tier_rule, [&](TimePoint after) { return s.sources.latency->windows(options.host, after, now); },
        [&](const std::vector<LatencyWindow>& w) { return tier_rounds(w, cfg.tier, context); });
    if (!outcome) return outcome;
  }
  if (s.sources.latency && cfg.burn_rate.enabled && (!next_burn_rate_ || now >= *next_burn_rate_)) {
    const std::vector<Duration> spans = burn_rate_spans(cfg.burn_rate);
    auto totals = s.sources.latency->totals(options.host, now, spans);
    if (!totals) return totals.error();
    s.evaluator.apply(burn_rate_round(*totals, cfg.burn_rate, context, now), batch);
    next_burn_rate_ = now + burn_rate_interval;
  }
  if (s.sources.cache && (cfg.cache.floor || !cfg.cache.floors.empty())) {
    auto outcome = judge_windows(
        cache_rule, [&](TimePoint after) { return s.sources.cache->windows(options.host, after, now); },
        [&](const std::vector<CacheWindow>& w) { return cache_rounds(w, cfg.cache, context); });
    if (!outcome) return outcome;
  }
  if (cfg.regression.enabled && (!next_regression_ || now >= *next_regression_)) {
    if (auto outcome = evaluate_regressions(s, options, now, batch); !outcome) return outcome;
    next_regression_ = now + to_clock(cfg.regression.interval);
  }
  s.evaluator.repeat(now, batch);

  if (!next_retention_ || now >= *next_retention_) {
    auto deleted = s.store->apply_retention(now - to_clock(options.retention));
    if (!deleted) return deleted.error();
    if (*deleted > 0) log::info("dropped alert history past retention", {{"rows", *deleted}});
    next_retention_ = now + retention_interval;
  }
  if (auto committed = s.store->commit(batch); !committed) return committed;
  for (const Event& e : batch.events)
    if (e.kind == EventKind::firing || e.kind == EventKind::resolved)
      log::info(e.kind == EventKind::firing ? "alert firing" : "alert resolved",
                {{"fingerprint", e.fingerprint}, {"summary", e.summary}});
  {
    std::lock_guard lock(mutex_);
    ++stats_.evaluations;
    stats_.notifications += batch.notifications.size();
    stats_.active = s.evaluator.active().size();
  }
  if (!batch.notifications.empty() && options.on_notifications) options.on_notifications();
  return {};
}

template <typename W, typename Fetch>
Result<void> Engine::refresh(WindowCache<W>& cache, const config::RegressionRule& rule, TimePoint now, Fetch fetch) {
  TimePoint from = now - to_clock(rule.baseline);
  if (rule.baseline_from && rule.baseline_to) {
    if (!cache.pinned_read) {
      // Windows starting in [baseline_from, baseline_to).
      auto pinned = fetch(*rule.baseline_from - 1us, *rule.baseline_to - 1us);
      if (!pinned) return pinned.error();
      cache.windows.insert(cache.windows.begin(), std::make_move_iterator(pinned->begin()),
                           std::make_move_iterator(pinned->end()));
      cache.pinned = pinned->size();
      cache.pinned_read = true;
    }
    from = std::max(*rule.baseline_to, now - to_clock(rule.current));
  }
  const auto first_kept = std::find_if(cache.windows.begin() + static_cast<std::ptrdiff_t>(cache.pinned),
                                       cache.windows.end(), [&](const W& w) { return w.start >= from; });
  cache.windows.erase(cache.windows.begin() + static_cast<std::ptrdiff_t>(cache.pinned), first_kept);
  const TimePoint after = cache.last_start && *cache.last_start >= from ? *cache.last_start : from - 1us;
  auto fresh = fetch(after, now);
  if (!fresh) return fresh.error();
  for (W& w : *fresh) cache.windows.push_back(std::move(w));
  if (!fresh->empty()) cache.last_start = cache.windows.back().start;
  return {};
}

Result<void> Engine::evaluate_regressions(Session& s, const EngineOptions& options, TimePoint now, Batch& batch) {
  const config::RegressionRule& rule = options.alerts.regression;
  const RuleContext context{options.host, options.alerts.external_url};
  const ChangePointOptions detect{rule.max_pvalue, rule.min_points, rule.min_change};
  const Hold hold{Duration(0), rule.resolve_after};
  const auto deploy_for = [&](const std::string& target, const std::optional<Shift>& shift) -> Result<std::optional<Deploy>> {
    if (!shift || !s.sources.deploys) return std::optional<Deploy>();
    return s.sources.deploys->latest(options.host, target, shift->before_from, shift->first_after_end);
  };

  if (s.sources.latency) {
    Round round{latency_regression_rule, now, now, hold, {}};
    auto read = refresh(latency_, rule, now, [&](TimePoint after, TimePoint until) {
      return s.sources.latency->windows(options.host, after, until);
    });
    if (!read) return read;
    for (const auto& [key, windows] : by_operation(latency_.windows)) {
      const std::vector<Point> points = latency_points(windows, rule.latency_statistic, rule.min_calls);
      const std::optional<Shift> shift = latest_rise(points, detect);
      auto deploy = deploy_for(key.first, shift);
      if (!deploy) return deploy.error();
      round.observations.push_back(
          latency_regression_observation(windows.back(), shift, *deploy, rule.latency_statistic, context));
    }
    s.evaluator.apply(round, batch);
  }

  if (s.sources.profile) {
    Round round{cpu_regression_rule, now, now, hold, {}};
    for (const std::string& target : options.profiled_targets) {
      CpuCache& cache = cpu_[target];
      if (cache.functions.size() > max_functions) cache = CpuCache{};
      auto read = refresh(cache.windows, rule, now, [&](TimePoint after, TimePoint until) {
        auto windows = s.sources.profile->windows(options.host, target, after, until, cache.functions);
        if (windows)
          for (CpuWindow& w : *windows) prune(w);
        return windows;
      });
      if (!read) return read;
      const CpuRegressionOptions cpu{detect, rule.min_samples, rule.min_share, rule.top_functions};
      const std::vector<FunctionRegression> found = cpu_regressions(cache.windows.windows, cpu);
      auto deploy = deploy_for(target, found.empty() ? std::nullopt : std::optional<Shift>(found.front().shift));
      if (!deploy) return deploy.error();
      round.observations.push_back(cpu_regression_observation(target, found, cache.functions, *deploy, context));
    }
    std::erase_if(cpu_, [&](const auto& entry) {
      return std::find(options.profiled_targets.begin(), options.profiled_targets.end(), entry.first) ==
             options.profiled_targets.end();
    });
    s.evaluator.apply(round, batch);
  }
  return {};
}

}  // namespace perfwatch::alerts
