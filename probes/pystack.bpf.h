/* CPython frame walker, part of oncpu.bpf.c: at a sample of a thread of a watched process that
 * runs CPython, finds the thread's PyThreadState, walks its interpreter frames (leaf first, at
 * most py_max_depth) and records each frame's code object and instruction index in a
 * double-buffered map keyed by a hash of them. The tags of the code objects (what user space
 * checks them against) are read only when a stack is new in its window: a walk then costs one
 * read per frame.
 *
 * The thread state: user space gives the address of _PyRuntime (py_procs); the walker follows
 * _PyRuntime.interpreters.main -> its thread list and matches each thread state's native thread
 * id to the sampled thread. The match is cached per thread (py_threads, LRU) and checked again at
 * every use, so threads that come and go (or thread states freed and reused) never need user space.
 * Threads without a thread state (native threads) are remembered for PY_RETRY_NS before the list
 * is walked again.
 *
 * Every read of the target's memory is a bpf_probe_read_user that may fail; nothing read is
 * trusted further than "an address to read next". A stack is only recorded when the whole walk
 * succeeded. New stacks are also announced on py_events, so user space reads their code objects
 * while the process is still alive. */
#pragma once

#include "pystack.h"

const volatile __u32 py_max_depth = 64;
/* How long a thread without a thread state is not looked for again. */
#define PY_RETRY_NS 200000000ULL
const volatile struct py_layout py_layouts[PY_MAX_LAYOUTS] = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_proc);
} py_procs SEC(".maps");

struct py_thread {
	__u64 tstate;   /* 0: the thread had no thread state at the last look */
	__u64 retry_at; /* when tstate is 0: bpf_ktime_get_ns() after which to look again */
	__u32 tgid;
	__u32 generation;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, __u32); /* thread id */
	__type(value, struct py_thread);
} py_threads SEC(".maps");

#define PY_STACKS_MAP(name)                      \
	struct {                                 \
		__uint(type, BPF_MAP_TYPE_HASH); \
		__uint(max_entries, 1);          \
		__type(key, __u64);              \
		__type(value, struct py_stack);  \
	} name SEC(".maps")

PY_STACKS_MAP(py_stacks_0);
PY_STACKS_MAP(py_stacks_1);

struct py_scratch {
	struct py_stack stack;
	__u8 frame[PY_FRAME_CHUNK];
	__u8 code[PY_CODE_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_scratch);
} py_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1);
} py_events SEC(".maps");

static __always_inline __u64 py_read_ptr(__u64 addr)
{
	__u64 value = 0;

	if (bpf_probe_read_user(&value, sizeof(value), (const void *)addr))
		return 0;
	return value;
}

/* Fields of a chunk read at once; offsets come from the layout, bounded here for the verifier. */
static __always_inline __u64 py_chunk_u64(const __u8 *chunk, __u32 off, __u32 size)
{
	if (off > size - 8)
		return 0;
	return *(const __u64 *)(chunk + off);
}

static __always_inline __u32 py_chunk_u32(const __u8 *chunk, __u32 off, __u32 size)
{
	if (off > size - 4)
		return 0;
	return *(const __u32 *)(chunk + off);
}

static __always_inline __u8 py_chunk_u8(const __u8 *chunk, __u32 off, __u32 size)
{
	if (off > size - 1)
		return 0;
	return chunk[off];
}

/* The id the layout's thread states are matched by: the kernel thread id, or for pthread ids
 * the thread pointer, which is pthread_self() on x86-64 (glibc and musl). */
static __always_inline __u64 py_thread_id(const volatile struct py_layout *l, __u32 tid)
{
	struct task_struct *task;

	if (!(l->flags & PY_LAYOUT_PTHREAD_ID))
		return tid;
	task = bpf_get_current_task_btf();
	return BPF_CORE_READ(task, thread.fsbase);
}

static __always_inline bool py_is_thread(const volatile struct py_layout *l, __u64 tstate, __u64 id)
{
	__u64 value = 0;

	if (bpf_probe_read_user(&value, sizeof(value), (const void *)(tstate + l->tstate_thread_id)))
		return false;
	return value == id;
}

struct py_thread_walk {
	const volatile struct py_layout *l;
	__u64 id;
	__u64 tstate; /* next thread state to look at */
	__u64 found;
};

static long py_thread_step(__u32 index, void *arg)
{
	struct py_thread_walk *t = arg;

	if (!t->tstate)
		return 1;
	if (py_is_thread(t->l, t->tstate, t->id)) {
		t->found = t->tstate;
		return 1;
	}
	t->tstate = py_read_ptr(t->tstate + t->l->tstate_next);
	return 0;
}

