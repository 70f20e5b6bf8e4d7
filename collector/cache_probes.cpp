#include "collector/cache_probes.h"

#include <bpf/bpf.h>
#include <linux/perf_event.h>
#include <unistd.h>

#include <cstring>

#include "collector/elf_symbols.h"
#include "collector/files.h"
#include "collector/perf_events.h"
#include "collector/tracefs.h"
#include "common/log.h"
#include "cache.skel.h"

namespace perfwatch::collector {
namespace {

static_assert(sizeof(cache_counters) == 8 * CACHE_COUNTER_MAX);
static_assert(sizeof(cache_app_counters) == 16);

std::string join(const std::vector<std::string>& parts, const char* separator) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : separator) + p;
  return out;
}

PageCachePlan plan_page_cache(const CacheProbeOptions& options) {
  PageCachePlan plan;
  plan.added = has_tracepoint("filemap", "mm_filemap_add_to_page_cache");
  if (!plan.added) return plan;
  if (options.filemap_lookups && has_tracepoint("filemap", "mm_filemap_get_pages")) {
    plan.get_pages = true;
    plan.map_pages = has_tracepoint("filemap", "mm_filemap_map_pages");
    plan.fault = has_tracepoint("filemap", "mm_filemap_fault");
  } else {
    for (const char* function : {"folio_mark_accessed", "mark_page_accessed"})
      if (has_kprobe(function)) {
        plan.accessed_kprobe = function;
        break;
      }
  }
  for (const char* name : {"writeback_dirty_folio", "writeback_dirty_page"})
    if (has_tracepoint("writeback", name)) {
      plan.dirtied = name;
      break;
    }
  return plan;
}

}  // namespace

Result<CacheSetup> configure_cache(cache_bpf& s, int watched_map_fd, const CacheProbeOptions& options) {
  const auto app_caches = static_cast<std::uint32_t>(std::max<std::size_t>(1, options.usdt_caches.size()));
  if (int err = bpf_map__reuse_fd(s.maps.watched, watched_map_fd)) return libbpf_error("cache: reuse watched map", err);
  s.rodata->max_targets = options.targets;
  s.rodata->max_app_caches = app_caches;
  s.rodata->page_shift = static_cast<std::uint32_t>(__builtin_ctzl(static_cast<unsigned long>(sysconf(_SC_PAGESIZE))));
  if (Result<void> r = set_max_entries(s.maps.counts, 2 * (options.targets + 1)); !r) return r.error();
  if (Result<void> r = set_max_entries(s.maps.app_counts, 2 * app_caches); !r) return r.error();

  CacheSetup setup;
  auto& progs = s.progs;
  auto skip = [&](bpf_program* prog, const std::string& reason) { skip_program(prog, reason, setup.skipped); };
  if (options.page_cache) {
    const PageCachePlan& plan = setup.page_cache = plan_page_cache(options);
    const std::string unused = plan.added ? "" : "no filemap:mm_filemap_add_to_page_cache tracepoint on this kernel";
    auto need = [&](bpf_program* prog, bool used, const std::string& otherwise) {
      if (!plan.added)
        skip(prog, unused);
      else if (!used)
        skip(prog, otherwise);
    };
    need(progs.page_added, true, "");
    const std::string filemap = options.filemap_lookups ? "no filemap:mm_filemap_get_pages tracepoint on this kernel"
                                                        : "filemap lookups turned off (tests of the fallback)";
    need(progs.page_get_pages, plan.get_pages, filemap);
    need(progs.page_map_pages, plan.map_pages, plan.get_pages ? "no filemap:mm_filemap_map_pages tracepoint on this kernel" : filemap);
    need(progs.page_fault, plan.fault, plan.get_pages ? "no filemap:mm_filemap_fault tracepoint on this kernel" : filemap);
    need(progs.page_accessed, !plan.accessed_kprobe.empty(),
         plan.get_pages ? "lookups come from the filemap tracepoints"
                        : "no kprobe on folio_mark_accessed or mark_page_accessed on this kernel");
    need(progs.page_dirtied, !plan.dirtied.empty(), "no writeback:writeback_dirty_folio or _page tracepoint on this kernel");
  } else {
    for (bpf_program* prog : {progs.page_added, progs.page_get_pages, progs.page_map_pages, progs.page_fault,
                              progs.page_accessed, progs.page_dirtied})
      skip(prog, "page cache not measured (configuration)");
  }
  if (!options.llc)
    for (bpf_program* prog : {progs.llc_reference, progs.llc_miss}) skip(prog, "LLC not measured (configuration)");
  if (options.usdt_caches.empty()) skip(progs.app_cache, "no USDT application cache in the configuration");
  return setup;
}

