/* The `watched` map's value, shared by oncpu.bpf.c, procevents.bpf.c and user space.
 * Key: tgid (__u32). User space assigns a fresh generation each time it registers a PID,
 * so samples of a reused PID are never attributed to the process that held it before. */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

struct watch_value {
	__u32 generation;
	__u32 target; /* index of the target in the running config, so probes can key per target */
};
