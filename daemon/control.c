/*
 * The control socket: a UNIX stream socket of our own (never over another
 * user's file, a symlink, or a live mprocd's socket) or the one systemd
 * passed, and the accepting of clients, with max_clients and a reserve for
 * root and our own user. Each client is then a conn (conn.c).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/listener.h>

#include "mprocd.h"
#include "util.h"
#include "xmalloc.h"

/*
 * Connections beyond max_clients kept for root and mprocd's own user, so
 * that a flood of connections cannot lock the administrator out.
 */
#define CONTROL_RESERVE 4

static struct evconnlistener *control_listener;
static struct event	     *control_accept_timer;
static char		     *control_socket_path; /* ours to unlink */
static int		      control_activated;   /* systemd's socket */

/* Refusals, at most this many notices a minute. */
static struct log_ratelimit control_refusals = LOG_RATELIMIT("refused client",
    5, 60);

static void
control_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct ucred cred;
	socklen_t    len = sizeof cred;

	if (mprocd_shutting_down) {
		close(fd);
		log_debug("refused a client: shutting down");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		log_warn("SO_PEERCRED, closing the client");
		close(fd);
		return;
	}
	if (conn_count() >= cfg->max_clients + CONTROL_RESERVE ||
	    (conn_count() >= cfg->max_clients && cred.uid != 0 &&
		cred.uid != geteuid())) {
		close(fd);
		if (log_ratelimit(&control_refusals, util_mono_usec()))
			log_notice(
			    "refused a client: max_clients reached" LOG_KV
			    "max_clients=%" PRIu64 LOG_KV "uid=%u" LOG_KV
			    "client_pid=%d",
			    cfg->max_clients, (unsigned)cred.uid,
			    (int)cred.pid);
		return;
	}
	conn_new(fd, cred.uid, cred.gid, cred.pid);
}

static void
control_accept_resume(evutil_socket_t fd, short events, void *arg)
{
	if (control_listener != NULL)
		evconnlistener_enable(control_listener);
}

/*
 * Out of descriptors (or memory): the pending connection stays queued and
 * the listener would fire again at once. Pause it for a second instead of
 * spinning, as tmux does.
 */
static void
control_accept_error(struct evconnlistener *l, void *arg)
{
	static const struct timeval pause = { 1, 0 };

	switch (EVUTIL_SOCKET_ERROR()) {
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		log_warn("accept, pausing new connections for 1s");
		evconnlistener_disable(l);
		if (control_accept_timer == NULL)
			control_accept_timer = evtimer_new(ev_base,
			    control_accept_resume, NULL);
		evtimer_add(control_accept_timer, &pause);
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
	struct stat	   st;
	struct sockaddr_un sun;
	int		   fd, r;

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
	struct sockaddr_un sun;
	char		  *dir;
	mode_t		   old;
	int		   fd;

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
	const char *cause;

	if (fd == -1) {
		if ((fd = control_bind(path, mode, &cause)) == -1) {
			log_warnx("socket %s: %s", path, cause);
			return -1;
		}
		control_socket_path = xstrdup(path);
		control_activated = 0;
		log_info("listening on %s", path);
	} else {
		util_set_nonblock(fd);
		util_set_cloexec(fd);
		control_activated = 1;
		log_info("listening on the socket systemd passed");
	}
	control_listener = evconnlistener_new(ev_base, control_accept, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (control_listener == NULL) {
		log_warnx("cannot listen: evconnlistener_new failed");
		return -1;
	}
	evconnlistener_set_error_cb(control_listener, control_accept_error);
	return 0;
}

/* Stops accepting; clients already connected are still answered. */
void
control_shutdown(void)
{
	if (control_listener != NULL) {
		evconnlistener_free(control_listener);
		control_listener = NULL;
	}
	if (control_accept_timer != NULL) {
		event_free(control_accept_timer);
		control_accept_timer = NULL;
	}
	if (control_socket_path != NULL) {
		unlink(control_socket_path);
		free(control_socket_path);
		control_socket_path = NULL;
	}
}

/* At exit: stop listening; write what replies clients will take, close. */
void
control_close(void)
{
	control_shutdown();
	conn_free_all();
}

/* Whether the socket is systemd's (socket activation), not ours. */
int
control_is_activated(void)
{
	return control_activated;
}
