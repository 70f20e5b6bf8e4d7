// SPDX-License-Identifier: GPL-2.0
/* Operation latencies, entry to return, per call: native functions (uprobes), Python functions
 * (CPython's USDT probes) and file I/O system calls (syscalls tracepoints). Each call's duration
 * goes into its operation's histogram (probes/latency_hist.h) with count, sum, max and the number
 * of calls slower than the operation's threshold.
 *
 * Windows are double-buffered as in oncpu.bpf.c: a call is recorded into the histograms of parity
 * `epoch & 1` when it returns; user space flips the epoch, waits for running programs to finish,
 * then reads and clears the old half.
 *
 * Uprobes and USDT probes are attached per process (the kernel installs their breakpoints only in
 * that process, and CPython's USDT semaphores are raised only there), with the operation (uprobes)
 * or the target (USDT) as the BPF cookie. Syscall tracepoints are global and filter on `watched`. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>
#include "latency.h"
#include "watched.bpf.h"

#define S_IFMT 00170000
#define S_IFREG 0100000
/* Directory levels walked up from a file looking for a path_prefix. */
#define LAT_PATH_MAX_DEPTH 32

char LICENSE[] SEC("license") = "GPL";

/* Operations in the running config; set before load. */
const volatile __u32 max_ops = 1;

/* Written by user space through the mmapped .bss. */
__u32 epoch;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* max_ops */
	__type(key, __u32);
	__type(value, struct lat_op);
} ops SEC(".maps");

/* parity * max_ops + op */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2); /* 2 * max_ops */
	__type(key, __u32);
	__type(value, struct lat_hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct lat_counters);
} counters SEC(".maps");

/* Native calls in flight: per thread and operation, the entries' times and stack pointers. An
 * entry stays when its thread's calls have all returned (depth 0), so that the next call only looks
 * it up: an update and a delete per call cost more than the rest of the two programs. LRU, so the
 * entries of idle and dead threads make way for new ones. */
struct lat_call_key {
	__u32 tid;
	__u32 op;
};
struct lat_call_stack {
	__u32 depth;
	__u32 pad;
	__u64 ts[LAT_MAX_DEPTH];
	__u64 sp[LAT_MAX_DEPTH];
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct lat_call_key);
	__type(value, struct lat_call_stack);
} calls SEC(".maps");

struct lat_py_frame {
	__u64 ts;
	__u64 name_ptr;
	__u64 file_ptr;
	__u32 op;
	__u32 pad;
};
struct lat_py_stack {
	__u32 depth;
	__u32 pad;
	struct lat_py_frame f[LAT_PY_MAX_DEPTH];
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct lat_py_stack);
} py_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* set by user space */
	__type(key, struct lat_py_name_key);
	__type(value, __u8);
} py_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* set by user space */
	__type(key, struct lat_py_op_key);
	__type(value, __u32);
} py_ops SEC(".maps");

struct lat_py_scratch {
	char name[LAT_PY_NAME_LEN];
	char path[LAT_PY_PATH_LEN];
	__u64 depth; /* module components looked up so far (see module_step) */
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lat_py_scratch);
} py_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* set by user space */
	__type(key, struct lat_sys_key);
	__type(value, struct lat_sys_ops);
} sys_ops SEC(".maps");

struct lat_sys_call {
	__u64 ts;
	__u32 syscall;
	__u32 target;
	__u32 count;
	__u32 op[LAT_SYS_OPS];
	__u32 pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct lat_sys_call);
} sys_calls SEC(".maps");

static __always_inline __u32 parity(void)
{
	return *(volatile __u32 *)&epoch & 1;
}

static __always_inline void bump(__u32 counter)
{
	__u32 p = parity();
	struct lat_counters *c = bpf_map_lookup_elem(&counters, &p);

	/* Per-CPU, and these programs do not nest on a CPU: a plain increment suffices. */
	if (c && counter < LAT_COUNTER_MAX)
		c->c[counter]++;
}

