/* Types shared by the CPython frame walker (pystack.bpf.h, part of oncpu.bpf.c) and user space
 * (collector/python_*). Only fixed-size fields with explicit padding: the C++ side asserts sizes. */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Compile-time bounds. The run-time depth limit (rodata py_max_depth) is at most PY_MAX_DEPTH. */
#define PY_MAX_DEPTH 128
#define PY_MAX_LAYOUTS 8       /* CPython versions the walker knows at once */
#define PY_MAX_THREAD_WALK 4096 /* thread states visited looking for the sampled thread */
#define PY_FRAME_CHUNK 128     /* most bytes of a frame read at once (py_layout.frame_read) */
#define PY_CODE_CHUNK 96       /* most bytes of a code object read at once (py_layout.code_read) */

/* Reserved values of count_key.py_stack; any other value is a stack's hash. */
#define PY_STACK_NONE 0 /* no Python frames: not a Python process, or a thread not running Python */
#define PY_STACK_LOST 1 /* the thread runs Python but its frames were not recorded (see py counters) */

#define PY_ABSENT 0xffff /* a field this CPython version does not have */

/* py_layout.flags */
#define PY_LAYOUT_LASTI_INDEX 1  /* frame_instr is an int instruction index (3.10's f_lasti), not a pointer */
#define PY_LAYOUT_PTHREAD_ID 2   /* match threads by tstate->thread_id == the thread's FS base (pthread_self) */
#define PY_LAYOUT_ALL_ENTRY 4    /* every frame has its own eval-loop call (3.10) */

/* Where CPython keeps what the walk reads, per minor version; offsets in bytes. */
struct py_layout {
	__u16 runtime_interp_main;   /* _PyRuntimeState.interpreters.main */
	__u16 interp_threads_head;   /* PyInterpreterState: the newest thread state */
	__u16 tstate_next;           /* PyThreadState.next */
	__u16 tstate_thread_id;      /* native_thread_id, or thread_id with PY_LAYOUT_PTHREAD_ID */
	__u16 tstate_cframe;         /* PyThreadState.cframe; PY_ABSENT: the frame pointer is in the tstate */
	__u16 current_frame;         /* the current frame in the cframe (or the tstate) */
	__u16 frame_code;            /* f_code / f_executable */
	__u16 frame_previous;        /* previous / f_back */
	__u16 frame_instr;           /* prev_instr / instr_ptr / f_lasti */
	__u16 frame_is_entry;        /* 3.11's is_entry; PY_ABSENT otherwise */
	__u16 frame_owner;           /* PY_ABSENT before 3.11 */
	__u16 frame_read;            /* bytes read of each frame: through the last field above */
	__u16 code_units;            /* co_code_adaptive: the first code unit; PY_ABSENT before 3.11 */
	/* The code object's tag (see py_frame): co_firstlineno and three object pointers, as offsets
	 * from code_tag_base, which is where the walker reads PY_CODE_CHUNK bytes of the code object. */
	__u16 code_tag_base;
	__u16 code_firstlineno;
	__u16 code_filename;
	__u16 code_name;
	__u16 code_linetable;
	__u16 code_read;             /* bytes read from code_tag_base: through the last tag field */
	__u8 owner_cstack;           /* FRAME_OWNED_BY_CSTACK (3.12+): skipped; 0xff when absent */
	__u8 flags;                  /* PY_LAYOUT_* */
};

/* py_procs map value, key tgid: a watched process that runs CPython. */
struct py_proc {
	__u64 runtime;    /* address of _PyRuntime in the process */
	__u32 generation; /* of the watched process it was set for: a reused PID is never misread */
	__u32 layout;     /* index into py_layouts */
};

/* One Python frame. code + tag identify the code object: user space reads the code object later
 * and compares its tag, so a code object freed and its address reused is never misnamed. The tag
 * is read when the stack is first seen in a window; a later sample of the same frames (code
 * addresses and instructions) in that window counts under it. */
struct py_frame {
	__u64 code;  /* PyCodeObject address */
	__s32 lasti; /* instruction index in code units; -1 before the first instruction */
	__u32 tag;   /* 32-bit mix of co_firstlineno, co_filename, co_name and co_linetable */
};

#define PY_STACK_TRUNCATED 1 /* frames beyond py_max_depth (root side) were not recorded */

/* py_stacks_N map value (key: its 64-bit hash) and the py_events record of a new stack. */
struct py_stack {
	__u32 tgid;
	__u32 generation;
	__u32 depth; /* frames[0..depth), leaf first */
	__u32 flags; /* PY_STACK_* */
	__u64 check; /* a second hash of the frames: tells a hash collision from the same stack */
	/* Bit i: frames[i] is the first frame of a C-level call of the eval loop (an entry frame):
	 * where the eval-loop native frames begin, for merging with a complete native stack. */
	__u64 entry[PY_MAX_DEPTH / 64];
	struct py_frame frames[PY_MAX_DEPTH];
};

/* Indexes of the Python counters in oncpu_counters (after the on-CPU ones). */
enum py_counter {
	PY_SAMPLES = 0,      /* samples with Python frames */
	PY_TRUNCATED = 1,    /* of which deeper than py_max_depth */
	PY_NO_THREAD = 2,    /* samples of a Python process in a thread without a thread state */
	PY_READ_ERROR = 3,   /* interpreter memory unreadable mid-walk (lost) */
	PY_COLLISION = 4,    /* stack hash taken by another stack (lost) */
	PY_MAP_FULL = 5,     /* py_stacks map full (lost) */
	PY_EVENT_DROPS = 6,  /* new stacks not announced on py_events (ring buffer full) */
	PY_COUNTER_MAX = 7,
};

/* The tag of a code object (py_frame.tag), computed the same way by the walker and by user space. */
static inline __u64 py_mix(__u64 h, __u64 value)
{
	h ^= value;
	h *= 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 31);
}

static inline __u32 py_code_tag(__u32 firstlineno, __u64 filename, __u64 name, __u64 linetable)
{
	__u64 h = py_mix(py_mix(py_mix(py_mix(0x243f6a8885a308d3ULL, firstlineno), filename), name), linetable);

	return (__u32)(h ^ (h >> 32));
}
