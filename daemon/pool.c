/*
 * Pools and their workers, as the supervisor sees them: one worker per slot,
 * an explicit state machine, restarts throttled by a per-slot backoff that
 * doubles, and a per-pool tally of recent deaths that marks it degraded.
 *
 *   (spawn) -> starting --HELLO--> idle <--> busy
 *   any live state --death--> backoff --delay--> (spawn)
 *   any live state --stop--> stopping --death--> gone, or (spawn) if recycled
 *
 * Most of a restart is the exec of a new worker, so a pool also keeps
 * spare_workers spares: workers started ahead, in no slot. A spare goes
 * through the same states (idle: ready to be given a slot), and its deaths
 * are counted and backed off by the same rules, in a position of its own.
 * Where a slot would (spawn), it takes a ready spare if there is one: the
 * process moves to the slot, which is starting until the worker, told its
 * slot by ASSIGN, says HELLO again under its new name; the spare's
 * position starts another once no slot of the pool is starting, so that
 * its exec slows no start. With no spare ready, the slot spawns.
 */
#include "config.h"

#include <sys/param.h>

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "mprocd.h"
#include "proto.h"
#include "util.h"
#include "xmalloc.h"

/* Seconds a new worker has to say HELLO before it is killed. */
#define WORKER_START_TIMEOUT	30

static const struct timeval start_timeout = { WORKER_START_TIMEOUT, 0 };

struct pools pools = TAILQ_HEAD_INITIALIZER(pools);

static void	worker_spawn(struct worker *);
static void	worker_restart(struct worker *);
static void	worker_free(struct worker *);
static void	worker_crashed(struct worker *, const char *, uint64_t);
static void	worker_reopen_log(struct worker *);
static void	worker_stop(struct worker *, enum worker_stop);
static void	worker_read_cb(struct bufferevent *, void *);

const char *
pool_worker_state_name(enum worker_state state)
{
	switch (state) {
	case WORKER_STARTING:
		return "starting";
	case WORKER_IDLE:
		return "idle";
	case WORKER_BUSY:
		return "busy";
	case WORKER_BACKOFF:
		return "backoff";
	case WORKER_STOPPING:
		return "stopping";
	}
	return "unknown";
}

/* "exited with status 1", "killed by signal 9 (SIGKILL)". */
void
pool_status_fields(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, LOG_KV "status=%d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, LOG_KV "signal=%d%s", WTERMSIG(status),
		    WCOREDUMP(status) ? LOG_KV "core_dumped=yes" : "");
	else
		snprintf(buf, len, LOG_KV "wait_status=0x%x", status);
}

static struct log_ctx
worker_ctx(const struct worker *w)
{
	struct log_ctx	 ctx = { w->pool->name, w->name,
			    w->job != NULL ? w->job->id : 0 };

	return ctx;
}

/* The next backoff after one more consecutive death: double, capped. */
uint64_t
pool_backoff_next(uint64_t delay, uint64_t max)
{
	if (delay == 0)
		return 0;
	if (delay > max / 2)
		return max;
	return delay * 2;
}

/* Deaths in the window (now - crash_interval, now]. */
static uint64_t
pool_recent_deaths(const struct pool *p, uint64_t now, uint64_t *oldest)
{
	uint64_t	 cap = p->cfg.crash_limit + 1, i, n = 0, d;

	*oldest = UINT64_MAX;
	for (i = 0; i < cap && i < p->ndeaths; i++) {
		d = p->deaths[i];
		if (now - d < p->cfg.crash_interval) {
			n++;
			if (d < *oldest)
				*oldest = d;
		}
	}
	return n;
}

static void
pool_set_degraded(struct pool *p, int degraded, uint64_t ndeaths)
{
	struct log_ctx	 ctx = { p->name, NULL, 0 };
	char		 iv[UTIL_FMTLEN], max[UTIL_FMTLEN];

	if (degraded == p->degraded)
		return;
	p->degraded = degraded;
	if (degraded)
		clog_warnx(&ctx, "pool degraded: more worker deaths than "
		    "crash_limit within crash_interval; restarting each at "
		    "restart_delay_max" LOG_KV "deaths=%" PRIu64 LOG_KV
		    "crash_limit=%" PRIu64 LOG_KV "crash_interval=%s" LOG_KV
		    "restart_delay_max=%s", ndeaths, p->cfg.crash_limit,
		    util_format_duration(p->cfg.crash_interval, iv, sizeof iv),
		    util_format_duration(p->cfg.restart_delay_max, max,
		    sizeof max));
	else
		clog_notice(&ctx, "pool recovered" LOG_KV "crash_limit=%" PRIu64
		    LOG_KV "crash_interval=%s", p->cfg.crash_limit,
		    util_format_duration(p->cfg.crash_interval, iv, sizeof iv));
	supervisor_update_status();
}

/*
 * Re-evaluates the tally at monotonic time now; while degraded, checks
 * again when the oldest recent death leaves the window.
 */
