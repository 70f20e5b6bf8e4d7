#include "tests/bpf/support.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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

std::unique_ptr<collector::WatchedMap> create_watched_map() {
  auto watched = collector::WatchedMap::create(1024);
  if (!watched) throw std::runtime_error(watched.error().message);
  return std::move(*watched);
}

}  // namespace perfwatch::test
