#pragma once
// Shared by the end-to-end tests: the real perfwatchd (embedded PostgreSQL, real BPF) started on a
// config the test writes, real workloads as child processes, and the real perfwatch CLI.
#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace perfwatch::e2e {

struct Child {
  pid_t pid = -1;
  int stdout_fd = -1;  // when started with pipe_stdout
};

// A child whose standard input is a pipe: it starts its measured work when the test closes it (open()),
// after the test has seen perfwatchd attach its probes.
struct GatedChild {
  pid_t pid = -1;
  int gate = -1;
  void open();
};
GatedChild spawn_gated(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});

// A local port nobody is bound to right now (the kernel's pick): SOCK_STREAM or SOCK_DGRAM.
std::uint16_t free_port(int type = SOCK_STREAM);
// GET http://127.0.0.1:port/path: {status, body}, or {0, the error}.
std::pair<int, std::string> http_get(std::uint16_t port, const std::string& path);

// Starts argv (argv[0] a path) with stdout on a pipe when asked and stderr appended to a file.
Child spawn(const std::vector<std::string>& argv, const std::string& stderr_path = "/dev/null",
            bool pipe_stdout = false);
// Waits for pid; its exit code, or 128 + the signal that killed it.
int wait_exit(pid_t pid);
std::string read_all(int fd);
// Runs a command to completion: {exit code, stdout}.
std::pair<int, std::string> run(const std::vector<std::string>& argv, const std::string& stderr_path = "/dev/null");
std::string slurp(const std::string& path);

// A running perfwatchd in a private directory (state, config, log), stopped with SIGTERM by stop().
class Daemon {
 public:
  // Writes `config_body` (everything but state_dir, which points into the private directory unless
  // `state_dir` names one) and starts perfwatchd on it, through `launcher` when given (a command that
  // execs its arguments: unshare, setpriv); waits until it logs that it started. Fails the test (and
  // returns false from started()) when it does not.
  explicit Daemon(const std::string& name, const std::string& config_body, std::vector<std::string> launcher = {},
                  const std::string& state_dir = "");
  ~Daemon();  // stop() if still running; removes the directory unless a test failed
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  bool alive() const;
  // SIGTERM and wait; returns the exit code.
  int stop();
  // SIGKILL and wait: a crash, nothing saved on the way out.
  void kill_hard();
  // Stops it (when running) and starts it again on the same directory, state and config; false (and
  // a test failure) when it does not start.
  bool restart();
  void reload() const;  // SIGHUP

  const std::string& config_path() const { return config_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::string log() const { return slurp(log_); }
  // Waits up to 30 s until perfwatchd has logged `what` with pid=PID `count` times (its probes attached).
  bool wait_for_log(const std::string& what, pid_t pid, int count) const;
  // Rewrites the config file (state_dir kept) without telling the daemon.
  void write_config(const std::string& config_body) const;

  // `perfwatch --config CONFIG args...`: {exit code, stdout}; stderr goes to dir/cli.log.
  std::pair<int, std::string> cli(const std::vector<std::string>& args) const;
  // `perfwatch flame --target T --since S --format folded`, expecting exit 0.
  std::string folded(const std::string& target, const std::string& since = "5m") const;

 private:
  bool start();

  std::filesystem::path dir_;
  std::string state_dir_;
  std::string config_, log_;
  std::vector<std::string> launcher_;
  pid_t pid_ = -1;
};

// tests/workloads/cache_reader (at path): commands on its stdin, "done" on its stdout for each.
class CacheReader {
 public:
  explicit CacheReader(const std::string& path);
  ~CacheReader();  // closes its stdin (it exits) and reaps it
  CacheReader(const CacheReader&) = delete;
  CacheReader& operator=(const CacheReader&) = delete;

  pid_t pid() const { return pid_; }
  // Sends the command and waits for its answer.
  std::string run(const std::string& command);

 private:
  pid_t pid_ = -1;
  int to_ = -1;
  std::FILE* from_ = nullptr;
};

// A file of `bytes` on a disk-backed filesystem (/var/tmp: never tmpfs, whose pages are not in the page
// cache's filemap paths), written page by page and synced, so that POSIX_FADV_DONTNEED can drop it.
std::filesystem::path make_cache_file(const std::string& name, std::size_t bytes);

// The element of doc[list] (a CLI JSON document: "operations", "caches") named `name`, or nullptr.
const nlohmann::json* find_named(const nlohmann::json& doc, const std::string& list, const std::string& name);

// The "cpu_ns N" line tests/workloads/cpu_split prints at exit, in seconds (0 without one).
double cpu_seconds(const std::string& out);

// Daemon::wait_for_log that fails the test, with the daemon's log, when the lines do not come.
void wait_for_log(const Daemon& daemon, const std::string& what, pid_t pid, int count);

// config/perfwatch.example.yaml for a test: no state_dir, 2 s windows, and the StatsD listener and the
// dashboard on ports of this test process's own, so that it runs beside other perfwatchd instances.
struct ExampleConfig {
  std::string yaml;
  std::string statsd;  // HOST:PORT of its StatsD listener (the demo's --statsd)
};
ExampleConfig example_config();

// Windows are written after they close: wait long enough for the one holding the last samples.
void wait_for_windows(std::chrono::seconds extra = std::chrono::seconds(5));

// Folded stacks parsed into per-frame inclusive sample counts.
struct Folded {
  std::uint64_t total = 0;
  std::map<std::string, std::uint64_t> inclusive;  // samples of stacks containing the frame
  std::vector<std::pair<std::string, std::uint64_t>> lines;

  explicit Folded(const std::string& text);
  // Percent of all samples whose stack contains frame.
  double share(const std::string& frame) const;
};

}  // namespace perfwatch::e2e
