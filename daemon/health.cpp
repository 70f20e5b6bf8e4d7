#include "daemon/health.h"

#include <chrono>
#include <cmath>

namespace perfwatch::daemon {
namespace {

// Label values stay short (the log and the CLI have the whole reason), cut on a UTF-8 character boundary.
std::string label_text(const std::string& text) {
  constexpr std::size_t max_bytes = 300;
  if (text.size() <= max_bytes) return text;
  std::size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end) + "...";
}

double seconds_since_epoch(profile::TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

HealthMetrics::HealthMetrics(std::string version, std::string host, const storage::WindowWriter* writer)
    : version_(std::move(version)), host_(std::move(host)), writer_(writer) {}

void HealthMetrics::window_closed(const profile::SamplerStats& window, std::size_t watched,
                                  const RegistryStats& registry, const collector::ProcEventStats& events,
                                  const collector::SymbolizerStats& symbolizer,
                                  const collector::PythonSymbolizerStats& python) {
  std::lock_guard lock(mutex_);
  profile::SamplerStats& s = snapshot_.sampler;
  s.samples += window.samples;
  s.lost_stack_collision += window.lost_stack_collision;
  s.lost_stack_error += window.lost_stack_error;
  s.lost_map_full += window.lost_map_full;
  s.lost_unresolved += window.lost_unresolved;
  ++snapshot_.windows;
  snapshot_.watched_processes = watched;
  snapshot_.registry = registry;
  snapshot_.events = events;
  snapshot_.symbolizer = symbolizer;
  snapshot_.python = python;
}

void HealthMetrics::set_probes(std::vector<profile::ProbeState> probes) {
  std::lock_guard lock(mutex_);
  snapshot_.probes = std::move(probes);
}

void HealthMetrics::set_writer(const storage::WindowWriter* writer) {
  std::lock_guard lock(mutex_);
  writer_ = writer;
}

void HealthMetrics::collect(dashboard::MetricsWriter& out) const {
  using Type = dashboard::MetricsWriter::Type;
  std::lock_guard lock(mutex_);
  const HealthSnapshot& h = snapshot_;
  out.family("perfwatch_build_info", Type::gauge, "perfwatchd's version and host; always 1")
      .sample(1, {{"version", version_}, {"host", host_}});
  out.gauge("perfwatch_start_time_seconds", "When perfwatchd started, in Unix seconds", seconds_since_epoch(started_));

  // One series per family: its state, and what measures it or why nothing does (the kernel's reason).
  out.family("perfwatch_probe_state", Type::gauge,
             "Each probe family's state (off, running, degraded, failed, unsupported) and detail; always 1");
  for (const profile::ProbeState& p : h.probes)
    out.sample(1, {{"family", std::string(profile::to_string(p.family))},
                   {"state", std::string(profile::to_string(p.status))},
                   {"detail", label_text(p.detail)}});

  out.counter("perfwatch_windows_closed_total", "Profile windows closed", static_cast<double>(h.windows));
  out.counter("perfwatch_samples_total", "On-CPU samples of watched processes counted by the sampler",
              static_cast<double>(h.sampler.samples));
  out.family("perfwatch_samples_lost_total", Type::counter, "On-CPU samples lost, by reason")
      .sample(static_cast<double>(h.sampler.lost_stack_collision), {{"reason", "stack_collision"}})
      .sample(static_cast<double>(h.sampler.lost_stack_error), {{"reason", "stack_error"}})
      .sample(static_cast<double>(h.sampler.lost_map_full), {{"reason", "map_full"}})
      .sample(static_cast<double>(h.sampler.lost_unresolved), {{"reason", "unresolved"}});

  out.gauge("perfwatch_watched_processes", "Processes matched to a target at the last window",
            static_cast<double>(h.watched_processes));
  out.counter("perfwatch_processes_matched_total", "Processes that started being watched",
              static_cast<double>(h.registry.matched));
  out.counter("perfwatch_processes_exited_total", "Watched processes that exited", static_cast<double>(h.registry.exited));
  out.counter("perfwatch_pid_reuses_total", "Watched PIDs found belonging to a new process",
              static_cast<double>(h.registry.reused_pids));
  out.counter("perfwatch_process_races_total", "Processes that vanished while being read",
              static_cast<double>(h.registry.races));
  out.counter("perfwatch_process_events_total", "Process exec/fork/exit events received from the kernel",
              static_cast<double>(h.events.events));
  out.counter("perfwatch_process_events_dropped_total", "Process events lost in the kernel (ring buffer full)",
              static_cast<double>(h.events.ringbuf_drops));

  const collector::SymbolizerStats& sym = h.symbolizer;
  out.counter("perfwatch_symbolizer_cache_hits_total", "Binaries found in the symbol cache",
              static_cast<double>(sym.cache_hits));
  out.counter("perfwatch_symbolizer_cache_misses_total", "Binaries parsed for symbols",
              static_cast<double>(sym.cache_misses));
  out.counter("perfwatch_symbolizer_cache_evictions_total", "Binaries evicted from the symbol cache",
              static_cast<double>(sym.cache_evictions));
  out.gauge("perfwatch_symbolizer_cached_binaries", "Binaries in the symbol cache",
            static_cast<double>(sym.binaries_cached));
  out.gauge("perfwatch_symbolizer_memory_bytes", "Memory held by cached symbol tables",
            static_cast<double>(sym.symbol_bytes));
  out.counter("perfwatch_symbolizer_unknown_frames_total", "Frames that got no symbol name",
              static_cast<double>(sym.unknown_frames));
  const collector::PythonSymbolizerStats& py = h.python;
  out.counter("perfwatch_python_code_cache_hits_total", "Python code objects found in the code cache",
              static_cast<double>(py.cache_hits));
  out.counter("perfwatch_python_code_reads_total", "Python code objects read from their processes",
              static_cast<double>(py.reads));
  out.counter("perfwatch_python_code_cache_evictions_total",
              "Python code objects evicted from the code cache to stay within its bound",
              static_cast<double>(py.evictions));
  out.gauge("perfwatch_python_code_cache_objects", "Python code objects in the code cache",
            static_cast<double>(py.code_objects));
  out.gauge("perfwatch_python_code_cache_bytes", "Memory held by the Python code cache (bounded by 64 MiB)",
            static_cast<double>(py.code_bytes));

  if (!writer_) return;
  const storage::WriterStats w = writer_->stats();
  out.counter("perfwatch_storage_windows_written_total", "Windows stored in PostgreSQL (live or from the spool)",
              static_cast<double>(w.written));
  out.counter("perfwatch_storage_windows_spooled_total", "Windows sent to the on-disk spool",
              static_cast<double>(w.spooled));
  out.counter("perfwatch_storage_windows_dropped_total",
              "Windows dropped because the spool was full or its disk failed", static_cast<double>(w.dropped));
  out.counter("perfwatch_storage_windows_quarantined_total",
              "Windows the database refused for their content or times, set aside in the spool's failed/",
              static_cast<double>(w.quarantined));
  out.counter("perfwatch_storage_windows_implausible_time_total",
              "Windows set aside because they start far ahead of the database's clock",
              static_cast<double>(w.implausible_time));
  out.counter("perfwatch_storage_write_errors_total", "Failed database writes", static_cast<double>(w.write_errors));
  out.gauge("perfwatch_storage_queue_windows", "Windows in memory waiting for the writer",
            static_cast<double>(w.queue_depth));
  out.gauge("perfwatch_storage_spool_windows", "Windows in the spool", static_cast<double>(w.spool_windows));
  out.gauge("perfwatch_storage_spool_bytes", "Bytes in the spool", static_cast<double>(w.spool_bytes));
  out.gauge("perfwatch_storage_quarantine_windows",
            "Windows set aside in the spool's failed/ (within its bound; tried again at the next start)",
            static_cast<double>(w.quarantine_windows));
  out.gauge("perfwatch_storage_quarantine_bytes", "Bytes set aside in the spool's failed/",
            static_cast<double>(w.quarantine_bytes));
  out.gauge("perfwatch_storage_connected", "1 while the writer is connected to PostgreSQL", w.connected ? 1 : 0);
  // Lag: how far the newest stored window's end trails now; NaN until one is stored.
  const bool any = w.last_written_end != profile::TimePoint{};
  out.gauge("perfwatch_storage_lag_seconds", "Seconds since the end of the newest window stored in PostgreSQL",
            any ? std::chrono::duration<double>(profile::Clock::now() - w.last_written_end).count() : std::nan(""));
  out.gauge("perfwatch_storage_oldest_unwritten_age_seconds",
            "Seconds since the start of the oldest window queued or spooled and not yet stored; 0 when none is",
            w.oldest_unwritten_start
                ? std::chrono::duration<double>(profile::Clock::now() - *w.oldest_unwritten_start).count()
                : 0);
}

}  // namespace perfwatch::daemon
