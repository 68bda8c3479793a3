/*
 * The supervisor: one libevent loop that owns the configuration, the pools
 * and the control socket. Signals arrive as events; SIGCHLD reaps in a loop.
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
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

/* systemd's one-line STATUS=: pools, workers, and any degraded pool. */
void
supervisor_update_status(void)
{
	struct pool	*p;
	char		 status[512];
	unsigned int	 npools = 0;
	size_t		 off;

	TAILQ_FOREACH(p, &pools, entry)
		npools++;
	off = (size_t)snprintf(status, sizeof status,
	    "STATUS=%u pools, %u workers", npools, pool_count_live());
	TAILQ_FOREACH(p, &pools, entry) {
		if (!p->degraded || off >= sizeof status)
			continue;
		off += (size_t)snprintf(status + off, sizeof status - off,
		    "; pool %s degraded", p->name);
	}
	systemd_notify(status);
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
	log_info("ready: %u workers running", pool_count_live());
}

/* Once shutting down, exit when the last child has been reaped. */
void
supervisor_check_exit(void)
{
	if (mprocd_shutting_down && pool_count_live() == 0)
		event_base_loopexit(ev_base, NULL);
}

static void
supervisor_shutdown(int sig)
{
	struct pool	*p;

	if (mprocd_shutting_down) {
		log_info("received SIG%s again, still stopping %u workers",
		    sigabbrev_np(sig), pool_count_live());
		return;
	}
	mprocd_shutting_down = 1;
	log_info("received SIG%s, shutting down", sigabbrev_np(sig));
	systemd_notify("STOPPING=1");
	control_shutdown();
	TAILQ_FOREACH(p, &pools, entry)
		pool_stop(p, STOP_SHUTDOWN);
	supervisor_check_exit();
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
		log_notice("received SIGHUP: reloading is not supported yet, "
		    "ignoring");
		break;
	case SIGUSR1:
		if (log_reopen() != 0)
			log_warn("reopening the log file");
		pool_signal_all(SIGUSR1);
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

	TAILQ_FOREACH(pc, &cfg->pools, entry) {
		p = pool_new(pc);
		pool_start(p);
		nworkers += p->cfg.workers;
		npools++;
	}
	log_info("mprocd %s started, pid %d, %u pools, %u workers",
	    PACKAGE_VERSION, (int)getpid(), npools, nworkers);

	event_base_dispatch(ev_base);

	log_info("all workers stopped, exiting");
	control_close();
	while ((p = TAILQ_FIRST(&pools)) != NULL)
		pool_free(p);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		event_free(sig_events[i]);
	event_base_free(ev_base);
	ev_base = NULL;
	return 0;
}
