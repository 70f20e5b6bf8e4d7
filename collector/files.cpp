#include "collector/files.h"

#include <fcntl.h>

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

}  // namespace perfwatch::collector
