#pragma once
// Receivers ready to send: the config's, with the header secrets read from the environment or their
// files. Read at start-up (a missing secret stops the daemon) and on reload (it keeps the old ones).
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "config/config.h"

namespace perfwatch::alerts {

struct ResolvedReceiver {
  config::Receiver config;
  std::vector<std::pair<std::string, std::string>> headers;  // name, value (secrets included)
};

Result<std::vector<ResolvedReceiver>> resolve_receivers(const std::vector<config::Receiver>& receivers);

}  // namespace perfwatch::alerts
