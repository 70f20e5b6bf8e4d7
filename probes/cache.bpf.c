// SPDX-License-Identifier: GPL-2.0
/* Cache hit rates per target: the kernel page cache (filemap tracepoints), application caches
 * (a USDT probe for hits and one for misses) and the CPU's last-level cache (hardware perf events,
 * sampled, as libbpf-tools' llcstat).
 *
 * Page cache: a lookup is a page a read(), a page fault or fault-around asked the cache for; a miss
 * is a page added to the cache on the process's behalf (the read's own page or its readahead, as
 * cachestat counts them). Pages a write adds and dirties at once were never looked up, so they are
 * counted apart (cachestat subtracts dirtied pages for the same reason).
 *
 * Counts are per-CPU, per slot (a target, and one slot for every process on the host) and double
 * buffered by window parity, as in oncpu.bpf.c: user space flips `epoch`, waits for running programs
 * to finish, then reads and clears the old half. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>
#include "cache.h"
#include "watched.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set before load. */
const volatile __u32 max_targets = 0;     /* slots are 0..max_targets, the last one for the host */
const volatile __u32 max_app_caches = 1;
const volatile __u32 page_shift = 12;

/* Written by user space through the mmapped .bss. */
__u32 epoch;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2); /* 2 * (max_targets + 1) */
	__type(key, __u32);
	__type(value, struct cache_counters);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2); /* 2 * max_app_caches */
	__type(key, __u32);
	__type(value, struct cache_app_counters);
} app_counts SEC(".maps");

/* Per thread: the read in progress (filemap_read asks for the rest of the read at every batch of
 * pages, so only its first event is counted) and the last page added (to recognise a write's). */
struct thread_state {
	__u64 read_mapping;
	__u64 read_index;
	__u64 read_last;
	__u64 read_end; /* read_last clamped to the end of the file */
	__u64 add_ino;
	__u64 add_index;
	__u64 add_pages;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct thread_state);
} threads SEC(".maps");

static __always_inline __u32 parity(void)
{
	return *(volatile __u32 *)&epoch & 1;
}

/* Adds n to the host's slot and to the current process's target slot. */
static __always_inline void add(__u32 counter, __u64 n)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct watch_value *w = bpf_map_lookup_elem(&watched, &tgid);
	__u32 base = parity() * (max_targets + 1);
	__u32 key = base + max_targets;
	struct cache_counters *c = bpf_map_lookup_elem(&counts, &key);

	if (counter >= CACHE_COUNTER_MAX)
		return;
	/* Per-CPU, and programs that share a counter do not nest on a CPU: plain adds suffice. */
	if (c)
		c->c[counter] += n;
	if (!w || w->target >= max_targets)
		return;
	key = base + w->target;
	c = bpf_map_lookup_elem(&counts, &key);
	if (c)
		c->c[counter] += n;
}

static __always_inline struct thread_state *thread_state(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct thread_state *st = bpf_map_lookup_elem(&threads, &tid);
	struct thread_state fresh = {};

	if (st)
		return st;
	bpf_map_update_elem(&threads, &tid, &fresh, BPF_ANY);
	return bpf_map_lookup_elem(&threads, &tid);
}

/* The last page index of [first, last] that lies in the file, or first - 1 when none does: the
 * tracepoints give the range asked for, which may run past the end of the file. */
static __always_inline __s64 in_file_end(struct address_space *mapping, __u64 last)
{
	__s64 size = BPF_CORE_READ(mapping, host, i_size);
	__u64 eof;

	if (size <= 0)
		return -1;
	eof = (__u64)(size - 1) >> (page_shift & 63);
	return (__s64)(last < eof ? last : eof);
}

/* ---- page cache lookups (kernel 6.10+) ------------------------------------------------------ */

/* filemap_get_pages(): a read() (or splice) asks for pages [index, last_index]. */
SEC("raw_tp")
int BPF_PROG(page_get_pages, struct address_space *mapping, unsigned long index, unsigned long last_index)
{
	struct thread_state *st = thread_state();
	__s64 end = in_file_end(mapping, last_index);

	if (!st)
		return 0;
	/* The same read continuing: its pages were counted at its first batch. */
	if (st->read_mapping == (__u64)mapping && st->read_last == last_index && index > st->read_index &&
	    (__s64)index <= (__s64)st->read_end + 1) {
		st->read_index = index;
		return 0;
	}
	if (end >= (__s64)index)
		add(CACHE_PAGE_LOOKUPS, (__u64)end - index + 1);
	st->read_mapping = (__u64)mapping;
	st->read_index = index;
	st->read_last = last_index;
	st->read_end = (__u64)end;
	return 0;
}

