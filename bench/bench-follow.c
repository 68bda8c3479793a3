/*
 * bench-follow: a job's output as it is produced, through mprocd (Run and
 * Follow with "more") and through a plain pipe; prints what it measured,
 * one figure per line, for bench.py.
 *
 *	bench-follow write N		the latency job: N short lines, 0.2
 *					to 1 ms apart, each "I NS" with
 *					CLOCK_MONOTONIC taken just before
 *					its write()
 *	bench-follow pipe N		runs "write N" on a pipe and reads
 *					it: µs from each line's write() to
 *					the read() that brought it
 *	bench-follow run SOCK POOL N	the same through mprocd: Run of
 *					"write N" with "more", timed at the
 *					recv() that brought each line
 *	bench-follow blast BYTES	the flood job: BYTES of zeros to
 *					stdout in 64 KiB write()s
 *	bench-follow sink BYTES		runs "blast BYTES" on a pipe read
 *					as fast as it goes: its seconds
 *					from fork() to its exit
 *	bench-follow fanout BYTES K	the same, each read() written to K
 *					sockets, each read by a process:
 *					a fan-out without mprocd
 *	bench-follow flood SOCK POOL K BYTES
 *					"blast BYTES" in POOL (one worker,
 *					held by a "sleep" until K followers,
 *					separate processes and connections,
 *					each Follow it), then the holder
 *					cancelled: the job's seconds, by its
 *					started_usec and finished_usec, then
 *					a line per follower: the bytes it
 *					got and its pieces marked truncated
 *
 * Every mode ends itself after $BENCH_FOLLOW_TIMEOUT seconds (default 300)
 * and a follower's process after the same; an error reply ends it with
 * status 1 and the error on stderr.
 */
#include "config.h"

#include "bench-util.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define BLOCK (64 * 1024)   /* a write() of the flood job */
#define RBUF  (1024 * 1024) /* a follower's read() */

static char self[PATH_MAX];

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long
number(const char *s, int zero)
{
	char *end;
	long  n;

	n = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || n < 0 || (n == 0 && !zero))
		bench_util_die("not a %s number: %s",
		    zero ? "whole" : "positive", s);
	return n;
}

static void
timeout(void)
{
	const char *t = getenv("BENCH_FOLLOW_TIMEOUT");

	alarm(t != NULL ? (unsigned)number(t, 0) : 300);
}

static void *
xrealloc(void *p, size_t size)
{
	if ((p = realloc(p, size)) == NULL)
		bench_util_die("out of memory");
	return p;
}

/* --- The jobs ------------------------------------------------------------- */

static int
cmd_write(long n)
{
	struct timespec pause;
	char		line[64];
	long		i, us;
	int		len;

	for (i = 0; i < n; i++) {
		/* 200 to 1000 µs apart, in an order that repeats no beat. */
		us = 200 + (i * 389) % 801;
		pause.tv_sec = 0;
		pause.tv_nsec = us * 1000;
		nanosleep(&pause, NULL);
		len = snprintf(line, sizeof line, "%ld %lld\n", i,
		    (long long)now_ns());
		if (write(1, line, (size_t)len) != len)
			bench_util_die("write: %s", strerror(errno));
	}
	return 0;
}

static int
cmd_blast(long bytes)
{
	static char block[BLOCK];
	ssize_t	    w;
	size_t	    k;

	while (bytes > 0) {
		k = bytes < BLOCK ? (size_t)bytes : BLOCK;
		if ((w = write(1, block, k)) <= 0)
			bench_util_die("write: %s",
			    w == 0 ? "nothing written" : strerror(errno));
		bytes -= w;
	}
	return 0;
}

/* Starts "bench-follow WHAT ARG" with its stdout on a pipe: its read end. */
static int
start_job(const char *what, const char *arg, pid_t *pid)
{
	int p[2];

	if (pipe(p) == -1)
		bench_util_die("pipe: %s", strerror(errno));
	if ((*pid = fork()) == -1)
		bench_util_die("fork: %s", strerror(errno));
	if (*pid == 0) {
		if (dup2(p[1], 1) == -1)
			_exit(127);
		close(p[0]);
		close(p[1]);
		execl(self, self, what, arg, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	return p[0];
}

static void
reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) == -1)
		bench_util_die("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		bench_util_die("the job ended with status %d", st);
}

