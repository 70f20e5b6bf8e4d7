// perfwatchd: the perfwatch daemon.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "common/log.h"
#include "config/config.h"
#include "daemon/daemon.h"

namespace {

constexpr const char* default_config = "/etc/perfwatch/perfwatch.yaml";

void usage(FILE* out) {
  std::fprintf(out,
               "usage: perfwatchd [--config FILE] [--check-config]\n"
               "  --config FILE    configuration (default %s)\n"
               "  --check-config   validate FILE and exit: 0 if valid, 1 with the errors otherwise\n"
               "  --version        print the version\n",
               default_config);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = default_config;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.starts_with("--config=")) {
      config_path = arg.substr(std::strlen("--config="));
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--version") {
      std::printf("perfwatchd %s\n", PERFWATCH_VERSION);
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "perfwatchd: unknown argument '%s'\n", arg.c_str());
      usage(stderr);
      return 2;
    }
  }

  if (check_only) {
    auto cfg = perfwatch::config::load_file(config_path);
    if (!cfg) {
      std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
      return 1;
    }
    std::printf("%s: OK (%zu targets)\n", config_path.c_str(), cfg->targets.size());
    return 0;
  }

  try {
    return perfwatch::daemon::run_daemon({config_path});
  } catch (const std::exception& e) {
    perfwatch::log::error("fatal start-up error", {{"error", e.what()}});
    return 1;
  }
}
