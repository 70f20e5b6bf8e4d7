#pragma once
// The one open -> configure (rodata, map sizes, reused fds) -> load sequence for bpftool
// skeletons, whose C++ API provides Skel::open/load/destroy. libbpf errors become Results that say
// why, in the kernel's words where it gave them.
#include <bpf/libbpf.h>

#include <array>
#include <vector>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/log.h"
#include "common/result.h"

namespace perfwatch::collector {

// err is a negative errno, as libbpf 1.x returns them.
inline Error libbpf_error(std::string_view what, int err) {
  return make_error(std::string(what) + ": " + std::strerror(-err));
}

template <typename Skel>
struct SkeletonDeleter {
  void operator()(Skel* skel) const { Skel::destroy(skel); }
};
template <typename Skel>
using SkeletonPtr = std::unique_ptr<Skel, SkeletonDeleter<Skel>>;

struct LinkDeleter {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
using Link = std::unique_ptr<bpf_link, LinkDeleter>;

inline Result<void> set_max_entries(bpf_map* map, std::uint32_t entries) {
  if (entries == 0) return make_error(std::string("map ") + bpf_map__name(map) + ": size must be > 0");
  if (int err = bpf_map__set_max_entries(map, entries))
    return libbpf_error(std::string("map ") + bpf_map__name(map) + ": set_max_entries", err);
  return {};
}

// The value at key of a per-CPU array of N counters, summed over CPUs; zeros (logged) on failure.
template <std::size_t N>
std::array<std::uint64_t, N> sum_per_cpu(const bpf_map* map, std::uint32_t key) {
  std::vector<std::array<std::uint64_t, N>> per_cpu(static_cast<std::size_t>(libbpf_num_possible_cpus()));
  std::array<std::uint64_t, N> sum{};
  if (int err = bpf_map__lookup_elem(map, &key, sizeof(key), per_cpu.data(), per_cpu.size() * sizeof(sum), 0)) {
    log::error("read per-CPU counters", {{"map", bpf_map__name(map)}, {"error", std::strerror(-err)}});
    return sum;
  }
  for (const auto& cpu : per_cpu)
    for (std::size_t i = 0; i < N; ++i) sum[i] += cpu[i];
  return sum;
}

// Programs a collector leaves out of its skeleton's load (bpf_program__set_autoload(false)), by name,
// with the reason: the running kernel lacks their attach point, or the configuration does not use
// them. Deciding before load means one absent attach point never fails the whole skeleton.
using SkippedPrograms = std::map<std::string, std::string>;

// Before load, where set_autoload cannot fail.
inline void skip_program(bpf_program* prog, std::string reason, SkippedPrograms& skipped) {
  bpf_program__set_autoload(prog, false);
  skipped.emplace(bpf_program__name(prog), std::move(reason));
}

inline void log_skipped(std::string_view collector, const SkippedPrograms& skipped) {
  for (const auto& [program, reason] : skipped)
    log::debug(std::string(collector) + ": program not loaded", {{"program", program}, {"reason", reason}});
}

// Why a load failed, from libbpf's warnings during it: the program it failed on ("" when libbpf named
// none: a map, BTF) and the reason (for a program the verifier rejected, the verifier's last message).
struct LoadFailure {
  std::string program;
  std::string reason;
};
LoadFailure explain_load_failure(const std::vector<std::string>& warnings);

// Test-only fault point (README, "Degraded probes"): PERFWATCH_TEST_REJECT_PROGRAMS lists
// "skeleton/program" or "skeleton" (all its programs) separated by commas; read at each load. Each
// program it names is loaded as a socket filter, so that the kernel's verifier really rejects it, with
// its own reason.
void apply_test_rejections(std::string_view skeleton, bpf_object* obj);

// configure(Skel&) -> Result<void> runs between open and load. The error says why, as libbpf and the
// kernel told it.
template <typename Skel, typename Configure>
Result<SkeletonPtr<Skel>> open_and_load(std::string_view name, Configure&& configure) {
  SkeletonPtr<Skel> skel(Skel::open());
  if (!skel) return libbpf_error(std::string(name) + ": open", -errno);
  if (Result<void> r = configure(*skel); !r) return r.error();
  apply_test_rejections(name, skel->obj);
  log::LibbpfWarnings warnings;
  if (int err = Skel::load(skel.get())) {
    const LoadFailure why = explain_load_failure(warnings.lines());
    Error e = libbpf_error(std::string(name) + ": load", err);
    if (!why.reason.empty()) e.message += " (" + why.reason + ")";
    return e;
  }
  return skel;
}

// open_and_load that leaves out what the kernel rejects: when a load fails on a program, that program
// is left out and the skeleton opened and loaded again without it, so one program the kernel refuses
// costs only what it measures. `rejected` gets each program left out and why; callers attach only
// programs that loaded (loaded()). Fails when a load fails on no program in particular.
template <typename Skel, typename Configure>
Result<SkeletonPtr<Skel>> open_and_load_each(std::string_view name, Configure&& configure,
                                             std::map<std::string, std::string>& rejected) {
  for (;;) {
    SkeletonPtr<Skel> skel(Skel::open());
    if (!skel) return libbpf_error(std::string(name) + ": open", -errno);
    if (Result<void> r = configure(*skel); !r) return r.error();
    apply_test_rejections(name, skel->obj);
    for (const auto& [program, reason] : rejected)
      if (bpf_program* prog = bpf_object__find_program_by_name(skel->obj, program.c_str()))
        bpf_program__set_autoload(prog, false);
    log::LibbpfWarnings warnings;
    const int err = Skel::load(skel.get());
    if (err == 0) return skel;
    LoadFailure why = explain_load_failure(warnings.lines());
    bpf_program* failed = why.program.empty() ? nullptr : bpf_object__find_program_by_name(skel->obj, why.program.c_str());
    if (!failed || !bpf_program__autoload(failed) || rejected.count(why.program)) {
      Error e = libbpf_error(std::string(name) + ": load", err);
      if (!why.reason.empty()) e.message += " (" + why.reason + ")";
      return e;
    }
    log::warn("the kernel rejected a BPF program; loading the others without it",
              {{"object", name}, {"program", why.program}, {"reason", why.reason}});
    rejected.emplace(std::move(why.program), std::move(why.reason));
  }
}

// Whether a program of a loaded skeleton was loaded (open_and_load_each may have left it out).
inline bool loaded(const bpf_program* prog) { return bpf_program__fd(prog) >= 0; }

}  // namespace perfwatch::collector
