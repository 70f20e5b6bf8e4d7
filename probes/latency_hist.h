/* The latency bucket scheme, shared by the BPF probes (probes/latency.bpf.c), the StatsD listener
 * and storage, so histograms from every source merge bucket by bucket.
 *
 * Log-linear (HDR-style) buckets over nanoseconds: values below 2^LAT_SUB_BITS get a bucket each;
 * above, every octave [2^k, 2^(k+1)) is split into 2^LAT_SUB_BITS equal buckets. A bucket is at most
 * 1/16 of its lower bound wide, so its midpoint is within 1/32 (3.1%) of any value in it: percentiles
 * read from the buckets are within 5% (a plain log2 histogram is only within 50%). Values from
 * 2^LAT_MAX_OCTAVE ns (18 minutes) up share the last bucket; max is kept exactly beside the buckets.
 *
 * Plain C that both clang -target bpf and C++ compile: the BPF and user-space bucket functions are
 * this one source. */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define LAT_SUB_BITS 4
#define LAT_SUB_COUNT (1u << LAT_SUB_BITS)
#define LAT_MAX_OCTAVE 40
#define LAT_BUCKETS ((LAT_MAX_OCTAVE - LAT_SUB_BITS + 1) * LAT_SUB_COUNT)
/* Stored with every histogram, so a future scheme can be told apart. */
#define LAT_SCHEME_VERSION 1

/* floor(log2(v)) for v > 0, branch-free (BPF has no count-leading-zeros instruction). */
static inline __u32 lat_log2(__u64 v)
{
	__u32 r, shift;

	r = (v > 0xFFFFFFFFull) << 5;
	v >>= r;
	shift = (v > 0xFFFF) << 4;
	v >>= shift;
	r |= shift;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (__u32)(v >> 1);
	return r;
}

static inline __u32 lat_bucket(__u64 ns)
{
	__u32 octave;

	if (ns < LAT_SUB_COUNT)
		return (__u32)ns;
	octave = lat_log2(ns);
	if (octave >= LAT_MAX_OCTAVE)
		return LAT_BUCKETS - 1;
	/* ns >> (octave - SUB_BITS) lies in [SUB_COUNT, 2 * SUB_COUNT): the octave's sub-bucket plus SUB_COUNT. */
	return (octave - LAT_SUB_BITS) * LAT_SUB_COUNT + (__u32)(ns >> (octave - LAT_SUB_BITS));
}

/* The smallest value of a bucket, and its width. */
static inline __u64 lat_bucket_lower(__u32 bucket)
{
	__u32 octave;

	if (bucket < 2 * LAT_SUB_COUNT)
		return bucket;
	octave = bucket / LAT_SUB_COUNT + LAT_SUB_BITS - 1;
	return (__u64)(bucket % LAT_SUB_COUNT + LAT_SUB_COUNT) << (octave - LAT_SUB_BITS);
}

static inline __u64 lat_bucket_width(__u32 bucket)
{
	if (bucket < 2 * LAT_SUB_COUNT)
		return 1;
	return 1ull << (bucket / LAT_SUB_COUNT - 1);
}

/* Per operation and window: filled by the probes with atomic adds, by the StatsD listener under its lock. */
struct lat_hist {
	__u64 count;
	__u64 sum_ns;
	__u64 max_ns;
	__u64 slow; /* calls longer than the operation's threshold, counted exactly */
	__u64 buckets[LAT_BUCKETS];
};
