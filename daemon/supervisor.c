/*
 * The supervisor: one libevent loop that owns the configuration, the pools
 * and the control socket. Signals arrive as events; SIGCHLD reaps in a loop.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "mprocd.h"
#include "util.h"
#include "xmalloc.h"

struct event_base *ev_base;
struct config	  *cfg;
uint64_t	   mprocd_started_usec;
int		   mprocd_shutting_down;
const char	  *mprocd_self;

const char *mprocd_socket_override; /* mprocd -s */

#define SUPERVISOR_NSIGS 5
static struct event *supervisor_sig_events[SUPERVISOR_NSIGS];
static struct event *supervisor_shutdown_timer;
static struct event *supervisor_changed_ev;
static int	     supervisor_changes; /* SUPERVISOR_NOW */

static void
supervisor_reap(void)
{
	pid_t pid;
	int   status;

	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid == 0)
			break;
		if (pid == -1) {
			if (errno == EINTR)
				continue;
			if (errno != ECHILD)
				log_warn("waitpid");
			break;
		}
		if (!pool_child_exited(pid, status))
			log_debug("reaped unknown child %d", (int)pid);
	}
	supervisor_check_exit();
}

/*
 * Something a pool or a job did changes what mprocd reports: STATUS=, and
 * READY=1 once the pools are up. Handled once per pass of the loop, after
 * everything that pass does, so a burst of changes costs one look.
 */
void
supervisor_changed(int flags)
{
	supervisor_changes |= flags;
	if (supervisor_changed_ev != NULL &&
	    !event_pending(supervisor_changed_ev, EV_TIMEOUT, NULL))
		event_active(supervisor_changed_ev, EV_TIMEOUT, 0);
}

static void
supervisor_changed_cb(evutil_socket_t fd, short events, void *arg)
{
	struct pool *p, *next;
	int	     flags = supervisor_changes;

	supervisor_changes = 0;
	/* Its last jobs ended waiting, never run: no worker will trim it. */
	if (flags & SUPERVISOR_TRIM)
		TAILQ_FOREACH_SAFE(p, &pools, entry, next)
			if (p->removed)
				pool_trim(p);
	if (flags & SUPERVISOR_DISPATCH)
		TAILQ_FOREACH(p, &pools, entry)
			pool_dispatch(p);
	systemd_changed(flags);
}

/* Once shutting down, exit when the last child has been reaped. */
void
supervisor_check_exit(void)
{
	if (mprocd_shutting_down && pool_count_processes() == 0)
		event_base_loopexit(ev_base, NULL);
}

/* shutdown_timeout has passed: running jobs are killed. */
static void
supervisor_shutdown_timeout(evutil_socket_t fd, short events, void *arg)
{
	char t[UTIL_FMTLEN];

	if (pool_count_busy() > 0)
		log_notice("jobs still running after shutdown_timeout, "
			   "killing them" LOG_KV "jobs=%u" LOG_KV
			   "shutdown_timeout=%s",
		    pool_count_busy(),
		    util_format_duration(cfg->shutdown_timeout, t, sizeof t));
	pool_kill_running(JOB_KILL_SHUTDOWN);
}

/*
 * Stop taking jobs, cancel the queued ones (with a state database they
 * stay, for the next start), let the running ones finish within
 * shutdown_timeout, stop the workers; exit once all are reaped. A second
 * signal kills the running jobs at once.
 */
static void
supervisor_shutdown(int sig)
{
	struct pool   *p;
	struct timeval tv;
	char	       t[UTIL_FMTLEN];

	if (mprocd_shutting_down) {
		log_info("received SIG%s again: killing running jobs now" LOG_KV
			 "workers=%u" LOG_KV "jobs=%u",
		    sigabbrev_np(sig), pool_count_live(), pool_count_busy());
		pool_kill_running(JOB_KILL_SHUTDOWN);
		return;
	}
	mprocd_shutting_down = 1;
	log_info("received SIG%s, shutting down", sigabbrev_np(sig));
	systemd_stopping();
	control_shutdown();
	if (!store_is_open())
		job_wait_cancel_all();
	TAILQ_FOREACH(p, &pools, entry) {
		if (!store_is_open())
			pool_cancel_queued(p);
		pool_stop(p, STOP_SHUTDOWN);
	}
	if (pool_count_busy() > 0) {
		log_info(
		    "waiting up to shutdown_timeout for running jobs" LOG_KV
		    "jobs=%u" LOG_KV "shutdown_timeout=%s",
		    pool_count_busy(),
		    util_format_duration(cfg->shutdown_timeout, t, sizeof t));
		tv = util_timeval(cfg->shutdown_timeout);
		supervisor_shutdown_timer = evtimer_new(ev_base,
		    supervisor_shutdown_timeout, NULL);
		evtimer_add(supervisor_shutdown_timer, &tv);
	}
	supervisor_check_exit();
}

/* SIGHUP (systemctl reload). */
static void
supervisor_sighup(void)
{
	char reason[1024];

	log_notice("reload requested by SIGHUP");
	reload_run(reason, sizeof reason);
}