static void
pool_check_degraded(struct pool *p, uint64_t now)
{
	uint64_t	 oldest, n, left;
	struct timeval	 tv;

	n = pool_recent_deaths(p, now, &oldest);
	pool_set_degraded(p, n > p->cfg.crash_limit, n);
	if (!p->degraded || p->timer == NULL)
		return;
	left = oldest + p->cfg.crash_interval - now + 1;
	tv = util_timeval(left);
	evtimer_add(p->timer, &tv);
}

static void
pool_degraded_timer(evutil_socket_t fd, short events, void *arg)
{
	pool_check_degraded(arg, util_mono_usec());
}

/*
 * Counts one worker death at monotonic time now. Returns whether the pool
 * is degraded: more than crash_limit deaths within crash_interval.
 */
int
pool_record_death(struct pool *p, uint64_t now)
{
	uint64_t	 cap = p->cfg.crash_limit + 1;

	p->deaths[p->ndeaths % cap] = now;
	p->ndeaths++;
	pool_check_degraded(p, now);
	return p->degraded;
}

struct pool *
pool_new(const struct pool_config *pc)
{
	struct pool	*p = xcalloc(1, sizeof *p);

	p->name = xstrdup(pc->name);
	p->cfg = *pc;
	p->cfg.name = p->name;
	TAILQ_INIT(&p->workers);
	TAILQ_INIT(&p->spares);
	TAILQ_INIT(&p->queue);
	p->deaths = xcalloc(p->cfg.crash_limit + 1, sizeof *p->deaths);
	if (ev_base != NULL)
		p->timer = evtimer_new(ev_base, pool_degraded_timer, p);
	TAILQ_INSERT_TAIL(&pools, p, entry);
	return p;
}

void
pool_free(struct pool *p)
{
	struct worker	*w;

	if (p == NULL)
		return;
	while ((w = TAILQ_FIRST(&p->workers)) != NULL)
		worker_free(w);
	while ((w = TAILQ_FIRST(&p->spares)) != NULL)
		worker_free(w);
	TAILQ_REMOVE(&pools, p, entry);
	if (p->timer != NULL)
		event_free(p->timer);
	free(p->deaths);
	free(p->name);
	free(p);
}

struct pool *
pool_find(const char *name)
{
	struct pool	*p;

	TAILQ_FOREACH(p, &pools, entry)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static void
worker_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct worker	*w = arg;
	struct log_ctx	 ctx = worker_ctx(w);
	char		 grace[UTIL_FMTLEN];

	switch (w->state) {
	case WORKER_BACKOFF:
		worker_restart(w);
		break;
	case WORKER_STARTING:
		clog_warnx(&ctx, "worker did not start in time, killing it"
		    LOG_KV "worker_pid=%d" LOG_KV "timeout=%ds", (int)w->pid,
		    WORKER_START_TIMEOUT);
		kill(w->pid, SIGKILL);
		break;
	case WORKER_STOPPING:
		if (w->pid > 0) {
			clog_warnx(&ctx, "worker still running after "
			    "SIGTERM, sending SIGKILL" LOG_KV "worker_pid=%d"
			    LOG_KV "kill_grace=%s", (int)w->pid,
			    util_format_duration(w->pool->cfg.kill_grace,
			    grace, sizeof grace));
			kill(w->pid, SIGKILL);
		}
		break;
	default:
		break;
	}
}

static struct worker *
worker_alloc(struct pool *p)
{
	struct worker	*w = xcalloc(1, sizeof *w);

	w->pool = p;
	w->state = WORKER_BACKOFF;
	w->delay = p->cfg.restart_delay;
	if (ev_base != NULL)
		w->timer = evtimer_new(ev_base, worker_timer_cb, w);
	return w;
}

/* A worker for slot, not yet started (state backoff, no process). */
struct worker *
pool_worker_new(struct pool *p, unsigned int slot)
{
	struct worker	*w = worker_alloc(p);

	w->slot = slot;
	snprintf(w->name, sizeof w->name, "%s/%u", p->name, slot);
	TAILQ_INSERT_TAIL(&p->workers, w, entry);
	return w;
}

/* A spare's position, not yet started. */
static struct worker *
pool_spare_new(struct pool *p)
{
	struct worker	*w = worker_alloc(p);

	w->spare = 1;
	snprintf(w->name, sizeof w->name, "%s/spare", p->name);
	TAILQ_INSERT_TAIL(&p->spares, w, entry);
	return w;
}

/*
 * The pool's workers, those of slots and then the spares; w NULL for the
 * first. (Not for a loop that frees them.)
 */
static struct worker *
pool_next_worker(struct pool *p, struct worker *w)
{
	struct worker	*n;

	n = w == NULL ? TAILQ_FIRST(&p->workers) : TAILQ_NEXT(w, entry);
	if (n == NULL && (w == NULL || !w->spare))
		n = TAILQ_FIRST(&p->spares);
	return n;
}

#define POOL_FOREACH_WORKER(w, p)					\
	for ((w) = pool_next_worker((p), NULL); (w) != NULL;		\
	    (w) = pool_next_worker((p), (w)))

/* "worker" or "spare", for the log. */
static const char *
worker_kind(const struct worker *w)
{
	return w->spare ? "spare" : "worker";
}

