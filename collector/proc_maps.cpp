#include "collector/proc_maps.h"

#include <sys/sysmacros.h>

#include <charconv>
#include <cstdio>

namespace perfwatch::collector {
namespace {

// Splits off the next space-delimited field (leading spaces skipped).
std::string_view next_field(std::string_view& rest) {
  std::size_t begin = rest.find_first_not_of(' ');
  if (begin == std::string_view::npos) {
    rest = {};
    return {};
  }
  rest.remove_prefix(begin);
  std::size_t end = rest.find(' ');
  std::string_view field = rest.substr(0, end);
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  return field;
}

template <typename T>
bool parse_hex(std::string_view text, T& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, 16);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// "START-END" or "MAJOR:MINOR": two hex numbers around a separator.
template <typename T>
bool parse_hex_pair(std::string_view text, char separator, T& first, T& second) {
  std::size_t at = text.find(separator);
  return at != std::string_view::npos && parse_hex(text.substr(0, at), first) && parse_hex(text.substr(at + 1), second);
}

}  // namespace

std::string MapEntry::map_files_name() const {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%llx-%llx", static_cast<unsigned long long>(start),
                static_cast<unsigned long long>(end));
  return buf;
}

bool MapEntry::same_file(dev_t dev, ino_t ino) const {
  return ino == inode && major(dev) == dev_major && minor(dev) == dev_minor;
}

std::optional<MapEntry> parse_maps_line(std::string_view line) {
  // START-END PERMS OFFSET MAJOR:MINOR INODE [PATH]; PATH may contain spaces.
  MapEntry e;
  std::string_view rest = line;
  std::string_view perms;
  std::uint64_t inode = 0;
  if (!parse_hex_pair(next_field(rest), '-', e.start, e.end) || e.end < e.start) return std::nullopt;
  perms = next_field(rest);
  if (perms.size() < 4 || !parse_hex(next_field(rest), e.pgoff) ||
      !parse_hex_pair(next_field(rest), ':', e.dev_major, e.dev_minor))
    return std::nullopt;
  std::string_view inode_text = next_field(rest);
  auto [ptr, ec] = std::from_chars(inode_text.data(), inode_text.data() + inode_text.size(), inode);
  if (inode_text.empty() || ec != std::errc() || ptr != inode_text.data() + inode_text.size()) return std::nullopt;
  e.inode = inode;
  e.executable = perms[2] == 'x';

  std::size_t path_begin = rest.find_first_not_of(' ');
  std::string_view path = path_begin == std::string_view::npos ? std::string_view{} : rest.substr(path_begin);
  constexpr std::string_view kDeleted = " (deleted)";
  if (e.inode != 0 && path.ends_with(kDeleted)) {
    path.remove_suffix(kDeleted.size());
    e.deleted = true;
  }
  e.path = path;
  return e;
}

std::vector<MapEntry> parse_maps(std::string_view text) {
  std::vector<MapEntry> entries;
  while (!text.empty()) {
    std::size_t eol = text.find('\n');
    if (auto e = parse_maps_line(text.substr(0, eol))) entries.push_back(std::move(*e));
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
  }
  return entries;
}

}  // namespace perfwatch::collector
