#pragma once
// The code a process runs, as a deploy changes it: its executable and shared libraries (the files of
// its executable mappings) by build-id, or by file identity when a binary has none; and any file it
// names (Python sources) by file identity.
#include <cstdint>
#include <map>
#include <string>

#include "common/result.h"

namespace perfwatch::collector {

struct ProcessCode {
  std::string executable;                      // path of the main executable
  std::map<std::string, std::string> binaries;  // path -> "build-id:HEX" or "file:DEV:INODE:MTIME:SIZE"
};

class CodeReader {
 public:
  explicit CodeReader(std::string proc_root = "/proc") : proc_root_(std::move(proc_root)) {}

  // Fails when the process is gone (a normal race). A binary that cannot be read is left out.
  Result<ProcessCode> binaries(std::int32_t pid);
  // "file:DEV:INODE:MTIME:SIZE" of a file as the process sees it (in its mount namespace).
  Result<std::string> file(std::int32_t pid, const std::string& path) const;

 private:
  std::string proc_root_;
  std::map<std::string, std::string> build_ids_;  // file identity -> build-id ("" when none), bounded
};

}  // namespace perfwatch::collector