/* Unlinks and frees a worker that has no process left. */
static void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	if (w->spare)
		TAILQ_REMOVE(&w->pool->spares, w, entry);
	else
		TAILQ_REMOVE(&w->pool->workers, w, entry);
	if (w->bev != NULL)
		bufferevent_free(w->bev);
	if (w->timer != NULL)
		event_free(w->timer);
	free(w);
}

static void
worker_send(struct worker *w, uint32_t type, const struct proto_buf *b)
{
	uint8_t		 hdr[PROTO_HDRLEN];
	struct iovec	 iov[2] = { { hdr, sizeof hdr }, { b->data, b->len } };

	if (w->bev == NULL)
		return;
	proto_hdr_pack(hdr, type, (uint32_t)b->len);
	bev_send(w->bev, iov, 2);
}

/* Hands a job to an idle worker. */
static void
worker_run(struct worker *w, struct job *j)
{
	struct proto_buf b;
	uint32_t	 n;
	char		**p;

	proto_buf_init(&b);
	proto_put_u64(&b, (uint64_t)j->id);
	proto_put_u64(&b, w->pool->cfg.max_output);
	proto_put_str(&b, j->cwd);
	for (n = 0; j->argv[n] != NULL; n++)
		;
	proto_put_u32(&b, n);
	for (p = j->argv; *p != NULL; p++)
		proto_put_str(&b, *p);
	for (n = 0; j->env != NULL && j->env[n] != NULL; n++)
		;
	proto_put_u32(&b, n);
	for (p = j->env; p != NULL && *p != NULL; p++)
		proto_put_str(&b, *p);
	proto_put_u32(&b, j->stdin_data != NULL);
	proto_put_bytes(&b, j->stdin_data != NULL ? j->stdin_data : b.data,
	    j->stdin_len);
	worker_send(w, PROTO_JOB_START, &b);
	proto_buf_free(&b);

	w->state = WORKER_BUSY;
	w->job = j;
	job_started(j, w);
}

/* Sends sig to the process group of the job w runs. */
void
pool_job_signal(struct worker *w, struct job *j, int sig)
{
	struct proto_buf b;

	if (w == NULL)
		return;
	proto_buf_init(&b);
	proto_put_u64(&b, (uint64_t)j->id);
	proto_put_u32(&b, (uint32_t)sig);
	worker_send(w, PROTO_JOB_SIGNAL, &b);
	proto_buf_free(&b);
}

/* Queues a job at the back (or, for a retry, the front) of its pool. */
int
pool_enqueue(struct pool *p, struct job *j, int front)
{
	j->state = JOB_QUEUED;
	if (front)
		TAILQ_INSERT_HEAD(&p->queue, j, entry);
	else
		TAILQ_INSERT_TAIL(&p->queue, j, entry);
	p->nqueued++;
	supervisor_status_changed();
	return 0;
}

/* Gives queued jobs to idle workers, oldest job first. */
void
pool_dispatch(struct pool *p)
{
	struct worker	*w;
	struct job	*j;

	if (mprocd_shutting_down)
		return;
	TAILQ_FOREACH(w, &p->workers, entry) {
		if ((j = TAILQ_FIRST(&p->queue)) == NULL)
			break;
		/* One whose channel is gone is dying: SIGCHLD will tell. */
		if (w->state != WORKER_IDLE || w->stop != STOP_NONE ||
		    w->reaped || w->bev == NULL)
			continue;
		job_dequeue(j);
		worker_run(w, j);
	}
}

/* The worker is done with its job: take the next, or stop as asked. */
static void
worker_job_done(struct worker *w)
{
	uint64_t	 max = w->pool->cfg.max_jobs_per_worker;

	w->job = NULL;
	w->jobs_done++;
	if (w->reaped)
		return;
	w->state = WORKER_IDLE;
	if (w->stop != STOP_NONE)
		worker_stop(w, w->stop);
	else if (max != 0 && w->jobs_done >= max)
		worker_stop(w, STOP_RECYCLE);
	else {
		pool_dispatch(w->pool);
		if (w->pool->removed)
			pool_trim(w->pool);
	}
}

/* Kills every running job for why (shutdown_timeout passed, or forced). */
void
pool_kill_running(enum job_kill why)
{
	struct pool	*p;
	struct worker	*w;

	TAILQ_FOREACH(p, &pools, entry)
		TAILQ_FOREACH(w, &p->workers, entry)
			if (w->job != NULL)
				job_kill(w->job, why);
}

uint64_t
pool_count_queued(void)
{
	struct pool	*p;
	uint64_t	 n = 0;

	TAILQ_FOREACH(p, &pools, entry)
		n += p->nqueued;
	return n;
}

static void
worker_close(struct worker *w)
{
	if (w->bev != NULL) {
		bufferevent_free(w->bev);
		w->bev = NULL;
	}
}

