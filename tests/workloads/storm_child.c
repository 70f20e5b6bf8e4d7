// A short-lived process of the exec storm (exec_storm.c): spins about 300 us of CPU in a function
// named for its kind (built twice: pw_storm_a with storm_a_work, pw_storm_b with storm_b_work), so
// that a sample shows which program it came from, then exits.
#define _GNU_SOURCE
#include <stdint.h>
#include <time.h>

#ifndef STORM_WORK
#error "build with -DSTORM_WORK=storm_a_work or storm_b_work"
#endif

static volatile uint64_t sink;

static int64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

__attribute__((noinline)) void STORM_WORK(int64_t ns) {
  const int64_t until = cpu_ns() + ns;
  uint64_t x = sink;
  do {
    for (int i = 0; i < 2000; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  } while (cpu_ns() < until);
  sink = x;
}

int main(void) {
  STORM_WORK(300000);
  return 0;
}
