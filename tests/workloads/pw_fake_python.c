// Looks like a CPython interpreter to perfwatch's detection, but is none: it has a _PyRuntime symbol
// and, built with FAKE_PY_VERSION, a Py_Version saying a version perfwatch does not support. Without
// it (and without a version in its name) the version cannot be told. Either way perfwatch must
// profile it natively and say why. pw_fake_python SECONDS spins in fake_interpreter_loop;
// pw_fake_python idle prints "ready" and waits until its stdin closes.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__attribute__((used)) unsigned char _PyRuntime[4096];
#ifdef FAKE_PY_VERSION
__attribute__((used)) const unsigned long Py_Version = FAKE_PY_VERSION;
#endif

static volatile uint64_t sink;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void fake_interpreter_loop(double seconds) {
  double end = now() + seconds;
  uint64_t x = sink;
  while (now() < end)
    for (int i = 0; i < 100000; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  sink = x;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "idle") == 0) {
    printf("ready\n");
    fflush(stdout);
    char buf[64];
    while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
    }
    return 0;
  }
  fake_interpreter_loop(argc > 1 ? atof(argv[1]) : 3.0);
  return 0;
}