static __always_inline void record(__u32 op, __u64 ns)
{
	__u32 index = parity() * max_ops + op;
	struct lat_op *cfg = bpf_map_lookup_elem(&ops, &op);
	struct lat_hist *h = bpf_map_lookup_elem(&hists, &index);
	__u32 bucket = lat_bucket(ns);
	__u64 old;
	int i;

	if (!cfg || !h || op >= max_ops)
		return;
	if (bucket >= LAT_BUCKETS)
		bucket = LAT_BUCKETS - 1;
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum_ns, ns);
	__sync_fetch_and_add(&h->buckets[bucket], 1);
	if (ns > cfg->threshold_ns)
		__sync_fetch_and_add(&h->slow, 1);
	old = h->max_ns;
	for (i = 0; i < 8 && ns > old; i++) {
		__u64 seen = __sync_val_compare_and_swap(&h->max_ns, old, ns);

		if (seen == old)
			break;
		old = seen;
	}
	bump(LAT_CALLS);
}

/* ---- native functions ------------------------------------------------------------------------ */

SEC("uprobe")
int uprobe_entry(struct pt_regs *ctx)
{
	struct lat_call_key key = { .tid = (__u32)bpf_get_current_pid_tgid(), .op = (__u32)bpf_get_attach_cookie(ctx) };
	struct lat_call_stack *st = bpf_map_lookup_elem(&calls, &key);
	__u64 sp;
	__u32 d;
	int i;

	if (!st) {
		struct lat_call_stack fresh = {};

		if (bpf_map_update_elem(&calls, &key, &fresh, BPF_NOEXIST) && bpf_map_update_elem(&calls, &key, &fresh, BPF_ANY)) {
			bump(LAT_MAP_FULL);
			return 0;
		}
		st = bpf_map_lookup_elem(&calls, &key);
		if (!st)
			return 0;
	}
	/* At entry the stack pointer points at the return address. Recorded calls deeper in the
	 * stack than this one have ended without a return (longjmp, exception): drop them. */
	sp = PT_REGS_SP(ctx);
	for (i = 0; i < LAT_MAX_DEPTH; i++) {
		d = st->depth;
		if (d == 0 || d > LAT_MAX_DEPTH || st->sp[(d - 1) & (LAT_MAX_DEPTH - 1)] >= sp)
			break;
		st->depth = d - 1;
		bump(LAT_UNWOUND);
	}
	d = st->depth;
	/* Deeper recursion is not recorded: those calls' returns find an outer frame on top and
	 * are counted as LAT_NO_ENTRY, never paired with the wrong entry. */
	if (d >= LAT_MAX_DEPTH)
		return 0;
	st->ts[d] = bpf_ktime_get_ns();
	st->sp[d] = sp;
	st->depth = d + 1;
	return 0;
}

/* Pairs a return with its entry by stack pointer: the return address has been popped, so the
 * entry's sp is 8 below. Entries deeper than that belong to calls left by longjmp or an exception
 * (whose return probes never fire); recursion pairs innermost first. */
SEC("uretprobe")
int uprobe_return(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	struct lat_call_key key = { .tid = (__u32)bpf_get_current_pid_tgid(), .op = (__u32)bpf_get_attach_cookie(ctx) };
	struct lat_call_stack *st = bpf_map_lookup_elem(&calls, &key);
	__u64 entry_sp = PT_REGS_SP(ctx) - 8;
	int i;

	if (!st) {
		bump(LAT_NO_ENTRY);
		return 0;
	}
	for (i = 0; i < LAT_MAX_DEPTH; i++) {
		__u32 d = st->depth;
		__u32 top = (d - 1) & (LAT_MAX_DEPTH - 1);

		if (d == 0 || d > LAT_MAX_DEPTH)
			break;
		if (st->sp[top] < entry_sp) {
			st->depth = d - 1;
			bump(LAT_UNWOUND);
			continue;
		}
		if (st->sp[top] == entry_sp) {
			record(key.op, now - st->ts[top]);
			st->depth = d - 1;
			return 0;
		}
		break;
	}
	bump(LAT_NO_ENTRY);
	return 0;
}

/* ---- Python functions ------------------------------------------------------------------------ */

struct module_walk {
	struct lat_py_scratch *s;
	struct lat_py_op_key *key;
	long len;
	__u64 hash;
	long op;
};

/* One character of the walk back from the end of the module path: the module's characters are
 * hashed in reverse ('/' as '.'), and at each component boundary the module made of the last 1,
 * 2, ... components is looked up. A bpf_loop callback, so the verifier checks the body once.
 * The components are counted in the scratch map value, not in `w` on the stack: a counter there is
 * tracked exactly from one call of the callback to the next, and one kernel build
 * (6.18.44-fc-v1300) walked that past a million instructions; what a map value holds is not tracked. */