Result<std::unique_ptr<CacheProbes>> CacheProbes::create(int watched_map_fd, CacheProbeOptions options) {
  std::unique_ptr<CacheProbes> probes(new CacheProbes());
  probes->slots_ = options.targets + 1;
  PageCachePlan plan;
  auto skel = open_and_load_each<cache_bpf>("cache", [&](cache_bpf& s) -> Result<void> {
    auto setup = configure_cache(s, watched_map_fd, options);
    if (!setup) return setup.error();
    log_skipped("cache", setup->skipped);
    plan = std::move(setup->page_cache);
    return {};
  }, probes->rejected_);
  if (!skel) return skel.error();
  probes->usdt_caches_ = std::move(options.usdt_caches);
  probes->skel_ = std::move(*skel);
  auto sync = RcuSync::create();
  if (!sync) return make_error("cache: " + sync.error().message);
  probes->rcu_sync_ = std::move(*sync);
  for (auto& drained : probes->drained_) drained.resize(probes->slots_);
  for (auto& drained : probes->drained_usdt_) drained.resize(probes->usdt_caches_.size());

  probes->log_unsupported_ = options.log_unsupported;
  if (options.page_cache) probes->attach_page_cache(plan);
  if (options.llc) probes->attach_llc(options.llc_sample_period);
  if (!probes->usdt_caches_.empty())
    probes->usdt_ = probes->rejection(probes->skel_->progs.app_cache).value_or("USDT probes in each watched process");
  log::info("cache probes loaded", {{"page_cache", probes->page_cache_.text}, {"llc", probes->llc_.text},
                                    {"usdt_caches", probes->usdt_state().text()}});
  return probes;
}

CacheProbes::~CacheProbes() {
  processes_.clear();  // detach before the skeleton (and its programs) goes
  global_links_.clear();
}

void CacheProbes::unsupported(const char* what, const std::string& state) const {
  if (log_unsupported_)
    log::warn(what, {{"state", state}});
  else
    log::debug(what, {{"state", state}});
}

std::optional<std::string> CacheProbes::rejection(const bpf_program* prog) const {
  if (loaded(prog)) return std::nullopt;
  auto it = rejected_.find(bpf_program__name(prog));
  return "the kernel rejected " + (it == rejected_.end() ? std::string(bpf_program__name(prog)) : it->second);
}

profile::ProbeState CacheProbes::usdt_state() const {
  const profile::ProbeFamily family = profile::ProbeFamily::usdt_caches;
  if (usdt_caches_.empty()) return {family, profile::ProbeStatus::off, ""};
  if (!loaded(skel_->progs.app_cache)) return {family, profile::ProbeStatus::failed, usdt_};
  if (usdt_failures_ == 0) return {family, profile::ProbeStatus::running, usdt_};
  return {family, profile::ProbeStatus::degraded,
          usdt_ + "; " + std::to_string(usdt_failures_) + " could not attach, the latest: " + usdt_last_failure_};
}

bool CacheProbes::attach_named(bpf_program* prog, const char* category, const std::string& name, bool raw) {
  if (!loaded(prog)) {
    log::debug("cache: program not loaded", {{"program", bpf_program__name(prog)}});
    return false;
  }
  bpf_link* link = raw ? bpf_program__attach_raw_tracepoint(prog, name.c_str())
                       : bpf_program__attach_tracepoint(prog, category, name.c_str());
  if (!link) {
    log::debug("cache: attach point unavailable", {{"tracepoint", std::string(category) + ":" + name},
                                                   {"error", std::strerror(errno)}});
    return false;
  }
  global_links_.emplace_back(link);
  return true;
}

