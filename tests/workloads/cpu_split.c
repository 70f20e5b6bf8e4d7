// A workload with a known CPU split for end-to-end profiler tests and benchmarks.
//   cpu_split split SECONDS         : 60% / 30% / 10% of its CPU time in hot_a / hot_b / hot_c
//   cpu_split syscalls SECONDS      : mostly kernel time, reading /dev/zero in syscall_heavy
//   cpu_split work ROUNDS           : a fixed amount of the same 60/30/10 work; prints its wall time
//                                     ("elapsed_ns N"), so a profiler's slowdown can be measured
//   cpu_split duty SECONDS PERCENT  : the split, busy PERCENT of every 100 ms and asleep otherwise
//   cpu_split slowdown SECONDS AT   : the split, with hot_b taking 20% longer per call after AT seconds
//                                     (a regression in the middle of a run)
// Built a second time as cpu_split_v2 (CPU_SPLIT_V2): another build-id, and hot_b 20% slower from
// the start, so that replacing one binary with the other is a deploy that brings a regression.
// It prints "ready PID" first and "cpu_ns N" (the process's CPU time) last, so a test can compare a
// profiler's sample count with the CPU time it had to sample, whatever the machine's load.
// The split is by thread CPU time, so it holds however the scheduler treats the process.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t sink;

static int64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// Pure computation between clock reads, so clock_gettime's own cost stays far below 1%.
static __attribute__((noinline)) void spin_for(int64_t cpu_ns) {
  int64_t until = thread_cpu_ns() + cpu_ns;
  uint64_t x = sink;
  do {
    for (int i = 0; i < 20000; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  } while (thread_cpu_ns() < until);
  sink = x;
}

__attribute__((noinline)) void hot_a(int64_t ns) { spin_for(ns); __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) void hot_b(int64_t ns) { spin_for(ns); __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) void hot_c(int64_t ns) { spin_for(ns); __asm__ volatile("" ::: "memory"); }

#ifdef CPU_SPLIT_V2
static const double hot_b_slowdown = 1.2;
#else
static const double hot_b_slowdown = 1.0;
#endif

// From slow_after_ns on (wall time since the start), hot_b takes 20% longer per call.
__attribute__((noinline)) void run_split_slowing(double seconds, int64_t slow_after_ns) {
  const int64_t round_ns = 10 * 1000 * 1000;
  int64_t start = wall_ns();
  int64_t end = start + (int64_t)(seconds * 1e9);
  for (int64_t now = start; now < end; now = wall_ns()) {
    double slowdown = now - start >= slow_after_ns ? 1.2 * hot_b_slowdown : hot_b_slowdown;
    hot_a(round_ns * 6 / 10);
    hot_b((int64_t)(round_ns * 3 / 10 * slowdown));
    hot_c(round_ns * 1 / 10);
  }
}

__attribute__((noinline)) void run_split(double seconds) { run_split_slowing(seconds, INT64_MAX); }

// Fixed iteration counts rather than CPU-time budgets: the run's wall time is the measurement.
static __attribute__((noinline)) void spin_iterations(int64_t n) {
  uint64_t x = sink;
  for (int64_t i = 0; i < n; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  sink = x;
}

__attribute__((noinline)) void work_a(int64_t n) { spin_iterations(n); __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) void work_b(int64_t n) { spin_iterations(n); __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) void work_c(int64_t n) { spin_iterations(n); __asm__ volatile("" ::: "memory"); }

__attribute__((noinline)) void run_work(long rounds) {
  const int64_t unit = 100000;
  int64_t start = wall_ns();
  for (long r = 0; r < rounds; ++r) {
    work_a(6 * unit);
    work_b(3 * unit);
    work_c(1 * unit);
  }
  printf("elapsed_ns %lld\n", (long long)(wall_ns() - start));
}

__attribute__((noinline)) void run_duty(double seconds, double percent) {
  const int64_t period_ns = 100 * 1000 * 1000;
  const int64_t busy_ns = (int64_t)(period_ns * percent / 100.0);
  int64_t end = wall_ns() + (int64_t)(seconds * 1e9);
  while (wall_ns() < end) {
    int64_t period_start = wall_ns();
    hot_a(busy_ns * 6 / 10);
    hot_b(busy_ns * 3 / 10);
    hot_c(busy_ns * 1 / 10);
    int64_t rest = period_ns - (wall_ns() - period_start);
    if (rest > 0) {
      struct timespec ts = {rest / 1000000000, rest % 1000000000};
      nanosleep(&ts, NULL);
    }
  }
}

// read(2) issued here rather than through glibc's read(), which sets up no frame: frame-pointer
// unwinding from a frameless leaf skips its caller (perf --call-graph fp shows the same), and this
// workload must show syscall_heavy under the kernel frames.
static inline __attribute__((always_inline)) long raw_read(int fd, void* buf, size_t count) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "0"(0L /* SYS_read */), "D"((long)fd), "S"(buf), "d"(count)
                   : "rcx", "r11", "memory");
  return ret;
}

__attribute__((noinline)) void syscall_heavy(double seconds) {
  static char buf[1 << 20];
  int fd = open("/dev/zero", O_RDONLY);
  if (fd < 0) {
    perror("open /dev/zero");
    exit(1);
  }
  int64_t end = wall_ns() + (int64_t)(seconds * 1e9);
  while (wall_ns() < end) {
    if (raw_read(fd, buf, sizeof buf) < 0) {
      perror("read");
      exit(1);
    }
  }
  close(fd);
}

int main(int argc, char** argv) {
  int three_args = argc > 1 && (strcmp(argv[1], "duty") == 0 || strcmp(argv[1], "slowdown") == 0);
  if (argc < 3 || three_args != (argc == 4) || argc > 4) {
    fprintf(stderr, "usage: %s split|syscalls SECONDS | work ROUNDS | duty SECONDS PERCENT | slowdown SECONDS AT\n",
            argv[0]);
    return 2;
  }
  double value = atof(argv[2]);
  printf("ready %d\n", getpid());
  fflush(stdout);
  if (strcmp(argv[1], "split") == 0)
    run_split(value);
  else if (strcmp(argv[1], "syscalls") == 0)
    syscall_heavy(value);
  else if (strcmp(argv[1], "work") == 0)
    run_work((long)value);
  else if (strcmp(argv[1], "duty") == 0)
    run_duty(value, atof(argv[3]));
  else if (strcmp(argv[1], "slowdown") == 0)
    run_split_slowing(value, (int64_t)(atof(argv[3]) * 1e9));
  else
    return 2;
  struct timespec cpu;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  printf("cpu_ns %lld\n", (long long)cpu.tv_sec * 1000000000 + cpu.tv_nsec);
  return 0;
}
