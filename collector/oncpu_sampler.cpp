#include "collector/oncpu_sampler.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <unordered_map>

#include "collector/python_layout.h"
#include "common/log.h"
#include "oncpu.skel.h"

namespace perfwatch::collector {
namespace {

static_assert(sizeof(count_key) == 24);
static_assert(sizeof(oncpu_counters) == 8 * (std::size_t{ONCPU_COUNTER_MAX} + PY_COUNTER_MAX));
static_assert(sizeof(py_layout) == 40);
static_assert(sizeof(py_proc) == 16);
static_assert(sizeof(py_frame) == 16);
static_assert(sizeof(py_stack) == 24 + 8 * (PY_MAX_DEPTH / 64) + 16 * PY_MAX_DEPTH);

std::vector<std::uint64_t> trimmed(const std::vector<std::uint64_t>& ips) {
  size_t n = ips.size();
  while (n > 0 && ips[n - 1] == 0) --n;
  return {ips.begin(), ips.begin() + static_cast<std::ptrdiff_t>(n)};
}

// A stored stack's frames; depth is bounded by the kernel side but checked again here.
std::span<const py_frame> python_frames(const py_stack& s, std::size_t size = sizeof(py_stack)) {
  std::size_t room = (size - offsetof(py_stack, frames)) / sizeof(py_frame);
  return {s.frames, std::min<std::size_t>({s.depth, PY_MAX_DEPTH, room})};
}

RawPythonStack to_raw(const py_stack& s) {
  RawPythonStack raw;
  raw.truncated = (s.flags & PY_STACK_TRUNCATED) != 0;
  auto frames = python_frames(s);
  raw.frames.assign(frames.begin(), frames.end());
  for (std::size_t i = 0; i < frames.size(); ++i) raw.entry.push_back((s.entry[i / 64] >> (i % 64)) & 1);
  return raw;
}

}  // namespace

Result<void> configure_oncpu(oncpu_bpf& s, int watched_map_fd, const OncpuOptions& options) {
  if (int err = bpf_map__reuse_fd(s.maps.watched, watched_map_fd)) return libbpf_error("oncpu: reuse watched map", err);
  for (auto [map, entries] : {std::pair{s.maps.counts_0, options.counts_map_entries},
                              {s.maps.counts_1, options.counts_map_entries},
                              {s.maps.stacks_0, options.stack_map_entries},
                              {s.maps.stacks_1, options.stack_map_entries},
                              {s.maps.py_procs, options.python_process_entries},
                              {s.maps.py_threads, options.python_thread_entries},
                              {s.maps.py_stacks_0, options.python_stack_entries},
                              {s.maps.py_stacks_1, options.python_stack_entries},
                              {s.maps.py_events, options.python_events_bytes}}) {
    if (Result<void> r = set_max_entries(map, entries); !r) return r;
  }
  s.rodata->py_max_depth = options.python_max_depth;
  auto layouts = python_walker_layouts();
  if (layouts.size() > PY_MAX_LAYOUTS) return make_error("oncpu: too many CPython layouts");
  for (std::size_t i = 0; i < layouts.size(); ++i)
    const_cast<py_layout&>(s.rodata->py_layouts[i]) = layouts[i]->walker;
  return {};
}

Result<std::unique_ptr<OncpuSampler>> OncpuSampler::create(int watched_map_fd, const OncpuOptions& options) {
  if (options.frequency_hz == 0) return make_error("oncpu: frequency_hz must be > 0");
  if (options.python_max_depth == 0 || options.python_max_depth > PY_MAX_DEPTH)
    return make_error("oncpu: python_max_depth must be 1 to " + std::to_string(PY_MAX_DEPTH));
  std::unique_ptr<OncpuSampler> sampler(new OncpuSampler());
  sampler->stack_map_entries_ = options.stack_map_entries;
  sampler->counts_map_entries_ = options.counts_map_entries;

  auto skel = open_and_load<oncpu_bpf>("oncpu", [&](oncpu_bpf& s) { return configure_oncpu(s, watched_map_fd, options); });
  if (!skel) return skel.error();
  sampler->skel_ = std::move(*skel);

  auto sync = RcuSync::create();
  if (!sync) return make_error("oncpu: " + sync.error().message);
  sampler->rcu_sync_ = std::move(*sync);
  sampler->python_ring_ = ring_buffer__new(bpf_map__fd(sampler->skel_->maps.py_events), &OncpuSampler::on_python_stack,
                                           sampler.get(), nullptr);
  if (!sampler->python_ring_) return libbpf_error("oncpu: python stacks ring buffer", -errno);
  if (Result<void> r = sampler->attach_all_cpus(options.frequency_hz); !r) return r.error();
  log::info("oncpu sampler attached", {{"cpus", sampler->links_.size()}, {"frequency_hz", options.frequency_hz}});
  return sampler;
}

OncpuSampler::~OncpuSampler() {
  links_.clear();  // detach before the skeleton (and its program) goes
  ring_buffer__free(python_ring_);
}

Result<void> OncpuSampler::attach_all_cpus(std::uint32_t frequency_hz) {
  auto links = attach_perf_event_on_cpus(skel_->progs.oncpu_sample, cpu_clock_attr(frequency_hz), "oncpu: cpu-clock");
  if (!links) return links.error();
  links_ = std::move(*links);
  return {};
}

OncpuSampler::Counters OncpuSampler::read_counters(std::uint32_t parity) const {
  // oncpu_counters is c[] then py[] (static_assert above): one flat array of counters per CPU.
  return sum_per_cpu<std::tuple_size_v<Counters>>(skel_->maps.counters, parity);
}

Result<void> OncpuSampler::watch_python(std::int32_t tgid, std::uint32_t generation, std::uint32_t layout,
                                        std::uint64_t runtime) {
  if (layout >= python_walker_layouts().size()) return make_error("oncpu: no CPython layout " + std::to_string(layout));
  auto key = static_cast<std::uint32_t>(tgid);
  py_proc value{runtime, generation, layout};
  if (int err = bpf_map__update_elem(skel_->maps.py_procs, &key, sizeof(key), &value, sizeof(value), BPF_ANY))
    return libbpf_error("oncpu: watch python pid " + std::to_string(tgid), err);
  return {};
}

void OncpuSampler::unwatch_python(std::int32_t tgid) {
  auto key = static_cast<std::uint32_t>(tgid);
  int err = bpf_map__delete_elem(skel_->maps.py_procs, &key, sizeof(key), 0);
  if (err && err != -ENOENT) log::warn("oncpu: unwatch python", {{"pid", tgid}, {"error", std::strerror(-err)}});
}

int OncpuSampler::python_stacks_fd() const { return ring_buffer__epoll_fd(python_ring_); }

int OncpuSampler::on_python_stack(void* ctx, void* data, std::size_t size) {
  auto* self = static_cast<OncpuSampler*>(ctx);
  if (size < offsetof(py_stack, frames) || size > sizeof(py_stack)) return 0;
  const auto* s = static_cast<const py_stack*>(data);
  (*self->on_python_stack_)({static_cast<std::int32_t>(s->tgid), s->generation, python_frames(*s, size)});
  return 0;
}

void OncpuSampler::poll_python_stacks(const std::function<void(const NewPythonStack&)>& on_stack) {
  on_python_stack_ = &on_stack;
  ring_buffer__consume(python_ring_);
  on_python_stack_ = nullptr;
}
int OncpuSampler::prog_fd() const { return bpf_program__fd(skel_->progs.oncpu_sample); }

std::uint32_t OncpuSampler::prog_id() const {
  bpf_prog_info info{};
  std::uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd(), &info, &len)) return 0;
  return info.id;
}

