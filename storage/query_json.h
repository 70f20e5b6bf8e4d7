#pragma once
// The read layer's records as JSON, one encoding for `perfwatch ... --format json` and the dashboard
// API, so both say the same thing in the same words. Times are RFC 3339 UTC; absent ones are null.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "storage/query.h"

namespace perfwatch::storage {

// fingerprint, host, rule, state, labels, annotations, value, starts_at, ends_at, updated_at,
// history [{at, state, value, summary}], deliveries [{receiver, status, state, attempts, queued_at,
// done_at, last_error}].
nlohmann::json to_json(const AlertRecord& alert);
// host, target, at, summary, changes [{kind, path, before, after}].
nlohmann::json to_json(const DeployRecord& deploy);

// host, window_end, probes [{family, state, detail}]: state is off, running, degraded, failed or unsupported.
nlohmann::json to_json(const HostProbes& host);

// hits / lookups; nullopt without lookups.
std::optional<double> hit_ratio(std::uint64_t lookups, std::uint64_t hits);
// Every process's page cache hit ratio (readahead can add more pages than were asked for).
std::optional<double> host_page_hit_ratio(const profile::CacheCounts& host);

// A target's cache hit rates over a range, each cache's series per window included: target, from, to,
// caches [{name, kind, spec, lookups, hits, misses, windows, hit_ratio, series [{start, end, lookups,
// hits, misses, hit_ratio}]}], page_cache {measured, state}, llc {measured, state}, host {windows,
// page_lookups, page_misses, page_added, page_write_adds, page_hit_ratio, llc_references, llc_misses,
// statsd_counts}.
Result<nlohmann::json> read_cache_report(Query& query, const std::string& host, const std::string& target,
                                         TimeRange range);

}  // namespace perfwatch::storage
