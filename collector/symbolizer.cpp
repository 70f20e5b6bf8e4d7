#include "collector/symbolizer.h"

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "collector/files.h"
#include "common/log.h"

namespace perfwatch::collector {

struct Symbolizer::CachedBinary {
  std::shared_ptr<const ElfImage> image;  // also held by the modules of the processes using it
  std::uint64_t last_used = 0;
};

// A file (or pseudo file) mapped by a process, named as the process sees it.
struct Symbolizer::Module {
  std::string path;       // as in maps, without " (deleted)"; "[anon]" for anonymous memory
  std::string maps_path;  // as in maps ("" for anonymous memory), with the device and inode: its identity
  std::uint32_t dev_major = 0;
  std::uint32_t dev_minor = 0;
  std::uint64_t inode = 0;
  std::shared_ptr<const ElfImage> image;  // null when not an ELF file or unreadable
  std::string cache_key;                  // of image in binaries_; "" when not cached (the vDSO)

  bool file_backed() const { return !path.empty() && path.front() == '/'; }
  bool is(const MapEntry& e) const {
    return maps_path == e.path && inode == e.inode && dev_major == e.dev_major && dev_minor == e.dev_minor;
  }
};

struct Symbolizer::Mapping {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::uint64_t pgoff = 0;
  std::shared_ptr<const Module> module;
};

struct Symbolizer::Process {
  static constexpr std::uint64_t kNeverRefreshed = ~std::uint64_t{0};
  std::vector<Mapping> mappings;  // executable ones, sorted by start
  bool retired = false;
  std::uint64_t refreshed_in_window = kNeverRefreshed;
};

namespace {

std::string hex(std::uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
  return buf;
}

std::string basename_of(const std::string& path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// name must be NUL-terminated.
std::string demangle(std::string_view name) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(name.data(), nullptr, nullptr, &status);
  if (status != 0 || demangled == nullptr) return std::string(name);
  std::string out(demangled);
  std::free(demangled);
  return out;
}

// Return addresses point after the call; the call itself belongs to the caller's line and function.
std::uint64_t lookup_address(std::size_t index, std::uint64_t ip) { return index > 0 && ip > 0 ? ip - 1 : ip; }

// The daemon's own vDSO image: the kernel maps the same one into every 64-bit process.
std::span<const char> own_vdso() {
  auto base = getauxval(AT_SYSINFO_EHDR);
  if (base == 0) return {};
  const auto* ehdr = reinterpret_cast<const Elf64_Ehdr*>(base);
  std::size_t size = ehdr->e_shoff + std::size_t{ehdr->e_shnum} * ehdr->e_shentsize;
  const auto* phdrs = reinterpret_cast<const Elf64_Phdr*>(base + ehdr->e_phoff);
  for (int i = 0; i < ehdr->e_phnum; ++i) size = std::max<std::size_t>(size, phdrs[i].p_offset + phdrs[i].p_filesz);
  return {reinterpret_cast<const char*>(base), size};
}

}  // namespace

Symbolizer::Symbolizer(SymbolizerOptions options) : options_(std::move(options)) {}
Symbolizer::~Symbolizer() = default;

Result<void> Symbolizer::add_process(ProcessKey key) {
  auto it = processes_.find(key);
  static const std::vector<Mapping> kNone;
  auto mappings = snapshot(key, it == processes_.end() ? kNone : it->second.mappings);
  if (!mappings) return mappings.error();
  Process& process = processes_[key];
  process.mappings = std::move(*mappings);
  process.retired = false;
  return {};
}

void Symbolizer::retire_process(ProcessKey key) {
  if (auto it = processes_.find(key); it != processes_.end()) it->second.retired = true;
}

void Symbolizer::release_retired() {
  for (auto it = processes_.begin(); it != processes_.end();) {
    if (!it->second.retired) {
      ++it;
      continue;
    }
    // Its binaries were in use until now: they are the most recently used of the unreferenced ones.
    ++use_clock_;
    for (const Mapping& m : it->second.mappings)
      if (auto cached = binaries_.find(m.module->cache_key); cached != binaries_.end())
        cached->second.last_used = use_clock_;
    it = processes_.erase(it);
  }
  demangled_.clear();  // before eviction frees the names it points to
  evict_unreferenced();
  ++window_;
}

void Symbolizer::evict_unreferenced() {
  std::vector<std::map<std::string, CachedBinary>::iterator> unreferenced;
  for (auto it = binaries_.begin(); it != binaries_.end(); ++it)
    if (it->second.image.use_count() == 1) unreferenced.push_back(it);
  if (unreferenced.size() <= options_.max_unreferenced_binaries) return;
  std::size_t evict = unreferenced.size() - options_.max_unreferenced_binaries;
  std::partial_sort(unreferenced.begin(), unreferenced.begin() + static_cast<std::ptrdiff_t>(evict), unreferenced.end(),
                    [](auto a, auto b) { return a->second.last_used < b->second.last_used; });
  for (std::size_t i = 0; i < evict; ++i) binaries_.erase(unreferenced[i]);
  counters_.cache_evictions += evict;
}

Result<std::vector<Symbolizer::Mapping>> Symbolizer::snapshot(ProcessKey key, const std::vector<Mapping>& previous) {
  auto text = read_file(options_.proc_root + "/" + std::to_string(key.pid) + "/maps");
  if (!text) return text.error();
  std::vector<Mapping> mappings;
  auto known_module = [&](const MapEntry& e) -> std::shared_ptr<const Module> {
    for (const std::vector<Mapping>* list : {&std::as_const(mappings), &previous})
      for (const Mapping& m : *list)
        // A file that could not be read before (the process was still starting, say) is tried again.
        if (m.module->is(e) && (m.module->image || !m.module->file_backed())) return m.module;
    return nullptr;
  };
  for (const MapEntry& e : parse_maps(*text)) {
    if (!e.executable) continue;
    std::shared_ptr<const Module> module = known_module(e);
    if (!module) module = load_module(key.pid, e);
    mappings.push_back({e.start, e.end, e.pgoff, std::move(module)});
  }
  return mappings;
}

std::shared_ptr<const Symbolizer::Module> Symbolizer::load_module(std::int32_t pid, const MapEntry& e) {
  auto module = std::make_shared<Module>();
  module->path = e.path.empty() ? "[anon]" : e.path;
  module->maps_path = e.path;
  module->dev_major = e.dev_major;
  module->dev_minor = e.dev_minor;
  module->inode = e.inode;
  if (e.path == "[vdso]") module->image = vdso_image();
  if (!e.file_backed()) return module;

  auto unreadable = [&](const std::string& error) {
    ++counters_.unreadable_binaries;
    log::debug("cannot read a mapped binary; its frames stay unnamed",
               {{"pid", pid}, {"path", e.path}, {"deleted", e.deleted ? "yes" : "no"}, {"error", error}});
    return module;
  };
  auto fd = open_mapped_file(options_.proc_root, pid, e, options_.use_map_files);
  if (!fd) return unreadable(fd.error().message);
  struct stat st {};
  if (fstat(fd->get(), &st) != 0) return unreadable(std::string("fstat: ") + std::strerror(errno));
  auto elf = ElfFile::open(std::move(*fd));
  if (!elf) return unreadable(elf.error().message);

  std::string build_id = elf->build_id();
  // Without a build-id: a binary rebuilt in place differs in mtime or size.
  module->cache_key = build_id.empty() ? "file:" + file_identity(st) : "build-id:" + build_id;
  CachedBinary& cached = binaries_[module->cache_key];
  cached.last_used = ++use_clock_;
  if (cached.image) {
    ++counters_.cache_hits;
  } else {
    ++counters_.cache_misses;
    DebugInfoSearch search{options_.debug_dirs, e.path, options_.proc_root + "/" + std::to_string(pid) + "/root"};
    auto image = std::make_shared<ElfImage>(load_elf_image(*elf, search));
    if (!image->debug_file.empty()) ++counters_.debug_files;
    log::debug("loaded binary symbols", {{"path", e.path},
                                         {"build_id", build_id},
                                         {"symbols", image->symbols.size()},
                                         {"debug_file", image->debug_file}});
    cached.image = std::move(image);
  }
  module->image = cached.image;
  return module;
}

std::shared_ptr<const ElfImage> Symbolizer::vdso_image() {
  if (!vdso_) {
    vdso_.emplace();
    auto elf = ElfFile::from_memory(own_vdso());
    if (elf)
      *vdso_ = std::make_shared<ElfImage>(
          load_elf_image(*elf, {{}, "[vdso]", ""}));
    else
      log::debug("cannot read the vDSO", {{"error", elf.error().message}});
  }
  return *vdso_;
}

const Symbolizer::Mapping* Symbolizer::find_mapping(ProcessKey key, Process& process, std::uint64_t addr) {
  auto find = [&]() -> const Mapping* {
    auto after = std::upper_bound(process.mappings.begin(), process.mappings.end(), addr,
                                  [](std::uint64_t a, const Mapping& m) { return a < m.start; });
    if (after == process.mappings.begin() || addr >= std::prev(after)->end) return nullptr;
    return &*std::prev(after);
  };
  if (const Mapping* m = find()) return m;
  // Mapped after the snapshot (dlopen, a JIT): read the maps again, once a window at most.
  if (process.retired || process.refreshed_in_window == window_) return nullptr;
  refresh(key, process);
  return find();
}

void Symbolizer::refresh(ProcessKey key, Process& process) {
  process.refreshed_in_window = window_;
  ++counters_.map_refreshes;
  auto fresh = snapshot(key, process.mappings);
  if (!fresh) {
    log::debug("process gone before its maps were read again", {{"pid", key.pid}, {"error", fresh.error().message}});
    return;
  }
  // Earlier samples of this window may lie in what has been unmapped since: keep the old mappings
  // that nothing new overlaps.
  std::vector<Mapping> merged = std::move(*fresh);
  std::size_t fresh_count = merged.size();
  for (Mapping& old : process.mappings) {
    auto first_after = std::upper_bound(merged.begin(), merged.begin() + static_cast<std::ptrdiff_t>(fresh_count),
                                        old.start, [](std::uint64_t a, const Mapping& m) { return a < m.end; });
    bool overlaps =
        first_after != merged.begin() + static_cast<std::ptrdiff_t>(fresh_count) && first_after->start < old.end;
    if (!overlaps) merged.push_back(std::move(old));
  }
  std::sort(merged.begin(), merged.end(), [](const Mapping& a, const Mapping& b) { return a.start < b.start; });
  process.mappings = std::move(merged);
}

std::string Symbolizer::display_name(std::string_view name) {
  if (!name.starts_with("_Z")) return std::string(name);
  auto [it, inserted] = demangled_.try_emplace(name.data());
  if (inserted) it->second = demangle(name);
  return it->second;
}

profile::Frame Symbolizer::user_frame(const Mapping* mapping, std::uint64_t addr) {
  profile::Frame frame{profile::FrameKind::native, {}, {}};
  if (mapping == nullptr) {
    ++counters_.unknown_frames;
    frame.module = "[unknown]";
    frame.name = "[unknown]+" + hex(addr);
    return frame;
  }
  const Module& module = *mapping->module;
  frame.module = module.path;
  std::uint64_t offset = addr - mapping->start + mapping->pgoff;
  std::optional<std::uint64_t> vaddr;
  if (module.image) {
    vaddr = file_offset_to_vaddr(module.image->segments, offset);
    if (vaddr) {
      if (auto name = module.image->symbols.find(*vaddr)) {
        frame.name = display_name(*name);
        return frame;
      }
    }
  }
  ++counters_.unknown_frames;
  if (module.image || module.file_backed())
    frame.name = basename_of(module.path) + "+" + hex(vaddr.value_or(offset));
  else
    frame.name = module.path + "+" + hex(addr);
  return frame;
}

std::vector<profile::Frame> Symbolizer::symbolize_user(ProcessKey key, std::span<const std::uint64_t> ips,
                                                       std::vector<bool>* frame_pointers) {
  std::vector<profile::Frame> frames;
  frames.reserve(ips.size());
  if (frame_pointers) frame_pointers->clear();
  auto it = processes_.find(key);
  for (std::size_t i = 0; i < ips.size(); ++i) {
    std::uint64_t addr = lookup_address(i, ips[i]);
    const Mapping* mapping = it == processes_.end() ? nullptr : find_mapping(key, it->second, addr);
    frames.push_back(user_frame(mapping, addr));
    if (frame_pointers) frame_pointers->push_back(mapping && mapping->module->image && mapping->module->image->frame_pointers);
  }
  return frames;
}

void Symbolizer::ensure_kernel_symbols(std::uint64_t addr) {
  if (kernel_ && kernel_->covers(addr)) return;
  auto now = std::chrono::steady_clock::now();
  if (kernel_attempted_ && now - *kernel_attempted_ < options_.kallsyms_reload_interval) return;
  kernel_attempted_ = now;
  auto loaded = KernelSymbols::load(options_.kallsyms_path);
  ++counters_.kallsyms_loads;
  if (!loaded) {
    log::warn("cannot read kernel symbols; kernel frames stay unnamed",
              {{"path", options_.kallsyms_path}, {"error", loaded.error().message}});
    return;
  }
  if (loaded->addresses_hidden() && !kernel_hidden_warned_) {
    kernel_hidden_warned_ = true;
    log::warn("kernel symbol addresses are hidden (kernel.kptr_restrict); kernel frames stay unnamed",
              {{"path", options_.kallsyms_path}});
  }
  kernel_ = std::move(*loaded);
}

std::vector<profile::Frame> Symbolizer::symbolize_kernel(std::span<const std::uint64_t> ips) {
  std::vector<profile::Frame> frames;
  frames.reserve(ips.size());
  for (std::size_t i = 0; i < ips.size(); ++i) {
    std::uint64_t addr = lookup_address(i, ips[i]);
    ensure_kernel_symbols(addr);
    profile::Frame& frame = frames.emplace_back(profile::Frame{profile::FrameKind::kernel, {}, "[kernel]"});
    if (auto symbol = kernel_ ? kernel_->find(addr) : std::nullopt) {
      frame.name = symbol->name;
      if (!symbol->module.empty()) frame.module = symbol->module;
    } else {
      ++counters_.unknown_frames;
      frame.name = "[kernel]+" + hex(addr);
    }
  }
  return frames;
}

SymbolizerStats Symbolizer::stats() const {
  SymbolizerStats s = counters_;
  s.processes = processes_.size();
  s.retired_processes = static_cast<std::size_t>(
      std::count_if(processes_.begin(), processes_.end(), [](const auto& p) { return p.second.retired; }));
  s.binaries_cached = binaries_.size();
  for (const auto& [key, binary] : binaries_) {
    if (binary.image.use_count() == 1) ++s.binaries_unreferenced;
    s.symbols += binary.image->symbols.size();
    s.symbol_bytes += binary.image->memory_bytes();
  }
  if (kernel_) {
    s.kernel_symbols = kernel_->size();
    s.symbol_bytes += kernel_->memory_bytes();
  }
  return s;
}

}  // namespace perfwatch::collector
