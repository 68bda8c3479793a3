/* What mprocd tells systemd, and what it takes from it. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <systemd/sd-daemon.h>

#include "mprocd.h"
#include "util.h"

static struct event	*watchdog_ev;
static struct timeval	 watchdog_tv;

/* The listening socket systemd passed us (socket activation), or -1. */
int
systemd_listen_fd(void)
{
	int	 n;

	n = sd_listen_fds(1);
	if (n < 0) {
		errno = -n;
		log_warn("sd_listen_fds, ignoring");
		return -1;
	}
	if (n == 0)
		return -1;
	if (n > 1)
		log_warnx("systemd passed %d sockets, using the first", n);
	if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0)
	    <= 0) {
		log_warnx("the socket systemd passed is not a listening UNIX "
		    "stream socket, ignoring it");
		return -1;
	}
	return SD_LISTEN_FDS_START;
}

void
systemd_notify(const char *state)
{
	sd_notify(0, state);
}

static void
watchdog_cb(evutil_socket_t fd, short events, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
	evtimer_add(watchdog_ev, &watchdog_tv);
}

/* Pings the watchdog from the loop at half its interval, if it is on. */
void
systemd_init(void)
{
	uint64_t	 usec;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return;
	usec /= 2;
	watchdog_tv = util_timeval(usec);
	watchdog_ev = evtimer_new(ev_base, watchdog_cb, NULL);
	evtimer_add(watchdog_ev, &watchdog_tv);
	log_debug("watchdog every %llu us", (unsigned long long)usec);
}
