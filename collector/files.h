#pragma once
// File helpers for the symbolizer, the latency probes and the Python interpreter finder: an owned
// descriptor, whole-file reads (of /proc files, whose size stat cannot tell), file identities and
// opening a process's mapped files.
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <utility>

#include "collector/proc_maps.h"
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

// The whole file, up to max_bytes (an error past them: /proc/PID/maps of a process with a million mappings
// is not read whole); the error names the path and errno's text.
Result<std::string> read_file(const std::string& path, std::size_t max_bytes = 64 << 20);

// "DEV:INODE:MTIME:SIZE": names one version of a file (a file rewritten in place differs in mtime
// or size), for caches of what was parsed from it.
std::string file_identity(const struct stat& st);

// Opens for reading without ever blocking: a FIFO or a device a path names opens at once (O_NONBLOCK) and
// is then told apart by fstat, not read.
UniqueFd open_read_only(const std::string& path);

// Files a process names (its debug files) are opened only when they are regular files with contents: never
// a FIFO, a device or a /proc file (whose size is 0). The error says why not.
Result<UniqueFd> open_regular(const std::string& path);
// Likewise for `relative` below the directory `dir`, resolved so that it stays below it: no `..`, no
// symbolic link leading out of it, no other mount (openat2 RESOLVE_BENEATH, or one component at a time
// without following links where the kernel lacks it).
Result<UniqueFd> open_regular_beneath(const std::string& dir, const std::string& relative);

// The executable mapping of `binary` (an absolute path, or a file name matched against each mapped
// file's name) in process pid: entry is empty while the binary is not mapped (yet).
struct MappedBinary {
  bool gone = false;  // the process is
  std::optional<MapEntry> entry;
};
MappedBinary find_mapped_binary(std::int32_t pid, const std::string& binary);

// The file behind a mapping of process pid: /proc/PID/map_files (the mapped file itself, even
// deleted, replaced or in another mount namespace; needs CAP_SYS_ADMIN), else PROC/PID/root/PATH or
// PATH when their device and inode are the mapping's.
Result<UniqueFd> open_mapped_file(const std::string& proc_root, std::int32_t pid, const MapEntry& entry,
                                  bool use_map_files = true);

}  // namespace perfwatch::collector
