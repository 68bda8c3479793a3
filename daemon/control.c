/*
 * The control socket: Varlink over a UNIX stream socket. Each client's
 * calls are answered in order; a client that misbehaves (bad JSON, an
 * oversize message) is closed, and one that does not read its replies stops
 * being read until it does, so its buffers stay bounded.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/listener.h>

#include "mprocd.h"
#include "util.h"
#include "varlink.h"
#include "xmalloc.h"

static const char interface_mprocd[] =
#include "io.mprocd.varlink.h"
;
static const char interface_service[] =
#include "org.varlink.service.varlink.h"
;

struct client {
	TAILQ_ENTRY(client) entry;
	struct bufferevent *bev;
	uid_t		 uid;
	gid_t		 gid;
	pid_t		 pid;
	size_t		 scanned;	/* input already searched for a NUL */
	int		 closing;	/* flush replies, then close */
};
TAILQ_HEAD(clients, client);

struct method {
	const char	*name;
	void		(*fn)(struct client *, struct varlink_call *);
};

static struct evconnlistener	*listener;
static struct event		*accept_timer;
static char			*socket_path;	/* ours to unlink */
static struct clients		 clients = TAILQ_HEAD_INITIALIZER(clients);
static unsigned int		 nclients;

/* Notices about misbehaving clients, at most this many a minute. */
#define CLIENT_NOTICES_PER_MIN	20
static uint64_t			 notice_window;
static unsigned int		 notice_count;

static void	client_free(struct client *);
static void	client_read_cb(struct bufferevent *, void *);

static void	method_status(struct client *, struct varlink_call *);
static void	method_getinfo(struct client *, struct varlink_call *);
static void	method_getinterface(struct client *, struct varlink_call *);

static const struct method methods[] = {
	{ "io.mprocd.Status", method_status },
	{ "org.varlink.service.GetInfo", method_getinfo },
	{ "org.varlink.service.GetInterfaceDescription", method_getinterface },
};

static const char *const interfaces[] = {
	"io.mprocd",
	"org.varlink.service",
};

/* Rate-limited, so a hostile client cannot flood the log. */
static void
client_notice(struct client *c, const char *what)
{
	uint64_t	 now = util_mono_usec();

	if (now - notice_window > 60 * USEC_PER_SEC) {
		if (notice_count > CLIENT_NOTICES_PER_MIN)
			log_notice("%u more client notices were suppressed",
			    notice_count - CLIENT_NOTICES_PER_MIN);
		notice_window = now;
		notice_count = 0;
	}
	if (notice_count++ < CLIENT_NOTICES_PER_MIN)
		log_notice("client pid %d uid %u: %s", (int)c->pid,
		    (unsigned)c->uid, what);
}

static void
client_send(struct client *c, char *msg, size_t len)
{
	evbuffer_add(bufferevent_get_output(c->bev), msg, len);
	free(msg);
}

/* The reply to call; params (stolen) may be NULL. */
static void
control_reply(struct client *c, struct varlink_call *call, json_t *params)
{
	char	*msg;
	size_t	 len;

	if (call->flags & VARLINK_ONEWAY) {
		json_decref(params);
		return;
	}
	msg = varlink_reply_encode(params, 0, &len);
	client_send(c, msg, len);
}

static void
control_error(struct client *c, struct varlink_call *call, const char *error,
    json_t *params)
{
	char	*msg;
	size_t	 len;

	if (call->flags & VARLINK_ONEWAY) {
		json_decref(params);
		return;
	}
	msg = varlink_error_encode(error, params, &len);
	client_send(c, msg, len);
}

static void
control_invalid_param(struct client *c, struct varlink_call *call,
    const char *name)
{
	control_error(c, call, VARLINK_ERR_PARAM,
	    json_pack("{s:s}", "parameter", name));
}

static void
method_status(struct client *c, struct varlink_call *call)
{
	json_t		*jpools = json_array();
	struct pool	*p;

	TAILQ_FOREACH(p, &pools, entry)
		json_array_append_new(jpools, pool_status_json(p));
	control_reply(c, call, json_pack("{s:s, s:I, s:I, s:o}",
	    "version", PACKAGE_VERSION,
	    "pid", (json_int_t)getpid(),
	    "started_usec", (json_int_t)mprocd_started_usec,
	    "pools", jpools));
}