static void
supervisor_signal(evutil_socket_t sig, short events, void *arg)
{
	switch (sig) {
	case SIGCHLD:
		supervisor_reap();
		break;
	case SIGTERM:
	case SIGINT:
		supervisor_shutdown((int)sig);
		break;
	case SIGHUP:
		supervisor_sighup();
		break;
	case SIGUSR1:
		if (log_reopen() == 0)
			log_debug("received SIGUSR1: log reopened");
		pool_reopen_logs();
		break;
	}
}

/*
 * Opens the state database cfg names, if any: mprocd stops at start on
 * one it cannot use, rather than start empty over it.
 */
static int
supervisor_open_store(void)
{
	const char *errstr;
	char	   *path, *why;

	if ((path = config_state_path(cfg, &errstr)) == NULL) {
		if (errstr == NULL)
			return 0;
		log_warnx("%s", errstr);
		return -1;
	}
	if (store_open(path, cfg->durability_power, &why) != 0) {
		log_warnx("cannot use the state database, not starting: %s; "
			  "move it away to start afresh, or set state = none",
		    why);
		free(why);
		free(path);
		return -1;
	}
	job_set_next_id(store_first_id());
	log_info("state database opened" LOG_KV "path=%s" LOG_KV
		 "durability=%s",
	    path, cfg->durability_power ? "power" : "crash");
	free(path);
	return 0;
}

/* The jobs the state database had not finished, back in their pools. */
static int
supervisor_load_jobs(void)
{
	char *why;
	int   n;

	if (!store_is_open())
		return 0;
	if ((n = store_load(job_store_load, &why)) < 0) {
		log_warnx("cannot read the state database, not starting: %s",
		    why);
		free(why);
		return -1;
	}
	job_store_loaded();
	if (n > 0)
		log_info("jobs back from the state database" LOG_KV
			 "jobs=%d" LOG_KV "queued=%" PRIu64,
		    n, pool_count_queued());
	return 0;
}

/* Everything supervisor_main() made, at its end. */
static void
supervisor_free(void)
{
	struct pool *p;
	size_t	     i;

	control_close();
	if (supervisor_shutdown_timer != NULL)
		event_free(supervisor_shutdown_timer);
	systemd_free();
	event_free(supervisor_changed_ev);
	supervisor_changed_ev = NULL;
	while ((p = TAILQ_FIRST(&pools)) != NULL)
		pool_free(p);
	lock_free_all();
	job_free_all();
	store_close();
	for (i = 0; i < SUPERVISOR_NSIGS; i++)
		event_free(supervisor_sig_events[i]);
	event_base_free(ev_base);
	ev_base = NULL;
	config_free(cfg);
	cfg = NULL;
}

/*
 * Runs until shut down; returns the exit status. Listens on fd if systemd
 * passed one, else on the configured socket.
 */
int
supervisor_main(struct config *c, int fd)
{
	static const int sigs[SUPERVISOR_NSIGS] = { SIGCHLD, SIGTERM, SIGINT,
		SIGHUP, SIGUSR1 };
	struct event_config *evcfg;
	struct pool_config  *pc;
	struct pool	    *p;
	size_t		     i;
	unsigned int	     nworkers = 0, npools = 0;

	cfg = c;
	mprocd_started_usec = util_now_usec();
	log_procinit("supervisor");
	proctitle_set("mprocd: supervisor");
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Whatever a job leaves behind is reparented to us, not to init: we
	 * reap it, and a dead worker's job stays a group we can kill.
	 */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		log_warn("PR_SET_CHILD_SUBREAPER, ignoring");

	/* Precise timers: backoffs are measured in milliseconds. */
	if ((evcfg = event_config_new()) == NULL)
		fatalx("event_config_new failed");
	event_config_set_flag(evcfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	if ((ev_base = event_base_new_with_config(evcfg)) == NULL)
		fatalx("event_base_new failed");
	event_config_free(evcfg);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		supervisor_sig_events[i] = evsignal_new(ev_base, sigs[i],
		    supervisor_signal, NULL);
		evsignal_add(supervisor_sig_events[i], NULL);
	}

	if (supervisor_open_store() != 0 ||
	    control_init(cfg->socket, cfg->socket_mode, fd) != 0) {
		store_close();
		config_free(cfg);
		cfg = NULL;
		return 1;
	}
	systemd_init();
	supervisor_changed_ev = event_new(ev_base, -1, 0, supervisor_changed_cb,
	    NULL);

	TAILQ_FOREACH(pc, &cfg->pools, entry) {
		pool_new(pc);
		nworkers += pc->workers;
		npools++;
	}
	if (supervisor_load_jobs() != 0) {
		supervisor_free();
		return 1;
	}
	TAILQ_FOREACH(p, &pools, entry)
		pool_start(p);
	log_info("mprocd started" LOG_KV "version=%s" LOG_KV
		 "supervisor_pid=%d" LOG_KV "pools=%u" LOG_KV "workers=%u",
	    PACKAGE_VERSION, (int)getpid(), npools, nworkers);

	event_base_dispatch(ev_base);

	spawn_kill_orphans();
	log_info("all workers stopped, exiting");
	/* The last changes stored, their replies go before the sockets. */
	store_flush();
	supervisor_free();
	return 0;
}
