#pragma once
// The read layer's records as JSON, one encoding for `perfwatch ... --format json` and the dashboard
// API, so both say the same thing in the same words. Times are RFC 3339 UTC; absent ones are null.
#include <nlohmann/json.hpp>

#include "storage/query.h"

namespace perfwatch::storage {

// fingerprint, host, rule, state, labels, annotations, value, starts_at, ends_at, updated_at,
// history [{at, state, value, summary}], deliveries [{receiver, status, state, attempts, queued_at,
// done_at, last_error}].
nlohmann::json to_json(const AlertRecord& alert);
// host, target, at, summary, changes [{kind, path, before, after}].
nlohmann::json to_json(const DeployRecord& deploy);

}  // namespace perfwatch::storage
