#include "collector/files.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace perfwatch::collector {

Result<std::string> read_file(const std::string& path, std::size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return make_error(path + ": " + std::strerror(errno));
  std::string text;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(path + ": " + std::strerror(errno));
    if (n == 0) return text;
    if (text.size() + static_cast<std::size_t>(n) > max_bytes)
      return make_error(path + ": longer than " + std::to_string(max_bytes) + " bytes");
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

UniqueFd open_read_only(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
}

namespace {

constexpr int read_flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

Result<UniqueFd> regular_only(UniqueFd fd, const std::string& path) {
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return make_error(path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return make_error(path + ": not a regular file");
  if (st.st_size == 0) return make_error(path + ": empty");
  return fd;
}

// Without openat2 (kernels before 5.6): one component at a time, refusing `..` and symbolic links.
UniqueFd open_by_components(int dir, const std::string& relative) {
  UniqueFd current;
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = std::min(relative.find('/', start), relative.size());
    const std::string part = relative.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") return UniqueFd();
    const bool last = slash == relative.size();
    const int flags = last ? read_flags | O_NOFOLLOW : O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
    UniqueFd next(::openat(current ? current.get() : dir, part.c_str(), flags));
    if (!next || last) return next;
    current = std::move(next);
    start = slash + 1;
  }
}

}  // namespace

Result<UniqueFd> open_regular(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), read_flags));
  if (!fd) return make_error(path + ": " + std::strerror(errno));
  return regular_only(std::move(fd), path);
}

Result<UniqueFd> open_regular_beneath(const std::string& dir, const std::string& relative) {
  const std::string path = dir + "/" + relative;
  UniqueFd base(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!base) return make_error(dir + ": " + std::strerror(errno));
  open_how how{};
  how.flags = read_flags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, base.get(), relative.c_str(), &how, sizeof how)));
  if (!fd && (errno == ENOSYS || errno == E2BIG)) fd = open_by_components(base.get(), relative);
  if (!fd) return make_error(path + ": " + (errno == EXDEV ? std::string("leads out of ") + dir : std::strerror(errno)));
  return regular_only(std::move(fd), path);
}

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