/* A frame from a worker. Anything unexpected ends that worker. */
static int
worker_dispatch(struct worker *w, const struct proto_hdr *h,
    const uint8_t *payload)
{
	struct proto_reader	 r;
	struct log_ctx		 ctx = worker_ctx(w);
	struct job		*j = w->job;
	const void		*data;
	uint64_t		 id;
	uint32_t		 version, pid, stream, status, flags;
	size_t			 n;

	proto_reader_init(&r, payload, h->len);
	switch (h->type) {
	case PROTO_JOB_STARTED:
		id = proto_get_u64(&r);
		pid = proto_get_u32(&r);
		/*
		 * Its process group gets kill(-pid): never 0 (ours), 1 (-1 is
		 * every process), a negative pid_t, or a second pid.
		 */
		if (r.error || j == NULL || (int64_t)id != j->id ||
		    pid <= 1 || pid > INT32_MAX || j->pid != 0)
			break;
		j->pid = (pid_t)pid;
		return 0;
	case PROTO_JOB_OUTPUT:
		id = proto_get_u64(&r);
		stream = proto_get_u32(&r);
		data = proto_get_bytes(&r, &n);
		if (r.error || j == NULL || (int64_t)id != j->id ||
		    (stream != 1 && stream != 2))
			break;
		job_output_add(j, (int)stream - 1, data, n,
		    w->pool->cfg.max_output);
		return 0;
	case PROTO_JOB_DONE:
		id = proto_get_u64(&r);
		status = proto_get_u32(&r);
		flags = proto_get_u32(&r);
		if (r.error || j == NULL || (int64_t)id != j->id)
			break;
		/*
		 * The worker's next job goes out first: the end of this one
		 * (its log record, its watchers' replies) need not keep the
		 * worker waiting.
		 */
		worker_job_done(w);
		job_done(j, (int)status, flags & PROTO_DONE_TRUNCATED);
		return 0;
	case PROTO_HELLO:
		version = proto_get_u32(&r);
		pid = proto_get_u32(&r);
		if (r.error || (pid_t)pid != w->pid)
			break;
		if (version != PROTO_VERSION) {
			clog_warnx(&ctx, "worker speaks protocol %u, not %u "
			    "(was mprocd upgraded while running?)", version,
			    PROTO_VERSION);
			return -1;
		}
		if (w->state != WORKER_STARTING && w->state != WORKER_STOPPING)
			break;
		w->said_hello = 1;
		worker_reopen_log(w);
		if (w->state == WORKER_STOPPING)
			return 0;	/* raced with the stop: let it finish */
		pool_worker_ready(w);
		return 0;
	default:
		break;
	}
	clog_warnx(&ctx, "bad frame from worker (type %u, %u bytes), "
	    "killing it", h->type, h->len);
	return -1;
}

static void
worker_read_cb(struct bufferevent *bev, void *arg)
{
	struct worker		*w = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct log_ctx		 ctx = worker_ctx(w);
	struct proto_hdr	 h;
	uint8_t			*p;

	while (evbuffer_get_length(in) >= PROTO_HDRLEN) {
		p = evbuffer_pullup(in, PROTO_HDRLEN);
		if (proto_hdr_parse(p, &h) != 0) {
			clog_warnx(&ctx, "bad frame header from worker (type "
			    "%u, %u bytes), killing it", h.type, h.len);
			goto bad;
		}
		if (evbuffer_get_length(in) < PROTO_HDRLEN + h.len)
			return;
		p = evbuffer_pullup(in, PROTO_HDRLEN + (ev_ssize_t)h.len);
		if (worker_dispatch(w, &h, p + PROTO_HDRLEN) != 0)
			goto bad;
		evbuffer_drain(in, PROTO_HDRLEN + h.len);
	}
	return;

bad:
	worker_close(w);
	if (w->pid > 0 && !w->reaped)
		kill(w->pid, SIGKILL);
}

static void
worker_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct worker	*w = arg;
	struct log_ctx	 ctx = worker_ctx(w);

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/*
	 * A worker without its channel is useless: make sure it is dead. The
	 * death itself is handled when SIGCHLD reaps it.
	 */
	worker_close(w);
	if (w->pid > 0 && w->state != WORKER_STOPPING) {
		clog_warnx(&ctx, "lost the connection to the worker, "
		    "killing it" LOG_KV "worker_pid=%d", (int)w->pid);
		kill(w->pid, SIGKILL);
	}
}

/* w has a new process (pid, channel): it is starting, from now. */
static void
worker_started(struct worker *w)
{
	w->state = WORKER_STARTING;
	w->stop = STOP_NONE;
	w->job = NULL;
	w->jobs_done = 0;
	w->started_usec = util_now_usec();
	w->started_mono = util_mono_usec();
	if (w->timer != NULL)
		evtimer_add(w->timer, &start_timeout);
}

/*
 * Starts the worker's process: mprocd re-executed as "--worker POOL/N", or
 * for a spare "--worker POOL/spare --spare".
 */
