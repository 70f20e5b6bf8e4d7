#pragma once
// Windows waiting for the database, one file each under the spool directory, oldest first. Survives
// daemon restarts; bounded in bytes (with the windows set aside): past the bound the oldest windows
// are dropped and counted.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/profile.h"
#include "common/result.h"

namespace perfwatch::storage {

// A window as bytes (CBOR, versioned), and back. Decoding checks every index, so a corrupt file
// yields an error, never a malformed window.
std::vector<std::uint8_t> encode_window(const profile::WindowProfile& window);
Result<profile::WindowProfile> decode_window(const std::vector<std::uint8_t>& bytes);

// The file-system calls that make a spooled window durable, behind an interface so that tests can see
// their order (data synced before the rename that publishes it, the directory synced after it) and
// make them fail (a full disk). Each returns what its POSIX namesake returns, with errno set.
class FileOps {
 public:
  virtual ~FileOps() = default;
  virtual int open(const std::string& path, int flags, mode_t mode) = 0;
  virtual ssize_t write(int fd, const void* data, std::size_t size) = 0;
  virtual int fsync(int fd) = 0;
  virtual int close(int fd) = 0;
  virtual int rename(const std::string& from, const std::string& to) = 0;
};

// The system's calls.
FileOps& system_file_ops();

class Spool {
 public:
  struct Entry {
    std::string path;
    std::uint64_t bytes = 0;
    profile::TimePoint start{};  // the window's, from its name (the epoch for a name not in that form)
  };

  // Creates the directory if needed and indexes the windows a previous run left there. Windows a
  // previous run set aside (failed/) are put back in line: a newer perfwatchd, or a repaired
  // database, may store them; those that fail again are set aside again.
  static Result<Spool> open(std::string dir, std::uint64_t max_bytes, FileOps& files = system_file_ops());

  // Writes the window durably (temporary file, fsync, rename, fsync of the directory), then drops
  // windows while the spool, set-aside windows included, exceeds its bound: the oldest set-aside
  // ones first, then the oldest waiting (never the one just written).
  Result<Entry> push(const profile::WindowProfile& window);
  std::optional<Entry> oldest() const;
  Result<profile::WindowProfile> load(const Entry& entry) const;
  void remove(const Entry& entry);
  // Sets aside a window the database will not take, in <dir>/failed/, out of the way of the others.
  void quarantine(const Entry& entry);

  std::uint64_t bytes() const { return bytes_; }
  std::size_t size() const { return entries_.size(); }
  std::uint64_t quarantine_bytes() const { return quarantine_bytes_; }
  std::size_t quarantine_size() const { return quarantined_.size(); }
  std::uint64_t dropped() const { return dropped_; }  // windows dropped past the bound

 private:
  Spool(std::string dir, std::uint64_t max_bytes, FileOps& files)
      : dir_(std::move(dir)), max_bytes_(max_bytes), files_(&files) {}
  void forget(const Entry& entry);
  void drop_past_bound(const std::string& keep);

  std::string dir_;
  std::uint64_t max_bytes_;
  FileOps* files_;
  std::vector<Entry> entries_;      // waiting, sorted by name: window start, then sequence
  std::vector<Entry> quarantined_;  // set aside, oldest first
  std::uint64_t bytes_ = 0;
  std::uint64_t quarantine_bytes_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t sequence_ = 0;
};

}  // namespace perfwatch::storage