/* --- Lines and their times ------------------------------------------------- */

struct lines {
	char   buf[4096]; /* a line not yet whole */
	size_t len;
	long   next; /* the number due */
	long   n;
};

/* Bytes of the job's stdout, which a read at t (ns) brought. */
static void
lines_add(struct lines *l, const char *data, size_t len, int64_t t)
{
	long long ns;
	size_t	  k;
	long	  i;
	char	 *nl;

	while (len > 0) {
		nl = memchr(data, '\n', len);
		k = nl != NULL ? (size_t)(nl - data) : len;
		if (l->len + k > sizeof l->buf - 1)
			bench_util_die("a line longer than %zu bytes",
			    sizeof l->buf);
		memcpy(l->buf + l->len, data, k);
		l->len += k;
		if (nl == NULL)
			return;
		l->buf[l->len] = '\0';
		len -= k + 1;
		data = nl + 1;
		l->len = 0;
		if (sscanf(l->buf, "%ld %lld", &i, &ns) != 2)
			bench_util_die("not a line of the job: %.100s", l->buf);
		if (i != l->next)
			bench_util_die("line %ld where %ld was due", i,
			    l->next);
		l->next++;
		printf("%.1f\n", (double)(t - ns) / 1e3);
	}
}

static void
lines_end(const struct lines *l)
{
	if (l->len != 0 || l->next != l->n)
		bench_util_die("%ld lines of %ld came%s", l->next, l->n,
		    l->len != 0 ? ", and a part of one" : "");
}

static int
cmd_pipe(const char *arg, long n)
{
	struct lines *l = calloc(1, sizeof *l);
	char	      buf[65536];
	ssize_t	      r;
	int64_t	      t;
	pid_t	      pid;
	int	      fd;

	if (l == NULL)
		bench_util_die("out of memory");
	l->n = n;
	fd = start_job("write", arg, &pid);
	while ((r = read(fd, buf, sizeof buf)) != 0) {
		t = now_ns();
		if (r == -1) {
			if (errno == EINTR)
				continue;
			bench_util_die("read: %s", strerror(errno));
		}
		lines_add(l, buf, (size_t)r, t);
	}
	reap(pid);
	lines_end(l);
	free(l);
	return 0;
}

static int
cmd_sink(const char *arg)
{
	static char buf[RBUF];
	ssize_t	    r;
	int64_t	    t0;
	pid_t	    pid;
	int	    fd;

	t0 = now_ns();
	fd = start_job("blast", arg, &pid);
	while ((r = read(fd, buf, sizeof buf)) != 0)
		if (r == -1 && errno != EINTR)
			bench_util_die("read: %s", strerror(errno));
	reap(pid);
	printf("%.6f\n", (double)(now_ns() - t0) / 1e9);
	return 0;
}

/*
 * A reader of a fan-out: reads everything from fd as fast as it can; its
 * exit status says whether it got all the bytes.
 */
static void __attribute__((noreturn)) reader(int fd, long bytes)
{
	static char buf[RBUF];
	long long   got = 0;
	ssize_t	    r;

	timeout();
	while ((r = read(fd, buf, sizeof buf)) != 0) {
		if (r == -1 && errno != EINTR)
			bench_util_die("read: %s", strerror(errno));
		got += r > 0 ? r : 0;
	}
	if (got != bytes)
		bench_util_die("a reader got %lld bytes of %ld", got, bytes);
	_exit(0);
}

/*
 * What mprocd does for followers, at its simplest: the job's pipe read,
 * each read written whole to K sockets, each read by a process as in
 * reader(); the job's seconds from fork() to its exit.
 */
