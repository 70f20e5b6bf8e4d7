#pragma once
// Cache hit rates from probes/cache.bpf.c: the kernel page cache per target (filemap tracepoints,
// attached once, attributed through the `watched` map), the CPU's last-level cache from hardware
// perf events where the machine has them, and application caches counted by a pair of USDT probes
// attached in each watched process of their target. drain() reads the counts once per window.
#include <bpf/libbpf.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "collector/bpf_skeleton.h"
#include "collector/rcu_sync.h"
#include "common/probe_state.h"
#include "common/profile.h"
#include "common/result.h"
#include "common/usdt.h"
#include "probes/cache.h"

struct cache_bpf;

namespace perfwatch::collector {

// An application cache counted by USDT probes (its index is its position in the list).
struct UsdtCache {
  std::uint32_t target = 0;
  UsdtProbe hit;
  UsdtProbe miss;
};

struct CacheProbeOptions {
  std::uint32_t targets = 0;
  bool page_cache = true;
  bool llc = true;
  std::uint64_t llc_sample_period = 100;
  std::vector<UsdtCache> usdt_caches;
  bool log_unsupported = true;  // warn about what cannot be measured (once per run: at start-up)
  // false: behave as on a kernel without the 6.10 filemap lookup tracepoints (tests of the fallback).
  bool filemap_lookups = true;
};

struct CacheDrain {
  std::vector<profile::CacheCounts> targets;  // by target index
  profile::CacheCounts host;                  // every process
  std::vector<std::pair<std::uint64_t, std::uint64_t>> usdt;  // (hits, misses) by USDT cache index
};

// Where the page cache is measured on this kernel, chosen before load from the attach points it has.
// Misses need filemap:mm_filemap_add_to_page_cache; lookups come from the 6.10 filemap tracepoints,
// else cachestat's kprobe on folio_mark_accessed (mark_page_accessed before 5.16), else go unseen;
// pages a write adds are told apart where a dirtying tracepoint exists.
struct PageCachePlan {
  bool added = false;
  bool get_pages = false;  // raw tracepoint filemap:mm_filemap_get_pages
  bool map_pages = false;  // with it: filemap:mm_filemap_map_pages
  bool fault = false;      // and filemap:mm_filemap_fault
  std::string accessed_kprobe;  // else: the function for the kprobe, or ""
  std::string dirtied;          // writeback:writeback_dirty_folio or _page, or ""
};

struct CacheSetup {
  PageCachePlan page_cache;
  SkippedPrograms skipped;
};

// Between open and load, all the set-up CacheProbes gives its skeleton: the shared watched map, map
// sizes, read-only data, and which programs load. Also what the verifier test loads with.
Result<CacheSetup> configure_cache(cache_bpf& skel, int watched_map_fd, const CacheProbeOptions& options);

class CacheProbes {
 public:
  // watched_map_fd: WatchedMap::fd(). Loads only the programs the options ask for; a program the kernel
  // rejects, or an attach point it lacks, selects a fallback or marks what it measures as failed or
  // unsupported. Fails only when nothing can load (the maps).
  static Result<std::unique_ptr<CacheProbes>> create(int watched_map_fd, CacheProbeOptions options);
  ~CacheProbes();
  CacheProbes(const CacheProbes&) = delete;
  CacheProbes& operator=(const CacheProbes&) = delete;

  // A process of `target` started being watched: attach its target's USDT caches.
  void watch(std::int32_t pid, std::uint32_t target);
  void unwatch(std::int32_t pid);
  // Once per window: attaches probes whose binary a watched process had not mapped yet.
  void refresh();

  // Closes the current window.
  CacheDrain drain();

  // What measures the page cache ("lookups: ...; misses: ..."), or why nothing does.
  const profile::CacheSourceState& page_cache() const { return page_cache_; }
  // Whether the LLC is measured, and how; "unsupported: ..." on machines without the hardware events.
  const profile::CacheSourceState& llc() const { return llc_; }
  // The USDT application caches: running, degraded (what could not attach), failed, or off without any.
  profile::ProbeState usdt_state() const;
  std::size_t attached_links() const;

 private:
  struct Process {
    std::uint32_t target = 0;
    std::vector<Link> links;
    std::set<std::size_t> pending;  // probe numbers (cache * 2 + miss) not attached yet
  };
  using Counters = std::array<std::uint64_t, CACHE_COUNTER_MAX>;

  CacheProbes() = default;
  void attach_page_cache(const PageCachePlan& plan);
  void attach_llc(std::uint64_t sample_period);
  // true when done (attached, or failed for good); false to retry later.
  bool attach_usdt(std::int32_t pid, std::size_t probe, Process& process);
  void attach_pending(std::int32_t pid, Process& process);
  bool attach_named(bpf_program* prog, const char* category, const std::string& name, bool raw);
  void unsupported(const char* what, const std::string& state) const;
  // Why the program is not loaded ("the kernel rejected NAME: ..."); nullopt when it is.
  std::optional<std::string> rejection(const bpf_program* prog) const;

  SkeletonPtr<cache_bpf> skel_;
  std::uint32_t slots_ = 1;
  bool log_unsupported_ = true;
  std::vector<UsdtCache> usdt_caches_;
  std::vector<Link> global_links_;
  profile::CacheSourceState page_cache_;
  profile::CacheSourceState llc_;
  std::map<std::string, std::string> rejected_;  // programs the kernel rejected, and why
  std::string usdt_;  // how the USDT caches are counted, or why they cannot be
  std::size_t usdt_failures_ = 0;
  std::string usdt_last_failure_;
  std::optional<RcuSync> rcu_sync_;
  std::map<std::int32_t, Process> processes_;
  std::set<std::string> reported_;  // problems logged once

  std::mutex drain_mutex_;
  // Per parity, as of its last drain: the counters only grow.
  std::array<std::vector<Counters>, 2> drained_;
  std::array<std::vector<std::pair<std::uint64_t, std::uint64_t>>, 2> drained_usdt_;
};

}  // namespace perfwatch::collector
