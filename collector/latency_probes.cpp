#include "collector/latency_probes.h"

#include <bpf/bpf.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "collector/elf_symbols.h"
#include "collector/files.h"
#include "collector/proc_maps.h"
#include "collector/tracefs.h"
#include "common/log.h"
#include "latency.skel.h"

namespace perfwatch::collector {
namespace {

// System call numbers of enum lat_syscall, in its order (this build's architecture).
constexpr std::uint32_t syscall_numbers[] = {SYS_read,   SYS_pread64, SYS_readv,   SYS_preadv, SYS_preadv2,
                                             SYS_write,  SYS_pwrite64, SYS_writev, SYS_pwritev, SYS_pwritev2,
                                             SYS_openat, SYS_fsync,   SYS_fdatasync};
static_assert(std::size(syscall_numbers) == LAT_SYS_COUNT);
static_assert(std::ranges::all_of(syscall_numbers, [](std::uint32_t nr) { return nr < LAT_SYS_NR_MAX; }));

// Kernels built without CONFIG_FTRACE_SYSCALLS have raw_syscalls but no syscalls:sys_enter_NAME.
bool per_syscall_tracepoints(SyscallAttach how) {
  return how == SyscallAttach::automatic && has_tracepoint("syscalls", "sys_enter_read");
}

bool uses(const std::vector<LatencyOperation>& operations, profile::OperationSource source) {
  return std::ranges::any_of(operations, [source](const LatencyOperation& op) { return op.source == source; });
}

static_assert(sizeof(lat_op) == 8);
static_assert(sizeof(lat_py_name_key) == 16);
static_assert(sizeof(lat_py_op_key) == 24);
static_assert(sizeof(lat_sys_key) == 8);
static_assert(sizeof(lat_sys_filter) == 24);
static_assert(sizeof(lat_sys_ops) == 8 + 24 * LAT_SYS_OPS);
static_assert(sizeof(lat_counters) == 8 * LAT_COUNTER_MAX);
static_assert(sizeof(lat_hist) == 8 * (4 + LAT_BUCKETS));

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::string join(std::span<const std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out += (out.empty() ? "" : ".") + std::string(p);
  return out;
}

std::string_view basename(std::string_view path) { return path.substr(path.rfind('/') + 1); }

// The kernel's dev_t encoding (MKDEV: major << 20 | minor), as super_block.s_dev holds it.
std::uint32_t kernel_dev(dev_t dev) { return (major(dev) << 20) | minor(dev); }

}  // namespace

std::uint64_t python_name_hash(std::string_view name) {
  name = name.substr(0, LAT_PY_NAME_LEN - 1);
  std::uint64_t hash = LAT_FNV_OFFSET;
  for (std::size_t i = 0; i < name.size(); i += 8) {
    std::uint64_t word = 0;  // little-endian, as the probe loads it
    for (std::size_t b = 0; b < 8 && i + b < name.size(); ++b)
      word |= std::uint64_t{static_cast<unsigned char>(name[i + b])} << (8 * b);
    hash = lat_fnv_word(hash, word);
  }
  return hash;
}

std::uint64_t python_module_hash(std::string_view module) {
  std::uint64_t hash = LAT_FNV_OFFSET;
  for (auto it = module.rbegin(); it != module.rend(); ++it) hash = lat_fnv_step(hash, static_cast<unsigned char>(*it));
  return hash;
}

PythonMatch python_match(const std::string& spec) {
  PythonMatch match;
  const std::size_t colon = spec.find(':');
  if (colon != std::string::npos) {
    const auto qualname = split(std::string_view(spec).substr(colon + 1), '.');
    match.name_hash = python_name_hash(qualname.back());
    match.module_hashes.push_back(python_module_hash(std::string_view(spec).substr(0, colon)));
    return match;
  }
  // Without ':' the module may end after any component but the last: "a.B.f" is f in module a.B,
  // or method B.f in module a.
  const auto parts = split(spec, '.');
  match.name_hash = python_name_hash(parts.back());
  for (std::size_t n = parts.size() - 1; n >= 1; --n)
    match.module_hashes.push_back(python_module_hash(join(std::span(parts).first(n))));
  return match;
}

Result<SkippedPrograms> configure_latency(latency_bpf& s, int watched_map_fd, const std::vector<LatencyOperation>& ops,
                                          SyscallAttach syscall_attach) {
  const auto op_count = static_cast<std::uint32_t>(std::max<std::size_t>(1, ops.size()));
  std::uint32_t python_keys = 1, syscall_keys = 1;
  for (const LatencyOperation& op : ops) {
    if (op.source == profile::OperationSource::python) python_keys += python_match(op.spec).module_hashes.size();
    if (op.source == profile::OperationSource::syscall) ++syscall_keys;
  }
  if (int err = bpf_map__reuse_fd(s.maps.watched, watched_map_fd)) return libbpf_error("latency: reuse watched map", err);
  s.rodata->max_ops = op_count;
  for (auto [map, entries] : {std::pair{s.maps.ops, op_count},
                              {s.maps.hists, 2 * op_count},
                              {s.maps.py_names, python_keys},
                              {s.maps.py_ops, python_keys},
                              {s.maps.sys_ops, syscall_keys}}) {
    if (Result<void> r = set_max_entries(map, entries); !r) return r.error();
  }

  SkippedPrograms skipped;
  const std::string unused = "no operation of this source in the configuration";
  if (!uses(ops, profile::OperationSource::uprobe))
    for (bpf_program* prog : {s.progs.uprobe_entry, s.progs.uprobe_return}) skip_program(prog, unused, skipped);
  if (!uses(ops, profile::OperationSource::python))
    for (bpf_program* prog : {s.progs.python_entry, s.progs.python_return}) skip_program(prog, unused, skipped);
  if (!uses(ops, profile::OperationSource::syscall)) {
    for (bpf_program* prog : {s.progs.sys_enter, s.progs.sys_exit, s.progs.raw_sys_enter, s.progs.raw_sys_exit})
      skip_program(prog, unused, skipped);
  } else if (per_syscall_tracepoints(syscall_attach)) {
    for (bpf_program* prog : {s.progs.raw_sys_enter, s.progs.raw_sys_exit})
      skip_program(prog, "the fallback for kernels without syscalls:sys_enter_* tracepoints; this one has them", skipped);
  } else {
    const std::string why = syscall_attach == SyscallAttach::raw_syscalls ? "raw_syscalls asked for"
                                                                          : "no syscalls:sys_enter_* tracepoints on this kernel";
    for (bpf_program* prog : {s.progs.sys_enter, s.progs.sys_exit}) skip_program(prog, why, skipped);
  }
  return skipped;
}

Result<std::unique_ptr<LatencyProbes>> LatencyProbes::create(int watched_map_fd,
                                                             std::vector<LatencyOperation> operations,
                                                             SyscallAttach syscall_attach) {
  std::unique_ptr<LatencyProbes> probes(new LatencyProbes());
  probes->operations_ = std::move(operations);
  const auto& ops = probes->operations_;
  // Both kinds of syscall tracepoint, and per_syscall_tracepoints(), need tracefs: mounted at start-up.
  const bool per_syscall = per_syscall_tracepoints(syscall_attach);
  // Only the programs the operations need load (configure_latency), so that one the kernel rejects
  // costs only its own source.
  std::map<std::string, std::string> rejected;
  auto skel = open_and_load_each<latency_bpf>("latency", [&](latency_bpf& s) -> Result<void> {
    auto skipped = configure_latency(s, watched_map_fd, ops, syscall_attach);
    if (!skipped) return skipped.error();
    log_skipped("latency", *skipped);
    return {};
  }, rejected);
  if (!skel) return skel.error();
  probes->skel_ = std::move(*skel);
  const auto& progs = probes->skel_->progs;
  const std::array<std::array<const bpf_program*, 2>, 3> programs{
      {{progs.uprobe_entry, progs.uprobe_return},
       {progs.python_entry, progs.python_return},
       {per_syscall ? progs.sys_enter : progs.raw_sys_enter, per_syscall ? progs.sys_exit : progs.raw_sys_exit}}};
  const std::array<std::string, 3> running{
      "uprobes on each watched process's functions", "CPython's USDT probes python:function__entry/__return",
      per_syscall ? "tracepoints syscalls:sys_enter_*/sys_exit_*" : "tracepoints raw_syscalls:sys_enter/sys_exit"};
  for (std::size_t source = 0; source < programs.size(); ++source) {
    SourceState& state = probes->sources_[source];
    if (!uses(ops, static_cast<profile::OperationSource>(source))) continue;
    state = {profile::ProbeStatus::running, running[source]};
    for (const bpf_program* prog : programs[source])
      if (auto it = rejected.find(bpf_program__name(prog)); it != rejected.end())
        state = {profile::ProbeStatus::failed, "the kernel rejected " + it->second};
  }

  for (std::uint32_t i = 0; i < ops.size(); ++i) {
    lat_op value{ops[i].threshold_ns};
    if (int err = bpf_map__update_elem(probes->skel_->maps.ops, &i, sizeof(i), &value, sizeof(value), BPF_ANY))
      return libbpf_error("latency: set threshold", err);
  }
  SourceState& python = probes->sources_[static_cast<std::size_t>(profile::OperationSource::python)];
  if (profile::measures(python.status))
    if (Result<void> r = probes->configure_python(); !r) python = {profile::ProbeStatus::failed, r.error().message};
  SourceState& syscalls = probes->sources_[static_cast<std::size_t>(profile::OperationSource::syscall)];
  if (profile::measures(syscalls.status)) {
    probes->update_syscall_filters();
    if (Result<void> r = probes->attach_syscalls(per_syscall); !r) {
      probes->syscall_links_.clear();  // all of them or none: a syscall operation's calls are whole or absent
      syscalls = {profile::ProbeStatus::failed, r.error().message};
    }
  }
  auto sync = RcuSync::create();
  if (!sync) return make_error("latency: " + sync.error().message);
  probes->rcu_sync_ = std::move(*sync);
  log::info("latency probes loaded", {{"operations", ops.size()}, {"syscall_links", probes->syscall_links_.size()},
                                      {"uprobe", probes->state(profile::OperationSource::uprobe).text()},
                                      {"python", probes->state(profile::OperationSource::python).text()},
                                      {"syscall", probes->state(profile::OperationSource::syscall).text()}});
  return probes;
}

profile::ProbeState LatencyProbes::state(profile::OperationSource source) const {
  const profile::ProbeFamily family = profile::family_of(source);
  if (source == profile::OperationSource::statsd) return {family, profile::ProbeStatus::off, ""};
  const SourceState& s = sources_[static_cast<std::size_t>(source)];
  if (s.status != profile::ProbeStatus::running || s.attach_failures == 0) return {family, s.status, s.detail};
  return {family, profile::ProbeStatus::degraded,
          s.detail + "; " + std::to_string(s.attach_failures) + " could not attach, the latest: " + s.last_failure};
}

void LatencyProbes::attach_failed(profile::OperationSource source, const std::string& what) {
  SourceState& s = sources_[static_cast<std::size_t>(source)];
  ++s.attach_failures;
  s.last_failure = what;
}

LatencyProbes::~LatencyProbes() {
  processes_.clear();  // detach before the skeleton (and its programs) goes
  syscall_links_.clear();
}

Result<void> LatencyProbes::configure_python() {
  for (std::uint32_t i = 0; i < operations_.size(); ++i) {
    const LatencyOperation& op = operations_[i];
    if (op.source != profile::OperationSource::python) continue;
    const PythonMatch match = python_match(op.spec);
    lat_py_name_key name_key{op.target, 0, match.name_hash};
    std::uint8_t one = 1;
    if (int err = bpf_map__update_elem(skel_->maps.py_names, &name_key, sizeof(name_key), &one, sizeof(one), BPF_ANY))
      return libbpf_error("latency: python names", err);
    for (std::uint64_t module_hash : match.module_hashes) {
      lat_py_op_key key{op.target, 0, match.name_hash, module_hash};
      // The first operation keeps a (function, module) that two of the target's operations share.
      int err = bpf_map__update_elem(skel_->maps.py_ops, &key, sizeof(key), &i, sizeof(i), BPF_NOEXIST);
      if (err && err != -EEXIST) return libbpf_error("latency: python operations", err);
    }
  }
  return {};
}

void LatencyProbes::update_syscall_filters() {
  std::map<std::pair<std::uint32_t, std::uint32_t>, lat_sys_ops> filters;
  for (std::uint32_t i = 0; i < operations_.size(); ++i) {
    const LatencyOperation& op = operations_[i];
    if (op.source != profile::OperationSource::syscall) continue;
    lat_sys_filter filter{i, op.regular_only ? LAT_SYS_REGULAR_ONLY : 0u, 0, 0, 0};
    if (!op.path_prefix.empty()) {
      filter.flags |= LAT_SYS_PREFIX;
      struct stat st {};
      // Resolved in perfwatchd's mount namespace; a prefix that does not exist yet matches nothing until it does.
      if (::stat(op.path_prefix.c_str(), &st) == 0) {
        filter.dev = kernel_dev(st.st_dev);
        filter.ino = st.st_ino;
      } else if (reported_.insert("prefix:" + op.path_prefix).second) {
        log::warn("latency: path_prefix not found; the operation matches nothing until it exists",
                  {{"operation", op.name}, {"path_prefix", op.path_prefix}, {"error", std::strerror(errno)}});
      }
      prefixes_[i] = {filter.dev, filter.ino};
    }
    lat_sys_ops& slot = filters[{op.target, op.syscall}];
    if (slot.count == LAT_SYS_OPS) {
      if (reported_.insert("sysops:" + op.name).second)
        log::error("latency: too many operations of one target on one system call; ignoring this one",
                   {{"operation", op.name}, {"syscall", op.spec}, {"max", LAT_SYS_OPS}});
      continue;
    }
    slot.f[slot.count++] = filter;
  }
  for (auto& [key_pair, value] : filters) {
    lat_sys_key key{key_pair.first, key_pair.second};
    if (int err = bpf_map__update_elem(skel_->maps.sys_ops, &key, sizeof(key), &value, sizeof(value), BPF_ANY))
      log::error("latency: syscall filters", {{"error", std::strerror(-err)}});
  }
}

Result<void> LatencyProbes::attach_syscalls(bool per_syscall) {
  std::set<std::pair<std::uint32_t, std::string>> syscalls;
  for (const LatencyOperation& op : operations_)
    if (op.source == profile::OperationSource::syscall) syscalls.emplace(op.syscall, op.spec);
  if (per_syscall) {
    for (const auto& [kind, name] : syscalls) {
      for (bool enter : {true, false}) {
        LIBBPF_OPTS(bpf_tracepoint_opts, opts, .bpf_cookie = kind);
        const std::string tracepoint = (enter ? "sys_enter_" : "sys_exit_") + name;
        bpf_link* link = bpf_program__attach_tracepoint_opts(enter ? skel_->progs.sys_enter : skel_->progs.sys_exit,
                                                             "syscalls", tracepoint.c_str(), &opts);
        if (!link) return libbpf_error("latency: attach tracepoint syscalls:" + tracepoint, -errno);
        syscall_links_.emplace_back(link);
      }
    }
    return {};
  }
  for (const auto& [kind, name] : syscalls) {
    const std::uint32_t nr = syscall_numbers[kind], value = kind + 1;
    if (int err = bpf_map__update_elem(skel_->maps.sys_numbers, &nr, sizeof(nr), &value, sizeof(value), BPF_ANY))
      return libbpf_error("latency: set syscall number of " + name, err);
  }
  for (bool enter : {true, false}) {
    bpf_link* link = bpf_program__attach_tracepoint(enter ? skel_->progs.raw_sys_enter : skel_->progs.raw_sys_exit,
                                                    "raw_syscalls", enter ? "sys_enter" : "sys_exit");
    if (!link)
      return libbpf_error(std::string("latency: attach tracepoint raw_syscalls:sys_") + (enter ? "enter" : "exit"), -errno);
    syscall_links_.emplace_back(link);
  }
  log::warn("latency: syscall operations measured through raw_syscalls, which run on every system call",
            {{"reason", has_tracepoint("syscalls", "sys_enter_read") ? "asked for"
                                                                     : "the kernel has no syscalls:sys_enter_* tracepoints"}});
  return {};
}

void LatencyProbes::watch(std::int32_t pid, std::uint32_t target) {
  Process process;
  process.target = target;
  const auto measured = [&](profile::OperationSource source) {
    return profile::measures(sources_[static_cast<std::size_t>(source)].status);
  };
  for (std::size_t i = 0; i < operations_.size(); ++i) {
    if (operations_[i].target != target) continue;
    if (operations_[i].source == profile::OperationSource::uprobe && measured(operations_[i].source)) process.pending.insert(i);
    if (operations_[i].source == profile::OperationSource::python && measured(operations_[i].source))
      process.python_pending = true;
  }
  if (process.pending.empty() && !process.python_pending) return;
  Process& stored = processes_[pid] = std::move(process);
  attach_pending(pid, stored);
}

void LatencyProbes::unwatch(std::int32_t pid) { processes_.erase(pid); }

void LatencyProbes::attach_pending(std::int32_t pid, Process& process) {
  for (auto it = process.pending.begin(); it != process.pending.end();)
    it = attach_uprobe(pid, *it, process) ? process.pending.erase(it) : std::next(it);
  if (process.python_pending && attach_python(pid, process)) process.python_pending = false;
}

void LatencyProbes::refresh() {
  for (auto& [pid, process] : processes_)
    if (!process.pending.empty() || process.python_pending) attach_pending(pid, process);
  for (const auto& [op, resolved] : prefixes_) {
    struct stat st {};
    const bool exists = ::stat(operations_[op].path_prefix.c_str(), &st) == 0;
    const std::pair<std::uint32_t, std::uint64_t> now = exists ? std::pair{kernel_dev(st.st_dev), st.st_ino} : std::pair{0u, std::uint64_t{0}};
    if (now != resolved) {
      log::info("latency: path_prefix changed; updating its filter", {{"path_prefix", operations_[op].path_prefix}});
      update_syscall_filters();
      return;
    }
  }
}

bool LatencyProbes::attach_uprobe(std::int32_t pid, std::size_t op_index, Process& process) {
  const LatencyOperation& op = operations_[op_index];
  const std::size_t colon = op.spec.find(':');
  const std::string binary = op.spec.substr(0, colon), symbol = op.spec.substr(colon + 1);
  MappedBinary mapped = find_mapped_binary(pid, binary);
  if (mapped.gone) return true;
  if (!mapped.entry) return false;  // not mapped yet
  const auto entry = &*mapped.entry;

  auto fail = [&](const std::string& what) {
    attach_failed(op.source, op.name + " in " + entry->path + ": " + what);
    if (reported_.insert("uprobe:" + op.name + ":" + entry->path + ":" + what).second)
      log::warn("latency: cannot attach uprobe", {{"operation", op.name}, {"pid", pid}, {"binary", entry->path},
                                                  {"symbol", symbol}, {"error", what}});
    return true;
  };
  Result<UniqueFd> fd = open_mapped_file("/proc", pid, *entry);
  if (!fd) return fail(fd.error().message);
  // The kernel resolves the path to the file's inode when the probe is created: through our
  // descriptor it is the very file the process mapped, whatever its mount namespace.
  const std::string path = "/proc/self/fd/" + std::to_string(fd->get());
  Result<ElfFile> elf = ElfFile::open(std::move(*fd));
  if (!elf) return fail(elf.error().message);
  DebugInfoSearch search{{"/usr/lib/debug"}, entry->path, "/proc/" + std::to_string(pid) + "/root"};
  std::optional<std::uint64_t> address = find_function(*elf, search, symbol);
  if (!address) return fail("no function of that name in the binary's symbols");
  std::optional<std::uint64_t> offset = vaddr_to_file_offset(elf->load_segments(), *address);
  if (!offset) return fail("the function's address is outside the binary's segments");

  for (bool retprobe : {false, true}) {
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = op_index, .retprobe = retprobe);
    bpf_link* link = bpf_program__attach_uprobe_opts(retprobe ? skel_->progs.uprobe_return : skel_->progs.uprobe_entry,
                                                     pid, path.c_str(), *offset, &opts);
    if (!link) return fail(std::string("attach: ") + std::strerror(errno));
    process.links.emplace_back(link);
  }
  log::debug("latency: uprobe attached", {{"operation", op.name}, {"pid", pid}, {"binary", entry->path},
                                          {"symbol", symbol}, {"offset", *offset}});
  return true;
}

