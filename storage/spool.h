#pragma once
// Windows waiting for the database, one file each under the spool directory, oldest first. Survives
// daemon restarts; bounded in bytes: past the bound the oldest windows are dropped and counted.
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

class Spool {
 public:
  struct Entry {
    std::string path;
    std::uint64_t bytes = 0;
    profile::TimePoint start{};  // the window's, from its name (the epoch for a name not in that form)
  };

  // Creates the directory if needed and indexes the windows a previous run left there.
  static Result<Spool> open(std::string dir, std::uint64_t max_bytes);

  // Writes the window durably (temporary file, fsync, rename), then drops the oldest windows while
  // the spool exceeds its bound (never the one just written).
  Result<void> push(const profile::WindowProfile& window);
  std::optional<Entry> oldest() const;
  Result<profile::WindowProfile> load(const Entry& entry) const;
  void remove(const Entry& entry);
  // Moves a window that keeps failing to <dir>/failed/, out of the way of the others.
  void quarantine(const Entry& entry);

  std::uint64_t bytes() const { return bytes_; }
  std::size_t size() const { return entries_.size(); }
  std::uint64_t dropped() const { return dropped_; }  // windows dropped past the bound

 private:
  Spool(std::string dir, std::uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  void forget(const Entry& entry);

  std::string dir_;
  std::uint64_t max_bytes_;
  std::vector<Entry> entries_;  // sorted by name: window start, then sequence
  std::uint64_t bytes_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t sequence_ = 0;
};

}  // namespace perfwatch::storage