static long module_step(__u32 i, void *ctx)
{
	struct module_walk *w = ctx;
	long pos = w->len - 1 - (long)i;
	char c = pos >= 0 ? w->s->path[pos & (LAT_PY_PATH_LEN - 1)] : '/';
	__u32 *op;

	if (c != '/') {
		w->hash = lat_fnv_step(w->hash, c);
		return 0;
	}
	if (i > 0) {
		w->key->module_hash = w->hash;
		op = bpf_map_lookup_elem(&py_ops, w->key);
		if (op) {
			w->op = *op;
			return 1;
		}
	}
	if (pos < 0 || ++w->s->depth >= LAT_PY_MAX_MODULE_DEPTH)
		return 1;
	w->hash = lat_fnv_step(w->hash, '.');
	return 0;
}

/* Eight characters, the first lowest: the 64-bit word they make in memory (x86-64 is little-endian). */
#define LAT_WORD8(a, b, c, d, e, f, g, h)                                                        \
	((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 | (__u64)(e) << 32 | \
	 (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)

/* The 8 bytes of the path before offset `end` (3 <= end < LAT_PY_PATH_LEN) as one word. Where end < 8
 * the low bytes are the end of `name`, which precedes `path` in the scratch value; callers compare
 * only the bytes of the path. One load instead of a compare per character. */
static __always_inline __u64 path_word(const struct lat_py_scratch *s, long end)
{
	return *(const __u64 *)(s->path + (end & (LAT_PY_PATH_LEN - 1)) - 8);
}

/* The operation a Python call belongs to, or -1. Costs one string read, a hash and a lookup for
 * every call; the file path is read only for functions whose name some operation has. */
static __always_inline long python_op(__u32 target, const char *file, const char *name)
{
	__u32 zero = 0;
	struct lat_py_scratch *s = bpf_map_lookup_elem(&py_scratch, &zero);
	struct lat_py_name_key name_key = { .target = target };
	struct lat_py_op_key op_key = { .target = target };
	struct module_walk walk = {};
	__u64 hash = LAT_FNV_OFFSET;
	long n, len;
	int i;

	if (!s)
		return -1;
	n = bpf_probe_read_user_str(s->name, sizeof(s->name), name);
	if (n <= 1)
		return -1;
	/* 8 bytes at a time, the last word masked to the name's end: at most 8 steps, which the verifier
	 * walks at most 8 times, and as cheap as the module walk's bpf_loop is not (its call per step costs
	 * ~20 ns, on every Python call). */
	for (i = 0; i < LAT_PY_NAME_LEN / 8; i++) {
		long left = n - 1 - i * 8;
		__u64 word;

		if (left <= 0)
			break;
		word = *(__u64 *)&s->name[i * 8];
		if (left < 8)
			word &= (1ull << (left * 8)) - 1;
		hash = lat_fnv_word(hash, word);
	}
	name_key.name_hash = hash;
	if (!bpf_map_lookup_elem(&py_names, &name_key))
		return -1;

	n = bpf_probe_read_user_str(s->path, sizeof(s->path), file);
	if (n <= 1)
		return -1;
	len = n - 1;
	/* "pkg/mod.py" is module pkg.mod, "pkg/__init__.py" is pkg, a script "bin/tool" is tool. */
	if (len >= 12 && path_word(s, len - 4) == LAT_WORD8('/', '_', '_', 'i', 'n', 'i', 't', '_') &&
	    path_word(s, len) >> 32 == LAT_WORD8('_', '.', 'p', 'y', 0, 0, 0, 0))
		len -= 12;
	else if (len >= 3 && path_word(s, len) >> 40 == LAT_WORD8('.', 'p', 'y', 0, 0, 0, 0, 0))
		len -= 3;

	op_key.name_hash = hash;
	s->depth = 0;
	walk.s = s;
	walk.len = len;
	walk.key = &op_key;
	walk.hash = LAT_FNV_OFFSET;
	walk.op = -1;
	bpf_loop(LAT_PY_PATH_LEN + 1, module_step, &walk, 0);
	return walk.op;
}

SEC("usdt")
int BPF_USDT(python_entry, const char *file, const char *name, int lineno)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	long op = python_op((__u32)bpf_usdt_cookie(ctx), file, name);
	struct lat_py_stack *st;
	__u32 d;

	if (op < 0)
		return 0;
	st = bpf_map_lookup_elem(&py_stacks, &tid);
	if (!st) {
		struct lat_py_stack fresh = {};

		if (bpf_map_update_elem(&py_stacks, &tid, &fresh, BPF_ANY)) {
			bump(LAT_MAP_FULL);
			return 0;
		}
		st = bpf_map_lookup_elem(&py_stacks, &tid);
		if (!st)
			return 0;
	}
	d = st->depth;
	if (d >= LAT_PY_MAX_DEPTH) {
		bump(LAT_MAP_FULL);
		return 0;
	}
	st->f[d].ts = bpf_ktime_get_ns();
	st->f[d].name_ptr = (__u64)name;
	st->f[d].file_ptr = (__u64)file;
	st->f[d].op = (__u32)op;
	st->depth = d + 1;
	return 0;
}

/* A return belongs to the innermost pending call of the same code: CPython passes the same
 * co_name and co_filename buffers at entry and return, so their addresses identify it without
 * reading or hashing anything. Threads with no pending call cost one lookup. */
SEC("usdt")
int BPF_USDT(python_return, const char *file, const char *name, int lineno)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct lat_py_stack *st = bpf_map_lookup_elem(&py_stacks, &tid);
	int i;

	if (!st)
		return 0;
	for (i = LAT_PY_MAX_DEPTH - 1; i >= 0; i--) {
		if (i >= st->depth)
			continue;
		if (st->f[i].name_ptr != (__u64)name || st->f[i].file_ptr != (__u64)file)
			continue;
		/* Pending calls above it had no return: CPython always fires one, so this means lost events. */
		if (st->depth - 1 > (__u32)i)
			bump(LAT_UNWOUND);
		record(st->f[i].op, now - st->f[i].ts);
		st->depth = i;
		if (i == 0)
			bpf_map_delete_elem(&py_stacks, &tid);
		return 0;
	}
	return 0;
}

