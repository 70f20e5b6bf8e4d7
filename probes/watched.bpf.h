/* The `watched` map (watched.h), included by every .bpf.c. User space creates it once
 * (collector::WatchedMap) and every skeleton reuses its fd before load, so each collector filters on
 * the same processes and none owns the map. */
#pragma once

#include "watched.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* the fd user space reuses sets the size */
	__type(key, __u32);
	__type(value, struct watch_value);
} watched SEC(".maps");