/* filemap_map_pages(): fault-around maps the cached pages of [index, last_index] (all hits); the
 * kernel clamps the window to the end of the file. It fires only when it mapped at least one page; the
 * whole window is counted, an upper bound of what it mapped.
 * The tracepoint and its record type came in 6.10. The context is untyped, and the record read only
 * where the kernel has the type, so that the program still loads on older kernels (the verifier test
 * loads it there; CacheProbes does not). */
SEC("tracepoint")
int page_map_pages(void *ctx)
{
	struct trace_event_raw_mm_filemap_op_page_cache_range *record = ctx;
	__u64 first, last;

	if (!bpf_core_type_exists(struct trace_event_raw_mm_filemap_op_page_cache_range))
		return 0;
	first = record->index;
	last = record->last_index;
	if (last >= first)
		add(CACHE_PAGE_LOOKUPS, last - first + 1);
	return 0;
}

/* filemap_fault(): one page looked up by a page fault. */
SEC("tracepoint")
int page_fault(void *ctx)
{
	add(CACHE_PAGE_LOOKUPS, 1);
	return 0;
}

/* ---- page cache lookups, fallback: folio_mark_accessed / mark_page_accessed (kprobes) ---------- */

/* cachestat's access count: a read() or write() touching a cached folio. No mmap faults. */
SEC("kprobe")
int page_accessed(struct pt_regs *ctx)
{
	add(CACHE_PAGE_LOOKUPS, 1);
	return 0;
}

/* ---- page cache misses ----------------------------------------------------------------------- */

SEC("tracepoint")
int page_added(struct trace_event_raw_mm_filemap_op_page_cache *ctx)
{
	struct thread_state *st = thread_state();
	__u64 pages = 1;

	/* Large folios (6.x) hold 2^order pages; older kernels add single pages. */
	if (bpf_core_field_exists(ctx->order))
		pages = 1ull << (BPF_CORE_READ(ctx, order) & 31);
	add(CACHE_PAGE_ADDED, pages);
	if (st) {
		st->add_ino = BPF_CORE_READ(ctx, i_ino);
		st->add_index = BPF_CORE_READ(ctx, index);
		st->add_pages = pages;
	}
	return 0;
}

/* struct page as kernels before folios (5.16) have it; a CO-RE flavour of struct page. */
struct page___index {
	unsigned long index;
} __attribute__((preserve_access_index));

/* writeback_dirty_folio (writeback_dirty_page before 5.17): a folio turning dirty. When it is the
 * page this thread just added, a write created it: not a lookup that missed. */
SEC("raw_tp")
int BPF_PROG(page_dirtied, void *folio, struct address_space *mapping)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct thread_state *st = bpf_map_lookup_elem(&threads, &tid);
	__u64 index;

	if (!st || !st->add_pages)
		return 0;
	if (bpf_core_type_exists(struct folio))
		index = BPF_CORE_READ((struct folio *)folio, index);
	else
		index = BPF_CORE_READ((struct page___index *)folio, index);
	if (st->add_index == index && st->add_ino == BPF_CORE_READ(mapping, host, i_ino))
		add(CACHE_PAGE_WRITE_ADDS, st->add_pages);
	st->add_pages = 0;
	return 0;
}

/* ---- CPU last-level cache: one sample every sample_period events ---------------------------- */

SEC("perf_event")
int llc_reference(struct bpf_perf_event_data *ctx)
{
	add(CACHE_LLC_REFERENCES, ctx->sample_period);
	return 0;
}

SEC("perf_event")
int llc_miss(struct bpf_perf_event_data *ctx)
{
	add(CACHE_LLC_MISSES, ctx->sample_period);
	return 0;
}

/* ---- application caches: USDT probes, attached per process ----------------------------------- */

SEC("usdt")
int app_cache(struct pt_regs *ctx)
{
	__u64 cookie = bpf_usdt_cookie(ctx);
	__u32 cache = (__u32)(cookie >> 1);
	__u32 key = parity() * max_app_caches + cache;
	struct cache_app_counters *c;

	if (cache >= max_app_caches)
		return 0;
	c = bpf_map_lookup_elem(&app_counts, &key);
	if (!c)
		return 0;
	if (cookie & CACHE_USDT_MISS)
		c->misses++;
	else
		c->hits++;
	return 0;
}