static void
method_getinfo(struct client *c, struct varlink_call *call)
{
	control_reply(c, call, json_pack("{s:s, s:s, s:s, s:s, s:[s, s]}",
	    "vendor", "mprocd",
	    "product", "mprocd",
	    "version", PACKAGE_VERSION,
	    "url", "https://github.com/mprocd/mprocd",
	    "interfaces", interfaces[0], interfaces[1]));
}

static void
method_getinterface(struct client *c, struct varlink_call *call)
{
	const char	*name = NULL, *text;

	if (varlink_get_string(call->params, "interface", &name) != 1) {
		control_invalid_param(c, call, "interface");
		return;
	}
	if (strcmp(name, "io.mprocd") == 0)
		text = interface_mprocd;
	else if (strcmp(name, "org.varlink.service") == 0)
		text = interface_service;
	else {
		control_error(c, call, VARLINK_ERR_INTERFACE,
		    json_pack("{s:s}", "interface", name));
		return;
	}
	control_reply(c, call, json_pack("{s:s}", "description", text));
}

static void
control_dispatch(struct client *c, struct varlink_call *call)
{
	char	 iface[256] = "";
	size_t	 i;

	for (i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		if (strcmp(call->method, methods[i].name) == 0) {
			methods[i].fn(c, call);
			return;
		}
	}
	if (varlink_method_interface(call->method, iface, sizeof iface) == 0) {
		for (i = 0; i < sizeof interfaces / sizeof interfaces[0]; i++) {
			if (strcmp(iface, interfaces[i]) == 0) {
				control_error(c, call, VARLINK_ERR_METHOD,
				    json_pack("{s:s}", "method", call->method));
				return;
			}
		}
	}
	control_error(c, call, VARLINK_ERR_INTERFACE,
	    json_pack("{s:s}", "interface", iface));
}

/* Stops reading; closes once the replies already queued are written. */
static void
client_close(struct client *c)
{
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		client_free(c);
}

/* Handles one complete message; returns -1 if the client was closed. */
static int
client_message(struct client *c, const char *msg, size_t len)
{
	struct varlink_call	 call;
	const char		*errstr;
	char			 what[160];

	if (varlink_call_parse(msg, len, &call, &errstr) != 0) {
		snprintf(what, sizeof what, "%s, closing the connection",
		    errstr);
		client_notice(c, what);
		client_close(c);
		return -1;
	}
	control_dispatch(c, &call);
	varlink_call_free(&call);
	return 0;
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct client		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer		*out = bufferevent_get_output(bev);
	struct evbuffer_ptr	 pos;
	size_t			 len;
	char			 what[160];
	const char		*msg;

	while (!c->closing) {
		/* A client that does not read its replies is not read either. */
		if (evbuffer_get_length(out) > cfg->max_message) {
			bufferevent_disable(bev, EV_READ);
			return;
		}
		len = evbuffer_get_length(in);
		if (len == 0)
			return;
		evbuffer_ptr_set(in, &pos, c->scanned, EVBUFFER_PTR_SET);
		pos = evbuffer_search(in, "", 1, &pos);
		if (pos.pos == -1) {
			c->scanned = len;
			if (len > cfg->max_message)
				goto oversize;
			return;
		}
		if ((size_t)pos.pos >= cfg->max_message)
			goto oversize;
		c->scanned = 0;
		msg = (const char *)evbuffer_pullup(in, pos.pos + 1);
		if (client_message(c, msg, (size_t)pos.pos) != 0)
			return;
		evbuffer_drain(in, (size_t)pos.pos + 1);
	}
	return;

oversize:
	snprintf(what, sizeof what, "message larger than max_message (%" PRIu64
	    " bytes), closing the connection", cfg->max_message);
	client_notice(c, what);
	evbuffer_drain(in, evbuffer_get_length(in));
	client_close(c);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct client	*c = arg;

	if (c->closing) {
		client_free(c);
		return;
	}
	/* Everything written: read (and answer) whatever was held back. */
	if (!(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		client_read_cb(bev, c);
	}
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client	*c = arg;

	/* A client that only half-closed still gets the replies it is owed. */
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		client_free(c);
	else if (what & BEV_EVENT_EOF)
		client_close(c);
}

static void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	TAILQ_REMOVE(&clients, c, entry);
	nclients--;
	bufferevent_free(c->bev);
	free(c);
}