bool LatencyProbes::attach_python(std::int32_t pid, Process& process) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::vector<UniqueFd> candidates;
  candidates.push_back(open_read_only(proc + "/exe"));
  // An interpreter embedded in another program carries the probes in libpython.
  if (Result<std::string> maps = read_file(proc + "/maps")) {
    for (const MapEntry& e : parse_maps(*maps))
      if (e.executable && e.file_backed() && basename(e.path).starts_with("libpython"))
        if (auto fd = open_mapped_file("/proc", pid, e)) candidates.push_back(std::move(*fd));
  } else {
    return true;  // gone
  }
  for (UniqueFd& fd : candidates) {
    if (!fd) continue;
    const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
    // Checked first: libbpf warns about every file without USDT notes.
    Result<ElfFile> elf = ElfFile::open(UniqueFd(dup(fd.get())));
    if (!elf || !elf->has_section(".note.stapsdt")) continue;
    LIBBPF_OPTS(bpf_usdt_opts, opts, .usdt_cookie = process.target);
    bpf_link* entry = bpf_program__attach_usdt(skel_->progs.python_entry, pid, path.c_str(), "python",
                                               "function__entry", &opts);
    if (!entry) continue;
    process.links.emplace_back(entry);
    bpf_link* ret = bpf_program__attach_usdt(skel_->progs.python_return, pid, path.c_str(), "python",
                                             "function__return", &opts);
    if (!ret) {
      attach_failed(profile::OperationSource::python,
                    "python:function__return in pid " + std::to_string(pid) + ": " + std::strerror(errno));
      log::warn("latency: cannot attach python function__return", {{"pid", pid}, {"error", std::strerror(errno)}});
      process.links.pop_back();
      return true;
    }
    process.links.emplace_back(ret);
    log::debug("latency: python probes attached", {{"pid", pid}, {"target", process.target}});
    return true;
  }
  // libpython may not be mapped yet right after exec; after a few windows, give up on this process.
  if (++process.python_attempts < 3) return false;
  attach_failed(profile::OperationSource::python,
                "pid " + std::to_string(pid) + ": no CPython USDT probes in its executable or libpython");
  if (reported_.insert("python:" + std::to_string(process.target)).second)
    log::warn("latency: no CPython USDT probes (python:function__entry) in the process's executable or libpython; "
              "its python operations are not measured (Debian's /usr/bin/python3.11 has them)",
              {{"pid", pid}, {"target", process.target}});
  return true;
}