/* ---- file I/O system calls ------------------------------------------------------------------- */

static __always_inline struct file *fd_file(__u64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

/* A dentry's first bytes, enough to hold d_parent, d_inode and d_sb (CO-RE offsets) on every kernel:
 * one read per directory level instead of one per field. */
#define LAT_DENTRY_HEAD 192

struct prefix_walk {
	struct dentry *d;
	struct mount *mnt;
	struct dentry *mnt_root; /* mnt's */
	__u64 ino;
	__u32 dev;
	__u32 found;
	__u8 head[LAT_DENTRY_HEAD];
};

#define LAT_DENTRY_FIELD(w, field) \
	(*(typeof(((struct dentry *)0)->field) *)((w)->head + bpf_core_field_offset(struct dentry, field)))

/* One directory level up from a file, crossing mount points, looking for (dev, ino). A bpf_loop
 * callback: an open-coded loop was verified once per level, for each operation of a system call
 * (most of sys_enter's 86,000 processed instructions). */
static long prefix_step(__u32 i, void *ctx)
{
	struct prefix_walk *w = ctx;
	struct dentry *d = w->d, *parent;
	struct mount *mnt = w->mnt, *up;
	struct inode *inode;
	struct super_block *sb;
	__u32 size = bpf_core_field_offset(struct dentry, d_sb) + sizeof(sb);

	if (!d || size > LAT_DENTRY_HEAD || bpf_probe_read_kernel(w->head, size, d))
		return 1;
	/* Locals: BPF_CORE_READ would relocate an access to w's fields too. */
	inode = LAT_DENTRY_FIELD(w, d_inode);
	sb = LAT_DENTRY_FIELD(w, d_sb);
	if (BPF_CORE_READ(inode, i_ino) == w->ino && BPF_CORE_READ(sb, s_dev) == w->dev) {
		w->found = 1;
		return 1;
	}
	if (d == w->mnt_root) {
		up = BPF_CORE_READ(mnt, mnt_parent);
		if (up == mnt)
			return 1;
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		w->mnt_root = BPF_CORE_READ(up, mnt.mnt_root);
		return 0;
	}
	parent = LAT_DENTRY_FIELD(w, d_parent);
	if (parent == d)
		return 1;
	w->d = parent;
	return 0;
}

/* Whether the file is the directory (dev, ino) or below it, at most LAT_PATH_MAX_DEPTH levels up. */
static __always_inline bool under_prefix(struct file *file, __u32 dev, __u64 ino)
{
	struct mount *mnt = container_of(BPF_CORE_READ(file, f_path.mnt), struct mount, mnt);
	struct prefix_walk walk = {
		.d = BPF_CORE_READ(file, f_path.dentry),
		.mnt = mnt,
		.mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root),
		.ino = ino,
		.dev = dev,
	};

	bpf_loop(LAT_PATH_MAX_DEPTH, prefix_step, &walk, 0);
	return walk.found;
}