static void
control_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct client	*c;
	struct ucred	 cred;
	socklen_t	 len = sizeof cred;

	if (nclients >= cfg->max_clients || mprocd_shutting_down) {
		close(fd);
		log_debug("refused a client: %s", mprocd_shutting_down ?
		    "shutting down" : "max_clients reached");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		log_warn("SO_PEERCRED, closing the client");
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->bev = bufferevent_socket_new(ev_base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
	    client_event_cb, c);
	bufferevent_enable(c->bev, EV_READ);
	TAILQ_INSERT_TAIL(&clients, c, entry);
	nclients++;
}

static void
control_accept_resume(evutil_socket_t fd, short events, void *arg)
{
	if (listener != NULL)
		evconnlistener_enable(listener);
}

/*
 * Out of descriptors (or memory): the pending connection stays queued and
 * the listener would fire again at once. Pause it for a second instead of
 * spinning, as tmux does.
 */
static void
control_accept_error(struct evconnlistener *l, void *arg)
{
	static const struct timeval	 pause = { 1, 0 };

	switch (EVUTIL_SOCKET_ERROR()) {
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		log_warn("accept, pausing new connections for 1s");
		evconnlistener_disable(l);
		if (accept_timer == NULL)
			accept_timer = evtimer_new(ev_base,
			    control_accept_resume, NULL);
		evtimer_add(accept_timer, &pause);
		break;
	default:
		log_warn("accept, ignoring");
		break;
	}
}

/*
 * Refuses to touch a path that is not a stale socket of ours: a symlink, a
 * file of another kind, or another user's socket; and refuses to take over
 * a socket on which an mprocd still answers.
 */
static int
control_check_path(const char *path, const char **cause)
{
	struct stat		 st;
	struct sockaddr_un	 sun;
	int			 fd, r;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		*cause = strerror(errno);
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		*cause = "it is a symbolic link; refusing to follow it";
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		*cause = "it exists and is not a socket";
		return -1;
	}
	if (st.st_uid != geteuid()) {
		*cause = "it belongs to another user";
		return -1;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		*cause = strerror(errno);
		return -1;
	}
	r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	close(fd);
	if (r == 0) {
		*cause = "another mprocd is listening on it";
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		*cause = strerror(errno);
		return -1;
	}
	return 0;
}

/* Binds path with exactly mode: the umask covers the bind, no chmod later. */
static int
control_bind(const char *path, unsigned int mode, const char **cause)
{
	struct sockaddr_un	 sun;
	char			*dir;
	mode_t			 old;
	int			 fd;

	dir = xstrdup(path);
	if (mkdir(dirname(dir), 0755) != 0 && errno != EEXIST) {
		free(dir);
		*cause = "cannot create its directory";
		return -1;
	}
	free(dir);
	if (control_check_path(path, cause) != 0)
		return -1;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		*cause = "path too long for a UNIX socket";
		return -1;
	}
	strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		*cause = strerror(errno);
		return -1;
	}
	old = umask(~(mode_t)mode & 0777);
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		*cause = strerror(errno);
		umask(old);
		close(fd);
		return -1;
	}
	umask(old);
	if (listen(fd, SOMAXCONN) != 0) {
		*cause = strerror(errno);
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/*
 * Listens on fd (from systemd) or, if fd is -1, on a socket of our own at
 * path. Returns 0, or -1 with a message logged.
 */
int
control_init(const char *path, unsigned int mode, int fd)
{
	const char	*cause;

	if (fd == -1) {
		if ((fd = control_bind(path, mode, &cause)) == -1) {
			log_warnx("socket %s: %s", path, cause);
			return -1;
		}
		socket_path = xstrdup(path);
		log_info("listening on %s", path);
	} else {
		util_set_nonblock(fd);
		util_set_cloexec(fd);
		log_info("listening on the socket systemd passed");
	}
	listener = evconnlistener_new(ev_base, control_accept, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (listener == NULL) {
		log_warnx("cannot listen: evconnlistener_new failed");
		return -1;
	}
	evconnlistener_set_error_cb(listener, control_accept_error);
	return 0;
}

/* Stops accepting; clients already connected are still answered. */
void
control_shutdown(void)
{
	if (listener != NULL) {
		evconnlistener_free(listener);
		listener = NULL;
	}
	if (accept_timer != NULL) {
		event_free(accept_timer);
		accept_timer = NULL;
	}
	if (socket_path != NULL) {
		unlink(socket_path);
		free(socket_path);
		socket_path = NULL;
	}
}

void
control_close(void)
{
	struct client	*c;

	control_shutdown();
	while ((c = TAILQ_FIRST(&clients)) != NULL)
		client_free(c);
}

unsigned int
control_clients(void)
{
	return nclients;
}
