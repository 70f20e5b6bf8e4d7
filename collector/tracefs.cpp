#include "collector/tracefs.h"

#include <sys/mount.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/log.h"

namespace perfwatch::collector {
namespace {
constexpr long kTracefsMagic = 0x74726163;  // TRACEFS_MAGIC, linux/magic.h
}

bool is_tracefs(const char* path) {
  struct statfs fs {};
  return statfs(path, &fs) == 0 && fs.f_type == kTracefsMagic;
}

Result<void> ensure_tracefs_mounted() {
  // statfs on debugfs' tracing directory automounts tracefs there when debugfs is mounted.
  if (is_tracefs(kTracefsPath) || is_tracefs(kDebugfsTracingPath)) return {};
  // EBUSY: someone mounted it between the check and here.
  if (mount("nodev", kTracefsPath, "tracefs", 0, nullptr) != 0 && !(errno == EBUSY && is_tracefs(kTracefsPath)))
    return make_error(std::string("mount tracefs on ") + kTracefsPath + ": " + std::strerror(errno));
  log::info("mounted tracefs", {{"path", kTracefsPath}});
  return {};
}

}  // namespace perfwatch::collector
