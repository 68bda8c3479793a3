/*
 * A blocking Varlink client: one socket, whole messages in and out. Every
 * failure ends mprocctl with one clear line and status 125.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocctl.h"
#include "xmalloc.h"

#define CLIENT_MAX_MESSAGE	(256U << 20)
#define CLIENT_HINT		"it may be shutting down, or have too many clients"

struct client {
	int		 fd;
	const char	*path;
	const char	*hint;	/* why mprocd may have hung up */
	char		*buf;
	size_t		 len;	/* bytes in buf */
	size_t		 size;
	size_t		 scanned;	/* bytes of buf known to hold no NUL */
};

/* $MPROCD_SOCKET, else the system socket for root, else the user's. */
const char *
client_default_socket(void)
{
	static char	 path[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
	const char	*e;

	if ((e = getenv("MPROCD_SOCKET")) != NULL && *e != '\0')
		return e;
	if (geteuid() == 0)
		return "/run/mprocd/mprocd.sock";
	if ((e = getenv("XDG_RUNTIME_DIR")) == NULL || *e != '/')
		ctl_fail("XDG_RUNTIME_DIR is not set: say which socket with "
		    "-s PATH or MPROCD_SOCKET");
	if ((size_t)snprintf(path, sizeof path, "%s/mprocd.sock", e) >=
	    sizeof path)
		ctl_fail("$XDG_RUNTIME_DIR/mprocd.sock is too long for a "
		    "socket path");
	return path;
}

struct client *
client_connect(const char *path)
{
	struct sockaddr_un	 sun;
	struct client		*c;
	int			 fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path)
		ctl_fail("socket path too long: %s", path);
	strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		ctl_fail("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		switch (errno) {
		case ENOENT:
		case ECONNREFUSED:
			ctl_fail("cannot connect to %s: %s (is mprocd "
			    "running? start it, or name its socket with -s)",
			    path, strerror(errno));
		case EACCES:
			ctl_fail("cannot connect to %s: %s (ask an admin "
			    "to add you to the socket's group)", path,
			    strerror(errno));
		default:
			ctl_fail("cannot connect to %s: %s", path,
			    strerror(errno));
		}
	}
	c = xcalloc(1, sizeof *c);
	c->fd = fd;
	c->path = path;
	c->hint = CLIENT_HINT;
	return c;
}

void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	free(c->buf);
	free(c);
}

int
client_fd(struct client *c)
{
	return c->fd;
}

/* True if a whole reply is already read, so poll(2) would not tell. */
int
client_buffered(struct client *c)
{
	return c->len > 0 && memchr(c->buf, '\0', c->len) != NULL;
}

/* What to say if mprocd closes the connection from now on (NULL: reset). */
void
client_hint(struct client *c, const char *hint)
{
	c->hint = hint != NULL ? hint : CLIENT_HINT;
}

static void
client_wait(struct client *c, short events)
{
	struct pollfd	 pfd = { .fd = c->fd, .events = events };

	while (ctl_poll(&pfd, 1, -1) == -1) {
		if (errno != EINTR)
			ctl_fail("poll: %s", strerror(errno));
	}
}

/* Sends a call; params (which may be NULL) are stolen. */
void
client_send(struct client *c, const char *method, json_t *params, int flags)
{
	char	*msg;
	size_t	 len, off = 0;
	ssize_t	 n;

	msg = varlink_call_encode(method, params, flags, &len);
	while (off < len) {
		client_wait(c, POLLOUT);
		n = send(c->fd, msg + off, len - off, MSG_DONTWAIT);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1 && (errno == EPIPE || errno == ECONNRESET))
			ctl_fail("mprocd closed the connection (%s)", c->hint);
		if (n == -1)
			ctl_fail("writing to %s: %s", c->path, strerror(errno));
		off += (size_t)n;
	}
	free(msg);
}

/* The next reply, whole; reply->msg is the caller's to free. */
void
client_recv(struct client *c, struct varlink_reply *reply)
{
	const char	*errstr;
	char		*nul;
	size_t		 mlen;
	ssize_t		 n;

	for (;;) {
		if (c->len > c->scanned &&
		    (nul = memchr(c->buf + c->scanned, '\0',
		    c->len - c->scanned)) != NULL)
			break;
		c->scanned = c->len;
		if (c->len == c->size) {
			if (c->size >= CLIENT_MAX_MESSAGE)
				ctl_fail("reply from mprocd is too large");
			c->size = c->size == 0 ? 65536 : c->size * 2;
			c->buf = xreallocarray(c->buf, 1, c->size);
		}
		client_wait(c, POLLIN);
		n = recv(c->fd, c->buf + c->len, c->size - c->len,
		    MSG_DONTWAIT);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1 && errno != ECONNRESET)
			ctl_fail("reading from %s: %s", c->path,
			    strerror(errno));
		if (n <= 0)
			ctl_fail("mprocd closed the connection (%s)", c->hint);
		c->len += (size_t)n;
	}
	mlen = (size_t)(nul - c->buf);
	if (varlink_reply_parse(c->buf, mlen, reply, &errstr) != 0)
		ctl_fail("bad reply from mprocd: %s", errstr);
	memmove(c->buf, nul + 1, c->len - mlen - 1);
	c->len -= mlen + 1;
	c->scanned = 0;
}