// Each planned attach point is attached and checked; the state says what measures the page cache.
void CacheProbes::attach_page_cache(const PageCachePlan& plan) {
  auto& progs = skel_->progs;
  if (auto rejected = rejection(progs.page_added); rejected && plan.added) {
    page_cache_ = {false, "failed: " + *rejected};
    unsupported("page cache hit rates cannot be measured: the kernel rejected their program", page_cache_.text);
    return;
  }
  const std::size_t links_before = global_links_.size();
  if (!plan.added || !attach_named(progs.page_added, "filemap", "mm_filemap_add_to_page_cache", false)) {
    page_cache_ = {false, "unsupported: no filemap:mm_filemap_add_to_page_cache tracepoint"};
    unsupported("page cache hit rates unsupported on this kernel", page_cache_.text);
    return;
  }
  std::string lookups;
  if (plan.get_pages && attach_named(progs.page_get_pages, "filemap", "mm_filemap_get_pages", true)) {
    std::vector<std::string> used{"mm_filemap_get_pages"};
    if (plan.map_pages && attach_named(progs.page_map_pages, "filemap", "mm_filemap_map_pages", false))
      used.push_back("mm_filemap_map_pages");
    if (plan.fault && attach_named(progs.page_fault, "filemap", "mm_filemap_fault", false)) used.push_back("mm_filemap_fault");
    lookups = "filemap:" + join(used, "+");
  } else if (!plan.accessed_kprobe.empty() && loaded(progs.page_accessed)) {
    if (bpf_link* link = bpf_program__attach_kprobe(progs.page_accessed, false, plan.accessed_kprobe.c_str())) {
      global_links_.emplace_back(link);
      lookups = "kprobe:" + plan.accessed_kprobe + " (read/write accesses; mmap not seen)";
    } else {
      log::debug("cache: kprobe unavailable", {{"function", plan.accessed_kprobe}, {"error", std::strerror(errno)}});
    }
  }
  std::string writes = "none (pages written count as misses)";
  if (!plan.dirtied.empty() && attach_named(progs.page_dirtied, "writeback", plan.dirtied, true))
    writes = "writeback:" + plan.dirtied;
  if (lookups.empty()) {
    // Misses without lookups give no hit ratio, and no kernel of the test matrix lacks both lookup
    // attach points: the page cache is then unsupported, not half measured.
    global_links_.resize(links_before);
    page_cache_ = {false, "unsupported: no lookup attach point (neither filemap:mm_filemap_get_pages nor a kprobe on "
                          "folio_mark_accessed)"};
    unsupported("page cache hit rates unsupported on this kernel", page_cache_.text);
    return;
  }
  page_cache_ = {true, "lookups: " + lookups + "; misses: filemap:mm_filemap_add_to_page_cache; writes: " + writes};
}

// As libbpf-tools' llcstat: one sample every sample_period events, attributed to the task on the CPU.
void CacheProbes::attach_llc(std::uint64_t sample_period) {
  for (const bpf_program* prog : {skel_->progs.llc_reference, skel_->progs.llc_miss}) {
    if (auto rejected = rejection(prog)) {
      llc_ = {false, "failed: " + *rejected};
      unsupported("CPU cache (LLC) hit rates cannot be measured: the kernel rejected their program", llc_.text);
      return;
    }
  }
  std::vector<Link> links;
  for (auto [prog, config, what] : {std::tuple{skel_->progs.llc_reference, PERF_COUNT_HW_CACHE_REFERENCES, "LLC references"},
                                    {skel_->progs.llc_miss, PERF_COUNT_HW_CACHE_MISSES, "LLC misses"}}) {
    perf_event_attr attr{};
    attr.type = PERF_TYPE_HARDWARE;
    attr.config = config;
    attr.sample_period = sample_period;
    auto attached = attach_perf_event_on_cpus(prog, attr, what);
    if (!attached) {
      llc_ = {false, "unsupported: hardware cache events unavailable (" + attached.error().message + ")"};
      unsupported("CPU cache (LLC) hit rates unsupported on this machine; everything else is measured", llc_.text);
      return;
    }
    for (Link& link : *attached) links.push_back(std::move(link));
  }
  for (Link& link : links) global_links_.push_back(std::move(link));
  llc_ = {true, "perf hardware events cache-references/cache-misses, 1 sample per " + std::to_string(sample_period)};
}