static __always_inline bool file_matches(struct file *file, const struct lat_sys_filter *f)
{
	if (!file)
		return !(f->flags & (LAT_SYS_REGULAR_ONLY | LAT_SYS_PREFIX));
	if ((f->flags & LAT_SYS_REGULAR_ONLY) && (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFREG)
		return false;
	if ((f->flags & LAT_SYS_PREFIX) && !under_prefix(file, f->dev, f->ino))
		return false;
	return true;
}

/* A system call of kind `syscall` (enum lat_syscall) starts: calls on a file descriptor are
 * filtered here; openat, whose file exists only at exit, there. */
static __always_inline void syscall_enter(__u32 syscall, long fd)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	struct lat_sys_call call = { .syscall = syscall };
	struct lat_sys_key key = { .syscall = syscall };
	struct watch_value *w = bpf_map_lookup_elem(&watched, &tgid);
	struct lat_sys_ops *cfg;
	struct file *file = NULL;
	int i;

	if (!w)
		return;
	key.target = call.target = w->target;
	cfg = bpf_map_lookup_elem(&sys_ops, &key);
	if (!cfg)
		return;
	if (syscall != LAT_SYS_OPENAT)
		file = fd_file(fd);
	for (i = 0; i < LAT_SYS_OPS; i++) {
		if (i >= cfg->count)
			break;
		if (syscall == LAT_SYS_OPENAT || file_matches(file, &cfg->f[i]))
			call.op[call.count++ & (LAT_SYS_OPS - 1)] = i;
	}
	if (!call.count)
		return;
	call.ts = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&sys_calls, &tid, &call, BPF_ANY))
		bump(LAT_MAP_FULL);
}

static __always_inline void syscall_exit(__u32 syscall, long ret)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct lat_sys_call *call = bpf_map_lookup_elem(&sys_calls, &tid);
	struct lat_sys_key key;
	struct lat_sys_ops *cfg;
	struct file *file = NULL;
	int i;

	if (!call)
		return;
	key.target = call->target;
	key.syscall = call->syscall;
	cfg = bpf_map_lookup_elem(&sys_ops, &key);
	if (cfg && call->syscall == syscall) {
		if (syscall == LAT_SYS_OPENAT && ret >= 0)
			file = fd_file(ret);
		for (i = 0; i < LAT_SYS_OPS; i++) {
			__u32 slot;

			if (i >= call->count)
				break;
			slot = call->op[i] & (LAT_SYS_OPS - 1);
			if (syscall == LAT_SYS_OPENAT && !file_matches(file, &cfg->f[slot]))
				continue;
			record(cfg->f[slot].op, now - call->ts);
		}
	}
	bpf_map_delete_elem(&sys_calls, &tid);
}

/* Attached to syscalls:sys_enter_NAME and sys_exit_NAME with the enum lat_syscall as cookie. */
SEC("tracepoint")
int sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	syscall_enter((__u32)bpf_get_attach_cookie(ctx), ctx->args[0]);
	return 0;
}

SEC("tracepoint")
int sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	syscall_exit((__u32)bpf_get_attach_cookie(ctx), ctx->ret);
	return 0;
}

/* Fallback for kernels built without per-system-call tracepoints (CONFIG_FTRACE_SYSCALLS off):
 * raw_syscalls:sys_enter/sys_exit fire for every system call; sys_numbers maps the measured ones'
 * numbers to their enum lat_syscall + 1 (0: not measured). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LAT_SYS_NR_MAX);
	__type(key, __u32);
	__type(value, __u32);
} sys_numbers SEC(".maps");

static __always_inline __u32 measured_syscall(long nr)
{
	__u32 key = (__u32)nr;
	__u32 *kind = nr >= 0 && nr < LAT_SYS_NR_MAX ? bpf_map_lookup_elem(&sys_numbers, &key) : NULL;

	return kind ? *kind : 0;
}

SEC("tracepoint")
int raw_sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 kind = measured_syscall(ctx->id);

	if (kind)
		syscall_enter(kind - 1, ctx->args[0]);
	return 0;
}

SEC("tracepoint")
int raw_sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 kind = measured_syscall(ctx->id);

	if (kind)
		syscall_exit(kind - 1, ctx->ret);
	return 0;
}
