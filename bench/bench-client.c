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

struct conn {
	int    fd;
	char  *in; /* received, not yet parsed */
	size_t inlen, insize;
	size_t scanned; /* of in, known to hold no NUL */
	char  *out;	/* to send */
	size_t outlen, outoff, outsize;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
grow(void *p, size_t *size, size_t need)
{
	if (need <= *size)
		return p;
	while (*size < need)
		*size = *size == 0 ? 65536 : *size * 2;
	if ((p = realloc(p, *size)) == NULL)
		bench_util_die("out of memory");
	return p;
}

static void
conn_open(struct conn *c, const char *path)
{
	memset(c, 0, sizeof *c);
	if ((c->fd = bench_util_connect(path)) == -1)
		bench_util_die("%s: %s", path, strerror(errno));
}

/* Queues a call; sent by conn_io(). */
static void
conn_call(struct conn *c, const char *method, json_t *params)
{
	json_t *msg;
	char   *s;
	size_t	len;

	msg = json_pack("{s:s, s:o}", "method", method, "parameters",
	    params != NULL ? params : json_object());
	if (msg == NULL || (s = json_dumps(msg, JSON_COMPACT)) == NULL)
		bench_util_die("cannot encode a %s call", method);
	json_decref(msg);
	len = strlen(s) + 1;
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	c->out = grow(c->out, &c->outsize, c->outlen + len);
	memcpy(c->out + c->outlen, s, len);
	c->outlen += len;
	free(s);
}

/* Sends what it can and reads what came, waiting for one or the other. */
static void
conn_io(struct conn *c)
{
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	ssize_t	      n;

	if (c->outoff < c->outlen)
		pfd.events |= POLLOUT;
	if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
		bench_util_die("poll: %s", strerror(errno));
	if (pfd.revents & POLLOUT) {
		n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			c->outoff += (size_t)n;
		else if (n == -1 && errno != EAGAIN && errno != EINTR)
			bench_util_die("send: %s", strerror(errno));
	}
	if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
		c->in = grow(c->in, &c->insize, c->inlen + 65536);
		n = recv(c->fd, c->in + c->inlen, c->insize - c->inlen,
		    MSG_DONTWAIT);
		if (n == 0)
			bench_util_die("mprocd closed the connection");
		if (n > 0)
			c->inlen += (size_t)n;
		else if (errno != EAGAIN && errno != EINTR)
			bench_util_die("recv: %s", strerror(errno));
	}
}

/* The next reply if one has come whole, else NULL. Errors end us. */
static json_t *
conn_reply(struct conn *c)
{
	json_error_t jerr;
	json_t	    *msg, *params;
	char	    *end;
	size_t	     len;

	if ((end = memchr(c->in + c->scanned, '\0', c->inlen - c->scanned)) ==
	    NULL) {
		c->scanned = c->inlen;
		return NULL;
	}
	c->scanned = 0;
	len = (size_t)(end - c->in);
	if ((msg = json_loadb(c->in, len, 0, &jerr)) == NULL)
		bench_util_die("bad reply: %s", jerr.text);
	memmove(c->in, end + 1, c->inlen - len - 1);
	c->inlen -= len + 1;
	if (json_object_get(msg, "error") != NULL) {
		params = json_object_get(msg, "parameters");
		bench_util_die("%s %s",
		    json_string_value(json_object_get(msg, "error")),
		    params != NULL ? json_dumps(params, JSON_COMPACT) : "");
	}
	params = json_incref(json_object_get(msg, "parameters"));
	json_decref(msg);
	if (params == NULL)
		bench_util_die("a reply without parameters");
	return params;
}

