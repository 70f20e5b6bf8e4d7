#include "collector/oncpu_sampler.h"

#include <bpf/bpf.h>
#include <optional>
#include <unordered_map>

#include "common/log.h"
#include "oncpu.skel.h"

namespace perfwatch::collector {
namespace {

static_assert(sizeof(watch_value) == 8);
static_assert(sizeof(count_key) == 16);
static_assert(sizeof(oncpu_counters) == 8 * ONCPU_COUNTER_MAX);

std::vector<std::uint64_t> trimmed(const std::vector<std::uint64_t>& ips) {
  size_t n = ips.size();
  while (n > 0 && ips[n - 1] == 0) --n;
  return {ips.begin(), ips.begin() + static_cast<std::ptrdiff_t>(n)};
}

}  // namespace

Result<std::unique_ptr<OncpuSampler>> OncpuSampler::create(const OncpuOptions& options) {
  if (options.frequency_hz == 0) return make_error("oncpu: frequency_hz must be > 0");
  std::unique_ptr<OncpuSampler> sampler(new OncpuSampler());
  sampler->stack_map_entries_ = options.stack_map_entries;
  sampler->counts_map_entries_ = options.counts_map_entries;

  auto skel = open_and_load<oncpu_bpf>("oncpu", [&](oncpu_bpf& s) -> Result<void> {
    for (auto [map, entries] : {std::pair{s.maps.watched, options.watched_map_entries},
                                {s.maps.counts_0, options.counts_map_entries},
                                {s.maps.counts_1, options.counts_map_entries},
                                {s.maps.stacks_0, options.stack_map_entries},
                                {s.maps.stacks_1, options.stack_map_entries}}) {
      if (Result<void> r = set_max_entries(map, entries); !r) return r;
    }
    return {};
  });
  if (!skel) return skel.error();
  sampler->skel_ = std::move(*skel);

  auto sync = RcuSync::create();
  if (!sync) return make_error("oncpu: " + sync.error().message);
  sampler->rcu_sync_ = std::move(*sync);
  if (Result<void> r = sampler->attach_all_cpus(options.frequency_hz); !r) return r.error();
  log::info("oncpu sampler attached", {{"cpus", sampler->links_.size()}, {"frequency_hz", options.frequency_hz}});
  return sampler;
}

OncpuSampler::~OncpuSampler() {
  links_.clear();  // detach before the skeleton (and its program) goes
}

Result<void> OncpuSampler::attach_all_cpus(std::uint32_t frequency_hz) {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.freq = 1;
  attr.sample_freq = frequency_hz;
  auto links = attach_perf_event_on_cpus(skel_->progs.oncpu_sample, attr, "oncpu: cpu-clock");
  if (!links) return links.error();
  links_ = std::move(*links);
  return {};
}

OncpuSampler::Counters OncpuSampler::read_counters(std::uint32_t parity) const {
  return sum_per_cpu<ONCPU_COUNTER_MAX>(skel_->maps.counters, parity);
}

Result<void> OncpuSampler::watch(std::int32_t tgid, std::uint32_t generation, std::uint32_t target) {
  auto key = static_cast<std::uint32_t>(tgid);
  watch_value value{generation, target};
  if (int err = bpf_map__update_elem(skel_->maps.watched, &key, sizeof(key), &value, sizeof(value), BPF_ANY))
    return libbpf_error("oncpu: watch pid " + std::to_string(tgid), err);
  return {};
}

void OncpuSampler::unwatch(std::int32_t tgid) {
  auto key = static_cast<std::uint32_t>(tgid);
  // ENOENT is fine: the exit probe removes a process that is gone.
  int err = bpf_map__delete_elem(skel_->maps.watched, &key, sizeof(key), 0);
  if (err && err != -ENOENT) log::warn("oncpu: unwatch", {{"pid", tgid}, {"error", std::strerror(-err)}});
}

int OncpuSampler::watched_map_fd() const { return bpf_map__fd(skel_->maps.watched); }
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
  before = now;

  bpf_map* counts = parity ? skel_->maps.counts_1 : skel_->maps.counts_0;
  bpf_map* stacks = parity ? skel_->maps.stacks_1 : skel_->maps.stacks_0;

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

  result.stacks.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    const count_key& key = keys[i];
    const auto& user = resolve(key.user_stack_id);
    const auto& kernel = resolve(key.kernel_stack_id);
    if (!user || !kernel) {
      result.stats.lost_unresolved += values[i];
      continue;
    }
    result.stacks.push_back(
        RawStack{static_cast<std::int32_t>(key.tgid), key.generation, *user, *kernel, values[i]});
  }

  for (std::uint32_t id : stack_ids) bpf_map__delete_elem(stacks, &id, sizeof(id), 0);
  return result;
}

}  // namespace perfwatch::collector
