// An exec storm for the fault tests: RATE short-lived processes a second for SECONDS, alternating
// between two programs, each child started where it can on the PID the other program's child just
// freed (ns_last_pid is set before the fork): PIDs reused, across targets, as fast as they can be.
//   exec_storm RATE SECONDS WORKERS PROGRAM_A PROGRAM_B
// WORKERS processes share the rate, each running its own chain of children one at a time. At the end
// it prints "spawned N reused M elapsed_ns T" (reused: children that got the PID they were meant to).
// Needs root (ns_last_pid).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// Forks and execs `program`, asking for `want` as its PID (0: any); the lock keeps the workers'
// ns_last_pid writes and forks from interleaving.
static pid_t spawn(const char* program, pid_t want, int lock_fd, int last_pid_fd) {
  flock(lock_fd, LOCK_EX);
  if (want > 1) {
    char text[32];
    int n = snprintf(text, sizeof text, "%d", want - 1);
    pwrite(last_pid_fd, text, (size_t)n, 0);
  }
  pid_t pid = fork();
  if (pid == 0) {
    execl(program, program, (char*)NULL);
    _exit(127);
  }
  flock(lock_fd, LOCK_UN);
  return pid;
}

static void worker(double rate, double seconds, const char* programs[2], int lock_fd, int out_fd) {
  int last_pid_fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
  const int64_t start = now_ns(), end = start + (int64_t)(seconds * 1e9), step = (int64_t)(1e9 / rate);
  long spawned = 0, reused = 0;
  pid_t freed = 0;
  // Paced to the rate; behind it (a loaded machine) it catches up as fast as it can, until the end.
  for (int64_t next = start; now_ns() < end; next += step) {
    int64_t wait = next - now_ns();
    if (wait > 0) {
      struct timespec ts = {wait / 1000000000, wait % 1000000000};
      nanosleep(&ts, NULL);
    }
    pid_t pid = spawn(programs[spawned % 2], last_pid_fd >= 0 ? freed : 0, lock_fd, last_pid_fd);
    if (pid < 0) continue;
    if (pid == freed) ++reused;
    ++spawned;
    waitpid(pid, NULL, 0);
    freed = pid;
  }
  char line[64];
  int n = snprintf(line, sizeof line, "%ld %ld\n", spawned, reused);
  write(out_fd, line, (size_t)n);
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: exec_storm RATE SECONDS WORKERS PROGRAM_A PROGRAM_B\n");
    return 2;
  }
  const double rate = atof(argv[1]), seconds = atof(argv[2]);
  const int workers = atoi(argv[3]);
  const char* programs[2] = {argv[4], argv[5]};
  char lock_path[] = "/tmp/exec_storm.XXXXXX";
  int lock_fd = mkstemp(lock_path);
  unlink(lock_path);
  int out[2];
  if (lock_fd < 0 || workers < 1 || rate <= 0 || pipe(out) != 0) return 2;
  const int64_t start = now_ns();
  for (int w = 0; w < workers; ++w)
    if (fork() == 0) {
      worker(rate / workers, seconds, programs, lock_fd, out[1]);
      _exit(0);
    }
  close(out[1]);
  for (int w = 0; w < workers; ++w) wait(NULL);
  long spawned = 0, reused = 0, s, r;
  FILE* in = fdopen(out[0], "r");
  while (fscanf(in, "%ld %ld", &s, &r) == 2) {
    spawned += s;
    reused += r;
  }
  printf("spawned %ld reused %ld elapsed_ns %lld\n", spawned, reused, (long long)(now_ns() - start));
  return 0;
}