static __always_inline __u64 py_thread_state(const volatile struct py_layout *l, const struct py_proc *proc,
					     __u32 tgid, __u32 tid)
{
	struct py_thread *cached = bpf_map_lookup_elem(&py_threads, &tid);
	struct py_thread fresh = { .tgid = tgid, .generation = proc->generation };
	struct py_thread_walk t = { .l = l, .id = py_thread_id(l, tid) };
	__u64 now = bpf_ktime_get_ns();
	__u64 interp;

	if (cached && cached->tgid == tgid && cached->generation == proc->generation) {
		if (cached->tstate && py_is_thread(l, cached->tstate, t.id))
			return cached->tstate;
		if (!cached->tstate && now < cached->retry_at)
			return 0;
	}
	interp = py_read_ptr(proc->runtime + l->runtime_interp_main);
	t.tstate = interp ? py_read_ptr(interp + l->interp_threads_head) : 0;
	if (!t.tstate)
		return 0; /* not initialized yet: nothing to remember */
	bpf_loop(PY_MAX_THREAD_WALK, py_thread_step, &t, 0);
	fresh.tstate = t.found;
	if (!fresh.tstate)
		fresh.retry_at = now + PY_RETRY_NS;
	bpf_map_update_elem(&py_threads, &tid, &fresh, BPF_ANY);
	return fresh.tstate;
}

/* What py_walk_step carries from one step to the next. The frame count is s->stack.depth, in the
 * scratch map value rather than here on the stack: kernels before 6.7 verify a bpf_loop callback once,
 * with the values of its first call, and remove the branches those make look dead; with the count on
 * the stack (0 at the first call), 6.1 dropped the depth limit. */
struct py_walk {
	struct py_scratch *s;
	const volatile struct py_layout *l;
	__u64 frame; /* next frame to read */
	__u64 h1, h2;
	bool error;
	bool truncated;
};

static __always_inline void py_set_entry(struct py_stack *stack, __u32 i)
{
	if (i >= PY_MAX_DEPTH)
		return;
	/* The mask changes nothing past the check, but 6.1's verifier may not know that: it does not carry
	 * a 32-bit check's bound over to another copy of the value (a spilled one). The barrier keeps
	 * clang from dropping the mask as redundant. */
	barrier_var(i);
	stack->entry[(i / 64) & (PY_MAX_DEPTH / 64 - 1)] |= 1ULL << (i % 64);
}

/* One bpf_loop step: reads one frame. Returns 1 to stop. */
static long py_walk_step(__u32 index, void *arg)
{
	struct py_walk *w = arg;
	struct py_scratch *s = w->s;
	const volatile struct py_layout *l = w->l;
	struct py_frame *out;
	__u64 code, previous, instr;
	__u32 depth = s->stack.depth, size;
	__s32 lasti;

	if (!w->frame)
		return 1;
	size = l->frame_read;
	if (size > PY_FRAME_CHUNK)
		size = PY_FRAME_CHUNK;
	if (bpf_probe_read_user(s->frame, size, (const void *)w->frame)) {
		w->error = true;
		return 1;
	}
	code = py_chunk_u64(s->frame, l->frame_code, PY_FRAME_CHUNK);
	previous = py_chunk_u64(s->frame, l->frame_previous, PY_FRAME_CHUNK);
	if (l->frame_owner != PY_ABSENT &&
	    py_chunk_u8(s->frame, l->frame_owner, PY_FRAME_CHUNK) == l->owner_cstack) {
		/* A C-stack shim (3.12+): the frame recorded before it began an eval-loop call. */
		if (depth > 0)
			py_set_entry(&s->stack, depth - 1);
		w->frame = previous;
		return 0;
	}
	if (depth >= py_max_depth || depth >= PY_MAX_DEPTH) {
		w->truncated = true;
		return 1;
	}
	if (!code) {
		w->error = true;
		return 1;
	}
	if (l->flags & PY_LAYOUT_LASTI_INDEX) {
		lasti = (__s32)py_chunk_u32(s->frame, l->frame_instr, PY_FRAME_CHUNK);
	} else {
		instr = py_chunk_u64(s->frame, l->frame_instr, PY_FRAME_CHUNK);
		lasti = (__s32)((__s64)(instr - (code + l->code_units)) >> 1); /* code units are 2 bytes */
	}
	out = &s->stack.frames[depth & (PY_MAX_DEPTH - 1)];
	out->code = code;
	out->lasti = lasti;
	if ((l->flags & PY_LAYOUT_ALL_ENTRY) ||
	    (l->frame_is_entry != PY_ABSENT && py_chunk_u8(s->frame, l->frame_is_entry, PY_FRAME_CHUNK)))
		py_set_entry(&s->stack, depth);
	w->h1 = py_mix(py_mix(w->h1, code), (__u32)lasti);
	w->h2 = py_mix(py_mix(w->h2 ^ 0x5bd1e995, (__u64)(__u32)lasti << 32), code);
	s->stack.depth = depth + 1;
	w->frame = previous;
	return 0;
}

