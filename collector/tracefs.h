#pragma once
// libbpf resolves tracepoint ids through tracefs, which some hosts do not mount at boot.
#include "common/result.h"

namespace perfwatch::collector {

inline constexpr const char* kTracefsPath = "/sys/kernel/tracing";
inline constexpr const char* kDebugfsTracingPath = "/sys/kernel/debug/tracing";

// True when path is the root of a tracefs mount.
bool is_tracefs(const char* path);

// Mounts tracefs at /sys/kernel/tracing unless it, or debugfs' tracing directory, is one already.
// Call before attaching regular tracepoints (raw tracepoints do not need it).
Result<void> ensure_tracefs_mounted();

}  // namespace perfwatch::collector
