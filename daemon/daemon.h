#pragma once
// perfwatchd: ties config, process discovery, the BPF sampler, symbolization and storage together
// around one event loop (signals, process events, window timer, watchdog).
#include <memory>
#include <string>

#include "config/config.h"

namespace perfwatch::daemon {

struct DaemonOptions {
  std::string config_path;
};

// Runs until SIGTERM/SIGINT; returns the process exit code. Throws on fatal start-up errors.
int run_daemon(const DaemonOptions& options);

}  // namespace perfwatch::daemon
