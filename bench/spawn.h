#pragma once
// The benchmarks' child processes: a command whose standard output the parent reads.
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace perfwatch::bench {

struct Spawned {
  pid_t pid = -1;
  std::FILE* out = nullptr;  // the child's standard output; the caller closes it
};

// Runs argv (looked up in PATH), pinned to CPU `cpu` unless it is negative.
inline std::optional<Spawned> spawn(const std::vector<std::string>& argv, int cpu = -1) {
  int out[2];
  if (argv.empty() || pipe(out) != 0) return std::nullopt;
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      sched_setaffinity(0, sizeof set, &set);
    }
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  if (pid < 0) {
    close(out[0]);
    return std::nullopt;
  }
  return Spawned{pid, fdopen(out[0], "r")};
}

}  // namespace perfwatch::bench
