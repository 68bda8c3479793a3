/*
 * What the bench's C programs share: a connection to mprocd with calls
 * pipelined on it, the clock, dying.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bench-util.h"

/* A connected UNIX stream socket to path, or -1 with errno set. */
int
bench_util_connect(const char *path)
{
	struct sockaddr_un sun;
	int		   fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Says what went wrong, named for the program, and exits 1. */
void
bench_util_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", program_invocation_short_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

double
bench_util_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void *
bench_util_grow(void *p, size_t *size, size_t need)
{
	if (need <= *size)
		return p;
	while (*size < need)
		*size = *size == 0 ? 65536 : *size * 2;
	if ((p = realloc(p, *size)) == NULL)
		bench_util_die("out of memory");
	return p;
}

void
bench_util_open(struct bench_conn *c, const char *path)
{
	memset(c, 0, sizeof *c);
	if ((c->fd = bench_util_connect(path)) == -1)
		bench_util_die("%s: %s", path, strerror(errno));
}

/* Queues a call; sent by bench_util_io(). */
void
bench_util_call(struct bench_conn *c, const char *method, json_t *params)
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
	c->out = bench_util_grow(c->out, &c->outsize, c->outlen + len);
	memcpy(c->out + c->outlen, s, len);
	c->outlen += len;
	free(s);
}

/* Sends what it can and reads what came, waiting for one or the other. */
void
bench_util_io(struct bench_conn *c)
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
		c->in = bench_util_grow(c->in, &c->insize, c->inlen + 65536);
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
json_t *
bench_util_reply(struct bench_conn *c)
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
json_t *
bench_util_wait(struct bench_conn *c)
{
	json_t *r;

	while ((r = bench_util_reply(c)) == NULL)
		bench_util_io(c);
	return r;
}
