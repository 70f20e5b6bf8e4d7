// SPDX-License-Identifier: GPL-2.0
/* Process lifecycle for the daemon: every exec, forks of watched processes (whose children are
 * added to `watched` before they run their first instruction) and the exit of watched processes
 * (removed from `watched`, so a reused PID is never sampled under the old target).
 * Raw tracepoints, not tp_btf: fentry-class programs are unavailable on some hosts; arguments
 * are read with CO-RE (BPF_CORE_READ goes through bpf_probe_read_kernel). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "procevents.h"
#include "watched.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1); /* set by user space before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PROCEV_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void bump(__u32 counter)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &counter);

	if (v)
		(*v)++;
}

static __always_inline void emit(__u32 type, __u32 pid, __u32 ppid, __u32 generation,
				 struct task_struct *task)
{
	struct procev_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		bump(PROCEV_RINGBUF_DROPS);
		return;
	}
	e->type = type;
	e->pid = pid;
	e->ppid = ppid;
	e->generation = generation;
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	bpf_ringbuf_submit(e, 0);
}

/* TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm); p is current. */
SEC("raw_tp/sched_process_exec")
int handle_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];

	emit(PROCEV_EXEC, BPF_CORE_READ(task, tgid), BPF_CORE_READ(task, real_parent, tgid), 0, task);
	return 0;
}

/* TP_PROTO(struct task_struct *parent, struct task_struct *child). Fires before the child is
 * first woken, so it is watched from its first instruction, with its parent's whole value: the same
 * generation, target and flags (profiled or not). */
SEC("raw_tp/sched_process_fork")
int handle_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	__u32 parent_tgid;
	struct watch_value *w;

	if (BPF_CORE_READ(child, pid) != child_tgid)
		return 0; /* a new thread, not a new process */
	parent_tgid = BPF_CORE_READ(parent, tgid);
	w = bpf_map_lookup_elem(&watched, &parent_tgid);
	if (!w)
		return 0;
	if (bpf_map_update_elem(&watched, &child_tgid, w, BPF_ANY)) {
		bump(PROCEV_INHERIT_FAILED);
		return 0;
	}
	emit(PROCEV_FORK, child_tgid, parent_tgid, w->generation, child);
	return 0;
}

/* TP_PROTO(struct task_struct *p[, bool group_dead]): the group_dead argument only exists since
 * 6.16, while do_exit() has always decremented signal->live before this tracepoint, so
 * live == 0 identifies the last thread of the group on every kernel. */
SEC("raw_tp/sched_process_exit")
int handle_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct watch_value *w;
	__u32 generation;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	w = bpf_map_lookup_elem(&watched, &tgid);
	if (!w)
		return 0;
	generation = w->generation;
	/* Only the thread whose delete succeeds reports, should two last threads race here. */
	if (bpf_map_delete_elem(&watched, &tgid))
		return 0;
	emit(PROCEV_EXIT, tgid, 0, generation, task);
	return 0;
}