/* One bpf_loop step over a new stack's frames: reads the code object's tag. Returns 1 to stop. */
static long py_tag_step(__u32 index, void *arg)
{
	struct py_walk *w = arg;
	struct py_scratch *s = w->s;
	const volatile struct py_layout *l = w->l;
	struct py_frame *f;
	__u32 size = l->code_read;

	if (index >= PY_MAX_DEPTH)
		return 1;
	f = &s->stack.frames[index];
	if (size > PY_CODE_CHUNK)
		size = PY_CODE_CHUNK;
	if (bpf_probe_read_user(s->code, size, (const void *)(f->code + l->code_tag_base))) {
		w->error = true;
		return 1;
	}
	f->tag = py_code_tag(py_chunk_u32(s->code, l->code_firstlineno, PY_CODE_CHUNK),
			     py_chunk_u64(s->code, l->code_filename, PY_CODE_CHUNK),
			     py_chunk_u64(s->code, l->code_name, PY_CODE_CHUNK),
			     py_chunk_u64(s->code, l->code_linetable, PY_CODE_CHUNK));
	return 0;
}

/* The count_key.py_stack of this sample: PY_STACK_NONE, PY_STACK_LOST or the hash of its
 * stack, which is then in py_stacks (this parity's). */
static __always_inline __u64 py_collect(void *py_stacks, struct oncpu_counters *ctr, __u32 tgid, __u32 tid,
					 __u32 generation)
{
	const volatile struct py_layout *l;
	struct py_stack *stored;
	struct py_proc *proc;
	struct py_walk w = {};
	__u64 tstate, holder, key;
	__u32 zero = 0, size, depth;
	long err;

	proc = bpf_map_lookup_elem(&py_procs, &tgid);
	if (!proc || proc->generation != generation || proc->layout >= PY_MAX_LAYOUTS)
		return PY_STACK_NONE;
	l = &py_layouts[proc->layout];
	tstate = py_thread_state(l, proc, tgid, tid);
	if (!tstate) {
		ctr->py[PY_NO_THREAD]++;
		return PY_STACK_NONE;
	}
	holder = tstate;
	if (l->tstate_cframe != PY_ABSENT)
		holder = py_read_ptr(tstate + l->tstate_cframe);
	w.frame = holder ? py_read_ptr(holder + l->current_frame) : 0;
	if (!w.frame)
		return PY_STACK_NONE; /* between calls into Python, or not started yet */

	w.s = bpf_map_lookup_elem(&py_scratch, &zero);
	if (!w.s)
		return PY_STACK_NONE;
	w.l = l;
	/* Stacks are per process: frames are addresses in its memory. */
	w.h1 = 0xcbf29ce484222325ULL ^ (((__u64)generation << 32) | tgid);
	w.h2 = 0x84222325cbf29ce4ULL ^ (((__u64)tgid << 32) | generation);
	w.s->stack.entry[0] = 0;
	w.s->stack.entry[1] = 0;
	w.s->stack.depth = 0;
	/* Each recorded frame may follow a shim; one more step tells a full stack from a truncated one. */
	bpf_loop(2 * PY_MAX_DEPTH + 2, py_walk_step, &w, 0);
	depth = w.s->stack.depth;
	if (w.frame && !w.truncated && !w.error)
		w.truncated = true; /* ran out of steps */
	if (w.error) {
		ctr->py[PY_READ_ERROR]++;
		return PY_STACK_LOST;
	}
	if (depth == 0 || depth > PY_MAX_DEPTH)
		return PY_STACK_NONE;

	w.s->stack.tgid = tgid;
	w.s->stack.generation = generation;
	w.s->stack.flags = w.truncated ? PY_STACK_TRUNCATED : 0;
	w.h1 = py_mix(py_mix(py_mix(w.h1, w.s->stack.entry[0]), w.s->stack.entry[1]), w.s->stack.flags);
	w.h2 = py_mix(py_mix(py_mix(w.h2, w.s->stack.entry[1]), w.s->stack.entry[0]), depth);
	key = w.h1 > PY_STACK_LOST ? w.h1 : w.h1 + 2;
	w.s->stack.check = w.h2;

	stored = bpf_map_lookup_elem(py_stacks, &key);
	if (!stored) {
		/* New in this window: only now are the code objects' tags read. */
		bpf_loop(depth, py_tag_step, &w, 0);
		if (w.error) {
			ctr->py[PY_READ_ERROR]++;
			return PY_STACK_LOST;
		}
		err = bpf_map_update_elem(py_stacks, &key, &w.s->stack, BPF_NOEXIST);
		if (!err) {
			size = offsetof(struct py_stack, frames) + depth * sizeof(struct py_frame);
			if (size > sizeof(struct py_stack) ||
			    bpf_ringbuf_output(&py_events, &w.s->stack, size, 0))
				ctr->py[PY_EVENT_DROPS]++;
			goto recorded;
		}
		/* Another CPU stored it first. */
		if (err == -EEXIST)
			stored = bpf_map_lookup_elem(py_stacks, &key);
		if (!stored) {
			ctr->py[PY_MAP_FULL]++;
			return PY_STACK_LOST;
		}
	}
	if (stored->check != w.h2) {
		ctr->py[PY_COLLISION]++;
		return PY_STACK_LOST;
	}
recorded:
	ctr->py[PY_SAMPLES]++;
	if (w.truncated)
		ctr->py[PY_TRUNCATED]++;
	return key;
}
