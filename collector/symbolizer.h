#pragma once
// Names the user and kernel frames of sampled stacks.
//
// User frames: add_process() snapshots /proc/PID/maps and loads every executable file mapping's
// symbols while the process is alive; symbolization happens at window close, when the process may
// have exited and its binary may be gone. Binaries are opened through /proc/PID/map_files (works
// for deleted files and other mount namespaces), then /proc/PID/root/PATH, then PATH, the last two
// only when their device and inode match the mapping. Parsed binaries are cached by build-id (else
// by device, inode, mtime and size) and shared between processes; those no process uses are
// evicted least recently used first, beyond a bound.
//
// Kernel frames: /proc/kallsyms, read on first use and again when an address falls past it.
//
// Not thread-safe: the daemon drives it from its event loop.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "collector/elf_symbols.h"
#include "collector/kallsyms.h"
#include "collector/proc_maps.h"
#include "common/profile.h"
#include "common/result.h"

namespace perfwatch::collector {

struct ProcessKey {
  std::int32_t pid = 0;
  std::uint32_t generation = 0;
  auto operator<=>(const ProcessKey&) const = default;
};

struct SymbolizerOptions {
  std::string proc_root = "/proc";
  std::string kallsyms_path = "/proc/kallsyms";
  std::vector<std::string> debug_dirs = {"/usr/lib/debug"};
  // Parsed binaries kept after the last process using them is released, for processes that start
  // again (short-lived commands, restarts).
  std::size_t max_unreferenced_binaries = 64;
  // kallsyms is read again for an address past its range at most this often.
  std::chrono::steady_clock::duration kallsyms_reload_interval = std::chrono::seconds(60);
  // Off only to exercise the fallbacks used without CAP_SYS_ADMIN, which map_files needs.
  bool use_map_files = true;
};

struct SymbolizerStats {
  std::size_t processes = 0;          // known, retired ones included
  std::size_t retired_processes = 0;  // waiting for release_retired()
  std::size_t binaries_cached = 0;
  std::size_t binaries_unreferenced = 0;  // cached, used by no known process: evictable
  std::size_t symbols = 0;                // in cached binaries
  std::size_t symbol_bytes = 0;           // memory held by the cached binaries' and the kernel's tables
  std::uint64_t cache_hits = 0;
  std::uint64_t cache_misses = 0;  // binaries parsed
  std::uint64_t cache_evictions = 0;
  std::uint64_t debug_files = 0;          // binaries whose symbols came from separate debug info
  std::uint64_t unreadable_binaries = 0;  // executable file mappings that could not be opened or parsed
  std::uint64_t map_refreshes = 0;        // maps re-read for an address outside every known mapping
  std::uint64_t unknown_frames = 0;       // user and kernel frames that got no symbol name
  std::uint64_t kallsyms_loads = 0;
  std::size_t kernel_symbols = 0;
};

class Symbolizer {
 public:
  explicit Symbolizer(SymbolizerOptions options = {});
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // Snapshots the process's maps and loads (or finds cached) the symbols of every executable file
  // mapping now. Fails only when the maps cannot be read (the process is gone: a normal race); a
  // binary that cannot be read leaves its frames unnamed. Called again for a known key, replaces
  // its snapshot.
  Result<void> add_process(ProcessKey key);
  // The process is gone, or its PID belongs to another generation now: no more map refreshes; its
  // data stays until release_retired().
  void retire_process(ProcessKey key);
  // Called after each window: drops retired processes, evicts unused binaries beyond the bound and
  // starts a new refresh period.
  void release_retired();

  // One frame per ip, in the same order; ips leaf first, as bpf_get_stackid gives them. Frames past
  // the leaf are return addresses, so ip - 1 is looked up (the call instruction). A frame that cannot
  // be named is "module+0xOFFSET", OFFSET being the looked-up address as an ELF virtual address (what
  // addr2line takes), or the file offset in a file that is not ELF; "[anon]+0xADDRESS" in anonymous
  // memory (JIT code); "[unknown]+0xADDRESS" in no mapping, even after re-reading the maps.
  std::vector<profile::Frame> symbolize_user(ProcessKey key, std::span<const std::uint64_t> ips);
  std::vector<profile::Frame> symbolize_kernel(std::span<const std::uint64_t> ips);

  SymbolizerStats stats() const;

 private:
  struct CachedBinary;
  struct Module;
  struct Mapping;
  struct Process;

  Result<std::vector<Mapping>> snapshot(ProcessKey key, const std::vector<Mapping>& previous);
  std::shared_ptr<const Module> load_module(std::int32_t pid, const MapEntry& entry);
  std::shared_ptr<const ElfImage> vdso_image();
  const Mapping* find_mapping(ProcessKey key, Process& process, std::uint64_t addr);
  profile::Frame user_frame(const Mapping* mapping, std::uint64_t addr);
  std::string display_name(std::string_view name);
  void refresh(ProcessKey key, Process& process);
  void evict_unreferenced();
  void ensure_kernel_symbols(std::uint64_t addr);

  SymbolizerOptions options_;
  std::map<ProcessKey, Process> processes_;
  std::map<std::string, CachedBinary> binaries_;         // by build-id, else file identity
  std::uint64_t use_clock_ = 0;                          // orders binaries by last use
  std::uint64_t window_ = 0;                             // refresh periods started by release_retired()
  std::optional<std::shared_ptr<const ElfImage>> vdso_;  // tried once; null when unreadable
  // Demangled names by the mangled name's address in its symbol table, within a window: the same
  // functions recur in many stacks.
  std::unordered_map<const char*, std::string> demangled_;

  std::optional<KernelSymbols> kernel_;
  std::optional<std::chrono::steady_clock::time_point> kernel_attempted_;
  bool kernel_hidden_warned_ = false;

  SymbolizerStats counters_;
};

}  // namespace perfwatch::collector