static void
worker_spawn(struct worker *w)
{
	struct log_ctx	 ctx = worker_ctx(w);
	struct spawn	 sp;
	const char	*argv[9], **ap;
	int		 sv[2];
	pid_t		 pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		clog_warn(&ctx, "socketpair");
		goto fail;
	}
	ap = argv;
	*ap++ = "mprocd";
	*ap++ = "--worker";
	*ap++ = w->name;
	if (w->spare)
		*ap++ = "--spare";
	*ap++ = "--log-target";
	*ap++ = cfg->log_target;
	*ap++ = "--log-level";
	*ap++ = log_level_name(log_getlevel());
	*ap = NULL;
	memset(&sp, 0, sizeof sp);
	sp.argv = argv;
	sp.path = mprocd_self;
	sp.fds[0] = -1;
	sp.fds[1] = STDERR_FILENO;
	sp.fds[2] = STDERR_FILENO;
	sp.fds[3] = sv[1];
	sp.pdeathsig = SIGTERM;
	if ((pid = spawn_process(&sp)) == -1) {
		clog_warn(&ctx, "cannot start worker");
		close(sv[0]);
		close(sv[1]);
		goto fail;
	}
	close(sv[1]);
	util_set_nonblock(sv[0]);
	w->bev = bufferevent_socket_new(ev_base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(w->bev, worker_read_cb, NULL, worker_event_cb, w);
	bufferevent_enable(w->bev, EV_READ);
	w->pid = pid;
	w->reopen_log = 0;
	w->said_hello = 0;
	worker_started(w);
	clog_debug(&ctx, "%s starting" LOG_KV "worker_pid=%d",
	    worker_kind(w), (int)pid);
	return;

fail:
	/* Try again later, as if it had died at once. */
	w->pid = 0;
	w->started_mono = util_mono_usec();
	worker_crashed(w, NULL, w->started_mono);
}

/* A spare that can be given a slot; one whose channel is gone is dying. */
static int
spare_is_ready(const struct worker *w)
{
	return w->state == WORKER_IDLE && w->stop == STOP_NONE &&
	    w->bev != NULL && !w->reaped;
}

static unsigned int
pool_count_ready_spares(const struct pool *p)
{
	const struct worker	*w;
	unsigned int		 n = 0;

	TAILQ_FOREACH(w, &p->spares, entry)
		if (spare_is_ready(w))
			n++;
	return n;
}

/*
 * Gives slot w the ready spare s: its process and channel move to the slot,
 * which is starting until the worker, told its slot, says HELLO again. s
 * waits until then to start another (pool_start_spares).
 */
static void
worker_adopt(struct worker *w, struct worker *s)
{
	struct log_ctx		 ctx = worker_ctx(w);
	struct proto_buf	 b;

	w->pid = s->pid;
	w->bev = s->bev;
	bufferevent_setcb(w->bev, worker_read_cb, NULL, worker_event_cb, w);
	w->said_hello = s->said_hello;
	w->reopen_log = s->reopen_log;
	worker_started(w);

	s->pid = 0;
	s->bev = NULL;
	s->said_hello = 0;
	s->reopen_log = 0;
	s->state = WORKER_BACKOFF;
	s->waiting = 1;

	proto_buf_init(&b);
	proto_put_u32(&b, w->slot);
	worker_send(w, PROTO_ASSIGN, &b);
	proto_buf_free(&b);
	clog_debug(&ctx, "worker taken from the spares" LOG_KV "worker_pid=%d"
	    LOG_KV "spares_ready=%u" LOG_KV "spare_workers=%" PRIu64,
	    (int)w->pid, pool_count_ready_spares(w->pool),
	    w->pool->cfg.spare_workers);
}

/*
 * Starts the spares that wait, once no slot of the pool is starting: so
 * that their exec slows neither a pool's start (nor READY=1) nor a slot
 * taking a spare. They start at the loop's next pass, after what is
 * pending now (a job just dispatched, a reply).
 */
static void
pool_start_spares(struct pool *p)
{
	const struct timeval	 now = { 0, 0 };
	struct worker		*w;

	if (mprocd_shutting_down)
		return;
	TAILQ_FOREACH(w, &p->workers, entry)
		if (w->state == WORKER_STARTING)
			return;
	TAILQ_FOREACH(w, &p->spares, entry) {
		if (!w->waiting)
			continue;
		w->waiting = 0;
		if (w->timer != NULL)
			evtimer_add(w->timer, &now);
	}
}

/*
 * Gives w a process: a slot takes a ready spare if its pool has one, else
 * (and a spare always) a new one is spawned.
 */
static void
worker_restart(struct worker *w)
{
	struct worker	*s;

	if (!w->spare) {
		TAILQ_FOREACH(s, &w->pool->spares, entry) {
			if (spare_is_ready(s)) {
				worker_adopt(w, s);
				return;
			}
		}
	}
	worker_spawn(w);
}

void
pool_worker_ready(struct worker *w)
{
	struct log_ctx	 ctx = worker_ctx(w);

	w->state = WORKER_IDLE;
	evtimer_del(w->timer);
	if (w->spare) {
		clog_debug(&ctx, "spare ready" LOG_KV "worker_pid=%d" LOG_KV
		    "spares_ready=%u" LOG_KV "spare_workers=%" PRIu64,
		    (int)w->pid, pool_count_ready_spares(w->pool),
		    w->pool->cfg.spare_workers);
		return;
	}
	supervisor_status_changed();
	clog_info(&ctx, "worker started" LOG_KV "worker_pid=%d", (int)w->pid);
	supervisor_check_ready();
	pool_dispatch(w->pool);
	pool_start_spares(w->pool);
}

