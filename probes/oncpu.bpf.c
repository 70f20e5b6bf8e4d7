// SPDX-License-Identifier: GPL-2.0
/* On-CPU stack sampler: a perf_event (cpu-clock) program that counts (tgid, generation, user
 * stack, kernel stack, Python stack) for watched processes with WATCH_PROFILE only. The Python
 * stack of a sample is walked by pystack.bpf.h for processes user space registered in py_procs.
 *
 * Windows are double-buffered: samples go to the maps of parity `epoch & 1`. At window close
 * user space increments `epoch`, waits until every program that may still have read the old
 * value has finished (see OncpuSampler::drain), then reads and clears the old parity's maps.
 * No sample is lost or counted twice at a boundary.
 *
 * Counts map: a preallocated HASH updated with atomic adds rather than a PERCPU_HASH: it costs
 * one atomic per sample instead of entries x CPUs x 8 bytes of memory (32 MiB for 65536 entries
 * on 64 CPUs), and drain reads one value per key instead of summing over CPUs. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "oncpu.h"
#include "watched.bpf.h"

#define EEXIST 17
#define EFAULT 14

char LICENSE[] SEC("license") = "GPL";

#include "pystack.bpf.h"

/* All max_entries below are set by user space before load. */
#define COUNTS_MAP(name)                        \
	struct {                                \
		__uint(type, BPF_MAP_TYPE_HASH); \
		__uint(max_entries, 1);          \
		__type(key, struct count_key);   \
		__type(value, __u64);            \
	} name SEC(".maps")

#define STACKS_MAP(name)                                                  \
	struct {                                                          \
		__uint(type, BPF_MAP_TYPE_STACK_TRACE);                    \
		__uint(max_entries, 1);                                    \
		__uint(key_size, sizeof(__u32));                           \
		__uint(value_size, ONCPU_MAX_STACK_DEPTH * sizeof(__u64)); \
	} name SEC(".maps")

COUNTS_MAP(counts_0);
COUNTS_MAP(counts_1);
STACKS_MAP(stacks_0);
STACKS_MAP(stacks_1);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2); /* one per parity */
	__type(key, __u32);
	__type(value, struct oncpu_counters);
} counters SEC(".maps");

/* Written by user space through the mmapped .bss. */
__u32 epoch;

/* Inlined once per parity so each call site sees constant map pointers. */
static __always_inline void count_sample(struct bpf_perf_event_data *ctx, void *counts, void *stacks,
					 void *py_stacks, struct oncpu_counters *ctr, __u32 tgid, __u32 tid,
					 const struct watch_value *w)
{
	struct count_key key = { .tgid = tgid, .generation = w->generation };
	__u64 one = 1, *count;
	long err;

	key.user_stack_id = bpf_get_stackid(ctx, stacks, BPF_F_USER_STACK);
	/* Interrupted in user mode: there is no kernel stack to walk. Skipping the helper saves its
	 * fixed cost on most samples of compute-bound code. Told from the interrupted IP, not from
	 * CS's privilege level: x86-64 user addresses lie in the canonical lower half (sign bit clear,
	 * 4- and 5-level paging alike) and kernel text in the upper one, while pt_regs.cs is a u16
	 * before 6.9 and the context only allows full-width loads of regs, which no CO-RE read of cs
	 * can give on every kernel. */
	if ((long)PT_REGS_IP(&ctx->regs) >= 0)
		key.kernel_stack_id = -EFAULT;
	else
		key.kernel_stack_id = bpf_get_stackid(ctx, stacks, 0);
	/* -EFAULT is an empty stack, not an error: a sample taken in user mode has no kernel
	 * stack, and one taken in the kernel after exit_mm() (an exiting process) has no user one. */
	if (key.user_stack_id == -EFAULT)
		key.user_stack_id = -1;
	if (key.kernel_stack_id == -EFAULT)
		key.kernel_stack_id = -1;
	if (key.user_stack_id < -1 || key.kernel_stack_id < -1 ||
	    (key.user_stack_id == -1 && key.kernel_stack_id == -1)) {
		if (key.user_stack_id == -EEXIST || key.kernel_stack_id == -EEXIST)
			ctr->c[ONCPU_STACK_COLLISION]++;
		else
			ctr->c[ONCPU_STACK_ERROR]++;
		return;
	}
	key.py_stack = py_collect(py_stacks, ctr, tgid, tid, w->generation);

	count = bpf_map_lookup_elem(counts, &key);
	if (!count) {
		err = bpf_map_update_elem(counts, &key, &one, BPF_NOEXIST);
		if (!err)
			goto counted;
		/* Another CPU inserted the key first; add to its entry. */
		if (err == -EEXIST)
			count = bpf_map_lookup_elem(counts, &key);
		if (!count) {
			ctr->c[ONCPU_MAP_FULL]++;
			return;
		}
	}
	__sync_fetch_and_add(count, 1);
counted:
	ctr->c[ONCPU_SAMPLES]++;
}

SEC("perf_event")
int oncpu_sample(struct bpf_perf_event_data *ctx)
{
	__u32 parity = *(volatile __u32 *)&epoch & 1;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct oncpu_counters *ctr;
	struct watch_value *w;

	/* Per-CPU and the program never nests on a CPU: plain increments suffice. */
	ctr = bpf_map_lookup_elem(&counters, &parity);
	if (!ctr)
		return 0;
	w = tgid ? bpf_map_lookup_elem(&watched, &tgid) : NULL;
	if (!w) {
		ctr->c[ONCPU_NOT_WATCHED]++;
		return 0;
	}
	if (!(w->flags & WATCH_PROFILE)) {
		ctr->c[ONCPU_NOT_PROFILED]++;
		return 0;
	}
	if (parity)
		count_sample(ctx, &counts_1, &stacks_1, &py_stacks_1, ctr, tgid, (__u32)pid_tgid, w);
	else
		count_sample(ctx, &counts_0, &stacks_0, &py_stacks_0, ctr, tgid, (__u32)pid_tgid, w);
	return 0;
}
