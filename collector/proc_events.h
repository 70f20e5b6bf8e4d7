#pragma once
// Process lifecycle from probes/procevents.bpf.c: every exec, forks of watched processes (the
// child is added to the shared `watched` map in the kernel, before it runs) and exits of watched
// processes (removed from `watched` in the kernel, so a reused PID is never sampled as the old one).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "collector/bpf_skeleton.h"
#include "common/result.h"
#include "probes/procevents.h"

struct procevents_bpf;
struct ring_buffer;

namespace perfwatch::collector {

enum class ProcEventType : std::uint32_t { exec = PROCEV_EXEC, fork = PROCEV_FORK, exit = PROCEV_EXIT };

struct ProcEvent {
  ProcEventType type = ProcEventType::exec;
  std::int32_t pid = 0;          // tgid
  std::int32_t ppid = 0;         // parent's tgid (exec, fork)
  std::uint32_t generation = 0;  // watched generation (fork, exit)
  std::string comm;
};

struct ProcEventStats {
  std::uint64_t events = 0;          // delivered to poll() callbacks
  std::uint64_t ringbuf_drops = 0;   // lost in the kernel: ring buffer full
  std::uint64_t inherit_failed = 0;  // children of watched processes not added to `watched`
};

// Between open and load, all the set-up ProcEvents gives its skeleton (also what the verifier test
// loads with).
Result<void> configure_procevents(procevents_bpf& skel, int watched_map_fd, std::uint32_t ringbuf_bytes);

class ProcEvents {
 public:
  // watched_map_fd: WatchedMap::fd(), shared so that fork and exit update what every collector filters on.
  static Result<std::unique_ptr<ProcEvents>> create(int watched_map_fd, std::uint32_t ringbuf_bytes = 256 * 1024);
  ~ProcEvents();
  ProcEvents(const ProcEvents&) = delete;
  ProcEvents& operator=(const ProcEvents&) = delete;

  // Waits up to timeout_ms (0: no wait, -1: forever) and calls on_event for each event.
  // Returns the number of events handled, or a negative errno.
  int poll(int timeout_ms, const std::function<void(const ProcEvent&)>& on_event);
  // Readable when events are pending: for the daemon's epoll loop (then poll(0, ...)).
  int fd() const;
  ProcEventStats stats() const;

 private:
  ProcEvents() = default;
  static int on_sample(void* ctx, void* data, size_t size);

  SkeletonPtr<procevents_bpf> skel_;
  ring_buffer* ring_ = nullptr;
  const std::function<void(const ProcEvent&)>* on_event_ = nullptr;  // set during poll()
  std::atomic<std::uint64_t> events_{0};
};

}  // namespace perfwatch::collector
