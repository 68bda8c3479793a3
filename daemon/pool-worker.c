/*
 * The supervisor's handle on one worker process: its state machine (see
 * mprocd.h), its start, its channel and the frames that come on it, its
 * stop, and its death, counted and backed off.
 *
 *   (spawn) -> starting --HELLO--> idle <--> busy
 *   any live state --death--> exited --> backoff --delay--> (spawn)
 *   any live state --stop--> stopping --death--> exited --> gone, or
 *   (spawn) if recycled
 *
 * A spare goes through the same states (idle: ready to be given a slot);
 * pool.c decides when spares start and which are retired. A slot to start
 * takes a ready spare if its pool has one: the process moves to the slot,
 * which is starting until the worker, told its slot by ASSIGN, says HELLO
 * again under its new name. With no spare ready, the slot spawns.
 */
#include "config.h"

#include <sys/socket.h>

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
#define POOL_WORKER_START_TIMEOUT 30

static const struct timeval pool_worker_start_timeout = {
	POOL_WORKER_START_TIMEOUT, 0
};

static const char *const pool_worker_state_names[WORKER_NSTATES] = {
	[WORKER_STARTING] = "starting",
	[WORKER_IDLE] = "idle",
	[WORKER_BUSY] = "busy",
	[WORKER_BACKOFF] = "backoff",
	[WORKER_STOPPING] = "stopping",
	[WORKER_WAITING] = "waiting",
	[WORKER_EXITED] = "exited",
};

/* The moves drawn in mprocd.h: moves[from] has bit (1 << to). */
#define TO(s) (1U << (s))
static const unsigned int pool_worker_moves[WORKER_NSTATES] = {
	[WORKER_BACKOFF] = TO(WORKER_STARTING) | TO(WORKER_BACKOFF) |
	    TO(WORKER_WAITING),
	[WORKER_WAITING] = TO(WORKER_BACKOFF),
	[WORKER_STARTING] = TO(WORKER_IDLE) | TO(WORKER_STOPPING) |
	    TO(WORKER_EXITED),
	[WORKER_IDLE] = TO(WORKER_BUSY) | TO(WORKER_STOPPING) |
	    TO(WORKER_EXITED) | TO(WORKER_WAITING),
	[WORKER_BUSY] = TO(WORKER_IDLE) | TO(WORKER_STOPPING) |
	    TO(WORKER_EXITED),
	[WORKER_STOPPING] = TO(WORKER_EXITED),
	[WORKER_EXITED] = TO(WORKER_BACKOFF) | TO(WORKER_STARTING),
};
#undef TO

static void pool_worker_read_cb(struct bufferevent *, void *);
static void pool_worker_signal_reopen(struct worker *);
static void pool_worker_event_cb(struct bufferevent *, short, void *);

const char *
pool_worker_state_name(enum worker_state state)
{
	if ((unsigned int)state < WORKER_NSTATES)
		return pool_worker_state_names[state];
	return "unknown";
}

static struct log_ctx
pool_worker_ctx(const struct worker *w)
{
	struct log_ctx ctx = { w->pool->name, w->name,
		w->job != NULL ? w->job->id : 0 };

	return ctx;
}

/* "worker" or "spare", for the log. */
static const char *
pool_worker_kind(const struct worker *w)
{
	return w->spare ? "spare" : "worker";
}

/* Whether the state machine has a move from one state to another. */
int
pool_worker_may_move(enum worker_state from, enum worker_state to)
{
	if ((unsigned int)from >= WORKER_NSTATES ||
	    (unsigned int)to >= WORKER_NSTATES)
		return 0;
	return (pool_worker_moves[from] & (1U << to)) != 0;
}

/*
 * The one place a worker changes state. A move not in the machine is a
 * bug: it is logged and refused (-1), and the worker stays as it was.
 */
int
pool_worker_set_state(struct worker *w, enum worker_state to)
{
	struct log_ctx ctx = pool_worker_ctx(w);

	if (!pool_worker_may_move(w->state, to)) {
		clog_warnx(&ctx,
		    "%s cannot go from %s to %s (a bug), "
		    "ignoring",
		    pool_worker_kind(w), pool_worker_state_name(w->state),
		    pool_worker_state_name(to));
		return -1;
	}
	clog_debug(&ctx, "%s state changed" LOG_KV "from=%s" LOG_KV "to=%s",
	    pool_worker_kind(w), pool_worker_state_name(w->state),
	    pool_worker_state_name(to));
	w->state = to;
	return 0;
}

