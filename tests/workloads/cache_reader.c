/* Workload of the cache end-to-end tests and benchmark. Reads commands, one a line, on its standard
 * input and answers each with "done" on standard output:
 *   cold FILE     drops FILE from the page cache (POSIX_FADV_DONTNEED), then read()s it whole
 *   warm FILE     read()s FILE whole again
 *   mmap FILE     maps FILE and touches every page
 *   resident FILE answers "done N": N of FILE's pages are in the page cache (mincore, no lookups)
 *   usdt H M      fires the USDT probe pwcache:hit on H fresh threads and pwcache:miss on M
 * Exits at the end of its input. Reads are 64 KiB read() calls, as cat's are. USDT probes fire only
 * on the first hit per thread on some hosts, hence a thread per hit. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sdt.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_whole(const char *path, int drop)
{
	static char buffer[64 << 10];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	if (drop && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) {
		close(fd);
		return -1;
	}
	while ((n = read(fd, buffer, sizeof buffer)) > 0)
		;
	close(fd);
	return n < 0 ? -1 : 0;
}

static int touch_mapped(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	volatile const char *p;
	unsigned long sum = 0;
	long page = sysconf(_SC_PAGESIZE);

	if (fd < 0 || fstat(fd, &st) != 0)
		return -1;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	for (off_t off = 0; off < st.st_size; off += page)
		sum += (unsigned char)p[off];
	munmap((void *)p, (size_t)st.st_size);
	return (int)(sum & 0);
}

/* Pages of FILE in the page cache, or -1. Mapping without touching and mincore() look nothing up
 * through the filemap paths the probes count. */
static long resident_pages(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	long page = sysconf(_SC_PAGESIZE), resident = 0;
	size_t pages;
	unsigned char *vec;
	void *p;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || st.st_size == 0) {
		close(fd);
		return -1;
	}
	pages = ((size_t)st.st_size + (size_t)page - 1) / (size_t)page;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	vec = malloc(pages);
	if (vec && mincore(p, (size_t)st.st_size, vec) == 0)
		for (size_t i = 0; i < pages; i++)
			resident += vec[i] & 1;
	else
		resident = -1;
	free(vec);
	munmap(p, (size_t)st.st_size);
	return resident;
}

static void *fire_hit(void *arg)
{
	(void)arg;
	DTRACE_PROBE(pwcache, hit);
	return NULL;
}

static void *fire_miss(void *arg)
{
	(void)arg;
	DTRACE_PROBE(pwcache, miss);
	return NULL;
}

static int fire(void *(*fn)(void *), int n)
{
	for (int i = 0; i < n; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, fn, NULL) != 0 || pthread_join(t, NULL) != 0)
			return -1;
	}
	return 0;
}

int main(void)
{
	char line[4096], arg[4096];
	int a, b;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof line, stdin)) {
		int rc = -1;

		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "cold %4095s", arg) == 1)
			rc = read_whole(arg, 1);
		else if (sscanf(line, "warm %4095s", arg) == 1)
			rc = read_whole(arg, 0);
		else if (sscanf(line, "mmap %4095s", arg) == 1)
			rc = touch_mapped(arg);
		else if (sscanf(line, "resident %4095s", arg) == 1) {
			long n = resident_pages(arg);

			if (n >= 0) {
				printf("done %ld\n", n);
				continue;
			}
		} else if (sscanf(line, "usdt %d %d", &a, &b) == 2)
			rc = fire(fire_hit, a) || fire(fire_miss, b) ? -1 : 0;
		printf("%s\n", rc == 0 ? "done" : "failed");
	}
	return 0;
}