std::uint64_t OncpuSampler::total_samples() const {
  return read_counters(0)[ONCPU_SAMPLES] + read_counters(1)[ONCPU_SAMPLES];
}

DrainResult OncpuSampler::drain() {
  std::lock_guard lock(drain_mutex_);
  DrainResult result;
  const std::uint32_t parity = rcu_sync_->flip(&skel_->bss->epoch);

  Counters now = read_counters(parity);
  Counters& before = drained_counters_[parity];
  result.stats.samples = now[ONCPU_SAMPLES] - before[ONCPU_SAMPLES];
  result.stats.lost_stack_collision = now[ONCPU_STACK_COLLISION] - before[ONCPU_STACK_COLLISION];
  result.stats.lost_stack_error = now[ONCPU_STACK_ERROR] - before[ONCPU_STACK_ERROR];
  result.stats.lost_map_full = now[ONCPU_MAP_FULL] - before[ONCPU_MAP_FULL];
  result.not_watched = now[ONCPU_NOT_WATCHED] - before[ONCPU_NOT_WATCHED];
  result.not_profiled = now[ONCPU_NOT_PROFILED] - before[ONCPU_NOT_PROFILED];
  auto python = [&](py_counter c) {
    std::size_t i = std::size_t{ONCPU_COUNTER_MAX} + c;
    return now[i] - before[i];
  };
  result.python.samples = python(PY_SAMPLES);
  result.python.truncated = python(PY_TRUNCATED);
  result.python.no_thread_state = python(PY_NO_THREAD);
  result.python.lost_read_error = python(PY_READ_ERROR);
  result.python.lost_collision = python(PY_COLLISION);
  result.python.lost_map_full = python(PY_MAP_FULL);
  result.python.event_drops = python(PY_EVENT_DROPS);
  before = now;

  bpf_map* counts = parity ? skel_->maps.counts_1 : skel_->maps.counts_0;
  bpf_map* stacks = parity ? skel_->maps.stacks_1 : skel_->maps.stacks_0;
  bpf_map* py_stacks = parity ? skel_->maps.py_stacks_1 : skel_->maps.py_stacks_0;

  // One batch call for the whole map: it is quiescent, and a smaller batch could fail with
  // ENOSPC on a long hash bucket.
  std::vector<count_key> keys(counts_map_entries_);
  std::vector<std::uint64_t> values(counts_map_entries_);
  std::uint32_t n = counts_map_entries_;
  std::uint32_t batch_token = 0;
  int err = bpf_map_lookup_and_delete_batch(bpf_map__fd(counts), nullptr, &batch_token, keys.data(),
                                            values.data(), &n, nullptr);
  if (err && err != -ENOENT) {
    log::error("oncpu: drain counts", {{"error", std::strerror(-err)}});
    n = 0;
  }

  std::vector<std::uint32_t> stack_ids;
  for (std::uint32_t id, *prev = nullptr; bpf_map__get_next_key(stacks, prev, &id, sizeof(id)) == 0; prev = &id)
    stack_ids.push_back(id);

  // Many keys share a stack: read each once. Negative ids (no stack) resolve to an empty one; a
  // missing id resolves to nothing.
  std::unordered_map<std::int32_t, std::optional<std::vector<std::uint64_t>>> resolved;
  auto resolve = [&](std::int32_t id) -> const std::optional<std::vector<std::uint64_t>>& {
    auto [it, inserted] = resolved.try_emplace(id);
    if (!inserted) return it->second;
    if (id < 0) {
      it->second.emplace();
      return it->second;
    }
    std::vector<std::uint64_t> ips(ONCPU_MAX_STACK_DEPTH);
    if (bpf_map__lookup_elem(stacks, &id, sizeof(id), ips.data(), ips.size() * sizeof(ips[0]), 0) == 0)
      it->second = trimmed(ips);
    return it->second;
  };

  // Python stacks likewise; one that is missing (which the walker never leaves behind) only costs
  // the sample its Python frames.
  std::unordered_map<std::uint64_t, RawPythonStack> python_resolved;
  auto stored = std::make_unique<py_stack>();
  auto resolve_python = [&](std::uint64_t id) -> const RawPythonStack& {
    auto [it, inserted] = python_resolved.try_emplace(id);
    if (!inserted || id == PY_STACK_NONE) return it->second;
    if (id != PY_STACK_LOST &&
        bpf_map__lookup_elem(py_stacks, &id, sizeof(id), stored.get(), sizeof(py_stack), 0) == 0)
      it->second = to_raw(*stored);
    else
      it->second.lost = true;
    return it->second;
  };

  result.stacks.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const count_key& key = keys[i];
    const auto& user = resolve(key.user_stack_id);
    const auto& kernel = resolve(key.kernel_stack_id);
    if (!user || !kernel) {
      result.stats.lost_unresolved += values[i];
      continue;
    }
    const RawPythonStack& python = resolve_python(key.py_stack);
    if (python.lost && key.py_stack != PY_STACK_LOST) result.python.lost_unresolved += values[i];
    result.stacks.push_back(
        RawStack{static_cast<std::int32_t>(key.tgid), key.generation, *user, *kernel, python, values[i]});
  }

  for (std::uint32_t id : stack_ids) bpf_map__delete_elem(stacks, &id, sizeof(id), 0);
  std::vector<std::uint64_t> python_ids;
  for (std::uint64_t id, *prev = nullptr; bpf_map__get_next_key(py_stacks, prev, &id, sizeof(id)) == 0; prev = &id)
    python_ids.push_back(id);
  for (std::uint64_t id : python_ids) bpf_map__delete_elem(py_stacks, &id, sizeof(id), 0);
  return result;
}

}  // namespace perfwatch::collector
