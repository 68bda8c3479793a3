/*
 * bench-echo: the smallest program a program pool can run (DESIGN.md §11),
 * for bench.py's "calls" section. It serves io.mprocd.Worker on fd 3, the
 * socket mprocd passes the systemd way: Hello is answered with {}, each Run
 * with exit_status 0 and the call's input as its result. Any other method
 * is answered MethodNotFound. It exits 0 when mprocd closes the socket, 1
 * on a broken message, 2 when it was not started by mprocd.
 *
 * So a call through it costs what mprocd itself costs: no process start,
 * no interpreter, one small JSON message each way.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#define LISTEN_FD 3

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("bench-echo: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(status);
}

/* Writes all of buf, NUL included. */
static void
send_all(const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(LISTEN_FD, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			die(1, "write: %s", strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
}

static void
reply(json_t *msg)
{
	char *s;

	if ((s = json_dumps(msg, JSON_COMPACT)) == NULL)
		die(1, "cannot encode a reply");
	send_all(s, strlen(s) + 1);
	free(s);
	json_decref(msg);
}

/* Answers one call, the text of a message without its NUL. */
static void
answer(const char *text, size_t len)
{
	json_error_t err;
	json_t	    *call, *params, *input;
	const char  *method;
	int	     oneway;

	if ((call = json_loadb(text, len, 0, &err)) == NULL)
		die(1, "bad message: %s", err.text);
	method = json_string_value(json_object_get(call, "method"));
	if (method == NULL)
		die(1, "a message without a method");
	oneway = json_is_true(json_object_get(call, "oneway"));
	params = json_object_get(call, "parameters");
	if (oneway) {
		/* A oneway call is not answered; none of ours needs one. */
	} else if (strcmp(method, "io.mprocd.Worker.Hello") == 0)
		reply(json_pack("{s:{}}", "parameters"));
	else if (strcmp(method, "io.mprocd.Worker.Run") == 0) {
		input = json_object_get(params, "input");
		reply(json_pack("{s:{s:i, s:O}}", "parameters", "exit_status",
		    0, "result", input != NULL ? input : json_null()));
	} else {
		reply(json_pack("{s:s, s:{s:s}}", "error",
		    "org.varlink.service.MethodNotFound", "parameters",
		    "method", method));
	}
	json_decref(call);
}

int
main(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char	   *buf = NULL, *end, *p;
	size_t	    len = 0, size = 0;
	ssize_t	    n;

	if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != getpid() ||
	    strcmp(fds, "1") != 0)
		die(2, "not started by mprocd: no socket on fd 3 (LISTEN_FDS)");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	for (;;) {
		if (size - len < 65536) {
			size = size == 0 ? 65536 : size * 2;
			if ((buf = realloc(buf, size)) == NULL)
				die(1, "out of memory");
		}
		n = read(LISTEN_FD, buf + len, size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			die(1, "read: %s", strerror(errno));
		if (n == 0) {
			if (len != 0)
				die(1, "end of file inside a message");
			return 0;
		}
		len += (size_t)n;
		p = buf;
		while (
		    (end = memchr(p, '\0', len - (size_t)(p - buf))) != NULL) {
			answer(p, (size_t)(end - p));
			p = end + 1;
		}
		len -= (size_t)(p - buf);
		memmove(buf, p, len);
	}
}
