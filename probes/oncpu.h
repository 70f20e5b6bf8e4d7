/* Types shared by oncpu.bpf.c and collector/oncpu_sampler.cpp. */
#pragma once

#include "pystack.h"
#include "watched.h"

/* PERF_MAX_STACK_DEPTH: the deepest stack bpf_get_stackid records. */
#define ONCPU_MAX_STACK_DEPTH 127

/* Counts map key. A stack id of -1 means "no such stack": the kernel stack of a sample taken in
 * user mode, or the user stack of a process that has released its memory while exiting.
 * py_stack: PY_STACK_NONE, PY_STACK_LOST or the key of the sample's Python stack (pystack.h). */
struct count_key {
	__u32 tgid;
	__u32 generation;
	__s32 user_stack_id;
	__s32 kernel_stack_id;
	__u64 py_stack;
};

enum oncpu_counter {
	ONCPU_SAMPLES = 0,         /* counted in the counts map */
	ONCPU_STACK_COLLISION = 1, /* bpf_get_stackid: -EEXIST (hash bucket taken), sample dropped */
	ONCPU_STACK_ERROR = 2,     /* bpf_get_stackid: any other error, sample dropped */
	ONCPU_MAP_FULL = 3,        /* counts map had no room, sample dropped */
	ONCPU_NOT_WATCHED = 4,     /* sample of a process that is not watched (idle included) */
	ONCPU_NOT_PROFILED = 5,    /* sample of a watched process whose target has `profile: false` */
	ONCPU_COUNTER_MAX = 6,
};

/* Value of the per-CPU `counters` array, indexed by window parity (epoch & 1), so a window's
 * counters are as exact as its counts. */
struct oncpu_counters {
	__u64 c[ONCPU_COUNTER_MAX];
	__u64 py[PY_COUNTER_MAX];
};