/* The next backoff after one more consecutive death: double, capped. */
uint64_t
pool_worker_backoff_next(uint64_t delay, uint64_t max)
{
	if (delay == 0)
		return 0;
	if (delay > max / 2)
		return max;
	return delay * 2;
}

static void
pool_worker_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct worker *w = arg;
	struct log_ctx ctx = pool_worker_ctx(w);
	char	       grace[UTIL_FMTLEN];

	switch (w->state) {
	case WORKER_BACKOFF:
		pool_worker_restart(w);
		break;
	case WORKER_STARTING:
		clog_warnx(&ctx,
		    "worker did not start in time, killing it" LOG_KV
		    "worker_pid=%d" LOG_KV "timeout=%ds",
		    (int)w->pid, POOL_WORKER_START_TIMEOUT);
		kill(w->pid, SIGKILL);
		break;
	case WORKER_STOPPING:
		if (w->pid > 0) {
			clog_warnx(&ctx,
			    "worker still running after "
			    "SIGTERM, sending SIGKILL" LOG_KV
			    "worker_pid=%d" LOG_KV "kill_grace=%s",
			    (int)w->pid,
			    util_format_duration(w->pool->cfg.kill_grace, grace,
				sizeof grace));
			kill(w->pid, SIGKILL);
		}
		break;
	default:
		break;
	}
}

static struct worker *
pool_worker_alloc(struct pool *p)
{
	struct worker *w = xcalloc(1, sizeof *w);

	w->pool = p;
	w->state = WORKER_BACKOFF;
	w->delay = p->cfg.restart_delay;
	if (ev_base != NULL)
		w->timer = evtimer_new(ev_base, pool_worker_timer_cb, w);
	return w;
}

/* A worker for slot, not yet started (state backoff, no process). */
struct worker *
pool_worker_new(struct pool *p, unsigned int slot)
{
	struct worker *w = pool_worker_alloc(p);

	w->slot = slot;
	snprintf(w->name, sizeof w->name, "%s/%u", p->name, slot);
	TAILQ_INSERT_TAIL(&p->workers, w, entry);
	return w;
}

/* A spare's position, waiting to be started. */
struct worker *
pool_worker_new_spare(struct pool *p)
{
	struct worker *w = pool_worker_alloc(p);

	w->spare = 1;
	snprintf(w->name, sizeof w->name, "%s/spare", p->name);
	TAILQ_INSERT_TAIL(&p->spares, w, entry);
	pool_worker_set_state(w, WORKER_WAITING);
	return w;
}

/* Unlinks and frees a worker that has no process left. */
void
pool_worker_free(struct worker *w)
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

/* A frame to the worker, if it still has its channel. */
void
pool_worker_send(struct worker *w, uint32_t type, const void *payload,
    size_t len)
{
	uint8_t	     hdr[PROTO_HDRLEN];
	struct iovec iov[2] = { { hdr, sizeof hdr },
		{ (void *)(uintptr_t)payload, len } };

	if (w->bev == NULL)
		return;
	proto_hdr_pack(hdr, type, (uint32_t)len);
	bev_send(w->bev, iov, 2);
}

/* Hands a job to an idle worker. */
void
pool_worker_run(struct worker *w, struct job *j)
{
	struct proto_buf       b;
	struct proto_job_start js;

	memset(&js, 0, sizeof js);
	js.id = (uint64_t)j->id;
	js.max_output = w->pool->cfg.max_output;
	js.cwd = j->cwd;
	js.argv = j->argv;
	js.env = j->env;
	js.stdin_data = j->stdin_data;
	js.stdin_len = j->stdin_len;
	proto_pack_job_start(&b, &js);
	pool_worker_send(w, PROTO_JOB_START, b.data, b.len);
	proto_buf_free(&b);

	pool_worker_set_state(w, WORKER_BUSY);
	w->job = j;
	job_started(j, w);
}

/* Sends sig to the process group of the job w runs. */
void
pool_worker_signal_job(struct worker *w, struct job *j, int sig)
{
	struct proto_buf b;

	if (w == NULL)
		return;
	proto_pack_job_signal(&b, (uint64_t)j->id, (uint32_t)sig);
	pool_worker_send(w, PROTO_JOB_SIGNAL, b.data, b.len);
	proto_buf_free(&b);
}

