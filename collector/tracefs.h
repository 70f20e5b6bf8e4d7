#pragma once
// libbpf resolves tracepoint ids through tracefs, which some hosts do not mount at boot.
#include <string_view>

#include "common/result.h"

namespace perfwatch::collector {

inline constexpr const char* kTracefsPath = "/sys/kernel/tracing";
inline constexpr const char* kDebugfsTracingPath = "/sys/kernel/debug/tracing";

// True when path is the root of a tracefs mount.
bool is_tracefs(const char* path);

// Mounts tracefs at /sys/kernel/tracing unless it, or debugfs' tracing directory, is one already.
// Call before attaching regular tracepoints (raw tracepoints do not need it).
Result<void> ensure_tracefs_mounted();

// What the running kernel can attach, for choosing before load which programs to load. Both read
// tracefs (mounted by then).
// Whether tracepoint category:name exists (a regular or a raw tracepoint can attach to it).
bool has_tracepoint(std::string_view category, std::string_view name);
// Whether a kprobe can attach to the kernel function: the kernel has kprobe events (the perf PMU or
// tracefs' kprobe_events) and the function is traceable.
bool has_kprobe(std::string_view function);

}  // namespace perfwatch::collector
