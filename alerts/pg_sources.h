#pragma once
// The rules' sources over what perfwatchd stores in PostgreSQL: operation latencies per window
// (migration 0002's latency table), CPU profiles per window (samples, stacks, frames), deploy markers and
// cache hit rates per window (migration 0003).
#include <memory>
#include <pqxx/connection>

#include "alerts/sources.h"

namespace perfwatch::alerts {

// conn must outlive them.
std::unique_ptr<LatencySource> pg_latency_source(pqxx::connection& conn);
std::unique_ptr<ProfileSource> pg_profile_source(pqxx::connection& conn);
std::unique_ptr<DeploySource> pg_deploy_source(pqxx::connection& conn);
std::unique_ptr<CacheSource> pg_cache_source(pqxx::connection& conn);

}  // namespace perfwatch::alerts
