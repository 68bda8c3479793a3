/*
 * Jobs as mprocd's replies carry them: their exit status for mprocctl,
 * descriptions, the table that list and wait print, and their output.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocctl.h"
#include "util.h"
#include "xmalloc.h"

#define FORMAT_REASONLEN 44 /* a reason in list's table, cut short */

static const char *
format_get_str(json_t *job, const char *key)
{
	return json_string_value(json_object_get(job, key));
}

/* An integer member, or -1 if it is absent (or null, or not a number). */
static json_int_t
format_get_int(json_t *job, const char *key)
{
	json_t *v = json_object_get(job, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

json_int_t
format_job_id(json_t *job)
{
	return format_get_int(job, "id");
}

int
format_job_state_is(json_t *job, const char *state)
{
	const char *s = format_get_str(job, "state");

	return s != NULL && strcmp(s, state) == 0;
}

int
format_job_finished(json_t *job)
{
	const char *state = format_get_str(job, "state");

	return state != NULL && strcmp(state, "queued") != 0 &&
	    strcmp(state, "running") != 0;
}

/*
 * The exit status mprocctl passes on for one job: its own, 128+N for
 * signal N, 124 for a timeout, 1 when cancelled or lost without a signal.
 */
int
format_exit_status(json_t *job)
{
	const char *state = format_get_str(job, "state");
	json_int_t  status = format_get_int(job, "exit_status");
	json_int_t  sig = format_get_int(job, "signal");

	if (state == NULL || !format_job_finished(job))
		return CTL_EXIT_FAILURE;
	if (strcmp(state, "succeeded") == 0)
		return 0;
	if (strcmp(state, "timeout") == 0)
		return CTL_EXIT_TIMEOUT;
	if (sig > 0 && sig < 128)
		return CTL_EXIT_SIGNAL + (int)sig;
	/* failed, with a status from 1 to 255; never report success. */
	if (strcmp(state, "failed") == 0 && status > 0 && status < 256)
		return (int)status;
	return CTL_EXIT_SOME_FAILED;
}

/* The exit status for the jobs of a Wait: the job's own if there is one. */
int
format_jobs_status(json_t *jobs, size_t expected)
{
	json_t *job;
	size_t	i;

	if (expected == 1 && json_array_size(jobs) == 1)
		return format_exit_status(json_array_get(jobs, 0));
	json_array_foreach(jobs, i, job) {
		if (format_exit_status(job) != 0)
			return CTL_EXIT_SOME_FAILED;
	}
	return 0;
}

/* "SIGKILL", or "signal 40" for one without a short name. */
const char *
format_signame(int sig, char *buf, size_t len)
{
	static const struct {
		int	    sig;
		const char *name;
	} names[] = {
		{ SIGHUP, "SIGHUP" },
		{ SIGINT, "SIGINT" },
		{ SIGQUIT, "SIGQUIT" },
		{ SIGILL, "SIGILL" },
		{ SIGTRAP, "SIGTRAP" },
		{ SIGABRT, "SIGABRT" },
		{ SIGBUS, "SIGBUS" },
		{ SIGFPE, "SIGFPE" },
		{ SIGKILL, "SIGKILL" },
		{ SIGUSR1, "SIGUSR1" },
		{ SIGSEGV, "SIGSEGV" },
		{ SIGUSR2, "SIGUSR2" },
		{ SIGPIPE, "SIGPIPE" },
		{ SIGALRM, "SIGALRM" },
		{ SIGTERM, "SIGTERM" },
		{ SIGXCPU, "SIGXCPU" },
		{ SIGXFSZ, "SIGXFSZ" },
		{ SIGSYS, "SIGSYS" },
	};
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (names[i].sig == sig) {
			snprintf(buf, len, "%s", names[i].name);
			return buf;
		}
	}
	snprintf(buf, len, "signal %d", sig);
	return buf;
}

/*
 * Why a job waits, or was cancelled or lost, as mprocd says, printable; NULL
 * if it does not say, or says no more than the state ("cancelled"). For a
 * failed job or one that timed out, its exit status and state say it all.
 */
static const char *
format_reason(json_t *job, char *buf, size_t len)
{
	const char *reason = format_get_str(job, "reason");

	if (reason == NULL ||
	    !(format_job_state_is(job, "queued") ||
		format_job_state_is(job, "cancelled") ||
		format_job_state_is(job, "lost")) ||
	    format_job_state_is(job, reason))
		return NULL;
	return mprocctl_printable(reason, buf, len);
}

/*
 * "succeeded", "failed with exit status 2", "killed by SIGSEGV",
 * "cancelled: job 5 failed", "queued: waiting for lock db"...
 */
const char *
format_describe(json_t *job, char *buf, size_t len)
{
	json_int_t  status = format_get_int(job, "exit_status");
	json_int_t  sig = format_get_int(job, "signal");
	const char *why;
	char	    state[32], name[32], reason[FORMAT_DESCLEN];
	char	    killed[48] = "";
	size_t	    n;

	mprocctl_printable(format_get_str(job, "state"), state, sizeof state);
	if (*state == '\0')
		snprintf(state, sizeof state, "in an unknown state");
	n = strlen(state);
	why = format_reason(job, reason, sizeof reason);
	if (sig > 0 && sig < 128)
		snprintf(killed, sizeof killed, ", killed by %s",
		    format_signame((int)sig, name, sizeof name));
	if (strcmp(state, "failed") == 0 && *killed != '\0')
		snprintf(buf, len, "failed%s", killed);
	else if (strcmp(state, "failed") == 0 && status == 127)
		snprintf(buf, len, "failed, could not be started");
	else if (strcmp(state, "failed") == 0 && status >= 0)
		snprintf(buf, len,
		    "failed with exit status %" JSON_INTEGER_FORMAT, status);
	else if (strcmp(state, "timeout") == 0)
		snprintf(buf, len, "timed out");
	else if (why != NULL && strncmp(why, state, n) == 0 && why[n] == ' ')
		/* "cancelled by uid 1000" */
		snprintf(buf, len, "%s%s", why, killed);
	else if (why != NULL)
		snprintf(buf, len, "%s: %s%s", state, why, killed);
	else if (strcmp(state, "cancelled") == 0)
		snprintf(buf, len, "cancelled%s", killed);
	else if (strcmp(state, "lost") == 0)
		snprintf(buf, len, "lost (its worker died)");
	else
		snprintf(buf, len, "%s", state);
	return buf;
}

/*
 * A line on stderr on why a job was cancelled before it ran, as when a job
 * of its after failed: it has no output to tell.
 */
void
format_warn_unrun(json_t *job)
{
	char desc[FORMAT_DESCLEN];

	if (format_job_state_is(job, "cancelled") &&
	    format_get_int(job, "started_usec") < 0)
		mprocctl_warn("job %" JSON_INTEGER_FORMAT " %s",
		    format_job_id(job),
		    format_describe(job, desc, sizeof desc));
}

static void
format_usec(uint64_t usec, char *buf, size_t len)
{
	uint64_t s = usec / USEC_PER_SEC;

	if (usec < USEC_PER_SEC)
		snprintf(buf, len, "%ums", (unsigned)(usec / USEC_PER_MSEC));
	else if (s < 60)
		snprintf(buf, len, "%u.%us", (unsigned)s,
		    (unsigned)(usec % USEC_PER_SEC / 100000));
	else if (s < 3600)
		snprintf(buf, len, "%um%02us", (unsigned)(s / 60),
		    (unsigned)(s % 60));
	else
		snprintf(buf, len, "%uh%02um", (unsigned)(s / 3600),
		    (unsigned)(s % 3600 / 60));
}

/* How long it ran, or has been running; "-" before it started. */
const char *
format_duration(json_t *job, char *buf, size_t len)
{
	json_int_t start = format_get_int(job, "started_usec");
	json_int_t end = format_get_int(job, "finished_usec");

	if (end < 0 && !format_job_finished(job))
		end = (json_int_t)util_now_usec();
	if (start <= 0 || end < start)
		snprintf(buf, len, "-");
	else
		format_usec((uint64_t)(end - start), buf, len);
	return buf;
}

/*
 * Appends s to buf at *o, single-quoted if a shell would need it, control
 * characters escaped; cut short if buf is full.
 */
static void
format_append_arg(char *buf, size_t len, size_t *o, const char *s)
{
	const char *p;
	int	    quote = *s == '\0';
	char	    tmp[8];
	size_t	    n;

	for (p = s; *p != '\0' && !quote; p++) {
		if (strchr(" \t\n'\"\\$`!*?[]{}()<>|&;#~", *p) != NULL)
			quote = 1;
	}
	if (quote && *o + 2 < len)
		buf[(*o)++] = '\'';
	for (p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			snprintf(tmp, sizeof tmp, "\\x%02x", (unsigned char)*p);
		else if (*p == '\'' && quote)
			snprintf(tmp, sizeof tmp, "'\\''");
		else
			snprintf(tmp, sizeof tmp, "%c", *p);
		n = strlen(tmp);
		if (*o + n + 2 >= len)
			break;
		memcpy(buf + *o, tmp, n);
		*o += n;
	}
	if (quote && *o + 1 < len)
		buf[(*o)++] = '\'';
	buf[*o] = '\0';
}

/* Its name, else its command line as a shell would take it. */
static const char *
format_label(json_t *job, char *buf, size_t len)
{
	json_t *arg;
	size_t	i, o = 0;

	if (format_get_str(job, "name") != NULL)
		return mprocctl_printable(format_get_str(job, "name"), buf,
		    len);
	buf[0] = '\0';
	json_array_foreach(json_object_get(job, "argv"), i, arg) {
		if (i > 0 && o + 1 < len) {
			buf[o++] = ' ';
			buf[o] = '\0';
		}
		format_append_arg(buf, len, &o,
		    json_string_value(arg) != NULL ? json_string_value(arg)
						   : "?");
	}
	return buf;
}

static int
format_width(const char *s, int min)
{
	int n = (int)strlen(s);

	return n > min ? n : min;
}

/*
 * The jobs as a table for people: one line each, columns aligned. REASON
 * (cut short) only when some job has one to show.
 */
void
format_print_table(json_t *jobs)
{
	json_t	  *job;
	size_t	   i;
	int	   wid = 2, wpool = 4, wworker = 6, wreason = 0;
	json_int_t v;
	char	   id[24], exit[32], dur[32], label[256], pool[64];
	char	   worker[64], reason[FORMAT_REASONLEN];

	json_array_foreach(jobs, i, job) {
		snprintf(id, sizeof id, "%" JSON_INTEGER_FORMAT,
		    format_job_id(job));
		wid = format_width(id, wid);
		wpool = format_width(mprocctl_printable(format_get_str(job,
							    "pool"),
					 pool, sizeof pool),
		    wpool);
		wworker = format_width(mprocctl_printable(format_get_str(job,
							      "worker"),
					   worker, sizeof worker),
		    wworker);
		if (format_reason(job, reason, sizeof reason) != NULL)
			wreason = format_width(reason,
			    wreason > 6 ? wreason : 6);
	}
	printf("%*s %-9s %-*s %-*s %8s %-9s %8s ", wid, "ID", "STATE", wpool,
	    "POOL", wworker, "WORKER", "ATTEMPTS", "EXIT", "DURATION");
	if (wreason > 0)
		printf("%-*s ", wreason, "REASON");
	printf("NAME/COMMAND\n");
	json_array_foreach(jobs, i, job) {
		snprintf(id, sizeof id, "%" JSON_INTEGER_FORMAT,
		    format_job_id(job));
		if ((v = format_get_int(job, "signal")) > 0 && v < 128)
			format_signame((int)v, exit, sizeof exit);
		else if ((v = format_get_int(job, "exit_status")) >= 0)
			snprintf(exit, sizeof exit, "%" JSON_INTEGER_FORMAT, v);
		else
			snprintf(exit, sizeof exit, "-");
		mprocctl_printable(format_get_str(job, "pool"), pool,
		    sizeof pool);
		mprocctl_printable(format_get_str(job, "worker"), worker,
		    sizeof worker);
		printf("%*s %-9s %-*s %-*s %8" JSON_INTEGER_FORMAT " %-9s %8s ",
		    wid, id,
		    format_get_str(job, "state") != NULL
			? format_get_str(job, "state")
			: "?",
		    wpool, pool, wworker, *worker != '\0' ? worker : "-",
		    format_get_int(job, "attempts") >= 0
			? format_get_int(job, "attempts")
			: 0,
		    exit, format_duration(job, dur, sizeof dur));
		if (wreason > 0)
			printf("%-*s ", wreason,
			    format_reason(job, reason, sizeof reason) != NULL
				? reason
				: "-");
		printf("%s\n", format_label(job, label, sizeof label));
	}
}

/* write(2) all of it; -1 if the descriptor will take no more. */
int
format_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t	    n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *
format_decode_output(json_t *reply, const char *key, size_t *len)
{
	const char *s = json_string_value(json_object_get(reply, key));
	void	   *data;

	if (s == NULL)
		mprocctl_fail("bad reply from mprocd: Get has no %s", key);
	if ((data = util_base64_decode(s, strlen(s), len)) == NULL)
		mprocctl_fail("bad reply from mprocd: the job's %s is not "
			      "base64",
		    key);
	return data;
}

/*
 * Writes a Get reply's stdout to our stdout and its stderr to our stderr,
 * byte for byte. Returns -1 if stdout would take no more (a closed pipe):
 * stderr is then skipped, else 0.
 */
int
format_write_output(json_t *reply, int quiet)
{
	void  *out, *err;
	size_t outlen, errlen;
	int    rv = 0;

	out = format_decode_output(reply, "stdout", &outlen);
	err = format_decode_output(reply, "stderr", &errlen);
	fflush(stdout);
	if (format_write_all(STDOUT_FILENO, out, outlen) != 0)
		rv = -1;
	else
		(void)format_write_all(STDERR_FILENO, err, errlen);
	if (rv == 0 && !quiet &&
	    json_is_true(json_object_get(reply, "truncated")))
		mprocctl_warn("job %" JSON_INTEGER_FORMAT "'s output went past "
			      "max_output and was cut",
		    format_job_id(json_object_get(reply, "job")));
	free(out);
	free(err);
	return rv;
}

/* A reply's "jobs", checked to be jobs; borrowed from params. */
json_t *
format_check_jobs(json_t *params, const char *method)
{
	json_t *jobs = json_object_get(params, "jobs"), *job;
	size_t	i;

	if (!json_is_array(jobs))
		mprocctl_fail("bad reply from mprocd: %s has no jobs", method);
	json_array_foreach(jobs, i, job) {
		if (!json_is_object(job) || format_job_id(job) < 0 ||
		    format_get_str(job, "state") == NULL)
			mprocctl_fail("bad reply from mprocd: %s has a job "
				      "without an id or state",
			    method);
	}
	return jobs;
}