/* A worker that does not answer: its death is handled when it is reaped. */
void
pool_worker_kill(struct worker *w)
{
	if (w != NULL && w->pid > 0 && w->state != WORKER_EXITED)
		kill(w->pid, SIGKILL);
}

/* The worker is done with its job: take the next, or stop as asked. */
static void
pool_worker_job_done(struct worker *w)
{
	uint64_t max = w->pool->cfg.max_jobs_per_worker;

	w->job = NULL;
	w->jobs_done++;
	/* Dead, or already told to stop: nothing more to give it. */
	if (w->state != WORKER_BUSY)
		return;
	pool_worker_set_state(w, WORKER_IDLE);
	if (w->stop != STOP_NONE)
		pool_worker_stop(w, w->stop);
	else if (max != 0 && w->jobs_done >= max)
		pool_worker_stop(w, STOP_RECYCLE);
	else {
		pool_dispatch(w->pool);
		if (w->pool->removed)
			pool_trim(w->pool);
	}
}

static void
pool_worker_close(struct worker *w)
{
	if (w->bev != NULL) {
		bufferevent_free(w->bev);
		w->bev = NULL;
	}
}

/* A frame from a worker. Anything unexpected ends that worker. */
static int
pool_worker_frame(struct worker *w, const struct proto_hdr *h,
    const uint8_t *payload)
{
	struct log_ctx		 ctx = pool_worker_ctx(w);
	struct job		*j = w->job;
	struct proto_hello	 hello;
	struct proto_job_started started;
	struct proto_job_output	 out;
	struct proto_job_done	 done;

	switch (h->type) {
	case PROTO_JOB_STARTED:
		/*
		 * Its process group gets kill(-pid): never 0 (ours), 1 (-1 is
		 * every process), a negative pid_t, or a second pid.
		 */
		if (proto_unpack_job_started(payload, h->len, &started) != 0 ||
		    j == NULL || (int64_t)started.id != j->id ||
		    started.pid <= 1 || started.pid > INT32_MAX || j->pid != 0)
			break;
		job_set_pid(j, (pid_t)started.pid);
		return 0;
	case PROTO_JOB_OUTPUT:
		if (proto_unpack_job_output(payload, h->len, &out) != 0 ||
		    j == NULL || (int64_t)out.id != j->id ||
		    (out.stream != 1 && out.stream != 2))
			break;
		job_output_add(j, (int)out.stream - 1, out.data, out.len,
		    w->pool->cfg.max_output);
		return 0;
	case PROTO_JOB_DONE:
		if (proto_unpack_job_done(payload, h->len, &done) != 0 ||
		    j == NULL || (int64_t)done.id != j->id)
			break;
		/*
		 * The worker's next job goes out first: the end of this one
		 * (its log record, its watchers' replies) need not keep the
		 * worker waiting.
		 */
		pool_worker_job_done(w);
		job_done(j, (int)done.status,
		    done.flags & PROTO_DONE_TRUNCATED);
		return 0;
	case PROTO_HELLO:
		if (proto_unpack_hello(payload, h->len, &hello) != 0 ||
		    (pid_t)hello.pid != w->pid)
			break;
		if (hello.version != PROTO_VERSION) {
			clog_warnx(&ctx,
			    "worker speaks protocol %u, not %u "
			    "(was mprocd upgraded while running?)",
			    hello.version, PROTO_VERSION);
			return -1;
		}
		/* Read after its death: its start is moot. */
		if (w->state == WORKER_EXITED)
			return 0;
		if (w->state != WORKER_STARTING && w->state != WORKER_STOPPING)
			break;
		w->said_hello = 1;
		pool_worker_signal_reopen(w);
		if (w->state == WORKER_STOPPING)
			return 0; /* raced with the stop: let it finish */
		pool_worker_ready(w);
		return 0;
	default:
		break;
	}
	clog_warnx(&ctx,
	    "bad frame from worker (type %u, %u bytes), "
	    "killing it",
	    h->type, h->len);
	return -1;
}

