/*
 * bench-log: PROCS processes write RECORDS records each to one file,
 *
 *	bench-log api PATH PROCS RECORDS	through lib/log.c (log_info)
 *	bench-log raw PATH PROCS RECORDS	as single write()s to an
 *						O_APPEND file
 *
 * and it prints the seconds from the first fork to the last exit. The
 * records of both say "proc=N seq=I" and carry the same pad, so bench.py can
 * check that every one is there, whole, exactly once.
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define PAD "abcdefghijklmnopqrstuvwxyz0123456789"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void __attribute__((noreturn))
child_api(const char *path, int n, int records)
{
	const char *errstr;
	char	    name[32], target[4096];
	int	    i;

	snprintf(name, sizeof name, "worker bench/%d", n);
	snprintf(target, sizeof target, "file:%s", path);
	log_procinit(name);
	if (log_open(target, &errstr) != 0)
		fatalx("%s: %s", target, errstr);
	for (i = 0; i < records; i++)
		log_info("record" LOG_KV "proc=%d" LOG_KV "seq=%d" LOG_KV
			 "pad=%s",
		    n, i, PAD);
	exit(0);
}

/*
 * The same line as log.c writes, less what only a logger does: the time
 * and the escaping of values. One write() each.
 */
static void __attribute__((noreturn))
child_raw(const char *path, int n, int records)
{
	char line[512];
	int  fd, i, len;

	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		 0644)) == -1)
		fatal("%s", path);
	for (i = 0; i < records; i++) {
		len = snprintf(line, sizeof line,
		    "2026-11-22T00:00:00.000000Z "
		    "info worker=bench/%d msg=record proc=%d seq=%d pad=%s\n",
		    n, n, i, PAD);
		if (write(fd, line, (size_t)len) != len)
			fatal("write %s", path);
	}
	exit(0);
}

int
main(int argc, char **argv)
{
	double t0;
	pid_t  pid;
	int    procs, records, i, status, failed = 0, api;

	if (argc != 5 ||
	    (strcmp(argv[1], "api") != 0 && strcmp(argv[1], "raw") != 0) ||
	    (procs = atoi(argv[3])) <= 0 || (records = atoi(argv[4])) <= 0) {
		fprintf(stderr,
		    "usage: bench-log api|raw PATH PROCS RECORDS\n");
		return 2;
	}
	api = strcmp(argv[1], "api") == 0;
	t0 = now();
	for (i = 0; i < procs; i++) {
		if ((pid = fork()) == -1)
			fatal("fork");
		if (pid == 0) {
			if (api)
				child_api(argv[2], i, records);
			child_raw(argv[2], i, records);
		}
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	printf("%.6f\n", now() - t0);
	return failed;
}
