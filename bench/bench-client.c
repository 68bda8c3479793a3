/*
 * bench-client: drives mprocd over its socket the way a fast program would,
 * and prints what it measured (one figure per line, for bench.py).
 *
 *	bench-client SOCK pipeline N [POOL]
 *					N Submits of "/bin/true I" pipelined on
 *					one connection, then one Wait for
 *					all: seconds from the first byte
 *					sent to the Wait's reply. With POOL,
 *					a program pool: N calls "echo" with
 *					input {"args": [I]} into it, and the
 *					last one's result checked with a Get
 *	bench-client SOCK intake N	N Submits pipelined: seconds until
 *					every id is back
 *	bench-client SOCK latency N	N times Submit, then Wait and Get
 *					pipelined: µs from Submit to output
 *	bench-client SOCK call N METHOD [PARAMS]
 *					N calls one after the other: µs each
 *	bench-client SOCK get N FIRST LAST
 *					N Gets one after the other, of ids
 *					from FIRST to LAST in a random order
 *					(none twice while N is no more than
 *					there are): µs each
 *	bench-client SOCK restart N	N times: SIGKILL the first idle
 *					worker, poll Status until its slot
 *					has a new idle worker: µs each
 *
 * A reply that is an error ends it with status 1 and the error on stderr.
 */
#include "config.h"

#include "bench-util.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

/*
 * "/bin/true" with the job's number as its argument, or without; into a
 * program pool, a call "echo" with the number as its input's argument.
 */
static json_t *
submit_params(long i, const char *pool)
{
	char arg[32];

	if (pool != NULL)
		return json_pack("{s:[s], s:s, s:{s:[I]}}", "argv", "echo",
		    "pool", pool, "input", "args", (json_int_t)i);
	if (i < 0)
		return json_pack("{s:[s]}", "argv", "/bin/true");
	snprintf(arg, sizeof arg, "%ld", i);
	return json_pack("{s:[s,s]}", "argv", "/bin/true", arg);
}

static long
number(const char *s)
{
	char *end;
	long  n;

	n = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || n <= 0)
		bench_util_die("not a positive number: %s", s);
	return n;
}

/* N Submits pipelined, no more than WINDOW unanswered; the ids into ids. */
#define WINDOW 4096
static void
submit_many(struct bench_conn *c, long n, const char *pool, json_t *ids)
{
	json_t *r;
	long	sent = 0, got = 0;

	while (got < n) {
		while (sent < n && sent - got < WINDOW) {
			bench_util_call(c, "io.mprocd.Submit",
			    submit_params(sent, pool));
			sent++;
		}
		bench_util_io(c);
		while ((r = bench_util_reply(c)) != NULL) {
			if (ids != NULL)
				json_array_append(ids,
				    json_object_get(r, "id"));
			json_decref(r);
			got++;
		}
	}
}

/* The last call's result must be its input: {"args": [N - 1]}. */
static void
check_echo(struct bench_conn *c, json_t *id, long n)
{
	json_t *r, *arg;

	bench_util_call(c, "io.mprocd.Get", json_pack("{s:O}", "id", id));
	r = bench_util_wait(c);
	arg = json_array_get(json_object_get(json_object_get(r, "result"),
				 "args"),
	    0);
	if (!json_is_integer(arg) || json_integer_value(arg) != n - 1)
		bench_util_die("job %lld: result %s, not {\"args\": [%ld]}",
		    (long long)json_integer_value(id),
		    json_dumps(json_object_get(r, "result"), JSON_COMPACT),
		    n - 1);
	json_decref(r);
}

static int
cmd_pipeline(struct bench_conn *c, long n, const char *pool)
{
	json_t *ids = json_array(), *last, *r, *job;
	double	t0;
	size_t	i;
	long	ok = 0;

	t0 = bench_util_now();
	submit_many(c, n, pool, ids);
	last = json_incref(json_array_get(ids, (size_t)n - 1));
	bench_util_call(c, "io.mprocd.Wait", json_pack("{s:o}", "ids", ids));
	r = bench_util_wait(c);
	printf("%.6f\n", bench_util_now() - t0);
	json_array_foreach(json_object_get(r, "jobs"), i, job)
		ok += strcmp(json_string_value(json_object_get(job, "state")),
			  "succeeded") == 0;
	json_decref(r);
	if (ok != n)
		bench_util_die("%ld of %ld jobs succeeded", ok, n);
	if (pool != NULL)
		check_echo(c, last, n);
	json_decref(last);
	return 0;
}

static int
cmd_intake(struct bench_conn *c, long n)
{
	double t0;

	t0 = bench_util_now();
	submit_many(c, n, NULL, NULL);
	printf("%.6f\n", bench_util_now() - t0);
	return 0;
}

static int
cmd_latency(struct bench_conn *c, long n)
{
	json_t *r, *id;
	double	t0;
	long	i;

	for (i = 0; i < n; i++) {
		t0 = bench_util_now();
		bench_util_call(c, "io.mprocd.Submit", submit_params(-1, NULL));
		r = bench_util_wait(c);
		id = json_incref(json_object_get(r, "id"));
		json_decref(r);
		bench_util_call(c, "io.mprocd.Wait",
		    json_pack("{s:[O]}", "ids", id));
		bench_util_call(c, "io.mprocd.Get",
		    json_pack("{s:O}", "id", id));
		json_decref(bench_util_wait(c));
		r = bench_util_wait(c);
		printf("%.1f\n", (bench_util_now() - t0) * 1e6);
		if (strcmp(json_string_value(
			       json_object_get(json_object_get(r, "job"),
				   "state")),
			"succeeded") != 0)
			bench_util_die("job %lld did not succeed",
			    (long long)json_integer_value(id));
		json_decref(id);
		json_decref(r);
	}
	return 0;
}

