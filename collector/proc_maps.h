#pragma once
// Parsing /proc/PID/maps: which file (as the process sees it, and by device and inode) backs each
// address range. Pure functions, so they are unit-tested on text.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace perfwatch::collector {

struct MapEntry {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::uint64_t pgoff = 0;  // file offset of start
  bool executable = false;
  std::uint32_t dev_major = 0;
  std::uint32_t dev_minor = 0;
  std::uint64_t inode = 0;  // 0 for anonymous and pseudo mappings
  std::string path;         // without the " (deleted)" suffix; "" when anonymous; "[heap]", "[vdso]", ...
  bool deleted = false;     // the file was unlinked (or replaced) after it was mapped

  bool file_backed() const { return inode != 0 && !path.empty() && path.front() == '/'; }
  // The name of this range in /proc/PID/map_files: "START-END" in lower-case hex.
  std::string map_files_name() const;
  bool same_file(dev_t dev, ino_t ino) const;
};

// One line of /proc/PID/maps; nullopt when it is malformed.
std::optional<MapEntry> parse_maps_line(std::string_view line);
// Every well-formed line of a maps file, in file order (which is address order).
std::vector<MapEntry> parse_maps(std::string_view text);

}  // namespace perfwatch::collector
