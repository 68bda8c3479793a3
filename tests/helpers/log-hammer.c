/*
 * log-hammer: several processes log through lib/log.c to one file while it
 * is renamed away and reopened again and again, as logrotate does.
 *
 *	log-hammer PATH PROCS RECORDS
 *
 * Each of PROCS children ("worker hammer/N") writes RECORDS records
 *	msg=record proc=N seq=I pad=...
 * with pads of many lengths, some too long for one record (so they are
 * cut). Meanwhile the parent renames PATH to PATH.1, PATH.2, ... and sends
 * every child SIGUSR1 after each rename. It prints the number of renames;
 * the test reads the files and checks every record.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define PAD_MAX 5000

static void
on_sigusr1(int sig)
{
	log_request_reopen();
}

static void __attribute__((noreturn))
child(const char *target, int n, int records)
{
	static char pad[PAD_MAX + 1];
	const char *errstr;
	char	    name[32];
	int	    i;
	size_t	    len, k;

	snprintf(name, sizeof name, "worker hammer/%d", n);
	log_procinit(name);
	if (log_open(target, &errstr) != 0)
		fatalx("%s: %s", target, errstr);
	for (i = 0; i < records; i++) {
		/* Lengths all over, a few past what fits in one record. */
		len = ((size_t)i * 7919 + (size_t)n * 104729) % PAD_MAX;
		if (i % 3 != 0)
			len %= 300;
		for (k = 0; k < len; k++)
			pad[k] = k % 61 == 60 ? ' '
			    : k % 97 == 96    ? '"'
					      : (char)('a' + k % 26);
		pad[len] = '\0';
		log_info("record" LOG_KV "proc=%d" LOG_KV "seq=%d" LOG_KV
			 "pad=%s",
		    n, i, pad);
	}
	exit(0);
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct timespec	 ts = { 0, 2 * 1000 * 1000 };
	char		 target[4096], moved[4096];
	pid_t		*pids;
	int		 procs, records, i, left, renames = 0, status;
	int		 failed = 0;

	if (argc != 4 || (procs = atoi(argv[2])) <= 0 ||
	    (records = atoi(argv[3])) <= 0) {
		fprintf(stderr, "usage: log-hammer PATH PROCS RECORDS\n");
		return 2;
	}
	snprintf(target, sizeof target, "file:%s", argv[1]);

	/* Before the fork, so no child can die of an early SIGUSR1. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigusr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	if ((pids = calloc((size_t)procs, sizeof *pids)) == NULL)
		fatal("calloc");
	for (i = 0; i < procs; i++) {
		if ((pids[i] = fork()) == -1)
			fatal("fork");
		if (pids[i] == 0) {
			free(pids);
			child(target, i, records);
		}
	}

	for (left = procs; left > 0;) {
		snprintf(moved, sizeof moved, "%s.%d", argv[1], renames + 1);
		if (rename(argv[1], moved) == 0) {
			renames++;
			for (i = 0; i < procs; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGUSR1);
		} else if (errno != ENOENT)
			fatal("rename %s", argv[1]);
		nanosleep(&ts, NULL);
		for (i = 0; i < procs; i++) {
			if (pids[i] <= 0 ||
			    waitpid(pids[i], &status, WNOHANG) != pids[i])
				continue;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				failed = 1;
			pids[i] = 0;
			left--;
		}
	}
	printf("%d\n", renames);
	free(pids);
	return failed;
}
