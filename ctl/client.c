/*
 * A blocking Varlink client: one socket, whole messages in and out. Every
 * failure ends mprocctl with one clear line and status 125. For callers
 * with a poll(2) loop of their own (map), calls can also be queued and
 * sent, and replies read, without waiting.
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

#define CLIENT_MAX_MESSAGE (256U << 20)
#define CLIENT_HINT	   "it may be shutting down, or have too many clients"

struct client {
	int	    fd;
	const char *path;
	const char *hint; /* why mprocd may have hung up */

	/* Replies read: buf[off, len) is not parsed yet. */
	char  *buf;
	size_t off;
	size_t len;
	size_t size;
	size_t scanned; /* buf[off, scanned) holds no NUL */

	/* Calls queued: out[outoff, outlen) is not sent yet. */
	char  *out;
	size_t outoff;
	size_t outlen;
	size_t outsize;
};

/* $MPROCD_SOCKET, else the system socket for root, else the user's. */
const char *
client_default_socket(void)
{
	static char path[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
	const char *e;

	if ((e = getenv("MPROCD_SOCKET")) != NULL && *e != '\0')
		return e;
	if (geteuid() == 0)
		return "/run/mprocd/mprocd.sock";
	if ((e = getenv("XDG_RUNTIME_DIR")) == NULL || *e != '/')
		mprocctl_fail("XDG_RUNTIME_DIR is not set: say which socket "
			      "with -s PATH or MPROCD_SOCKET");
	if ((size_t)snprintf(path, sizeof path, "%s/mprocd.sock", e) >=
	    sizeof path)
		mprocctl_fail("$XDG_RUNTIME_DIR/mprocd.sock is too long for a "
			      "socket path");
	return path;
}

struct client *
client_connect(const char *path)
{
	struct sockaddr_un sun;
	struct client	  *c;
	int		   fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path)
		mprocctl_fail("socket path too long: %s", path);
	strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		mprocctl_fail("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		switch (errno) {
		case ENOENT:
		case ECONNREFUSED:
			mprocctl_fail(
			    "cannot connect to %s: %s (is mprocd "
			    "running? start it, or name its socket with -s)",
			    path, strerror(errno));
		case EACCES:
			mprocctl_fail("cannot connect to %s: %s (ask an admin "
				      "to add you to the socket's group)",
			    path, strerror(errno));
		default:
			mprocctl_fail("cannot connect to %s: %s", path,
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
	free(c->out);
	free(c);
}

int
client_fd(struct client *c)
{
	return c->fd;
}

/* The end of the next whole reply already read, or NULL. */
static char *
client_find(struct client *c)
{
	char *nul;

	if (c->scanned < c->off)
		c->scanned = c->off;
	if ((nul = memchr(c->buf + c->scanned, '\0', c->len - c->scanned)) ==
	    NULL)
		c->scanned = c->len;
	return nul;
}

/* True if a whole reply is already read, so poll(2) would not tell. */
int
client_buffered(struct client *c)
{
	return c->len > c->off && client_find(c) != NULL;
}

/* Bytes of queued calls not yet sent: poll(2) for POLLOUT while any. */
size_t
client_unsent(struct client *c)
{
	return c->outlen - c->outoff;
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
	struct pollfd pfd = { .fd = c->fd, .events = events };

	while (mprocctl_poll(&pfd, 1, -1) == -1) {
		if (errno != EINTR)
			mprocctl_fail("poll: %s", strerror(errno));
	}
}

/*
 * Queues a call already written out as JSON (len bytes, no NUL), to go out
 * with the next client_write(), client_send() or client_recv(). Calls
 * queued together go out in one write(2), and mprocd reads them together.
 */
void
client_queue_text(struct client *c, const char *msg, size_t len)
{
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	if (c->outsize - c->outlen <= len) {
		if (c->outoff > 0) {
			memmove(c->out, c->out + c->outoff,
			    c->outlen - c->outoff);
			c->outlen -= c->outoff;
			c->outoff = 0;
		}
		while (c->outsize - c->outlen <= len)
			c->outsize = c->outsize == 0 ? 4096 : c->outsize * 2;
		c->out = xreallocarray(c->out, 1, c->outsize);
	}
	memcpy(c->out + c->outlen, msg, len);
	c->out[c->outlen + len] = '\0';
	c->outlen += len + 1;
}

/* Queues a call as client_queue_text(); params (or NULL) are stolen. */
void
client_queue(struct client *c, const char *method, json_t *params, int flags)
{
	char  *msg;
	size_t len;

	msg = varlink_call_encode(method, params, flags, &len);
	client_queue_text(c, msg, len - 1);
	free(msg);
}

/* Sends what of the queued calls the socket takes now, without waiting. */
void
client_write(struct client *c)
{
	ssize_t n;

	while (c->outoff < c->outlen) {
		n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == -1 && (errno == EPIPE || errno == ECONNRESET))
			mprocctl_fail("mprocd closed the connection (%s)",
			    c->hint);
		if (n == -1)
			mprocctl_fail("writing to %s: %s", c->path,
			    strerror(errno));
		c->outoff += (size_t)n;
	}
	c->outoff = c->outlen = 0;
}

/* Sends a call and any queued before it; params are stolen. */
void
client_send(struct client *c, const char *method, json_t *params, int flags)
{
	client_queue(c, method, params, flags);
	for (;;) {
		client_write(c);
		if (client_unsent(c) == 0)
			break;
		client_wait(c, POLLOUT);
	}
}

/*
 * Reads what replies the socket holds now, without waiting; returns the
 * bytes read, 0 if none had come.
 */
size_t
client_read(struct client *c)
{
	ssize_t n;

	if (c->off == c->len)
		c->off = c->scanned = c->len = 0;
	if (c->len == c->size && c->off > 0) {
		/* Make room by moving what is left of the replies down. */
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->scanned = c->scanned > c->off ? c->scanned - c->off : 0;
		c->off = 0;
	}
	if (c->len == c->size) {
		if (c->size >= CLIENT_MAX_MESSAGE)
			mprocctl_fail("reply from mprocd is too large");
		c->size = c->size == 0 ? 65536 : c->size * 2;
		c->buf = xreallocarray(c->buf, 1, c->size);
	}
	do
		n = recv(c->fd, c->buf + c->len, c->size - c->len,
		    MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	if (n == -1 && errno == EAGAIN)
		return 0;
	if (n == -1 && errno != ECONNRESET)
		mprocctl_fail("reading from %s: %s", c->path, strerror(errno));
	if (n <= 0)
		mprocctl_fail("mprocd closed the connection (%s)", c->hint);
	c->len += (size_t)n;
	return (size_t)n;
}

/*
 * Waits for the next reply to be read whole; returns its length (to the
 * NUL). Queued calls are sent meanwhile, as their replies may be the ones
 * to come.
 */
static size_t
client_next(struct client *c)
{
	char *nul;

	for (;;) {
		if (c->len > c->off && (nul = client_find(c)) != NULL)
			return (size_t)(nul - (c->buf + c->off));
		client_write(c);
		client_wait(c,
		    client_unsent(c) > 0 ? POLLIN | POLLOUT : POLLIN);
		client_read(c);
	}
}

/* The next reply, whole; reply->msg is the caller's to free. */
void
client_recv(struct client *c, struct varlink_reply *reply)
{
	const char *errstr;
	size_t	    len;

	len = client_next(c);
	if (varlink_reply_parse(c->buf + c->off, len, reply, &errstr) != 0)
		mprocctl_fail("bad reply from mprocd: %s", errstr);
	c->off += len + 1;
	c->scanned = c->off;
}

/* Passes over the next reply unparsed, for one that tells nothing new. */
void
client_skip(struct client *c)
{
	c->off += client_next(c) + 1;
	c->scanned = c->off;
}

static json_int_t
client_param_int(struct varlink_reply *reply, const char *key)
{
	return json_integer_value(json_object_get(reply->params, key));
}

static const char *
client_param_str(struct varlink_reply *reply, const char *key, char *buf,
    size_t len)
{
	return mprocctl_printable(json_string_value(
				      json_object_get(reply->params, key)),
	    buf, len);
}

/*
 * An error reply as one line that says what to do about it. method is the
 * call's, for errors that do not explain themselves.
 */
const char *
client_error_message(const char *method, struct varlink_reply *reply, char *buf,
    size_t len)
{
	const char *e = reply->error;
	char	    s[256], ids[128];
	json_t	   *v;
	size_t	    i, o;

	if (strcmp(e, "io.mprocd.NoSuchJob") == 0)
		snprintf(buf, len,
		    "no job %" JSON_INTEGER_FORMAT " (it never "
		    "existed, or was forgotten after keep_finished newer jobs; "
		    "'mprocctl list' shows the jobs)",
		    client_param_int(reply, "id"));
	else if (strcmp(e, "io.mprocd.NoSuchPool") == 0)
		snprintf(buf, len,
		    "no pool '%s' ('mprocctl status' shows the "
		    "pools)",
		    client_param_str(reply, "pool", s, sizeof s));
	else if (strcmp(e, "io.mprocd.QueueFull") == 0)
		snprintf(buf, len,
		    "pool '%s' has %" JSON_INTEGER_FORMAT " jobs "
		    "queued, its queue_limit: retry once some have run",
		    client_param_str(reply, "pool", s, sizeof s),
		    client_param_int(reply, "limit"));
	else if (strcmp(e, "io.mprocd.PermissionDenied") == 0)
		snprintf(buf, len,
		    "job %" JSON_INTEGER_FORMAT " is another "
		    "user's (only they, root or mprocd's own user may use it)",
		    client_param_int(reply, "id"));
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
		snprintf(buf, len,
		    "mprocd is shutting down and takes no new "
		    "jobs; retry once it is running again");
	else if (strcmp(e, "io.mprocd.ReloadFailed") == 0)
		snprintf(buf, len,
		    "reload failed, the old configuration stays "
		    "in effect: %s",
		    client_param_str(reply, "reason", s, sizeof s));
	else if (strcmp(e, VARLINK_ERR_PARAM) == 0 &&
	    strcmp(client_param_str(reply, "parameter", s, sizeof s),
		"after") == 0)
		snprintf(buf, len,
		    "-a names a job that mprocd does not know (it never "
		    "existed, or was forgotten after keep_finished newer jobs; "
		    "'mprocctl list' shows the jobs)");
	else if (strcmp(e, VARLINK_ERR_PARAM) == 0)
		snprintf(buf, len, "mprocd refused the value of '%s' in %s",
		    client_param_str(reply, "parameter", s, sizeof s), method);
	else if (strcmp(e, VARLINK_ERR_METHOD) == 0)
		snprintf(buf, len,
		    "mprocd does not know %s yet (it is older "
		    "than mprocctl; upgrade it)",
		    method);
	else if (strcmp(e, "org.varlink.service.PermissionDenied") == 0)
		snprintf(buf, len,
		    "%s: permission denied (it needs root or "
		    "mprocd's own user; try sudo)",
		    method);
	else
		snprintf(buf, len, "%s failed: %s", method,
		    mprocctl_printable(e, s, sizeof s));
	return buf;
}

/* Ends mprocctl on an error reply, with one line about it. */
void
client_fail_reply(const char *method, struct varlink_reply *reply)
{
	char msg[512];

	mprocctl_fail("%s",
	    client_error_message(method, reply, msg, sizeof msg));
}

/*
 * One call and its reply's parameters (a new reference); an error reply
 * ends mprocctl with a message naming it.
 */
json_t *
client_call(struct client *c, const char *method, json_t *params)
{
	struct varlink_reply reply;
	json_t		    *out;

	client_send(c, method, params, 0);
	client_recv(c, &reply);
	if (reply.error != NULL)
		client_fail_reply(method, &reply);
	out = json_incref(reply.params);
	varlink_reply_free(&reply);
	return out;
}
