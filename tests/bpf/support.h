#pragma once
// Shared by the BPF tests: the root/BTF check, child processes and the workloads they run (frame pointers on, exported
// so their address ranges can be looked up).
#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

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

// A `watched` map for the collectors under test; throws (failing the test) when it cannot be created.
std::unique_ptr<collector::WatchedMap> create_watched_map();

}  // namespace perfwatch::test
