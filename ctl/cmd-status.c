/* mprocctl status: the daemon, its pools and every worker. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mprocctl.h"
#include "util.h"

static int cmd_status_exec(struct ctl *, int, char **);

const struct ctl_cmd cmd_status_entry = {
	.name = "status",
	.usage = "",
	.help = "show the daemon, its pools and every worker",
	.details =
	    "Each pool's line counts its jobs: queued (of which how many wait for\n"
	    "other jobs to finish, or for a lock another job holds), running,\n"
	    "succeeded, failed (timed out and lost too) and cancelled, and the\n"
	    "restarts of its workers. With --json, prints the reply of Status.\n",
	.minargs = 0,
	.maxargs = 0,
	.exec = cmd_status_exec,
};

static json_int_t
cmd_status_int(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* "3d4h", "2h5m", "4m12s", "12s". */
static const char *
cmd_status_age(json_int_t since_usec, char *buf, size_t len)
{
	uint64_t now = util_now_usec(), s;

	if (since_usec <= 0 || (uint64_t)since_usec > now) {
		snprintf(buf, len, "-");
		return buf;
	}
	s = (now - (uint64_t)since_usec) / USEC_PER_SEC;
	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d%" PRIu64 "h", s / 86400,
		    s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%" PRIu64 "h%" PRIu64 "m", s / 3600,
		    s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%" PRIu64 "m%" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 "s", s);
	return buf;
}

static void
cmd_status_print_workers(json_t *workers)
{
	json_t *w;
	size_t	i;
	char	age[32], pid[16], job[24];

	printf("  %-16s %8s %-9s %8s %8s %8s %8s\n", "WORKER", "PID", "STATE",
	    "JOB", "DONE", "RESTARTS", "UP");
	json_array_foreach(workers, i, w) {
		if (json_object_get(w, "pid") != NULL)
			snprintf(pid, sizeof pid, "%" JSON_INTEGER_FORMAT,
			    cmd_status_int(w, "pid"));
		else
			snprintf(pid, sizeof pid, "-");
		if (json_object_get(w, "job") != NULL)
			snprintf(job, sizeof job, "%" JSON_INTEGER_FORMAT,
			    cmd_status_int(w, "job"));
		else
			snprintf(job, sizeof job, "-");
		printf("  %-16s %8s %-9s %8s %8" JSON_INTEGER_FORMAT
		       " %8" JSON_INTEGER_FORMAT " %8s\n",
		    json_string_value(json_object_get(w, "name")), pid,
		    json_string_value(json_object_get(w, "state")), job,
		    cmd_status_int(w, "jobs_done"),
		    cmd_status_int(w, "restarts"),
		    cmd_status_age(cmd_status_int(w, "started_usec"), age,
			sizeof age));
	}
}

/*
 * " (3 waiting for other jobs, 2 for a lock)": how many of a pool's queued
 * jobs may not start yet; "" if none.
 */
static const char *
cmd_status_waiting(json_t *pool, char *buf, size_t len)
{
	json_int_t after = cmd_status_int(pool, "waiting_after");
	json_int_t lock = cmd_status_int(pool, "waiting_lock");

	if (after > 0 && lock > 0)
		snprintf(buf, len,
		    " (%" JSON_INTEGER_FORMAT " waiting for other jobs, "
		    "%" JSON_INTEGER_FORMAT " for a lock)",
		    after, lock);
	else if (after > 0)
		snprintf(buf, len,
		    " (%" JSON_INTEGER_FORMAT " waiting for other jobs)",
		    after);
	else if (lock > 0)
		snprintf(buf, len,
		    " (%" JSON_INTEGER_FORMAT " waiting for a lock)", lock);
	else
		*buf = '\0';
	return buf;
}

static int
cmd_status_exec(struct ctl *ctl, int argc, char **argv)
{
	struct client *c;
	json_t	      *r, *pools, *p;
	size_t	       i;
	char	       age[32], size[UTIL_FMTLEN], waiting[96];

	c = client_connect(ctl->socket);
	r = client_call(c, "io.mprocd.Status", NULL);
	client_free(c);
	if (ctl->json) {
		mprocctl_print_json(r);
		json_decref(r);
		return 0;
	}
	printf("mprocd %s, pid %" JSON_INTEGER_FORMAT ", up %s\n",
	    json_string_value(json_object_get(r, "version")),
	    cmd_status_int(r, "pid"),
	    cmd_status_age(cmd_status_int(r, "started_usec"), age, sizeof age));
	if (json_is_string(json_object_get(r, "state")))
		printf("jobs kept in %s (%s)\n",
		    json_string_value(json_object_get(r, "state")),
		    util_format_size((uint64_t)cmd_status_int(r, "state_size"),
			size, sizeof size));
	else
		printf("jobs kept in memory only (state = none)\n");
	pools = json_object_get(r, "pools");
	json_array_foreach(pools, i, p) {
		printf("\npool %s: %" JSON_INTEGER_FORMAT
		       " workers%s, %" JSON_INTEGER_FORMAT
		       " queued%s, %" JSON_INTEGER_FORMAT
		       " running, %" JSON_INTEGER_FORMAT
		       " succeeded, %" JSON_INTEGER_FORMAT
		       " failed, %" JSON_INTEGER_FORMAT
		       " cancelled, %" JSON_INTEGER_FORMAT " restarts\n",
		    json_string_value(json_object_get(p, "name")),
		    cmd_status_int(p, "size"),
		    json_is_true(json_object_get(p, "degraded"))
			? " (DEGRADED: workers keep crashing)"
			: "",
		    cmd_status_int(p, "queued"),
		    cmd_status_waiting(p, waiting, sizeof waiting),
		    cmd_status_int(p, "running"),
		    cmd_status_int(p, "succeeded"), cmd_status_int(p, "failed"),
		    cmd_status_int(p, "cancelled"),
		    cmd_status_int(p, "restarts"));
		cmd_status_print_workers(json_object_get(p, "workers"));
	}
	json_decref(r);
	return 0;
}
