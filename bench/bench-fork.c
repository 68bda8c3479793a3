/*
 * bench-fork: the references that mprocd's figures are set beside.
 *
 *	bench-fork [-m HOW] limit N P	start "/bin/true I" for I in 0..N-1,
 *					P at a time; prints the seconds it
 *					took
 *	bench-fork [-m HOW] wait N	start /bin/true and wait for it, N
 *					times one after the other; prints
 *					each in µs
 *
 * HOW is how a process is started: fork (the default: fork() then execv()),
 * vfork (vfork() then execv(), as mprocd starts its jobs) or spawn
 * (posix_spawn(), which glibc does with clone(CLONE_VM | CLONE_VFORK)).
 * Which is fastest depends on the host: fork() copies the parent's page
 * tables, which some hypervisors make dear. bench.py runs all three and
 * takes the best as the limit: the fastest this machine can start short
 * jobs, with nothing in between.
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum how { HOW_FORK, HOW_VFORK, HOW_SPAWN };

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pid_t
start(enum how how, char **argv)
{
	pid_t pid;
	int   error;

	switch (how) {
	case HOW_FORK:
		pid = fork();
		break;
	case HOW_VFORK:
		pid = vfork();
		break;
	case HOW_SPAWN:
		error = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
		if (error != 0) {
			fprintf(stderr, "bench-fork: posix_spawn %s: %s\n",
			    argv[0], strerror(error));
			exit(1);
		}
		return pid;
	default:
		abort();
	}
	if (pid == -1) {
		perror(
		    how == HOW_FORK ? "bench-fork: fork" : "bench-fork: vfork");
		exit(1);
	}
	if (pid == 0) {
		/* After vfork() the child may only exec or _exit. */
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

/* A job that did not exit 0 (it could not be started: 127) spoils it. */
static void
check(int status)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench-fork: /bin/true: status 0x%x\n", status);
		exit(1);
	}
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

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr,
	    "usage: bench-fork [-m fork|vfork|spawn] limit N P\n"
	    "       bench-fork [-m fork|vfork|spawn] wait N\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static char bin_true[] = "/bin/true";
	char	   *true_argv[] = { bin_true, NULL };
	/* The line's number, as map, xargs and parallel pass it. */
	char	 arg[32];
	char	*limit_argv[] = { bin_true, arg, NULL };
	enum how how = HOW_FORK;
	double	 t0;
	long	 n, p, i, running = 0;
	int	 c, status;

	while ((c = getopt(argc, argv, "m:")) != -1) {
		if (c != 'm')
			usage();
		if (strcmp(optarg, "fork") == 0)
			how = HOW_FORK;
		else if (strcmp(optarg, "vfork") == 0)
			how = HOW_VFORK;
		else if (strcmp(optarg, "spawn") == 0)
			how = HOW_SPAWN;
		else
			usage();
	}
	argc -= optind;
	argv += optind;

	if (argc == 3 && strcmp(argv[0], "limit") == 0) {
		n = number(argv[1]);
		p = number(argv[2]);
		t0 = now();
		for (i = 0; i < n; i++) {
			if (running == p) {
				if (wait(&status) == -1) {
					perror("bench-fork: wait");
					return 1;
				}
				check(status);
				running--;
			}
			snprintf(arg, sizeof arg, "%ld", i);
			start(how, limit_argv);
			running++;
		}
		while (wait(&status) > 0)
			check(status);
		printf("%.6f\n", now() - t0);
		return 0;
	}
	if (argc == 2 && strcmp(argv[0], "wait") == 0) {
		n = number(argv[1]);
		for (i = 0; i < n; i++) {
			t0 = now();
			status = reap(start(how, true_argv));
			printf("%.1f\n", (now() - t0) * 1e6);
			check(status);
		}
		return 0;
	}
	usage();
}