/*
 * Of the workers in list not already stopping, the one rank() puts highest
 * (the highest slot of those): the next to retire.
 */
static struct worker *
pick_retiree(struct workers *list, int (*rank)(const struct worker *))
{
	struct worker	*w, *pick = NULL;
	int		 r, best = -1;

	TAILQ_FOREACH(w, list, entry) {
		if (w->stop != STOP_NONE)
			continue;
		r = rank(w);
		if (r > best || (r == best && w->slot > pick->slot)) {
			pick = w;
			best = r;
		}
	}
	return pick;
}

/* Spares least ready go first: without a process, then starting. */
static int
spare_rank(const struct worker *w)
{
	return w->pid <= 0 ? 3 : w->state == WORKER_STARTING ? 2 : 1;
}

/* Idle workers go first, then those not started, then busy ones. */
static int
slot_rank(const struct worker *w)
{
	return w->state == WORKER_IDLE ? 3 : w->state == WORKER_BUSY ? 1 : 2;
}

/*
 * Brings the pool's spares to spare_workers (none for a removed pool),
 * retiring first those least ready: without a process, then starting. New
 * ones start once the slots are up.
 */
static void
pool_trim_spares(struct pool *p)
{
	struct worker	*w;
	unsigned int	 kept = 0, target = p->cfg.spare_workers;

	if (p->removed)
		target = 0;
	TAILQ_FOREACH(w, &p->spares, entry)
		if (w->stop == STOP_NONE)
			kept++;
	for (; kept > target; kept--)
		worker_stop(pick_retiree(&p->spares, spare_rank), STOP_RETIRE);
	for (; kept < target; kept++)
		pool_spare_new(p)->waiting = 1;
	pool_start_spares(p);
}

/*
 * Brings the pool to its size: new workers at the lowest free slots, or
 * workers retired, idle ones first (the highest slots), then those not
 * started, then busy ones once their job ends. A removed pool keeps its
 * workers until its queue is empty, then retires them all, and is freed
 * when the last is gone. Then the spares, likewise.
 */
void
pool_trim(struct pool *p)
{
	struct log_ctx	 ctx = { p->name, NULL, 0 };
	struct worker	*w, *pick;
	unsigned int	 kept = 0, target = p->cfg.workers, slot;

	if (mprocd_shutting_down)
		return;
	TAILQ_FOREACH(w, &p->workers, entry)
		if (w->stop == STOP_NONE)
			kept++;
	if (p->removed)
		target = TAILQ_EMPTY(&p->queue) ? 0 : MAX(kept, 1);
	for (; kept > target; kept--) {
		pick = pick_retiree(&p->workers, slot_rank);
		if (pick->state == WORKER_BUSY)
			pick->stop = STOP_RETIRE;	/* when its job ends */
		else
			worker_stop(pick, STOP_RETIRE);
	}
	for (; kept < target; kept++) {
		/* A busy worker due to retire is kept rather than a new one. */
		TAILQ_FOREACH(w, &p->workers, entry)
			if (w->state == WORKER_BUSY && w->stop == STOP_RETIRE)
				break;
		if (w != NULL) {
			w->stop = STOP_NONE;
			continue;
		}
		for (slot = 0; ; slot++) {
			TAILQ_FOREACH(w, &p->workers, entry)
				if (w->slot == slot)
					break;
			if (w == NULL)
				break;
		}
		worker_restart(pool_worker_new(p, slot));
	}
	pool_trim_spares(p);
	if (p->removed && TAILQ_EMPTY(&p->workers) &&
	    TAILQ_EMPTY(&p->spares) && TAILQ_EMPTY(&p->queue)) {
		clog_info(&ctx, "pool removed, its jobs done");
		pool_free(p);
	}
	supervisor_status_changed();
}

/*
 * A reload's new settings for a pool: its size now, other limits for jobs
 * that start from now on. A pool being removed is taken back.
 */
void
pool_apply(struct pool *p, const struct pool_config *pc)
{
	uint64_t	 crash_limit = p->cfg.crash_limit;

	p->cfg = *pc;
	p->cfg.name = p->name;
	p->removed = 0;
	if (crash_limit != pc->crash_limit) {
		free(p->deaths);
		p->deaths = xcalloc(pc->crash_limit + 1, sizeof *p->deaths);
		p->ndeaths = 0;
		pool_set_degraded(p, 0, 0);
	}
	pool_trim(p);
	pool_dispatch(p);
}

/* A reload changed log_level: every worker with a channel is told. */
void
pool_set_log_level(int level)
{
	struct proto_buf	 b;
	struct pool		*p;
	struct worker		*w;

	proto_buf_init(&b);
	proto_put_u32(&b, (uint32_t)level);
	TAILQ_FOREACH(p, &pools, entry)
		POOL_FOREACH_WORKER(w, p)
			worker_send(w, PROTO_LOG_LEVEL, &b);
	proto_buf_free(&b);
}

/* A reload removed the pool: it takes no job, drains, then goes. */
void
pool_remove(struct pool *p)
{
	p->removed = 1;
	p->cfg.workers = 0;
	pool_trim(p);
}