/* Sends everything queued and returns the next reply. */
static json_t *
conn_wait(struct conn *c)
{
	json_t *r;

	while ((r = conn_reply(c)) == NULL)
		conn_io(c);
	return r;
}

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
submit_many(struct conn *c, long n, const char *pool, json_t *ids)
{
	json_t *r;
	long	sent = 0, got = 0;

	while (got < n) {
		while (sent < n && sent - got < WINDOW) {
			conn_call(c, "io.mprocd.Submit",
			    submit_params(sent, pool));
			sent++;
		}
		conn_io(c);
		while ((r = conn_reply(c)) != NULL) {
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
check_echo(struct conn *c, json_t *id, long n)
{
	json_t *r, *arg;

	conn_call(c, "io.mprocd.Get", json_pack("{s:O}", "id", id));
	r = conn_wait(c);
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
cmd_pipeline(struct conn *c, long n, const char *pool)
{
	json_t *ids = json_array(), *last, *r, *job;
	double	t0;
	size_t	i;
	long	ok = 0;

	t0 = now();
	submit_many(c, n, pool, ids);
	last = json_incref(json_array_get(ids, (size_t)n - 1));
	conn_call(c, "io.mprocd.Wait", json_pack("{s:o}", "ids", ids));
	r = conn_wait(c);
	printf("%.6f\n", now() - t0);
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
cmd_intake(struct conn *c, long n)
{
	double t0;

	t0 = now();
	submit_many(c, n, NULL, NULL);
	printf("%.6f\n", now() - t0);
	return 0;
}

static int
cmd_latency(struct conn *c, long n)
{
	json_t *r, *id;
	double	t0;
	long	i;

	for (i = 0; i < n; i++) {
		t0 = now();
		conn_call(c, "io.mprocd.Submit", submit_params(-1, NULL));
		r = conn_wait(c);
		id = json_incref(json_object_get(r, "id"));
		json_decref(r);
		conn_call(c, "io.mprocd.Wait", json_pack("{s:[O]}", "ids", id));
		conn_call(c, "io.mprocd.Get", json_pack("{s:O}", "id", id));
		json_decref(conn_wait(c));
		r = conn_wait(c);
		printf("%.1f\n", (now() - t0) * 1e6);
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
cmd_call(struct conn *c, long n, const char *method, const char *params)
{
	json_error_t jerr;
	json_t	    *p = NULL;
	double	     t0;
	long	     i;

	if (params != NULL && (p = json_loads(params, 0, &jerr)) == NULL)
		bench_util_die("bad parameters: %s", jerr.text);
	for (i = 0; i < n; i++) {
		t0 = now();
		conn_call(c, method, p != NULL ? json_deep_copy(p) : NULL);
		json_decref(conn_wait(c));
		printf("%.1f\n", (now() - t0) * 1e6);
	}
	json_decref(p);
	return 0;
}

static int
cmd_get(struct conn *c, long n, long first, long last)
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
		t0 = now();
		conn_call(c, "io.mprocd.Get",
		    json_pack("{s:I}", "id", (json_int_t)id));
		r = conn_wait(c);
		printf("%.1f\n", (now() - t0) * 1e6);
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
first_worker(struct conn *c, const char **name)
{
	static char slot[256];
	json_t	   *r, *w;
	pid_t	    pid = 0;

	conn_call(c, "io.mprocd.Status", NULL);
	r = conn_wait(c);
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
cmd_restart(struct conn *c, long n)
{
	struct timespec pause = { 0, 100 * 1000 }, settle = { 0, 20000000 };
	const char     *name = NULL;
	double		t0;
	pid_t		old, pid;
	long		i;

	for (i = 0; i < n; i++) {
		while ((old = first_worker(c, &name)) == 0)
			nanosleep(&pause, NULL);
		t0 = now();
		if (kill(old, SIGKILL) == -1)
			bench_util_die("kill %d: %s", (int)old,
			    strerror(errno));
		do {
			nanosleep(&pause, NULL);
			pid = first_worker(c, &name);
		} while (pid == 0 || pid == old);
		printf("%.1f\n", (now() - t0) * 1e6);
		nanosleep(&settle, NULL);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct conn c;
	long	    n;

	if (argc < 4)
		goto usage;
	n = number(argv[3]);
	conn_open(&c, argv[1]);
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