static void
pool_worker_read_cb(struct bufferevent *bev, void *arg)
{
	struct worker	*w = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct log_ctx	 ctx = pool_worker_ctx(w);
	struct proto_hdr h;
	uint8_t		*p;

	while (evbuffer_get_length(in) >= PROTO_HDRLEN) {
		p = evbuffer_pullup(in, PROTO_HDRLEN);
		if (proto_hdr_parse(p, &h) != 0) {
			clog_warnx(&ctx,
			    "bad frame header from worker (type "
			    "%u, %u bytes), killing it",
			    h.type, h.len);
			goto bad;
		}
		if (evbuffer_get_length(in) < PROTO_HDRLEN + h.len)
			return;
		p = evbuffer_pullup(in, PROTO_HDRLEN + (ev_ssize_t)h.len);
		if (pool_worker_frame(w, &h, p + PROTO_HDRLEN) != 0)
			goto bad;
		evbuffer_drain(in, PROTO_HDRLEN + h.len);
	}
	return;

bad:
	pool_worker_close(w);
	pool_worker_kill(w);
}

static void
pool_worker_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct worker *w = arg;
	struct log_ctx ctx = pool_worker_ctx(w);

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/*
	 * A worker without its channel is useless: make sure it is dead. The
	 * death itself is handled when SIGCHLD reaps it.
	 */
	pool_worker_close(w);
	if (w->pid > 0 && w->state != WORKER_STOPPING) {
		clog_warnx(&ctx,
		    "lost the connection to the worker, "
		    "killing it" LOG_KV "worker_pid=%d",
		    (int)w->pid);
		kill(w->pid, SIGKILL);
	}
}

/* w has a new process (pid, channel): it is starting, from now. */
static void
pool_worker_started(struct worker *w)
{
	pool_worker_set_state(w, WORKER_STARTING);
	w->stop = STOP_NONE;
	w->job = NULL;
	w->jobs_done = 0;
	w->started_usec = util_now_usec();
	w->started_mono = util_mono_usec();
	if (w->timer != NULL)
		evtimer_add(w->timer, &pool_worker_start_timeout);
}

/*
 * A worker that died unexpectedly (how: its exit status as log fields) or
 * could not be started (how is NULL): count it, then restart after a
 * backoff. A spare's death counts in the pool's tally, but not in its
 * restarts, which are its slots'.
 */
static void
pool_worker_crashed(struct worker *w, const char *how, uint64_t now)
{
	struct pool   *p = w->pool;
	struct log_ctx ctx = pool_worker_ctx(w);
	char	       delay[UTIL_FMTLEN];
	struct timeval tv;

	w->restarts++;
	/* A worker that lived a whole crash_interval starts afresh. */
	if (now - w->started_mono >= p->cfg.crash_interval)
		w->delay = p->cfg.restart_delay;
	if (pool_note_death(p, w->spare, now))
		w->backoff = p->cfg.restart_delay_max;
	else
		w->backoff = w->delay;
	w->delay = pool_worker_backoff_next(w->delay, p->cfg.restart_delay_max);
	pool_worker_set_state(w, WORKER_BACKOFF);
	util_format_duration(w->backoff, delay, sizeof delay);
	if (how != NULL)
		clog_warnx(&ctx,
		    "%s exited" LOG_KV "why=crash%s" LOG_KV
		    "worker_pid=%d" LOG_KV "restart_delay=%s",
		    pool_worker_kind(w), how, (int)w->pid, delay);
	else
		clog_warnx(&ctx,
		    "%s could not be started" LOG_KV "restart_delay=%s",
		    pool_worker_kind(w), delay);
	w->pid = 0;
	tv = util_timeval(w->backoff);
	if (w->timer != NULL)
		evtimer_add(w->timer, &tv);
}

/*
 * Starts the worker's process: mprocd re-executed as "--worker POOL/N", or
 * for a spare "--worker POOL/spare --spare".
 */
void
pool_worker_spawn(struct worker *w)
{
	struct log_ctx ctx = pool_worker_ctx(w);
	struct spawn   sp;
	const char    *argv[9], **ap;
	int	       sv[2];
	pid_t	       pid;

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
	bufferevent_setcb(w->bev, pool_worker_read_cb, NULL,
	    pool_worker_event_cb, w);
	bufferevent_enable(w->bev, EV_READ);
	w->pid = pid;
	w->reopen_log = 0;
	w->said_hello = 0;
	pool_worker_started(w);
	clog_debug(&ctx, "%s starting" LOG_KV "worker_pid=%d",
	    pool_worker_kind(w), (int)pid);
	return;

fail:
	/* Try again later, as if it had died at once. */
	w->pid = 0;
	w->started_mono = util_mono_usec();
	pool_worker_crashed(w, NULL, w->started_mono);
}

