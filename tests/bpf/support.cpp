#include "tests/bpf/support.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" {

__attribute__((noinline)) void pw_test_spin() {
  volatile std::uint64_t x = 0;
  for (;;) x = x + 1;
}

// The syscall instruction is inlined (no libc wrapper without a frame), so the user-mode ip of
// every sample in the kernel is inside this function.
__attribute__((noinline)) void pw_test_read_zero(std::size_t bytes) {
  std::vector<char> buf(bytes);
  int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  for (;;) {
    long ret;
    asm volatile("syscall"
                 : "=a"(ret)
                 : "a"(SYS_read), "D"(fd), "S"(buf.data()), "d"(buf.size())
                 : "rcx", "r11", "memory");
    if (ret < 0) _exit(3);
  }
}
}

namespace perfwatch::test {

void BpfTest::SetUp() {
  ASSERT_EQ(geteuid(), 0u) << "BPF tests must run as root";
  ASSERT_EQ(access("/sys/kernel/btf/vmlinux", R_OK), 0) << "BPF tests need kernel BTF (/sys/kernel/btf/vmlinux)";
}

Child::Child(const std::function<void()>& body) {
  pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    body();
    _exit(0);
  }
}

Child::~Child() { kill(); }

void Child::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

int Child::wait() {
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

AddressRange function_range(const void* fn) {
  Dl_info info{};
  ElfW(Sym)* sym = nullptr;
  if (!dladdr1(fn, &info, reinterpret_cast<void**>(&sym), RTLD_DL_SYMENT) || !sym || sym->st_size == 0)
    throw std::runtime_error("dladdr1: function not exported (link with ENABLE_EXPORTS)");
  auto begin = reinterpret_cast<std::uint64_t>(info.dli_saddr);
  return {begin, begin + sym->st_size};
}

std::uint64_t cpu_time_ns(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/schedstat");
  std::uint64_t ns = 0;
  if (!(in >> ns)) throw std::runtime_error("cannot read /proc/PID/schedstat");
  return ns;
}

std::uint64_t total_count(const collector::DrainResult& drained, pid_t pid) {
  std::uint64_t total = 0;
  for (const collector::RawStack& s : drained.stacks)
    if (s.tgid == pid) total += s.count;
  return total;
}

namespace {
constexpr std::size_t kPeerDataPages = 64;  // 256 KiB a CPU: 16-byte records, 16 s at 1 kHz
}

PeerSamples::PeerSamples(std::uint32_t frequency_hz) {
  auto cpus = collector::online_cpus();
  if (!cpus) throw std::runtime_error("online CPUs: " + cpus.error().message);
  perf_event_attr attr = collector::cpu_clock_attr(frequency_hz);  // as the sampler opens it
  attr.sample_type = PERF_SAMPLE_TID;
  ring_bytes_ = (1 + kPeerDataPages) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  for (int cpu : *cpus) {
    Ring ring;
    ring.fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
    if (ring.fd < 0) throw std::runtime_error("perf_event_open for the peer: " + std::string(std::strerror(errno)));
    ring.mem = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, ring.fd, 0);
    if (ring.mem == MAP_FAILED) {
      close(ring.fd);
      throw std::runtime_error("mmap of the peer's ring: " + std::string(std::strerror(errno)));
    }
    rings_.push_back(ring);
  }
}

PeerSamples::~PeerSamples() {
  for (const Ring& ring : rings_) {
    munmap(ring.mem, ring_bytes_);
    close(ring.fd);
  }
}

std::map<pid_t, std::uint64_t> PeerSamples::take() {
  std::map<pid_t, std::uint64_t> samples;
  for (const Ring& ring : rings_) {
    auto* meta = static_cast<perf_event_mmap_page*>(ring.mem);
    const auto* data = static_cast<const std::uint8_t*>(ring.mem) + meta->data_offset;
    const std::uint64_t size = meta->data_size;
    const std::uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
    // Records may wrap around the ring's end.
    auto read_at = [&](std::uint64_t at, void* out, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) static_cast<std::uint8_t*>(out)[i] = data[(at + i) % size];
    };
    std::uint64_t tail = meta->data_tail;
    while (tail < head) {
      perf_event_header header{};
      read_at(tail, &header, sizeof header);
      if (header.size == 0) break;
      if (header.type == PERF_RECORD_LOST) throw std::runtime_error("the peer's ring overflowed");
      if (header.type == PERF_RECORD_SAMPLE) {
        std::uint32_t pid = 0;  // PERF_SAMPLE_TID: u32 pid (the process), u32 tid
        read_at(tail + sizeof header, &pid, sizeof pid);
        ++samples[static_cast<pid_t>(pid)];
      }
      tail += header.size;
    }
    __atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
  }
  return samples;
}

std::unique_ptr<collector::WatchedMap> create_watched_map() {
  auto watched = collector::WatchedMap::create(1024);
  if (!watched) throw std::runtime_error(watched.error().message);
  return std::move(*watched);
}

}  // namespace perfwatch::test
