#include "collector/files.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace perfwatch::collector {

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return make_error(path + ": " + std::strerror(errno));
  std::string text;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(path + ": " + std::strerror(errno));
    if (n == 0) return text;
    text.append(buf, static_cast<std::size_t>(n));
  }
}

std::string file_identity(const struct stat& st) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%llx:%llx:%lld.%09ld:%lld", static_cast<unsigned long long>(st.st_dev),
                static_cast<unsigned long long>(st.st_ino), static_cast<long long>(st.st_mtim.tv_sec),
                st.st_mtim.tv_nsec, static_cast<long long>(st.st_size));
  return buf;
}

UniqueFd open_read_only(const std::string& path) { return UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); }

Result<UniqueFd> open_mapped_file(const std::string& proc_root, std::int32_t pid, const MapEntry& e,
                                  bool use_map_files) {
  std::string proc_pid = proc_root + "/" + std::to_string(pid);
  if (use_map_files) {
    if (UniqueFd fd = open_read_only(proc_pid + "/map_files/" + e.map_files_name())) return fd;
  }
  // A path may name another file by now: only the one with the mapping's device and inode will do.
  std::string error = "no file with the mapping's device and inode";
  for (const std::string& path : {proc_pid + "/root" + e.path, e.path}) {
    UniqueFd fd = open_read_only(path);
    struct stat st {};
    if (!fd)
      error = path + ": " + std::strerror(errno);
    else if (fstat(fd.get(), &st) == 0 && e.same_file(st.st_dev, st.st_ino))
      return fd;
  }
  return make_error(error);
}

MappedBinary find_mapped_binary(std::int32_t pid, const std::string& binary) {
  Result<std::string> maps_text = read_file("/proc/" + std::to_string(pid) + "/maps");
  if (!maps_text) return {true, std::nullopt};
  for (MapEntry& e : parse_maps(*maps_text)) {
    const std::string_view name = std::string_view(e.path).substr(e.path.rfind('/') + 1);
    if (e.executable && e.file_backed() && (binary.starts_with('/') ? e.path == binary : name == binary))
      return {false, std::move(e)};
  }
  return {};
}

}  // namespace perfwatch::collector
