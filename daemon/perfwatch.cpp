// perfwatch: the command-line client. Reads what perfwatchd stored.
#include <cstdio>
#include <string>
#include <vector>

#include "common/log.h"
#include "daemon/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(perfwatch::cli::usage().c_str(), stdout);
      return 0;
    }
  }
  // Only warnings and errors from the layers below; the command's own output is on stdout.
  perfwatch::log::set_level(perfwatch::log::Level::warn);
  auto options = perfwatch::cli::parse_args(args, perfwatch::profile::Clock::now());
  if (!options) {
    std::fprintf(stderr, "perfwatch: %s\n\n%s", options.error().message.c_str(), perfwatch::cli::usage().c_str());
    return 2;
  }
  return perfwatch::cli::run(*options, stdout, stderr);
}
