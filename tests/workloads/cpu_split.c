// A workload with a known CPU split for end-to-end profiler tests.
//   cpu_split split SECONDS     : 60% / 30% / 10% of its CPU time in hot_a / hot_b / hot_c
//   cpu_split syscalls SECONDS  : mostly kernel time, reading /dev/zero in syscall_heavy
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

__attribute__((noinline)) void run_split(double seconds) {
  const int64_t round_ns = 10 * 1000 * 1000;
  int64_t end = wall_ns() + (int64_t)(seconds * 1e9);
  while (wall_ns() < end) {
    hot_a(round_ns * 6 / 10);
    hot_b(round_ns * 3 / 10);
    hot_c(round_ns * 1 / 10);
  }
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
    if (read(fd, buf, sizeof buf) < 0) {
      perror("read");
      exit(1);
    }
  }
  close(fd);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s split|syscalls SECONDS\n", argv[0]);
    return 2;
  }
  double seconds = atof(argv[2]);
  printf("ready %d\n", getpid());
  fflush(stdout);
  if (strcmp(argv[1], "split") == 0)
    run_split(seconds);
  else if (strcmp(argv[1], "syscalls") == 0)
    syscall_heavy(seconds);
  else
    return 2;
  return 0;
}