/* A spare that can be given a slot; one whose channel is gone is dying. */
int
pool_worker_is_ready_spare(const struct worker *w)
{
	return w->spare && w->state == WORKER_IDLE && w->stop == STOP_NONE &&
	    w->bev != NULL;
}

static unsigned int
pool_worker_count_ready_spares(const struct pool *p)
{
	const struct worker *w;
	unsigned int	     n = 0;

	TAILQ_FOREACH(w, &p->spares, entry)
		if (pool_worker_is_ready_spare(w))
			n++;
	return n;
}

/*
 * Gives slot w the ready spare s: its process and channel move to the slot,
 * which is starting until the worker, told its slot, says HELLO again. s
 * waits until then to start another (pool_start_spares).
 */
static void
pool_worker_adopt(struct worker *w, struct worker *s)
{
	struct log_ctx	 ctx = pool_worker_ctx(w);
	struct proto_buf b;

	w->pid = s->pid;
	w->bev = s->bev;
	bufferevent_setcb(w->bev, pool_worker_read_cb, NULL,
	    pool_worker_event_cb, w);
	w->said_hello = s->said_hello;
	w->reopen_log = s->reopen_log;
	pool_worker_started(w);

	s->pid = 0;
	s->bev = NULL;
	s->said_hello = 0;
	s->reopen_log = 0;
	pool_worker_set_state(s, WORKER_WAITING);

	proto_pack_assign(&b, w->slot);
	pool_worker_send(w, PROTO_ASSIGN, b.data, b.len);
	proto_buf_free(&b);
	clog_debug(&ctx,
	    "worker taken from the spares" LOG_KV "worker_pid=%d" LOG_KV
	    "spares_ready=%u" LOG_KV "spare_workers=%" PRIu64,
	    (int)w->pid, pool_worker_count_ready_spares(w->pool),
	    w->pool->cfg.spare_workers);
}

/*
 * Gives w a process: a slot takes a ready spare if its pool has one, else
 * (and a spare always) a new one is spawned.
 */
void
pool_worker_restart(struct worker *w)
{
	struct worker *s;

	if (!w->spare) {
		TAILQ_FOREACH(s, &w->pool->spares, entry) {
			if (pool_worker_is_ready_spare(s)) {
				pool_worker_adopt(w, s);
				return;
			}
		}
	}
	pool_worker_spawn(w);
}

/* HELLO: the worker is ready for a job, or a spare for a slot. */
void
pool_worker_ready(struct worker *w)
{
	struct log_ctx ctx = pool_worker_ctx(w);

	pool_worker_set_state(w, WORKER_IDLE);
	evtimer_del(w->timer);
	if (w->spare) {
		clog_debug(&ctx,
		    "spare ready" LOG_KV "worker_pid=%d" LOG_KV
		    "spares_ready=%u" LOG_KV "spare_workers=%" PRIu64,
		    (int)w->pid, pool_worker_count_ready_spares(w->pool),
		    w->pool->cfg.spare_workers);
		return;
	}
	clog_info(&ctx, "worker started" LOG_KV "worker_pid=%d", (int)w->pid);
	supervisor_changed(SUPERVISOR_WORKERS);
	pool_dispatch(w->pool);
	pool_start_spares(w->pool);
	/* A removed pool's queue may have emptied while it started. */
	if (w->pool->removed)
		pool_trim(w->pool);
}

/* TERM now, KILL after kill_grace; the death is handled by why. */
void
pool_worker_stop(struct worker *w, enum worker_stop why)
{
	struct timeval tv;
	uint64_t       grace = w->pool->cfg.kill_grace;

	if (w->pid <= 0) {
		if (why != STOP_RECYCLE)
			pool_worker_free(w);
		return;
	}
	w->stop = why;
	if (w->state == WORKER_STOPPING)
		return;
	pool_worker_set_state(w, WORKER_STOPPING);
	kill(w->pid, SIGTERM);
	/*
	 * A spare has no job to finish: the end of its channel tells it too,
	 * should it still be starting, when a signal can go astray (valgrind
	 * takes signals for itself while it loads the program).
	 */
	if (w->spare)
		pool_worker_close(w);
	tv = util_timeval(grace);
	evtimer_add(w->timer, &tv);
}