/* Starts a new pool's workers, then its spares. */
void
pool_start(struct pool *p)
{
	struct worker	*w;
	unsigned int	 slot;

	for (slot = 0; slot < p->cfg.workers; slot++) {
		w = pool_worker_new(p, slot);
		worker_spawn(w);
	}
	pool_trim_spares(p);
}

/* TERM now, KILL after kill_grace; the death is handled by why. */
static void
worker_stop(struct worker *w, enum worker_stop why)
{
	struct timeval	 tv;
	uint64_t	 grace = w->pool->cfg.kill_grace;

	if (w->pid <= 0) {
		if (why != STOP_RECYCLE)
			worker_free(w);
		return;
	}
	w->stop = why;
	if (w->state == WORKER_STOPPING)
		return;
	w->state = WORKER_STOPPING;
	kill(w->pid, SIGTERM);
	/*
	 * A spare has no job to finish: the end of its channel tells it too,
	 * should it still be starting, when a signal can go astray (valgrind
	 * takes signals for itself while it loads the program).
	 */
	if (w->spare)
		worker_close(w);
	tv = util_timeval(grace);
	evtimer_add(w->timer, &tv);
}

void
pool_stop(struct pool *p, enum worker_stop why)
{
	struct worker	*w, *next;

	TAILQ_FOREACH_SAFE(w, &p->workers, entry, next) {
		/* At shutdown a running job gets shutdown_timeout to end. */
		if (w->state == WORKER_BUSY && why == STOP_SHUTDOWN) {
			w->stop = why;
			continue;
		}
		worker_stop(w, why);
	}
	TAILQ_FOREACH_SAFE(w, &p->spares, entry, next)
		worker_stop(w, why);
	if (p->timer != NULL)
		evtimer_del(p->timer);
}

struct worker *
pool_find_worker(pid_t pid)
{
	struct pool	*p;
	struct worker	*w;

	TAILQ_FOREACH(p, &pools, entry)
		POOL_FOREACH_WORKER(w, p)
			if (w->pid == pid)
				return w;
	return NULL;
}

/* A slot's worker with a process: STATUS= and the log count these. */
static int
worker_is_live(const struct worker *w)
{
	return !w->spare && w->pid > 0;
}

/* A process of ours, spares too: mprocd exits once none is left. */
static int
worker_has_process(const struct worker *w)
{
	return w->pid > 0;
}

/* READY=1 waits for slots' workers, not for spares. */
static int
worker_is_starting(const struct worker *w)
{
	return !w->spare && w->state == WORKER_STARTING;
}

static int
worker_is_busy(const struct worker *w)
{
	return w->job != NULL;
}

/* Workers of every pool, spares too, that match. */
static unsigned int
pool_count(int (*match)(const struct worker *))
{
	struct pool	*p;
	struct worker	*w;
	unsigned int	 n = 0;

	TAILQ_FOREACH(p, &pools, entry)
		POOL_FOREACH_WORKER(w, p)
			if (match(w))
				n++;
	return n;
}

/* Slots' workers with a process (see worker_is_live). */
unsigned int
pool_count_live(void)
{
	return pool_count(worker_is_live);
}

/* Processes of ours not yet reaped: slots' workers and spares. */
unsigned int
pool_count_processes(void)
{
	return pool_count(worker_has_process);
}

/* Workers started but not yet ready. */
unsigned int
pool_count_starting(void)
{
	return pool_count(worker_is_starting);
}

/* Workers running a job. */
unsigned int
pool_count_busy(void)
{
	return pool_count(worker_is_busy);
}

/*
 * Has a worker reopen its log file (SIGUSR1) if one was asked for. Until it
 * says HELLO it may not read the signal yet (its default kills), so it is
 * told then.
 */
static void
worker_reopen_log(struct worker *w)
{
	if (!w->reopen_log || !w->said_hello || w->pid <= 0 || w->reaped)
		return;
	w->reopen_log = 0;
	kill(w->pid, SIGUSR1);
}

/* Has every worker, spares and stopping ones too, reopen its log file. */
void
pool_reopen_logs(void)
{
	struct pool	*p;
	struct worker	*w;

	TAILQ_FOREACH(p, &pools, entry)
		POOL_FOREACH_WORKER(w, p) {
			w->reopen_log = 1;
			worker_reopen_log(w);
		}
}

/*
 * A worker that died unexpectedly (how: its exit status as log fields) or
 * could not be started (how is NULL): count it, then restart after a
 * backoff. A spare's death counts in the pool's tally, but not in its
 * restarts, which are its slots'.
 */
