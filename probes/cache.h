/* Types shared by cache.bpf.c and collector/cache_probes.cpp. */
#pragma once

#include "watched.h"

/* Per-slot counters; a slot is a target index, or the last slot (max_targets) for every process. */
enum cache_counter {
	CACHE_PAGE_LOOKUPS = 0,   /* page cache pages looked up: read(), mmap faults and fault-around */
	CACHE_PAGE_ADDED = 1,     /* pages added to the page cache */
	CACHE_PAGE_WRITE_ADDS = 2, /* of those, pages a write added and dirtied at once (not lookup misses) */
	CACHE_LLC_REFERENCES = 3, /* sampled: each sample adds its period */
	CACHE_LLC_MISSES = 4,
	CACHE_COUNTER_MAX = 5,
};

/* Per-CPU `counts` value, indexed by parity * (max_targets + 1) + slot. */
struct cache_counters {
	__u64 c[CACHE_COUNTER_MAX];
};

/* Per-CPU `app_counts` value, indexed by parity * max_app_caches + cache: USDT hits and misses. */
struct cache_app_counters {
	__u64 hits;
	__u64 misses;
};

/* A USDT probe's BPF cookie: the application cache's index, shifted, with the low bit set for the
 * miss probe. */
#define CACHE_USDT_MISS 1ull
