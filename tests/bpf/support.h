#pragma once
// Shared by the BPF tests: the root/BTF check, child processes and the workloads they run (frame pointers on, exported
// so their address ranges can be looked up).
#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "collector/oncpu_sampler.h"
#include "collector/watched_map.h"

extern "C" {
[[noreturn]] void pw_test_spin();       // user-mode busy loop
[[noreturn]] void pw_test_read_zero(std::size_t bytes);  // read(/dev/zero) in a loop: mostly kernel time
}

namespace perfwatch::test {

// Base fixture: these tests need root and kernel BTF and fail loudly without them.
class BpfTest : public testing::Test {
 protected:
  void SetUp() override;
};

// A forked child running body; killed and reaped on destruction (and killed if the test dies).
class Child {
 public:
  explicit Child(const std::function<void()>& body);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  // SIGKILL and reap; idempotent.
  void kill();
  // Waits for the child to exit by itself; returns its wait status.
  int wait();

 private:
  pid_t pid_ = -1;
};

struct AddressRange {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  bool contains(std::uint64_t ip) const { return ip >= begin && ip < end; }
};
// The [start, start + st_size) of an exported function.
AddressRange function_range(const void* fn);

// Nanoseconds the process has spent on a CPU (/proc/PID/schedstat).
std::uint64_t cpu_time_ns(pid_t pid);

std::uint64_t total_count(const collector::DrainResult& drained, pid_t pid);

// The kernel's own cpu-clock samples at a frequency, per process, counted from perf ring buffers: the
// reference the sampler's counts are checked against, opened as the sampler opens its events (on every
// online CPU, for every process). How many samples a CPU-second yields is the kernel's and the CPU's
// business: an emulated CPU whose host takes its thread away for milliseconds gets one late sample for
// the whole stretch (hrtimer overruns are not replayed), half the rate or less beside other work, while
// the CPU time read from the guest's clock runs on.
class PeerSamples {
 public:
  explicit PeerSamples(std::uint32_t frequency_hz);  // throws (failing the test) when it cannot open
  ~PeerSamples();
  PeerSamples(const PeerSamples&) = delete;
  PeerSamples& operator=(const PeerSamples&) = delete;

  // Samples per process (tgid) since the last call. Throws when the kernel dropped records: call it at
  // least every 10 s at 1 kHz.
  std::map<pid_t, std::uint64_t> take();

 private:
  struct Ring {
    int fd = -1;
    void* mem = nullptr;
  };
  std::vector<Ring> rings_;
  std::size_t ring_bytes_ = 0;
};

// A `watched` map for the collectors under test; throws (failing the test) when it cannot be created.
std::unique_ptr<collector::WatchedMap> create_watched_map();

}  // namespace perfwatch::test
