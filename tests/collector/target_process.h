#pragma once
// A test program run as a child process: the "NAME 0xADDRESS" lines it prints up to "ready" are
// read into addresses(); closing its stdin ends it. Killed and reaped on destruction.
#include <sys/types.h>

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "common/profile.h"

namespace perfwatch::profile {
// For gtest's failure messages.
void PrintTo(const Frame& frame, std::ostream* out);
}  // namespace perfwatch::profile

namespace perfwatch::test {

class TargetProcess {
 public:
  // Starts argv[0] with argv and waits for its "ready" line; fails the test (ADD_FAILURE) if it
  // does not come within a few seconds, leaving pid() at -1.
  explicit TargetProcess(const std::vector<std::string>& argv);
  ~TargetProcess();
  TargetProcess(const TargetProcess&) = delete;
  TargetProcess& operator=(const TargetProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // The address it printed under name; fails the test when it printed none.
  std::uint64_t address(const std::string& name) const;
  // Sends one command line and waits for the next "ready", reading the addresses printed before it.
  bool command(const std::string& line);
  // SIGKILL and reap; idempotent.
  void kill();

 private:
  bool read_until_ready();

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string pending_;  // read but not yet split into lines
  std::map<std::string, std::uint64_t> addresses_;
};

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Copies from to to (mode 0755) through a temporary file renamed over to: to gets a new inode.
void install_copy(const std::string& from, const std::string& to);
// Rewrites to in place with from's contents: to keeps its inode.
void overwrite_in_place(const std::string& from, const std::string& to);

}  // namespace perfwatch::test
