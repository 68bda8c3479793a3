/*
 * A blocking Varlink client: one socket, whole messages in and out. Every
 * failure ends mprocctl with one clear line and status 125.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocctl.h"
#include "xmalloc.h"

#define CLIENT_MAX_MESSAGE	(256U << 20)

struct client {
	int		 fd;
	const char	*path;
	char		*buf;
	size_t		 len;	/* bytes in buf */
	size_t		 size;
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
client_send(struct client *c, const char *method, json_t *params, int flags)
{
	char	*msg;
	size_t	 len, off = 0;
	ssize_t	 n;

	msg = varlink_call_encode(method, params, flags, &len);
	while (off < len) {
		n = write(c->fd, msg + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EPIPE || errno == ECONNRESET))
			ctl_fail("mprocd closed the connection (it may be "
			    "shutting down, or have too many clients)");
		if (n == -1)
			ctl_fail("writing to %s: %s", c->path, strerror(errno));
		off += (size_t)n;
	}
	free(msg);
	return 0;
}

/* The next reply, whole. */
int
client_recv(struct client *c, struct varlink_reply *reply)
{
	const char	*errstr;
	char		*nul;
	size_t		 mlen;
	ssize_t		 n;

	for (;;) {
		if (c->len > 0 && (nul = memchr(c->buf, '\0', c->len)) != NULL)
			break;
		if (c->len == c->size) {
			if (c->size >= CLIENT_MAX_MESSAGE)
				ctl_fail("reply from mprocd is too large");
			c->size = c->size == 0 ? 65536 : c->size * 2;
			c->buf = xreallocarray(c->buf, 1, c->size);
		}
		n = read(c->fd, c->buf + c->len, c->size - c->len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != ECONNRESET)
			ctl_fail("reading from %s: %s", c->path,
			    strerror(errno));
		if (n <= 0)
			ctl_fail("mprocd closed the connection (it may be "
			    "shutting down, or have too many clients)");
		c->len += (size_t)n;
	}
	mlen = (size_t)(nul - c->buf);
	if (varlink_reply_parse(c->buf, mlen, reply, &errstr) != 0)
		ctl_fail("bad reply from mprocd: %s", errstr);
	memmove(c->buf, nul + 1, c->len - mlen - 1);
	c->len -= mlen + 1;
	return 0;
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
	char			*detail;

	client_send(c, method, params, 0);
	client_recv(c, &reply);
	if (reply.error != NULL) {
		detail = json_dumps(reply.params, JSON_COMPACT);
		ctl_fail("%s: %s %s", method, reply.error,
		    detail != NULL ? detail : "");
	}
	out = json_incref(reply.params);
	varlink_reply_free(&reply);
	return out;
}
