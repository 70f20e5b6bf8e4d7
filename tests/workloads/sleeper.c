/* Workload of the latency end-to-end tests and benchmark. Waits until its standard input closes
 * (the test has attached its probes by then), then:
 *   sleeper calls FN:MS ...    calls FN(MS) once per argument, each on a fresh thread, all at once;
 *                              FN is fast, medium, slow or mixed (functions that sleep MS ms)
 *   sleeper reads DIR N        N read()s of 512 bytes from each regular file directly in DIR, and
 *                              one read() from a pipe
 *   sleeper hits FN N          calls FN(0) on N fresh threads, one after the other (benchmark)
 *   sleeper nested N MS        recursion and longjmp on the main thread (see nested())
 * Uprobes fire only on the first hit per thread on some hosts, hence a thread per call. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MEASURED(name)                                          \
	__attribute__((noinline)) int name(int ms)               \
	{                                                        \
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L }; \
		nanosleep(&ts, NULL);                            \
		__asm__ volatile("" ::: "memory");               \
		return ms;                                       \
	}

MEASURED(op_fast)
MEASURED(op_medium)
MEASURED(op_slow)
MEASURED(op_mixed)

/* Recursion: op_recurse(n) sleeps ms and calls op_recurse(n - 1), so the n calls last n * ms,
 * (n - 1) * ms, ... ms. */
__attribute__((noinline)) int op_recurse(int n, int ms)
{
	int r = 0;

	op_fast(ms);
	if (n > 1)
		r = op_recurse(n - 1, ms);
	__asm__ volatile("" ::: "memory");
	return r + 1;
}

static jmp_buf escape;

/* Sleeps 10 ms, then op_escape(0) returns; otherwise the call with n == 1 leaves by longjmp, so
 * none of the n calls returns. */
__attribute__((noinline)) int op_escape(int n)
{
	op_fast(10);
	if (n == 0)
		return 0;
	if (n == 1)
		longjmp(escape, 1);
	op_escape(n - 1);
	__asm__ volatile("" ::: "memory");
	return n;
}

typedef int (*measured_fn)(int);

struct call {
	measured_fn fn;
	int ms;
};

static measured_fn by_name(const char *name)
{
	if (!strcmp(name, "fast"))
		return op_fast;
	if (!strcmp(name, "medium"))
		return op_medium;
	if (!strcmp(name, "slow"))
		return op_slow;
	if (!strcmp(name, "mixed"))
		return op_mixed;
	fprintf(stderr, "sleeper: unknown function %s\n", name);
	exit(2);
}

static void *run_call(void *arg)
{
	struct call *c = arg;

	c->fn(c->ms);
	return NULL;
}

static void wait_for_stdin_to_close(void)
{
	char buf[64];

	while (read(0, buf, sizeof buf) > 0) {
	}
}

static int calls(int argc, char **argv)
{
	int n = argc - 2, i;
	pthread_t *threads = calloc(n, sizeof *threads);
	struct call *c = calloc(n, sizeof *c);

	for (i = 0; i < n; i++) {
		char *colon = strchr(argv[i + 2], ':');

		if (!colon)
			return 2;
		*colon = '\0';
		c[i].fn = by_name(argv[i + 2]);
		c[i].ms = atoi(colon + 1);
	}
	wait_for_stdin_to_close();
	for (i = 0; i < n; i++)
		if (pthread_create(&threads[i], NULL, run_call, &c[i]))
			return 3;
	for (i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	return 0;
}

static int reads(const char *dir, int n)
{
	char buf[512], path[4096];
	struct dirent *e;
	DIR *d;
	int fds[2], i;

	wait_for_stdin_to_close();
	d = opendir(dir);
	if (!d)
		return 2;
	while ((e = readdir(d))) {
		int fd;

		if (e->d_type != DT_REG)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		fd = open(path, O_RDONLY);
		for (i = 0; i < n; i++)
			if (read(fd, buf, sizeof buf) != sizeof buf)
				return 3;
		close(fd);
	}
	closedir(d);
	if (pipe(fds) || write(fds[1], buf, 8) != 8 || read(fds[0], buf, 8) != 8)
		return 4;
	return 0;
}

static int hits(measured_fn fn, int n)
{
	struct call c = { fn, 0 };
	int i;

	wait_for_stdin_to_close();
	for (i = 0; i < n; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, run_call, &c))
			return 3;
		pthread_join(t, NULL);
	}
	return 0;
}

/* On the main thread: op_recurse(n, ms), op_escape(3) left by longjmp, op_escape(0), op_recurse(1, ms). */
static int nested(int n, int ms)
{
	wait_for_stdin_to_close();
	op_recurse(n, ms);
	if (!setjmp(escape))
		op_escape(3);
	op_escape(0);
	op_recurse(1, ms);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "nested"))
		return nested(atoi(argv[2]), atoi(argv[3]));
	if (argc >= 3 && !strcmp(argv[1], "calls"))
		return calls(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "reads"))
		return reads(argv[2], atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "hits"))
		return hits(by_name(argv[2]), atoi(argv[3]));
	fprintf(stderr, "usage: sleeper calls FN:MS... | reads DIR N | hits FN N | nested N MS\n");
	return 2;
}
