/* Types shared by procevents.bpf.c and collector/proc_events.cpp. */
#pragma once

#include "watched.h"

#define PROCEV_COMM_LEN 16

enum proc_event_type {
	PROCEV_EXEC = 1, /* every exec, so user space can re-match targets */
	PROCEV_FORK = 2, /* a new process forked by a watched one; already added to `watched` */
	PROCEV_EXIT = 3, /* the last thread of a watched process exited; removed from `watched` */
};

struct procev_event {
	__u32 type;
	__u32 pid;        /* tgid */
	__u32 ppid;       /* tgid of the parent (EXEC, FORK) */
	__u32 generation; /* watched generation (FORK, EXIT) */
	char comm[PROCEV_COMM_LEN];
};

enum procev_counter {
	PROCEV_RINGBUF_DROPS = 0, /* bpf_ringbuf_reserve failed: the event is lost */
	PROCEV_INHERIT_FAILED = 1, /* a watched parent's child could not be added to `watched` */
	PROCEV_COUNTER_MAX = 2,
};
