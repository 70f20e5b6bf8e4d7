#include "collector/proc_events.h"

#include <bpf/bpf.h>

#include <cstring>
#include <vector>

#include "common/log.h"
#include "procevents.skel.h"

namespace perfwatch::collector {

static_assert(sizeof(procev_event) == 16 + PROCEV_COMM_LEN);

Result<void> configure_procevents(procevents_bpf& skel, int watched_map_fd, std::uint32_t ringbuf_bytes) {
  if (int err = bpf_map__reuse_fd(skel.maps.watched, watched_map_fd)) return libbpf_error("procevents: reuse watched map", err);
  return set_max_entries(skel.maps.events, ringbuf_bytes);
}

Result<std::unique_ptr<ProcEvents>> ProcEvents::create(int watched_map_fd, std::uint32_t ringbuf_bytes) {
  std::unique_ptr<ProcEvents> events(new ProcEvents());
  auto skel = open_and_load<procevents_bpf>(
      "procevents", [&](procevents_bpf& s) { return configure_procevents(s, watched_map_fd, ringbuf_bytes); });
  if (!skel) return skel.error();
  events->skel_ = std::move(*skel);

  if (int err = procevents_bpf::attach(events->skel_.get())) return libbpf_error("procevents: attach", err);
  events->ring_ = ring_buffer__new(bpf_map__fd(events->skel_->maps.events), &ProcEvents::on_sample, events.get(), nullptr);
  if (!events->ring_) return libbpf_error("procevents: ring buffer", -errno);
  return events;
}

ProcEvents::~ProcEvents() { ring_buffer__free(ring_); }

int ProcEvents::on_sample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<ProcEvents*>(ctx);
  if (size < sizeof(procev_event)) return 0;
  const auto* e = static_cast<const procev_event*>(data);
  ProcEvent event{static_cast<ProcEventType>(e->type), static_cast<std::int32_t>(e->pid),
                  static_cast<std::int32_t>(e->ppid), e->generation,
                  std::string(e->comm, strnlen(e->comm, sizeof(e->comm)))};
  self->events_.fetch_add(1, std::memory_order_relaxed);
  (*self->on_event_)(event);
  return 0;
}

int ProcEvents::poll(int timeout_ms, const std::function<void(const ProcEvent&)>& on_event) {
  on_event_ = &on_event;
  int n = ring_buffer__poll(ring_, timeout_ms);
  on_event_ = nullptr;
  return n == -EINTR ? 0 : n;
}

int ProcEvents::fd() const { return ring_buffer__epoll_fd(ring_); }

ProcEventStats ProcEvents::stats() const {
  ProcEventStats stats;
  stats.events = events_.load(std::memory_order_relaxed);
  std::vector<std::uint64_t> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
  auto sum = [&](std::uint32_t counter) {
    std::uint64_t total = 0;
    if (bpf_map__lookup_elem(skel_->maps.counters, &counter, sizeof(counter), per_cpu.data(),
                             per_cpu.size() * sizeof(std::uint64_t), 0) == 0)
      for (std::uint64_t v : per_cpu) total += v;
    return total;
  };
  stats.ringbuf_drops = sum(PROCEV_RINGBUF_DROPS);
  stats.inherit_failed = sum(PROCEV_INHERIT_FAILED);
  return stats;
}

}  // namespace perfwatch::collector
