#pragma once
// File helpers for the symbolizer: an owned descriptor, whole-file reads (of /proc files, whose
// size stat cannot tell) and file identities.
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "common/result.h"

namespace perfwatch::collector {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// The whole file; the error names the path and errno's text.
Result<std::string> read_file(const std::string& path);

// "DEV:INODE:MTIME:SIZE": names one version of a file (a file rewritten in place differs in mtime
// or size), for caches of what was parsed from it.
std::string file_identity(const struct stat& st);

}  // namespace perfwatch::collector
