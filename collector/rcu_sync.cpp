#include "collector/rcu_sync.h"

#include <bpf/bpf.h>

#include <cstring>

#include "collector/bpf_skeleton.h"
#include "common/log.h"

namespace perfwatch::collector {

// An update of an ARRAY_OF_MAPS returns only after synchronize_rcu() (the kernel's
// maybe_wait_bpf_programs(), there so user space knows no program still uses the old value; the
// kernel's BPF selftests sync the same way). BPF programs run inside RCU read-side sections, so
// after the update no program that read the old epoch is still running. A fixed sleep would not
// do: a vCPU preempted by the hypervisor can stall a running program for longer than any grace
// period we would pick.
Result<RcuSync> RcuSync::create() {
  RcuSync sync;
  sync.inner_ = UniqueFd(bpf_map_create(BPF_MAP_TYPE_ARRAY, "pw_sync_inner", 4, 4, 1, nullptr));
  if (!sync.inner_) return libbpf_error("create RCU sync inner map", -errno);
  LIBBPF_OPTS(bpf_map_create_opts, opts, .inner_map_fd = static_cast<__u32>(sync.inner_.get()));
  sync.outer_ = UniqueFd(bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "pw_sync_outer", 4, 4, 1, &opts));
  if (!sync.outer_) return libbpf_error("create RCU sync outer map", -errno);
  return sync;
}

bool RcuSync::wait() const {
  std::uint32_t zero = 0;
  int inner = inner_.get();
  if (int err = bpf_map_update_elem(outer_.get(), &zero, &inner, BPF_ANY)) {
    log::error("RCU sync failed; a window boundary may be off by in-flight events", {{"error", std::strerror(-err)}});
    return false;
  }
  return true;
}

std::uint32_t RcuSync::flip(std::uint32_t* epoch) const {
  const std::uint32_t old = __atomic_load_n(epoch, __ATOMIC_RELAXED);
  __atomic_store_n(epoch, old + 1, __ATOMIC_SEQ_CST);
  wait();
  // From here on nothing writes the old parity's maps until the next flip makes it current again.
  return old & 1;
}

}  // namespace perfwatch::collector
