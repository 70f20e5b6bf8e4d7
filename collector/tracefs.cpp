#include "collector/tracefs.h"

#include <sys/mount.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
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

namespace {

// The tracefs file at `relative` under whichever tracefs mount exists, or "".
std::string tracefs_file(std::string_view relative) {
  for (const char* root : {kTracefsPath, kDebugfsTracingPath}) {
    std::string path = std::string(root) + "/" + std::string(relative);
    if (::access(path.c_str(), F_OK) == 0) return path;
  }
  return {};
}

}  // namespace

bool has_tracepoint(std::string_view category, std::string_view name) {
  return !tracefs_file("events/" + std::string(category) + "/" + std::string(name)).empty();
}

bool has_kprobe(std::string_view function) {
  if (::access("/sys/bus/event_source/devices/kprobe/type", F_OK) != 0 && tracefs_file("kprobe_events").empty())
    return false;
  // One function a line, "name" or "name [module]".
  std::ifstream in(tracefs_file("available_filter_functions"));
  for (std::string line; std::getline(in, line);)
    if (line.compare(0, line.find(' '), function) == 0) return true;
  return false;
}

}  // namespace perfwatch::collector
