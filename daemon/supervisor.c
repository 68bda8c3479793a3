/*
 * The supervisor: one libevent loop that owns the configuration, the pools
 * and the control socket. Signals arrive as events; SIGCHLD reaps in a loop.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocd.h"
#include "util.h"
#include "xmalloc.h"

struct event_base	*ev_base;
struct config		*cfg;
uint64_t		 mprocd_started_usec;
int			 mprocd_shutting_down;
const char		*mprocd_self;

static struct event	*sig_events[5];
static struct event	*shutdown_timer;
static int		 ready_sent;

static void
supervisor_reap(void)
{
	pid_t	 pid;
	int	 status;

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

/* At most one STATUS= update a second, however busy the pools are. */
#define STATUS_INTERVAL		USEC_PER_SEC

static struct event	*status_timer;
static char		 status_sent[512];
static uint64_t		 status_sent_mono;

/*
 * systemd's one-line STATUS=: pools, workers, jobs, and any degraded pool.
 * Sent now if it changed.
 */
void
supervisor_update_status(void)
{
	struct pool	*p;
	char		 status[sizeof status_sent];
	unsigned int	 npools = 0;
	size_t		 off;

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
	if (strcmp(status, status_sent) == 0)
		return;
	systemd_notify(status);
	memcpy(status_sent, status, sizeof status_sent);
	status_sent_mono = util_mono_usec();
}

static void
supervisor_status_timer(evutil_socket_t fd, short events, void *arg)
{
	supervisor_update_status();
}

/*
 * Something STATUS= counts has changed: update it now, or, if it was sent
 * less than STATUS_INTERVAL ago, once that has passed.
 */
void
supervisor_status_changed(void)
{
	struct timeval	 tv;
	uint64_t	 now;

	if (status_timer == NULL || evtimer_pending(status_timer, NULL))
		return;
	now = util_mono_usec();
	if (now - status_sent_mono >= STATUS_INTERVAL) {
		supervisor_update_status();
		return;
	}
	tv = util_timeval(status_sent_mono + STATUS_INTERVAL - now);
	evtimer_add(status_timer, &tv);
}

/* READY=1 once no worker of the first start is still starting. */
void
supervisor_check_ready(void)
{
	if (ready_sent || mprocd_shutting_down || pool_count_starting() != 0)
		return;
	ready_sent = 1;
	supervisor_update_status();
	systemd_notify("READY=1");
	log_info("ready" LOG_KV "workers=%u", pool_count_live());
}

/* Once shutting down, exit when the last child has been reaped. */
void
supervisor_check_exit(void)
{
	if (mprocd_shutting_down && pool_count_live() == 0)
		event_base_loopexit(ev_base, NULL);
}

/* shutdown_timeout has passed: running jobs are killed. */
static void
supervisor_shutdown_timeout(evutil_socket_t fd, short events, void *arg)
{
	char	 t[UTIL_FMTLEN];

	if (pool_count_busy() > 0)
		log_notice("jobs still running after shutdown_timeout, "
		    "killing them" LOG_KV "jobs=%u" LOG_KV
		    "shutdown_timeout=%s", pool_count_busy(),
		    util_format_duration(cfg->shutdown_timeout, t, sizeof t));
	pool_kill_running(JOB_KILL_SHUTDOWN);
}

/*
 * Stop taking jobs, cancel the queued ones, let the running ones finish
 * within shutdown_timeout, stop the workers; exit once all are reaped.
 * A second signal kills the running jobs at once.
 */
static void
supervisor_shutdown(int sig)
{
	struct pool	*p;
	struct job	*j;
	struct timeval	 tv;
	char		 t[UTIL_FMTLEN];

	if (mprocd_shutting_down) {
		log_info("received SIG%s again: killing running jobs now"
		    LOG_KV "workers=%u" LOG_KV "jobs=%u", sigabbrev_np(sig),
		    pool_count_live(), pool_count_busy());
		pool_kill_running(JOB_KILL_SHUTDOWN);
		return;
	}
	mprocd_shutting_down = 1;
	log_info("received SIG%s, shutting down", sigabbrev_np(sig));
	systemd_notify("STOPPING=1");
	control_shutdown();
	TAILQ_FOREACH(p, &pools, entry) {
		while ((j = TAILQ_FIRST(&p->queue)) != NULL)
			job_kill(j, JOB_KILL_SHUTDOWN);
		pool_stop(p, STOP_SHUTDOWN);
	}
	if (pool_count_busy() > 0) {
		log_info("waiting up to shutdown_timeout for running jobs"
		    LOG_KV "jobs=%u" LOG_KV "shutdown_timeout=%s",
		    pool_count_busy(), util_format_duration(
		    cfg->shutdown_timeout, t, sizeof t));
		tv = util_timeval(cfg->shutdown_timeout);
		shutdown_timer = evtimer_new(ev_base,
		    supervisor_shutdown_timeout, NULL);
		evtimer_add(shutdown_timer, &tv);
	}
	supervisor_check_exit();
}

