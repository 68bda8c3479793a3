/*
 * bench-fork: the references that mprocd's figures are set beside.
 *
 *	bench-fork limit N P	fork/exec "/bin/true I" for I in 0..N-1, P
 *				at a time; prints the seconds it took
 *	bench-fork wait N	fork, exec /bin/true and wait for it, N times
 *				one after the other; prints each in µs
 *
 * Plain fork() and execv(), as a small program would do it: the physical
 * limit of starting short jobs on this machine, with nothing in between.
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pid_t
start(char **argv)
{
	pid_t pid;

	if ((pid = fork()) == -1) {
		perror("bench-fork: fork");
		exit(1);
	}
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int
reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			perror("bench-fork: waitpid");
			exit(1);
		}
	return status;
}

static long
number(const char *s)
{
	char *end;
	long  n;

	n = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || n <= 0) {
		fprintf(stderr, "bench-fork: not a positive number: %s\n", s);
		exit(2);
	}
	return n;
}

int
main(int argc, char **argv)
{
	static char bin_true[] = "/bin/true";
	char	   *true_argv[] = { bin_true, NULL };
	/* The line's number, as map, xargs and parallel pass it. */
	char   arg[32];
	char  *limit_argv[] = { bin_true, arg, NULL };
	double t0;
	long   n, p, i, running = 0;
	int    status;

	if (argc == 4 && strcmp(argv[1], "limit") == 0) {
		n = number(argv[2]);
		p = number(argv[3]);
		t0 = now();
		for (i = 0; i < n; i++) {
			if (running == p) {
				if (wait(&status) == -1) {
					perror("bench-fork: wait");
					return 1;
				}
				running--;
			}
			snprintf(arg, sizeof arg, "%ld", i);
			start(limit_argv);
			running++;
		}
		while (wait(&status) > 0)
			;
		printf("%.6f\n", now() - t0);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "wait") == 0) {
		n = number(argv[2]);
		for (i = 0; i < n; i++) {
			t0 = now();
			status = reap(start(true_argv));
			printf("%.1f\n", (now() - t0) * 1e6);
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				fprintf(stderr,
				    "bench-fork: /bin/true: "
				    "status 0x%x\n",
				    status);
				return 1;
			}
		}
		return 0;
	}
	fprintf(stderr, "usage: bench-fork limit N P | wait N\n");
	return 2;
}