static int
cmd_fanout(const char *arg, long k)
{
	static char buf[RBUF];
	ssize_t	    r, w;
	int64_t	    t0, t1;
	size_t	    off;
	pid_t	   *pids, pid;
	long	    i, bytes = number(arg, 0);
	int	   *fds, sv[2], fd, st, failed = 0;

	if ((pids = calloc((size_t)k + 1, sizeof *pids)) == NULL ||
	    (fds = calloc((size_t)k + 1, sizeof *fds)) == NULL)
		bench_util_die("out of memory");
	for (i = 0; i < k; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
			bench_util_die("socketpair: %s", strerror(errno));
		if ((pids[i] = fork()) == -1)
			bench_util_die("fork: %s", strerror(errno));
		if (pids[i] == 0) {
			while (i-- > 0)
				close(fds[i]);
			close(sv[0]);
			reader(sv[1], bytes);
		}
		close(sv[1]);
		fds[i] = sv[0];
	}
	t0 = now_ns();
	fd = start_job("blast", arg, &pid);
	while ((r = read(fd, buf, sizeof buf)) != 0) {
		if (r == -1) {
			if (errno == EINTR)
				continue;
			bench_util_die("read: %s", strerror(errno));
		}
		for (i = 0; i < k; i++)
			for (off = 0; off < (size_t)r; off += (size_t)w)
				if ((w = write(fds[i], buf + off,
					 (size_t)r - off)) == -1) {
					if (errno != EINTR)
						bench_util_die("write: %s",
						    strerror(errno));
					w = 0;
				}
	}
	reap(pid);
	t1 = now_ns();
	for (i = 0; i < k; i++)
		close(fds[i]);
	for (i = 0; i < k; i++) {
		if (waitpid(pids[i], &st, 0) == -1)
			bench_util_die("waitpid: %s", strerror(errno));
		failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	if (failed)
		bench_util_die("%d of %ld readers failed", failed, k);
	free(pids);
	free(fds);
	printf("%.6f\n", (double)(t1 - t0) / 1e9);
	return 0;
}

/* --- Varlink --------------------------------------------------------------- */

struct conn {
	int    fd;
	char  *in;
	size_t inlen, insize;
	size_t scanned; /* of in, known to hold no NUL */
};

static void
conn_open(struct conn *c, const char *path)
{
	memset(c, 0, sizeof *c);
	if ((c->fd = bench_util_connect(path)) == -1)
		bench_util_die("%s: %s", path, strerror(errno));
	c->insize = RBUF;
	c->in = xrealloc(NULL, c->insize);
}

static void
conn_send(struct conn *c, const char *method, json_t *params, int more)
{
	json_t *msg;
	char   *s;
	size_t	len, off;
	ssize_t w;

	msg = json_pack("{s:s, s:o}", "method", method, "parameters", params);
	if (msg != NULL && more)
		json_object_set_new(msg, "more", json_true());
	if (msg == NULL || (s = json_dumps(msg, JSON_COMPACT)) == NULL)
		bench_util_die("cannot encode a %s call", method);
	json_decref(msg);
	len = strlen(s) + 1;
	for (off = 0; off < len; off += (size_t)w)
		if ((w = send(c->fd, s + off, len - off, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR) {
				w = 0;
				continue;
			}
			bench_util_die("send: %s", strerror(errno));
		}
	free(s);
}

/* Reads what comes (blocking): when it came. */
static int64_t
conn_read(struct conn *c)
{
	ssize_t r;

	if (c->insize - c->inlen < RBUF / 2) {
		c->insize *= 2;
		c->in = xrealloc(c->in, c->insize);
	}
	while (
	    (r = recv(c->fd, c->in + c->inlen, c->insize - c->inlen, 0)) == -1)
		if (errno != EINTR)
			bench_util_die("recv: %s", strerror(errno));
	if (r == 0)
		bench_util_die("mprocd closed the connection");
	c->inlen += (size_t)r;
	return now_ns();
}

/* The next message if one has come whole (NUL ended), else NULL. */
static char *
conn_next(struct conn *c, size_t *off, size_t *len)
{
	char *end;

	if ((end = memchr(c->in + *off + c->scanned, '\0',
		 c->inlen - *off - c->scanned)) == NULL) {
		c->scanned = c->inlen - *off;
		return NULL;
	}
	c->scanned = 0;
	*len = (size_t)(end - (c->in + *off));
	end = c->in + *off;
	*off += *len + 1;
	return end;
}

/* Drops the messages before off. */
static void
conn_consumed(struct conn *c, size_t off)
{
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
}

/* A whole message's parameters; an error reply ends us. */
static json_t *
parse(const char *msg, size_t len, int *continues)
{
	json_error_t jerr;
	json_t	    *m, *p;

	if ((m = json_loadb(msg, len, 0, &jerr)) == NULL)
		bench_util_die("bad reply: %s", jerr.text);
	if (json_object_get(m, "error") != NULL)
		bench_util_die("%s %s",
		    json_string_value(json_object_get(m, "error")),
		    json_dumps(json_object_get(m, "parameters"), JSON_COMPACT));
	if ((p = json_incref(json_object_get(m, "parameters"))) == NULL)
		bench_util_die("a reply without parameters");
	*continues = json_is_true(json_object_get(m, "continues"));
	json_decref(m);
	return p;
}

/* The next whole reply, reading until it comes. */
static json_t *
conn_wait(struct conn *c)
{
	size_t	off = 0, len;
	json_t *p;
	char   *m;
	int	more;

	while ((m = conn_next(c, &off, &len)) == NULL)
		conn_read(c);
	p = parse(m, len, &more);
	conn_consumed(c, off);
	return p;
}

static json_t *
call(struct conn *c, const char *method, json_t *params)
{
	conn_send(c, method, params, 0);
	return conn_wait(c);
}

static const unsigned char *
b64_table(void)
{
	static const char    a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				   "qrstuvwxyz0123456789+/";
	static unsigned char t[256];
	static int	     done;
	size_t		     i;

	if (!done) {
		memset(t, 0xff, sizeof t);
		for (i = 0; i < sizeof a - 1; i++)
			t[(unsigned char)a[i]] = (unsigned char)i;
		done = 1;
	}
	return t;
}

/* Decodes s (base64) into out, which has room: its length. */
static size_t
b64_decode(const char *s, char *out)
{
	const unsigned char *t = b64_table();
	unsigned	     acc = 0, bits = 0, v;
	size_t		     n = 0;

	for (; *s != '\0' && *s != '='; s++) {
		if ((v = t[(unsigned char)*s]) == 0xff)
			bench_util_die("bad base64");
		acc = acc << 6 | v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[n++] = (char)(acc >> bits & 0xff);
		}
	}
	return n;
}

/* --- Through mprocd -------------------------------------------------------- */

static int
cmd_run(const char *sock, const char *pool, const char *arg, long n)
{
	struct lines *l = calloc(1, sizeof *l);
	struct conn   c;
	json_t	     *p, *job;
	const char   *s;
	char	     *m, *data = NULL;
	size_t	      off, len;
	int64_t	      t;
	int	      more = 1, first = 1;

	if (l == NULL)
		bench_util_die("out of memory");
	l->n = n;
	conn_open(&c, sock);
	conn_send(&c, "io.mprocd.Run",
	    json_pack("{s:[s,s,s], s:s}", "argv", self, "write", arg, "pool",
		pool),
	    1);
	while (more) {
		t = conn_read(&c);
		off = 0;
		while (more && (m = conn_next(&c, &off, &len)) != NULL) {
			p = parse(m, len, &more);
			job = json_object_get(p, "job");
			if (first) {
				if (job == NULL || !more)
					bench_util_die(
					    "Run's first reply is not the "
					    "queued job");
				first = 0;
			} else if (more) {
				if ((s = json_string_value(
					 json_object_get(p, "stdout"))) == NULL)
					bench_util_die(
					    "a piece that is not stdout: %s",
					    json_dumps(p, JSON_COMPACT));
				if (json_is_true(
					json_object_get(p, "truncated")))
					bench_util_die(
					    "a piece marked truncated");
				data = xrealloc(data, strlen(s) + 1);
				lines_add(l, data, b64_decode(s, data), t);
			} else {
				s = json_string_value(
				    json_object_get(job, "state"));
				if (s == NULL || strcmp(s, "succeeded") != 0 ||
				    json_is_true(
					json_object_get(p, "truncated")))
					bench_util_die("the job ended %s",
					    json_dumps(p, JSON_COMPACT));
			}
			json_decref(p);
		}
		conn_consumed(&c, off);
	}
	lines_end(l);
	free(data);
	free(l);
	return 0;
}

/*
 * A follower of job id: reads everything as fast as it can, counting the
 * bytes of each piece from its base64 (not decoded: zeros, and the bench
 * is of mprocd), then writes "BYTES TRUNCATED" to fd out in one write().
 */
static void __attribute__((noreturn))
follower(const char *sock, json_int_t id, int ready, int out)
{
	static const char key[] = "{\"parameters\":{\"std";
	struct conn	  c;
	long long	  bytes = 0, gaps = 0;
	json_t		 *p;
	const char	 *s;
	char		 *m, *q, line[64];
	size_t		  off, len, b;
	int		  more = 1, n;

	timeout();
	conn_open(&c, sock);
	conn_send(&c, "io.mprocd.Follow", json_pack("{s:I}", "id", id), 1);
	if (write(ready, "r", 1) != 1)
		bench_util_die("write: %s", strerror(errno));
	close(ready);
	while (more) {
		conn_read(&c);
		off = 0;
		while (more && (m = conn_next(&c, &off, &len)) != NULL) {
			if (len > sizeof key + 9 &&
			    memcmp(m, key, sizeof key - 1) == 0) {
				/* {"parameters":{"stdout":"BASE64"...}... */
				s = m + sizeof key - 1 + 6;
				if ((q = memchr(s, '"',
					 len - (size_t)(s - m))) == NULL)
					bench_util_die(
					    "a piece without its end");
				b = (size_t)(q - s);
				bytes += (long long)(b / 4 * 3) -
				    (b > 0 && s[b - 1] == '=') -
				    (b > 1 && s[b - 2] == '=');
				gaps += memmem(q, len - (size_t)(q - m),
					    "\"truncated\":true", 16) != NULL;
				if (memmem(q, len - (size_t)(q - m),
					"\"continues\":true", 16) == NULL)
					bench_util_die(
					    "a piece that is the last reply");
				continue;
			}
			p = parse(m, len, &more);
			if (more)
				bench_util_die(
				    "a reply neither a piece nor the last: %s",
				    json_dumps(p, JSON_COMPACT));
			s = json_string_value(
			    json_object_get(json_object_get(p, "job"),
				"state"));
			if (s == NULL || strcmp(s, "succeeded") != 0)
				bench_util_die("the job ended %s",
				    json_dumps(p, JSON_COMPACT));
			json_decref(p);
		}
		conn_consumed(&c, off);
	}
	n = snprintf(line, sizeof line, "%lld %lld\n", bytes, gaps);
	if (write(out, line, (size_t)n) != n)
		bench_util_die("write: %s", strerror(errno));
	_exit(0);
}

static json_int_t
submit(struct conn *c, const char *pool, json_t *argv)
{
	json_t	  *r;
	json_int_t id;

	r = call(c, "io.mprocd.Submit",
	    json_pack("{s:o, s:s}", "argv", argv, "pool", pool));
	id = json_integer_value(json_object_get(r, "id"));
	json_decref(r);
	if (id <= 0)
		bench_util_die("Submit gave no id");
	return id;
}

static const char *
state_of(struct conn *c, json_int_t id)
{
	static char state[32];
	json_t	   *r;

	r = call(c, "io.mprocd.Get", json_pack("{s:I}", "id", id));
	snprintf(state, sizeof state, "%s",
	    json_string_value(
		json_object_get(json_object_get(r, "job"), "state")));
	json_decref(r);
	return state;
}

static int
cmd_flood(const char *sock, const char *pool, long k, const char *arg)
{
	struct timespec tick = { 0, 1000000 }, settle = { 0, 100000000 };
	struct conn	c;
	json_int_t	holder, id;
	json_t	       *r, *job;
	FILE	       *res;
	pid_t	       *pids;
	char		buf[64], line[128];
	long		i;
	int		ready[2], out[2], st, failed = 0;

	conn_open(&c, sock);
	/* The pool's one worker held, so that the job waits for them. */
	holder = submit(&c, pool, json_pack("[s,s]", "sleep", "1000"));
	while (strcmp(state_of(&c, holder), "running") != 0)
		nanosleep(&tick, NULL);
	id = submit(&c, pool, json_pack("[s,s,s]", self, "blast", arg));
	if (strcmp(state_of(&c, id), "queued") != 0)
		bench_util_die("job %lld is not queued", (long long)id);
	if (pipe(ready) == -1 || pipe(out) == -1)
		bench_util_die("pipe: %s", strerror(errno));
	if ((pids = calloc((size_t)k + 1, sizeof *pids)) == NULL)
		bench_util_die("out of memory");
	fflush(stdout);
	for (i = 0; i < k; i++) {
		if ((pids[i] = fork()) == -1)
			bench_util_die("fork: %s", strerror(errno));
		if (pids[i] == 0) {
			close(c.fd);
			close(ready[0]);
			close(out[0]);
			follower(sock, id, ready[1], out[1]);
		}
	}
	close(ready[1]);
	close(out[1]);
	for (i = 0; i < k; i++)
		if (read(ready[0], buf, 1) != 1)
			bench_util_die("a follower did not start");
	close(ready[0]);
	/* Their Follows read by mprocd, which answers none of them yet. */
	if (k > 0)
		nanosleep(&settle, NULL);
	json_decref(
	    call(&c, "io.mprocd.Cancel", json_pack("{s:I}", "id", holder)));
	r = call(&c, "io.mprocd.Wait",
	    json_pack("{s:[I], s:f}", "ids", id, "timeout_sec", 600.0));
	job = json_array_get(json_object_get(r, "jobs"), 0);
	if (strcmp(json_string_value(json_object_get(job, "state")),
		"succeeded") != 0)
		bench_util_die("job %lld: %s", (long long)id,
		    json_dumps(job, JSON_COMPACT));
	printf("%.6f\n",
	    (double)(json_integer_value(json_object_get(job, "finished_usec")) -
		json_integer_value(json_object_get(job, "started_usec"))) /
		1e6);
	json_decref(r);
	if ((res = fdopen(out[0], "r")) == NULL)
		bench_util_die("fdopen: %s", strerror(errno));
	while (fgets(line, sizeof line, res) != NULL)
		fputs(line, stdout);
	fclose(res);
	for (i = 0; i < k; i++) {
		if (waitpid(pids[i], &st, 0) == -1)
			bench_util_die("waitpid: %s", strerror(errno));
		failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	free(pids);
	if (failed)
		bench_util_die("%d of %ld followers failed", failed, k);
	return 0;
}

int
main(int argc, char **argv)
{
	ssize_t n;

	if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) == -1)
		bench_util_die("/proc/self/exe: %s", strerror(errno));
	self[n] = '\0';
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && strcmp(argv[1], "write") == 0)
		return cmd_write(number(argv[2], 0));
	if (argc == 3 && strcmp(argv[1], "blast") == 0)
		return cmd_blast(number(argv[2], 0));
	timeout();
	if (argc == 3 && strcmp(argv[1], "pipe") == 0)
		return cmd_pipe(argv[2], number(argv[2], 0));
	if (argc == 3 && strcmp(argv[1], "sink") == 0) {
		number(argv[2], 0);
		return cmd_sink(argv[2]);
	}
	if (argc == 4 && strcmp(argv[1], "fanout") == 0) {
		number(argv[2], 0);
		return cmd_fanout(argv[2], number(argv[3], 1));
	}
	if (argc == 5 && strcmp(argv[1], "run") == 0)
		return cmd_run(argv[2], argv[3], argv[4], number(argv[4], 0));
	if (argc == 6 && strcmp(argv[1], "flood") == 0) {
		number(argv[5], 0);
		return cmd_flood(argv[2], argv[3], number(argv[4], 1), argv[5]);
	}
	fprintf(stderr,
	    "usage: bench-follow write|pipe N\n"
	    "       bench-follow run SOCK POOL N\n"
	    "       bench-follow blast|sink BYTES\n"
	    "       bench-follow fanout BYTES READERS\n"
	    "       bench-follow flood SOCK POOL FOLLOWERS BYTES\n");
	return 2;
}
