/*
 * What mprocd tells systemd, and what it takes from it: the socket it
 * passed, READY=1 once the pools are up, a one-line STATUS= as it changes
 * (at most once a second), and the watchdog's pings from the loop.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <systemd/sd-daemon.h>

#include "mprocd.h"
#include "util.h"

/* At most one STATUS= update a second, however busy the pools are. */
#define SYSTEMD_STATUS_INTERVAL USEC_PER_SEC

static struct event  *systemd_watchdog_ev;
static struct timeval systemd_watchdog_tv;
static struct event  *systemd_status_timer;
static char	      systemd_status_sent[512];
static uint64_t	      systemd_status_sent_mono;
static int	      systemd_ready_sent;

/* The listening socket systemd passed us (socket activation), or -1. */
int
systemd_listen_fd(void)
{
	int n;

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
	if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <=
	    0) {
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
systemd_watchdog_cb(evutil_socket_t fd, short events, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
	evtimer_add(systemd_watchdog_ev, &systemd_watchdog_tv);
}

/*
 * systemd's one-line STATUS=: pools, workers, jobs, and any degraded pool.
 * Sent now if it changed.
 */
static void
systemd_update_status(void)
{
	struct pool *p;
	char	     status[sizeof systemd_status_sent];
	unsigned int npools = 0;
	size_t	     off;

	TAILQ_FOREACH(p, &pools, entry)
		npools++;
	off = (size_t)snprintf(status, sizeof status,
	    "STATUS=%u pools, %u workers, %u busy, %" PRIu64 " queued", npools,
	    pool_count_live(), pool_count_busy(), pool_count_queued());
	TAILQ_FOREACH(p, &pools, entry) {
		if (!p->degraded || off >= sizeof status)
			continue;
		off += (size_t)snprintf(status + off, sizeof status - off,
		    "; pool %s degraded", p->name);
	}
	if (strcmp(status, systemd_status_sent) == 0)
		return;
	systemd_notify(status);
	memcpy(systemd_status_sent, status, sizeof systemd_status_sent);
	systemd_status_sent_mono = util_mono_usec();
}

static void
systemd_status_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	systemd_update_status();
}

/* READY=1 once no worker of the first start is still starting. */
static void
systemd_check_ready(void)
{
	if (systemd_ready_sent || mprocd_shutting_down ||
	    pool_count_starting() != 0)
		return;
	systemd_ready_sent = 1;
	systemd_update_status();
	systemd_notify("READY=1");
	log_info("ready" LOG_KV "workers=%u", pool_count_live());
}

/*
 * Something STATUS= counts has changed: update it now if flags say
 * SUPERVISOR_NOW or it was sent STATUS_INTERVAL ago or more, else once
 * that has passed. With SUPERVISOR_WORKERS (a slot's worker started or
 * went), sends READY=1 if the pools are up.
 */
void
systemd_changed(int flags)
{
	struct timeval tv;
	uint64_t       now;

	if (flags & SUPERVISOR_WORKERS)
		systemd_check_ready();
	if (flags & SUPERVISOR_NOW) {
		systemd_update_status();
		return;
	}
	if (systemd_status_timer == NULL ||
	    evtimer_pending(systemd_status_timer, NULL))
		return;
	now = util_mono_usec();
	if (now - systemd_status_sent_mono >= SYSTEMD_STATUS_INTERVAL) {
		systemd_update_status();
		return;
	}
	tv = util_timeval(
	    systemd_status_sent_mono + SYSTEMD_STATUS_INTERVAL - now);
	evtimer_add(systemd_status_timer, &tv);
}

/*
 * Starts what runs from the loop: STATUS= updates, and the watchdog's
 * pings at half its interval, if it is on.
 */
void
systemd_init(void)
{
	uint64_t usec;

	systemd_status_timer = evtimer_new(ev_base, systemd_status_timer_cb,
	    NULL);
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return;
	usec /= 2;
	systemd_watchdog_tv = util_timeval(usec);
	systemd_watchdog_ev = evtimer_new(ev_base, systemd_watchdog_cb, NULL);
	evtimer_add(systemd_watchdog_ev, &systemd_watchdog_tv);
	log_debug("watchdog every %llu us", (unsigned long long)usec);
}

/* A reload begins: systemd shows "reloading" until systemd_reloaded(). */
void
systemd_reloading(void)
{
	char msg[64];

	snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
	    util_mono_usec());
	systemd_notify(msg);
}

/* A reload is over, done or refused. */
void
systemd_reloaded(void)
{
	systemd_notify("READY=1");
}

/* Shutting down: systemd shows "deactivating". */
void
systemd_stopping(void)
{
	systemd_notify("STOPPING=1");
}

/* At exit, before the loop goes. */
void
systemd_free(void)
{
	if (systemd_status_timer != NULL)
		event_free(systemd_status_timer);
	systemd_status_timer = NULL;
	if (systemd_watchdog_ev != NULL)
		event_free(systemd_watchdog_ev);
	systemd_watchdog_ev = NULL;
}