/*
 * SIGHUP (systemctl reload): systemd is told the reload begins and, once it
 * has ended, that mprocd is ready again.
 */
static void
supervisor_reload(void)
{
	char	 msg[64];

	if (mprocd_shutting_down)
		return;
	snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
	    util_mono_usec());
	systemd_notify(msg);
	log_notice("received SIGHUP: reloading is not supported yet, the "
	    "configuration is unchanged; restart mprocd to apply changes");
	systemd_notify("READY=1");
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
		supervisor_reload();
		break;
	case SIGUSR1:
		log_request_reopen();
		if (log_reopen_if_requested() == 0)
			log_debug("received SIGUSR1: log reopened");
		pool_reopen_logs();
		break;
	}
}

/*
 * Processes that escaped their job (setsid and double fork) were
 * reparented to us, the subreaper. Leaving, we kill and reap them, and
 * whatever they in turn leave to us, so nothing outlives mprocd.
 */
static void
supervisor_kill_orphans(void)
{
	DIR		*d;
	struct dirent	*de;
	FILE		*f;
	char		 path[64], buf[512], *p;
	pid_t		 self = getpid(), pid;
	long		 ppid;
	char		 state;
	int		 round;

	/* Killing one may hand us its children: a few rounds, 1s at most. */
	for (round = 0; round < 100; round++) {
		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0 ||
		    (pid == -1 && errno == EINTR))
			;
		if (pid == -1)
			return;		/* ECHILD: none left */
		if (round > 0)
			usleep(10000);
		if ((d = opendir("/proc")) == NULL)
			return;
		while ((de = readdir(d)) != NULL) {
			pid = (pid_t)strtol(de->d_name, &p, 10);
			if (*p != '\0' || pid <= 0)
				continue;
			snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
			if ((f = fopen(path, "re")) == NULL)
				continue;
			p = fgets(buf, sizeof buf, f);
			fclose(f);
			/* "pid (comm) state ppid ...": comm may hold spaces. */
			if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
			    sscanf(p + 1, " %c %ld", &state, &ppid) != 2 ||
			    ppid != (long)self || state == 'Z')
				continue;
			log_info("killing a process left behind by a job"
			    LOG_KV "orphan_pid=%d", (int)pid);
			kill(pid, SIGKILL);
		}
		closedir(d);
	}
}

/*
 * Runs until shut down; returns the exit status. Listens on fd if systemd
 * passed one, else on the configured socket.
 */
int
supervisor_main(struct config *c, int fd)
{
	static const int	 sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP,
				    SIGUSR1 };
	struct event_config	*evcfg;
	struct pool_config	*pc;
	struct pool		*p;
	size_t			 i;
	unsigned int		 nworkers = 0, npools = 0;

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
		sig_events[i] = evsignal_new(ev_base, sigs[i],
		    supervisor_signal, NULL);
		evsignal_add(sig_events[i], NULL);
	}

	if (control_init(cfg->socket, cfg->socket_mode, fd) != 0)
		return 1;
	systemd_init();
	status_timer = evtimer_new(ev_base, supervisor_status_timer, NULL);

	TAILQ_FOREACH(pc, &cfg->pools, entry) {
		p = pool_new(pc);
		pool_start(p);
		nworkers += p->cfg.workers;
		npools++;
	}
	log_info("mprocd started" LOG_KV "version=%s" LOG_KV "supervisor_pid=%d"
	    LOG_KV "pools=%u" LOG_KV "workers=%u", PACKAGE_VERSION,
	    (int)getpid(), npools, nworkers);

	event_base_dispatch(ev_base);

	supervisor_kill_orphans();
	log_info("all workers stopped, exiting");
	control_close();
	if (shutdown_timer != NULL)
		event_free(shutdown_timer);
	event_free(status_timer);
	status_timer = NULL;
	while ((p = TAILQ_FIRST(&pools)) != NULL)
		pool_free(p);
	job_free_all();
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		event_free(sig_events[i]);
	event_base_free(ev_base);
	ev_base = NULL;
	return 0;
}