static json_int_t
param_int(struct varlink_reply *reply, const char *key)
{
	return json_integer_value(json_object_get(reply->params, key));
}

static const char *
param_str(struct varlink_reply *reply, const char *key, char *buf,
    size_t len)
{
	return ctl_printable(json_string_value(json_object_get(reply->params,
	    key)), buf, len);
}

/*
 * An error reply as one line that says what to do about it. method is the
 * call's, for errors that do not explain themselves.
 */
const char *
client_error_message(const char *method, struct varlink_reply *reply,
    char *buf, size_t len)
{
	const char	*e = reply->error;
	char		 s[256], ids[128];
	json_t		*v;
	size_t		 i, o;

	if (strcmp(e, "io.mprocd.NoSuchJob") == 0)
		snprintf(buf, len, "no job %" JSON_INTEGER_FORMAT " (it never "
		    "existed, or was forgotten after keep_finished newer jobs; "
		    "'mprocctl list' shows the jobs)", param_int(reply, "id"));
	else if (strcmp(e, "io.mprocd.NoSuchPool") == 0)
		snprintf(buf, len, "no pool '%s' ('mprocctl status' shows the "
		    "pools)", param_str(reply, "pool", s, sizeof s));
	else if (strcmp(e, "io.mprocd.QueueFull") == 0)
		snprintf(buf, len, "pool '%s' has %" JSON_INTEGER_FORMAT " jobs "
		    "queued, its queue_limit: retry once some have run",
		    param_str(reply, "pool", s, sizeof s),
		    param_int(reply, "limit"));
	else if (strcmp(e, "io.mprocd.PermissionDenied") == 0)
		snprintf(buf, len, "job %" JSON_INTEGER_FORMAT " is another "
		    "user's (only they, root or mprocd's own user may use it)",
		    param_int(reply, "id"));
	else if (strcmp(e, "io.mprocd.TimedOut") == 0) {
		o = 0;
		ids[0] = '\0';
		json_array_foreach(json_object_get(reply->params, "ids"), i,
		    v) {
			if (o < sizeof ids - 24)
				o += (size_t)snprintf(ids + o, sizeof ids - o,
				    " %" JSON_INTEGER_FORMAT,
				    json_integer_value(v));
			else if (o < sizeof ids - 4) {
				memcpy(ids + o, " ...", 5);
				o += 4;
			}
		}
		snprintf(buf, len, "timed out; still unfinished:%s", ids);
	} else if (strcmp(e, "io.mprocd.ShuttingDown") == 0)
		snprintf(buf, len, "mprocd is shutting down and takes no new "
		    "jobs; retry once it is running again");
	else if (strcmp(e, "io.mprocd.ReloadFailed") == 0)
		snprintf(buf, len, "reload failed, the old configuration stays "
		    "in effect: %s", param_str(reply, "reason", s, sizeof s));
	else if (strcmp(e, VARLINK_ERR_PARAM) == 0)
		snprintf(buf, len, "mprocd refused the value of '%s' in %s",
		    param_str(reply, "parameter", s, sizeof s), method);
	else if (strcmp(e, VARLINK_ERR_METHOD) == 0)
		snprintf(buf, len, "mprocd does not know %s yet (it is older "
		    "than mprocctl; upgrade it)", method);
	else if (strcmp(e, "org.varlink.service.PermissionDenied") == 0)
		snprintf(buf, len, "%s: permission denied (it needs root or "
		    "mprocd's own user; try sudo)", method);
	else
		snprintf(buf, len, "%s failed: %s",
		    method, ctl_printable(e, s, sizeof s));
	return buf;
}

/* Ends mprocctl on an error reply, with one line about it. */
void
client_fail_reply(const char *method, struct varlink_reply *reply)
{
	char	 msg[512];

	ctl_fail("%s", client_error_message(method, reply, msg, sizeof msg));
}

/*
 * One call and its reply's parameters (a new reference); an error reply
 * ends mprocctl with a message naming it.
 */
json_t *
client_call(struct client *c, const char *method, json_t *params)
{
	struct varlink_reply	 reply;
	json_t			*out;

	client_send(c, method, params, 0);
	client_recv(c, &reply);
	if (reply.error != NULL)
		client_fail_reply(method, &reply);
	out = json_incref(reply.params);
	varlink_reply_free(&reply);
	return out;
}
