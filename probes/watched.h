/* The `watched` map's value, shared by every .bpf.c (through watched.bpf.h) and user space
 * (collector/watched_map.h). Key: tgid (__u32). User space assigns a fresh generation each time it
 * registers a PID, so samples of a reused PID are never attributed to the process that held it before.
 * Every process of every target is watched (latency, caches and process events filter on it); only
 * those with WATCH_PROFILE have their CPU stacks sampled. */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* watch_value.flags */
#define WATCH_PROFILE 1u /* sample the process's CPU stacks (its target has `profile: true`) */

struct watch_value {
	__u32 generation;
	__u32 target; /* index of the target in the running config, so probes can key per target */
	__u32 flags;  /* WATCH_* */
	__u32 pad;
};
