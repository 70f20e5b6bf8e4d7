#include "daemon/probe_set.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"

namespace perfwatch::daemon {
namespace {

using profile::ProbeFamily;
using profile::ProbeStatus;

static_assert(std::size(config::syscall_names) == LAT_SYS_COUNT, "probes/latency.h enumerates the same system calls");

std::string describe(const config::Operation& op) {
  if (op.source != profile::OperationSource::syscall) return op.spec;
  std::string text = op.spec;
  if (!op.path_prefix.empty()) text += " under " + op.path_prefix;
  if (!op.regular_only) text += " (any file)";
  return text;
}

// A cache source's text ("lookups: ...", "unsupported: ...", "failed: ...", "disabled") as a family state.
profile::ProbeState cache_state(ProbeFamily family, const profile::CacheSourceState& source) {
  for (auto [prefix, status] : {std::pair{std::string_view("unsupported: "), ProbeStatus::unsupported},
                                {std::string_view("failed: "), ProbeStatus::failed}})
    if (source.text.starts_with(prefix)) return {family, status, source.text.substr(prefix.size())};
  if (!source.measured) return {family, ProbeStatus::off, ""};
  return {family, ProbeStatus::running, source.text};
}

}  // namespace

std::unique_ptr<ProbeSet> ProbeSet::build(const config::Config& cfg, int watched_map_fd,
                                          const std::string& bpf_unavailable, bool first) {
  std::unique_ptr<ProbeSet> set(new ProbeSet());
  for (const config::Target& t : cfg.targets) set->target_names_.push_back(t.name);
  set->build_latency(cfg, watched_map_fd, bpf_unavailable);
  set->build_caches(cfg, watched_map_fd, bpf_unavailable, first);
  return set;
}

void ProbeSet::build_latency(const config::Config& cfg, int watched_map_fd, const std::string& bpf_unavailable) {
  std::vector<collector::LatencyOperation> probed;
  bool needs_probes = false;
  for (std::size_t t = 0; t < cfg.targets.size(); ++t) {
    for (const config::Operation& op : cfg.targets[t].operations) {
      const std::size_t index = operations_.size();
      const auto threshold = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.threshold_of(op)).count());
      operations_.push_back({static_cast<std::uint32_t>(t), op, threshold});
      collector::LatencyOperation lop{op.name, static_cast<std::uint32_t>(t), op.source, op.spec, 0, op.path_prefix,
                                      op.regular_only, threshold};
      if (op.source == profile::OperationSource::syscall)
        lop.syscall = static_cast<std::uint32_t>(
            std::find(std::begin(config::syscall_names), std::end(config::syscall_names), op.spec) -
            std::begin(config::syscall_names));
      if (op.source == profile::OperationSource::statsd)
        timers_.push_back({index, op.spec, threshold});
      else
        needs_probes = true;
      probed.push_back(std::move(lop));
    }
  }
  if (!needs_probes) return;
  Result<std::unique_ptr<collector::LatencyProbes>> probes =
      watched_map_fd >= 0 ? collector::LatencyProbes::create(watched_map_fd, std::move(probed))
                          : Result<std::unique_ptr<collector::LatencyProbes>>(make_error(bpf_unavailable));
  if (probes) {
    latency_ = std::move(*probes);
    return;
  }
  log::error("the latency probes cannot load; their operations are not measured, the rest is",
             {{"error", probes.error().message}});
  for (const OperationRef& ref : operations_)
    if (ref.op.source != profile::OperationSource::statsd)
      states_.set(profile::family_of(ref.op.source), ProbeStatus::failed, probes.error().message);
}

// Probes for the page cache, the LLC and the USDT application caches (none when nothing needs them),
// and the StatsD counters of the other application caches: cache i's hits are counter 2i, its misses
// 2i + 1.
void ProbeSet::build_caches(const config::Config& cfg, int watched_map_fd, const std::string& bpf_unavailable,
                            bool first) {
  for (std::size_t t = 0; t < cfg.targets.size(); ++t)
    for (const config::AppCache& c : cfg.targets[t].caches) app_caches_.push_back({static_cast<std::uint32_t>(t), c});
  collector::CacheProbeOptions options;
  options.targets = static_cast<std::uint32_t>(cfg.targets.size());
  options.page_cache = cfg.cache.page_cache;
  options.llc = cfg.cache.llc;
  options.llc_sample_period = cfg.cache.llc_sample_period;
  options.log_unsupported = first;
  for (std::size_t i = 0; i < app_caches_.size(); ++i) {
    const auto& [target, cache] = app_caches_[i];
    if (cache.kind == profile::CacheKind::usdt) {
      options.usdt_caches.push_back({target, cache.hit_usdt, cache.miss_usdt});
      usdt_caches_.push_back(i);
    } else {
      counters_.push_back({2 * i, cache.hits});
      counters_.push_back({2 * i + 1, cache.misses});
    }
  }
  if (!options.page_cache && !options.llc && options.usdt_caches.empty()) return;
  const bool page_cache = options.page_cache, llc = options.llc, usdt = !options.usdt_caches.empty();
  Result<std::unique_ptr<collector::CacheProbes>> probes =
      watched_map_fd >= 0 ? collector::CacheProbes::create(watched_map_fd, std::move(options))
                          : Result<std::unique_ptr<collector::CacheProbes>>(make_error(bpf_unavailable));
  if (probes) {
    caches_ = std::move(*probes);
    page_cache_ = caches_->page_cache();
    llc_ = caches_->llc();
    return;
  }
  log::error("the cache probes cannot load; the page cache, LLC and USDT caches are not measured",
             {{"error", probes.error().message}});
  const std::string failed = "failed: " + probes.error().message;
  if (page_cache) page_cache_ = {false, failed};
  if (llc) llc_ = {false, failed};
  if (usdt) states_.set(ProbeFamily::usdt_caches, ProbeStatus::failed, probes.error().message);
}