void CacheProbes::watch(std::int32_t pid, std::uint32_t target) {
  if (!loaded(skel_->progs.app_cache)) return;
  Process process;
  process.target = target;
  for (std::size_t i = 0; i < usdt_caches_.size(); ++i)
    if (usdt_caches_[i].target == target) process.pending.insert({2 * i, 2 * i + 1});
  if (process.pending.empty()) return;
  Process& stored = processes_[pid] = std::move(process);
  attach_pending(pid, stored);
}

void CacheProbes::unwatch(std::int32_t pid) { processes_.erase(pid); }

void CacheProbes::refresh() {
  for (auto& [pid, process] : processes_)
    if (!process.pending.empty()) attach_pending(pid, process);
}

void CacheProbes::attach_pending(std::int32_t pid, Process& process) {
  for (auto it = process.pending.begin(); it != process.pending.end();)
    it = attach_usdt(pid, *it, process) ? process.pending.erase(it) : std::next(it);
}

bool CacheProbes::attach_usdt(std::int32_t pid, std::size_t probe, Process& process) {
  const UsdtCache& cache = usdt_caches_[probe / 2];
  const UsdtProbe& usdt = probe % 2 ? cache.miss : cache.hit;
  const std::string spec = usdt.text();
  auto fail = [&](const std::string& what) {
    ++usdt_failures_;
    usdt_last_failure_ = spec + " in pid " + std::to_string(pid) + ": " + what;
    if (reported_.insert(spec + ":" + what).second)
      log::warn("cache: cannot attach USDT probe", {{"pid", pid}, {"probe", spec}, {"error", what}});
    return true;
  };
  MappedBinary mapped = find_mapped_binary(pid, usdt.binary);
  if (mapped.gone) return true;
  if (!mapped.entry) return false;  // not mapped yet
  Result<UniqueFd> fd = open_mapped_file("/proc", pid, *mapped.entry);
  if (!fd) return fail(fd.error().message);
  // Checked first: libbpf warns at length about a file without USDT notes.
  Result<ElfFile> elf = ElfFile::open(UniqueFd(dup(fd->get())));
  if (!elf || !elf->has_section(".note.stapsdt")) return fail(mapped.entry->path + " has no USDT probes (.note.stapsdt)");
  const std::string path = "/proc/self/fd/" + std::to_string(fd->get());
  LIBBPF_OPTS(bpf_usdt_opts, opts, .usdt_cookie = probe);
  bpf_link* link = bpf_program__attach_usdt(skel_->progs.app_cache, pid, path.c_str(), usdt.provider.c_str(),
                                            usdt.name.c_str(), &opts);
  if (!link) return fail(std::string("attach: ") + std::strerror(errno));
  process.links.emplace_back(link);
  log::debug("cache: usdt attached", {{"pid", pid}, {"probe", spec}, {"binary", mapped.entry->path}});
  return true;
}

CacheDrain CacheProbes::drain() {
  std::lock_guard lock(drain_mutex_);
  const std::uint32_t parity = rcu_sync_->flip(&skel_->bss->epoch);
  CacheDrain out;
  std::vector<Counters>& before = drained_[parity];
  for (std::uint32_t slot = 0; slot < slots_; ++slot) {
    const Counters now = sum_per_cpu<CACHE_COUNTER_MAX>(skel_->maps.counts, parity * slots_ + slot);
    Counters d{};
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = now[i] - before[slot][i];
    before[slot] = now;
    profile::CacheCounts counts{d[CACHE_PAGE_LOOKUPS], d[CACHE_PAGE_ADDED], d[CACHE_PAGE_WRITE_ADDS],
                                d[CACHE_LLC_REFERENCES], d[CACHE_LLC_MISSES]};
    if (slot + 1 == slots_)
      out.host = counts;
    else
      out.targets.push_back(counts);
  }
  const auto app_caches = skel_->rodata->max_app_caches;
  for (std::uint32_t i = 0; i < usdt_caches_.size(); ++i) {
    const auto now = sum_per_cpu<2>(skel_->maps.app_counts, parity * app_caches + i);
    auto& last = drained_usdt_[parity][i];
    out.usdt.emplace_back(now[0] - last.first, now[1] - last.second);
    last = {now[0], now[1]};
  }
  return out;
}

std::size_t CacheProbes::attached_links() const {
  std::size_t n = global_links_.size();
  for (const auto& [pid, process] : processes_) n += process.links.size();
  return n;
}

}  // namespace perfwatch::collector
