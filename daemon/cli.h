#pragma once
// The perfwatch command-line client: argument parsing (pure, unit-tested) and the commands, which
// read through storage::Query, the layer the dashboard uses too.
#include <cstdio>
#include <optional>
#include <span>
#include <string>

#include "common/profile.h"
#include "common/result.h"
#include "storage/query.h"

namespace perfwatch::cli {

inline constexpr const char* default_config_path = "/etc/perfwatch/perfwatch.yaml";

enum class Command { targets, flame, latency, cache, alerts };

struct Options {
  std::string config_path = default_config_path;
  std::optional<std::string> host;  // --host; default: the config's host
  bool all_hosts = false;           // --all-hosts: merge every host's data
  Command command = Command::targets;
  std::string target;               // flame, latency, cache --target
  std::string operation;            // latency --op; "" = every operation
  std::string format;               // table|json (targets, latency, cache, alerts), folded|json (flame)
  storage::TimeRange range;
};

std::string usage();

// argv without the program name. `now` anchors --since and a missing --to.
Result<Options> parse_args(std::span<const std::string> args, profile::TimePoint now);

// Runs the command; returns the exit code (0 ok, 1 failure, after writing the reason to err).
int run(const Options& options, std::FILE* out, std::FILE* err);

}  // namespace perfwatch::cli