static int
cmd_call(struct bench_conn *c, long n, const char *method, const char *params)
{
	json_error_t jerr;
	json_t	    *p = NULL;
	double	     t0;
	long	     i;

	if (params != NULL && (p = json_loads(params, 0, &jerr)) == NULL)
		bench_util_die("bad parameters: %s", jerr.text);
	for (i = 0; i < n; i++) {
		t0 = bench_util_now();
		bench_util_call(c, method,
		    p != NULL ? json_deep_copy(p) : NULL);
		json_decref(bench_util_wait(c));
		printf("%.1f\n", (bench_util_now() - t0) * 1e6);
	}
	json_decref(p);
	return 0;
}

static int
cmd_get(struct bench_conn *c, long n, long first, long last)
{
	json_t *r, *job;
	double	t0;
	long   *ids, span, i, k, t, id;

	if (last < first)
		bench_util_die("no ids from %ld to %ld", first, last);
	span = last - first + 1;
	if ((ids = malloc((size_t)span * sizeof *ids)) == NULL)
		bench_util_die("out of memory");
	for (i = 0; i < span; i++)
		ids[i] = first + i;
	srand48((long)getpid());
	for (i = span - 1; i > 0; i--) {
		k = (long)(drand48() * (double)(i + 1));
		t = ids[i], ids[i] = ids[k], ids[k] = t;
	}
	for (i = 0; i < n; i++) {
		id = ids[i % span];
		t0 = bench_util_now();
		bench_util_call(c, "io.mprocd.Get",
		    json_pack("{s:I}", "id", (json_int_t)id));
		r = bench_util_wait(c);
		printf("%.1f\n", (bench_util_now() - t0) * 1e6);
		job = json_object_get(r, "job");
		if (json_integer_value(json_object_get(job, "id")) != id)
			bench_util_die("Get %ld: another job's reply", id);
		json_decref(r);
	}
	free(ids);
	return 0;
}

/* The first worker's slot: its pid if it is idle, else 0. */
static pid_t
first_worker(struct bench_conn *c, const char **name)
{
	static char slot[256];
	json_t	   *r, *w;
	pid_t	    pid = 0;

	bench_util_call(c, "io.mprocd.Status", NULL);
	r = bench_util_wait(c);
	w = json_array_get(json_object_get(json_array_get(json_object_get(r,
							      "pools"),
					       0),
			       "workers"),
	    0);
	if (w == NULL)
		bench_util_die("Status names no worker");
	if (*name == NULL) {
		snprintf(slot, sizeof slot, "%s",
		    json_string_value(json_object_get(w, "name")));
		*name = slot;
	}
	if (strcmp(json_string_value(json_object_get(w, "state")), "idle") == 0)
		pid = (pid_t)json_integer_value(json_object_get(w, "pid"));
	json_decref(r);
	return pid;
}

static int
cmd_restart(struct bench_conn *c, long n)
{
	struct timespec pause = { 0, 100 * 1000 }, settle = { 0, 20000000 };
	const char     *name = NULL;
	double		t0;
	pid_t		old, pid;
	long		i;

	for (i = 0; i < n; i++) {
		while ((old = first_worker(c, &name)) == 0)
			nanosleep(&pause, NULL);
		t0 = bench_util_now();
		if (kill(old, SIGKILL) == -1)
			bench_util_die("kill %d: %s", (int)old,
			    strerror(errno));
		do {
			nanosleep(&pause, NULL);
			pid = first_worker(c, &name);
		} while (pid == 0 || pid == old);
		printf("%.1f\n", (bench_util_now() - t0) * 1e6);
		nanosleep(&settle, NULL);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct bench_conn c;
	long		  n;

	if (argc < 4)
		goto usage;
	n = number(argv[3]);
	bench_util_open(&c, argv[1]);
	if ((argc == 4 || argc == 5) && strcmp(argv[2], "pipeline") == 0)
		return cmd_pipeline(&c, n, argc == 5 ? argv[4] : NULL);
	if (argc == 4 && strcmp(argv[2], "intake") == 0)
		return cmd_intake(&c, n);
	if (argc == 4 && strcmp(argv[2], "latency") == 0)
		return cmd_latency(&c, n);
	if ((argc == 5 || argc == 6) && strcmp(argv[2], "call") == 0)
		return cmd_call(&c, n, argv[4], argc == 6 ? argv[5] : NULL);
	if (argc == 4 && strcmp(argv[2], "restart") == 0)
		return cmd_restart(&c, n);
	if (argc == 6 && strcmp(argv[2], "get") == 0)
		return cmd_get(&c, n, number(argv[4]), number(argv[5]));
usage:
	fprintf(stderr,
	    "usage: bench-client SOCK pipeline|intake|latency|"
	    "restart N\n       bench-client SOCK pipeline N POOL\n"
	    "       bench-client SOCK call N METHOD [PARAMS]\n"
	    "       bench-client SOCK get N FIRST LAST\n");
	return 2;
}
