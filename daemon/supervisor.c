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

struct event_base	*ev_base;
struct config		*cfg;
uint64_t		 mprocd_started_usec;
int			 mprocd_shutting_down;
const char		*mprocd_self;

const char		*mprocd_socket_override;	/* mprocd -s */

static struct event	*sig_events[5];
static int		 listen_activated;	/* the socket is systemd's */
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
 * What bev's socket takes of iov[n] now, if nothing is queued before it:
 * written at once, not a loop pass later after an epoll_ctl, an epoll_wait
 * and another epoll_ctl. Returns the bytes written; the caller queues the
 * rest (an error too: the bufferevent meets it again and reports it).
 */
size_t
bev_write_now(struct bufferevent *bev, const struct iovec *iov, int n)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return 0;
	return util_writev_some(bufferevent_getfd(bev), iov, n);
}

/* Sends iov[n] on bev: what the socket takes at once, the rest queued. */
void
bev_send(struct bufferevent *bev, const struct iovec *iov, int n)
{
	struct evbuffer	*out = bufferevent_get_output(bev);
	size_t		 off = bev_write_now(bev, iov, n);
	int		 i;

	for (i = 0; i < n; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		evbuffer_add(out, (const char *)iov[i].iov_base + off,
		    iov[i].iov_len - off);
		off = 0;
	}
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
	if (mprocd_shutting_down && pool_count_processes() == 0)
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

/* The config file in a reload's reason: what was wrong, all of it. */
static void
reload_errors(const struct config_errors *errs, char *buf, size_t len)
{
	size_t	 i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < errs->n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
		    i > 0 ? "; " : "", errs->v[i]);
}

/* What a reload cannot change in a running mprocd; NULL if none. */
static const char *
reload_refused(struct config *nc, char *buf, size_t len)
{
	const char	*errstr;

	if (strcmp(nc->log_target, cfg->log_target) != 0) {
		snprintf(buf, len, "log_target cannot change on reload (it is "
		    "%s); restart mprocd to use %s", cfg->log_target,
		    nc->log_target);
		return buf;
	}
	if (mprocd_socket_override != NULL) {
		free(nc->socket);
		nc->socket = xstrdup(mprocd_socket_override);
	} else if (nc->socket == NULL &&
	    (nc->socket = config_default_socket(&errstr)) == NULL) {
		snprintf(buf, len, "%s", errstr);
		return buf;
	}
	if (!listen_activated && strcmp(nc->socket, cfg->socket) != 0) {
		snprintf(buf, len, "socket cannot change on reload (it is %s); "
		    "restart mprocd to listen on %s", cfg->socket, nc->socket);
		return buf;
	}
	return NULL;
}

static void
reload_log_change(const struct config_change *ch)
{
	struct log_ctx	 ctx = { ch->pool, NULL, 0 };

	switch (ch->kind) {
	case POOL_ADDED:
		clog_info(&ctx, "pool added" LOG_KV "workers=%u", ch->to);
		break;
	case POOL_REMOVED:
		clog_info(&ctx, "pool removed from the configuration: it takes "
		    "no more jobs and goes once its jobs are done");
		break;
	case POOL_GROWS:
	case POOL_SHRINKS:
		clog_info(&ctx, "pool resized%s" LOG_KV "from=%u" LOG_KV "to=%u",
		    ch->limits ? ", other settings changed" : "", ch->from,
		    ch->to);
		break;
	case POOL_KEPT:
		if (ch->limits)
			clog_info(&ctx, "pool settings changed, for jobs that "
			    "start from now on");
		break;
	}
}

/*
 * Re-reads the configuration file and applies it, or changes nothing and
 * says why in reason. Pools grow, shrink, appear and go as the file says;
 * no job is dropped, retried or restarted.
 */
int
supervisor_reload(char *reason, size_t len)
{
	struct config_errors	 errs = { NULL, 0 };
	struct config_change	*ch;
	struct config		*nc;
	struct pool_config	*pc;
	struct pool		*p;
	char			 msg[64];
	size_t			 i, n;
	unsigned int		 nworkers = 0, npools = 0;
	int			 rc = -1;

	if (mprocd_shutting_down) {
		snprintf(reason, len, "mprocd is shutting down");
		return -1;
	}
	snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
	    util_mono_usec());
	systemd_notify(msg);

	if ((nc = config_load(cfg->path, &errs)) == NULL)
		reload_errors(&errs, reason, len);
	else if (reload_refused(nc, reason, len) == NULL)
		rc = 0;
	config_errors_free(&errs);
	if (rc != 0) {
		config_free(nc);
		log_warnx("reload failed, nothing changed" LOG_KV "reason=%s",
		    reason);
		systemd_notify("READY=1");
		return -1;
	}

	/* Valid: apply it all. Pools first, then the settings of mprocd. */
	n = config_diff(cfg, nc, &ch);
	for (i = 0; i < n; i++) {
		reload_log_change(&ch[i]);
		p = pool_find(ch[i].pool);
		switch (ch[i].kind) {
		case POOL_REMOVED:
			if (p != NULL)
				pool_remove(p);
			break;
		default:
			pc = config_find_pool(nc, ch[i].pool);
			if (p == NULL) {
				p = pool_new(pc);
				pool_start(p);
			} else
				pool_apply(p, pc);
			break;
		}
	}
	TAILQ_FOREACH(pc, &nc->pools, entry) {
		nworkers += pc->workers;
		npools++;
	}
	if (!listen_activated && nc->socket_mode != cfg->socket_mode &&
	    chmod(cfg->socket, nc->socket_mode) != 0)
		log_warn("socket_mode: chmod %s", cfg->socket);
	if (nc->log_level != cfg->log_level) {
		log_setlevel(nc->log_level);
		pool_set_log_level(nc->log_level);
	}
	log_notice("configuration reloaded" LOG_KV "pools=%u" LOG_KV
	    "workers=%u" LOG_KV "path=%s", npools, nworkers, nc->path);
	free(ch);
	config_free(cfg);
	cfg = nc;
	supervisor_status_changed();
	systemd_notify("READY=1");
	return 0;
}

/* SIGHUP (systemctl reload). */
static void
supervisor_sighup(void)
{
	char	 reason[1024];

	log_notice("reload requested by SIGHUP");
	supervisor_reload(reason, sizeof reason);
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

	listen_activated = fd != -1;
	if (control_init(cfg->socket, cfg->socket_mode, fd) != 0) {
		config_free(cfg);
		cfg = NULL;
		return 1;
	}
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

	spawn_kill_orphans();
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
	config_free(cfg);
	cfg = NULL;
	return 0;
}