static void
worker_crashed(struct worker *w, const char *how, uint64_t now)
{
	struct pool	*p = w->pool;
	struct log_ctx	 ctx = worker_ctx(w);
	char		 delay[UTIL_FMTLEN];
	struct timeval	 tv;

	w->restarts++;
	if (!w->spare)
		p->restarts++;
	/* A worker that lived a whole crash_interval starts afresh. */
	if (now - w->started_mono >= p->cfg.crash_interval)
		w->delay = p->cfg.restart_delay;
	if (pool_record_death(p, now))
		w->backoff = p->cfg.restart_delay_max;
	else
		w->backoff = w->delay;
	w->delay = pool_backoff_next(w->delay, p->cfg.restart_delay_max);
	w->state = WORKER_BACKOFF;
	util_format_duration(w->backoff, delay, sizeof delay);
	if (how != NULL)
		clog_warnx(&ctx, "%s exited" LOG_KV "why=crash%s" LOG_KV
		    "worker_pid=%d" LOG_KV "restart_delay=%s",
		    worker_kind(w), how, (int)w->pid, delay);
	else
		clog_warnx(&ctx, "%s could not be started" LOG_KV
		    "restart_delay=%s", worker_kind(w), delay);
	w->pid = 0;
	tv = util_timeval(w->backoff);
	if (w->timer != NULL)
		evtimer_add(w->timer, &tv);
}

/*
 * Reads what a dead worker wrote before it died (a JOB_DONE may be there),
 * so SIGCHLD arriving before the data does not lose a result.
 */
static void
worker_drain(struct worker *w)
{
	struct evbuffer	*in;
	int		 fd, n;

	if (w->bev == NULL)
		return;
	in = bufferevent_get_input(w->bev);
	fd = bufferevent_getfd(w->bev);
	do {
		n = evbuffer_read(in, fd, 65536);
	} while (n > 0);
	worker_read_cb(w->bev, w);
}

/* A child was reaped. Returns 1 if it was one of our workers. */
int
pool_child_exited(pid_t pid, int status)
{
	struct pool	*p, *retired = NULL;
	struct worker	*w;
	struct job	*j;
	struct log_ctx	 ctx;
	char		 how[128];

	if (pid <= 0)
		return 0;
	if ((w = pool_find_worker(pid)) == NULL)
		return 0;
	ctx = worker_ctx(w);
	p = w->pool;
	w->reaped = 1;
	worker_drain(w);
	w->reaped = 0;
	worker_close(w);
	j = w->job;
	w->job = NULL;
	if (w->timer != NULL)
		evtimer_del(w->timer);
	pool_status_fields(status, how, sizeof how);

	switch (w->stop) {
	case STOP_SHUTDOWN:
	case STOP_RETIRE:
		clog_info(&ctx, "%s exited" LOG_KV "why=%s%s" LOG_KV
		    "worker_pid=%d", worker_kind(w),
		    w->stop == STOP_SHUTDOWN ? "shutdown" : "retired", how,
		    (int)pid);
		w->pid = 0;
		if (w->stop == STOP_RETIRE)
			retired = w->pool;
		worker_free(w);
		break;
	case STOP_RECYCLE:
		clog_info(&ctx, "worker exited" LOG_KV "why=recycled%s" LOG_KV
		    "worker_pid=%d" LOG_KV "jobs_done=%" PRIu64, how, (int)pid,
		    w->jobs_done);
		w->pid = 0;
		worker_restart(w);
		break;
	case STOP_NONE:
		worker_crashed(w, how, util_mono_usec());
		supervisor_check_ready();
		break;
	}
	pool_start_spares(p);
	if (j != NULL)
		job_worker_died(j);
	if (retired != NULL)
		pool_trim(retired);	/* a removed pool may go */
	supervisor_status_changed();
	return 1;
}

json_t *
pool_status_json(const struct pool *p)
{
	json_t			*jp, *jw, *workers = json_array();
	const struct worker	*w;
	json_int_t		 running = 0;

	TAILQ_FOREACH(w, &p->workers, entry) {
		jw = json_object();
		json_object_set_new(jw, "name", json_string(w->name));
		if (w->pid > 0)
			json_object_set_new(jw, "pid", json_integer(w->pid));
		json_object_set_new(jw, "state",
		    json_string(pool_worker_state_name(w->state)));
		if (w->job != NULL) {
			json_object_set_new(jw, "job", json_integer(w->job->id));
			running++;
		}
		json_object_set_new(jw, "jobs_done",
		    json_integer((json_int_t)w->jobs_done));
		json_object_set_new(jw, "restarts",
		    json_integer((json_int_t)w->restarts));
		if (w->pid > 0)
			json_object_set_new(jw, "started_usec",
			    json_integer((json_int_t)w->started_usec));
		json_array_append_new(workers, jw);
	}
	jp = json_object();
	json_object_set_new(jp, "name", json_string(p->name));
	json_object_set_new(jp, "size", json_integer(p->cfg.workers));
	json_object_set_new(jp, "degraded", json_boolean(p->degraded));
	json_object_set_new(jp, "queued", json_integer((json_int_t)p->nqueued));
	json_object_set_new(jp, "running", json_integer(running));
	json_object_set_new(jp, "succeeded",
	    json_integer((json_int_t)p->succeeded));
	json_object_set_new(jp, "failed", json_integer((json_int_t)p->failed));
	json_object_set_new(jp, "cancelled",
	    json_integer((json_int_t)p->cancelled));
	json_object_set_new(jp, "restarts", json_integer((json_int_t)p->restarts));
	json_object_set_new(jp, "workers", workers);
	return jp;
}