LatencyProbes::Counters LatencyProbes::read_counters(std::uint32_t parity) const {
  return sum_per_cpu<LAT_COUNTER_MAX>(skel_->maps.counters, parity);
}

LatencyDrain LatencyProbes::drain() {
  std::lock_guard lock(drain_mutex_);
  LatencyDrain result;
  const std::uint32_t parity = rcu_sync_->flip(&skel_->bss->epoch);

  Counters now = read_counters(parity);
  Counters& before = drained_counters_[parity];
  result.stats.probe_calls = now[LAT_CALLS] - before[LAT_CALLS];
  result.stats.lost_no_entry = now[LAT_NO_ENTRY] - before[LAT_NO_ENTRY];
  result.stats.lost_unwound = now[LAT_UNWOUND] - before[LAT_UNWOUND];
  result.stats.lost_map_full = now[LAT_MAP_FULL] - before[LAT_MAP_FULL];
  before = now;

  const std::uint32_t stride = skel_->rodata->max_ops;
  auto hist = std::make_unique<lat_hist>();
  static const lat_hist zero{};
  for (std::uint32_t op = 0; op < operations_.size(); ++op) {
    std::uint32_t index = parity * stride + op;
    if (int err = bpf_map__lookup_elem(skel_->maps.hists, &index, sizeof(index), hist.get(), sizeof(lat_hist), 0)) {
      log::error("latency: read histogram", {{"error", std::strerror(-err)}});
      result.histograms.emplace_back();
      continue;
    }
    // __u64 is unsigned long long, std::uint64_t unsigned long: same size and representation.
    const std::span<const std::uint64_t> buckets(reinterpret_cast<const std::uint64_t*>(hist->buckets), LAT_BUCKETS);
    result.histograms.push_back(profile::from_dense(hist->count, hist->sum_ns, hist->max_ns, hist->slow, buckets));
    if (hist->count != 0)
      bpf_map__update_elem(skel_->maps.hists, &index, sizeof(index), &zero, sizeof(zero), BPF_ANY);
  }
  return result;
}

std::size_t LatencyProbes::attached_links() const {
  std::size_t n = syscall_links_.size();
  for (const auto& [pid, process] : processes_) n += process.links.size();
  return n;
}

std::vector<std::uint32_t> LatencyProbes::prog_ids() const {
  std::vector<std::uint32_t> ids;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel_->obj) {
    bpf_prog_info info{};
    std::uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) ids.push_back(info.id);
  }
  return ids;
}

}  // namespace perfwatch::collector
