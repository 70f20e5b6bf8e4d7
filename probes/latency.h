/* Types shared by latency.bpf.c and collector/latency_probes.cpp. */
#pragma once

#include "latency_hist.h"
#include "watched.h"

/* Nested calls of one native operation per thread whose entries are kept (recursion). */
#define LAT_MAX_DEPTH 8
/* Pending calls of measured Python functions per thread. */
#define LAT_PY_MAX_DEPTH 8
/* Function names are hashed up to this many bytes (the NUL included), file paths up to this many. */
#define LAT_PY_NAME_LEN 64
#define LAT_PY_PATH_LEN 256
/* A module is matched against at most this many trailing components of the file path. */
#define LAT_PY_MAX_MODULE_DEPTH 8
/* Operations of one target on one system call (different path prefixes). */
#define LAT_SYS_OPS 4

/* The `syscall` sources, in config::syscall_names order; the tracepoints are sys_enter_/sys_exit_NAME. */
enum lat_syscall {
	LAT_SYS_READ = 0,
	LAT_SYS_PREAD64,
	LAT_SYS_READV,
	LAT_SYS_PREADV,
	LAT_SYS_PREADV2,
	LAT_SYS_WRITE,
	LAT_SYS_PWRITE64,
	LAT_SYS_WRITEV,
	LAT_SYS_PWRITEV,
	LAT_SYS_PWRITEV2,
	LAT_SYS_OPENAT,
	LAT_SYS_FSYNC,
	LAT_SYS_FDATASYNC,
	LAT_SYS_COUNT,
};

/* System call numbers the raw_syscalls fallback can measure: below this. */
#define LAT_SYS_NR_MAX 512

/* `ops` array value, by operation index. */
struct lat_op {
	__u64 threshold_ns;
};

/* Python matching: a call matches when its function name's hash is in `py_names` for the target,
 * and (name hash, hash of a trailing part of its module path) is in `py_ops`. */
struct lat_py_name_key {
	__u32 target;
	__u32 pad;
	__u64 name_hash;
};

struct lat_py_op_key {
	__u32 target;
	__u32 pad;
	__u64 name_hash;
	__u64 module_hash;
};

struct lat_sys_key {
	__u32 target;
	__u32 syscall; /* enum lat_syscall */
};

#define LAT_SYS_REGULAR_ONLY 1u
#define LAT_SYS_PREFIX 2u

struct lat_sys_filter {
	__u32 op;
	__u32 flags;   /* LAT_SYS_* */
	__u32 dev;     /* path_prefix's device, the kernel's encoding (major << 20 | minor) */
	__u32 pad;
	__u64 ino;     /* path_prefix's inode */
};

struct lat_sys_ops {
	__u32 count;
	__u32 pad;
	struct lat_sys_filter f[LAT_SYS_OPS];
};

enum lat_counter {
	LAT_CALLS = 0,     /* measured and recorded */
	LAT_NO_ENTRY = 1,  /* a return whose entry was not recorded */
	LAT_UNWOUND = 2,   /* recorded entries whose return never came (longjmp, exceptions, lost events) */
	LAT_MAP_FULL = 3,  /* an entry could not be recorded */
	LAT_COUNTER_MAX = 4,
};

/* Per-CPU `counters` value, indexed by window parity. */
struct lat_counters {
	__u64 c[LAT_COUNTER_MAX];
};

/* FNV-1a, 64 bits: the Python name and module hashes, computed the same way in BPF and C++. Modules
 * are hashed a character at a time (in reverse, as the probe walks the path back); function names, on
 * every call, 8 bytes at a time: little-endian words of the name, the last one zero-padded. */
#define LAT_FNV_OFFSET 0xcbf29ce484222325ull
#define LAT_FNV_PRIME 0x100000001b3ull

static inline __u64 lat_fnv_step(__u64 hash, unsigned char c)
{
	return (hash ^ c) * LAT_FNV_PRIME;
}

static inline __u64 lat_fnv_word(__u64 hash, __u64 word)
{
	return (hash ^ word) * LAT_FNV_PRIME;
}