/*
 * Has a worker reopen its log file (SIGUSR1) if one was asked for. Until it
 * says HELLO it may not read the signal yet (its default kills), so it is
 * told then.
 */
static void
pool_worker_signal_reopen(struct worker *w)
{
	if (!w->reopen_log || !w->said_hello || w->pid <= 0 ||
	    w->state == WORKER_EXITED)
		return;
	w->reopen_log = 0;
	kill(w->pid, SIGUSR1);
}

/* Asks the worker to reopen its log file, now or once it said HELLO. */
void
pool_worker_reopen_log(struct worker *w)
{
	w->reopen_log = 1;
	pool_worker_signal_reopen(w);
}

/* A spare waiting its turn: it starts at the loop's next pass. */
void
pool_worker_start_soon(struct worker *w)
{
	const struct timeval now = { 0, 0 };

	pool_worker_set_state(w, WORKER_BACKOFF);
	if (w->timer != NULL)
		evtimer_add(w->timer, &now);
}

/*
 * Stops the worker once its job ends (why: STOP_RETIRE, STOP_SHUTDOWN), or,
 * with STOP_NONE, takes such a stop back.
 */
void
pool_worker_stop_later(struct worker *w, enum worker_stop why)
{
	w->stop = why;
}

/*
 * Reads what a dead worker wrote before it died (a JOB_DONE may be there),
 * so SIGCHLD arriving before the data does not lose a result.
 */
static void
pool_worker_drain(struct worker *w)
{
	struct evbuffer *in;
	int		 fd, n;

	if (w->bev == NULL)
		return;
	in = bufferevent_get_input(w->bev);
	fd = bufferevent_getfd(w->bev);
	do {
		n = evbuffer_read(in, fd, 65536);
	} while (n > 0);
	pool_worker_read_cb(w->bev, w);
}

/*
 * The worker's process was reaped with wait status: read its last words,
 * then free it, replace it or back off, as why it was stopped says. Its
 * job, if it still had one, is handed back to job.c. Returns the pool if
 * the worker was retired from it (which may then go), else NULL.
 */
struct pool *
pool_worker_exited(struct worker *w, int status)
{
	struct log_ctx ctx = pool_worker_ctx(w);
	struct pool   *retired = NULL;
	struct job    *j;
	char	       how[128];
	pid_t	       pid = w->pid;

	pool_worker_set_state(w, WORKER_EXITED);
	pool_worker_drain(w);
	pool_worker_close(w);
	j = w->job;
	w->job = NULL;
	if (w->timer != NULL)
		evtimer_del(w->timer);
	log_wait_status(status, how, sizeof how);

	switch (w->stop) {
	case STOP_SHUTDOWN:
	case STOP_RETIRE:
		clog_info(&ctx,
		    "%s exited" LOG_KV "why=%s%s" LOG_KV "worker_pid=%d",
		    pool_worker_kind(w),
		    w->stop == STOP_SHUTDOWN ? "shutdown" : "retired", how,
		    (int)pid);
		w->pid = 0;
		if (w->stop == STOP_RETIRE)
			retired = w->pool;
		pool_worker_free(w);
		break;
	case STOP_RECYCLE:
		clog_info(&ctx,
		    "worker exited" LOG_KV "why=recycled%s" LOG_KV
		    "worker_pid=%d" LOG_KV "jobs_done=%" PRIu64,
		    how, (int)pid, w->jobs_done);
		w->pid = 0;
		pool_worker_restart(w);
		break;
	case STOP_NONE:
		pool_worker_crashed(w, how, util_mono_usec());
		break;
	}
	if (j != NULL)
		job_worker_died(j);
	return retired;
}

json_t *
pool_worker_json(const struct worker *w)
{
	json_t *jw = json_object();

	json_object_set_new(jw, "name", json_string(w->name));
	if (w->pid > 0)
		json_object_set_new(jw, "pid", json_integer(w->pid));
	json_object_set_new(jw, "state",
	    json_string(pool_worker_state_name(w->state)));
	if (w->job != NULL)
		json_object_set_new(jw, "job", json_integer(w->job->id));
	json_object_set_new(jw, "jobs_done",
	    json_integer((json_int_t)w->jobs_done));
	json_object_set_new(jw, "restarts",
	    json_integer((json_int_t)w->restarts));
	if (w->pid > 0)
		json_object_set_new(jw, "started_usec",
		    json_integer((json_int_t)w->started_usec));
	return jw;
}