void ProbeSet::watch(std::int32_t pid, std::uint32_t target) {
  if (latency_) latency_->watch(pid, target);
  if (caches_) caches_->watch(pid, target);
}

void ProbeSet::unwatch(std::int32_t pid) {
  if (latency_) latency_->unwatch(pid);
  if (caches_) caches_->unwatch(pid);
}

void ProbeSet::refresh() {
  if (latency_) latency_->refresh();
  if (caches_) caches_->refresh();
}

void ProbeSet::add_latencies(profile::WindowProfile& window, collector::StatsdDrain& statsd, LatencyMetrics& metrics) {
  std::vector<profile::LatencyHistogram> histograms(operations_.size());
  if (latency_) {
    collector::LatencyDrain drained = latency_->drain();
    for (std::size_t i = 0; i < drained.histograms.size() && i < histograms.size(); ++i)
      histograms[i] = std::move(drained.histograms[i]);
    window.latency = drained.stats;
  }
  for (auto& [index, h] : statsd.histograms)
    if (index < histograms.size()) histograms[index] = std::move(h);
  const profile::LatencyStats& s = statsd.stats;
  window.latency += s;  // the listener's counters; the probes' are in already
  if (s.statsd_malformed + s.statsd_oversized > 0)
    log::warn("statsd: malformed lines or oversized datagrams in this window (counted, the rest was read)",
              {{"malformed", s.statsd_malformed}, {"oversized", s.statsd_oversized}});
  std::vector<MeteredOperation> metered;
  for (std::size_t i = 0; i < operations_.size(); ++i) {
    const auto& [target, op, threshold] = operations_[i];
    metered.push_back({target_names_[target], op.name, op.tier, threshold});
    if (histograms[i].count == 0) continue;
    window.operations.push_back({target, op.name, op.source, describe(op), op.tier, threshold, std::move(histograms[i])});
  }
  metrics.window_closed(metered, window, latency_ ? latency_->attached_links() : 0);
}

void ProbeSet::add_caches(profile::WindowProfile& window, const collector::StatsdDrain& statsd) {
  window.cache.statsd_counts = statsd.counter_lines;
  window.cache.page_cache = page_cache_;
  window.cache.llc = llc_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> app(app_caches_.size());  // (hits, misses)
  for (const auto& [index, sum] : statsd.counters)
    if (index / 2 < app.size()) (index % 2 ? app[index / 2].second : app[index / 2].first) += sum;
  if (caches_) {
    collector::CacheDrain drained = caches_->drain();
    window.cache.host = drained.host;
    for (std::uint32_t t = 0; t < drained.targets.size() && t < window.targets.size(); ++t) {
      const profile::CacheCounts& c = drained.targets[t];
      if (page_cache_.measured && c.page_lookups + c.page_misses() > 0)
        window.caches.push_back({t, "page_cache", profile::CacheKind::page, "", c.page_lookups, c.page_misses()});
      if (llc_.measured && c.llc_references > 0)
        window.caches.push_back({t, "llc", profile::CacheKind::llc, "", c.llc_references, c.llc_misses});
    }
    for (std::size_t i = 0; i < drained.usdt.size() && i < usdt_caches_.size(); ++i) app[usdt_caches_[i]] = drained.usdt[i];
  }
  for (std::size_t i = 0; i < app.size(); ++i) {
    const auto [hits, misses] = app[i];
    if (hits + misses == 0) continue;
    const auto& [target, cache] = app_caches_[i];
    window.caches.push_back({target, cache.name, cache.kind, cache.spec(), hits + misses, misses});
  }
}

void ProbeSet::report(profile::ProbeStates& states) const {
  for (ProbeFamily f : {ProbeFamily::latency_uprobe, ProbeFamily::latency_python, ProbeFamily::latency_syscall,
                        ProbeFamily::usdt_caches})
    states[f] = states_[f];
  if (latency_)
    for (auto source : {profile::OperationSource::uprobe, profile::OperationSource::python, profile::OperationSource::syscall})
      states[profile::family_of(source)] = latency_->state(source);
  if (caches_) states[ProbeFamily::usdt_caches] = caches_->usdt_state();
  states[ProbeFamily::page_cache] = cache_state(ProbeFamily::page_cache, page_cache_);
  states[ProbeFamily::llc] = cache_state(ProbeFamily::llc, llc_);
}

std::vector<profile::ProbeState> ProbeSet::would_stop(const ProbeSet& running) const {
  profile::ProbeStates before, after;
  running.report(before);
  report(after);
  std::vector<profile::ProbeState> stopped;
  for (ProbeFamily f : profile::all_probe_families)
    if (profile::measures(before[f].status) && after[f].status != ProbeStatus::off && !profile::measures(after[f].status))
      stopped.push_back(after[f]);
  return stopped;
}

}  // namespace perfwatch::daemon
