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
#include <fcntl.h>
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

static void pool_worker_signal_reopen(struct worker *);

/* Signals the worker's process and, in a program pool, its program's group. */
static void
pool_worker_signal(struct worker *w, int sig)
{
	if (w->pid > 0)
		kill(w->pid, sig);
	pool_program_kill(w->prog, sig);
}

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
		    "%s did not start in time, killing it" LOG_KV
		    "worker_pid=%d" LOG_KV "start_timeout=%s",
		    w->prog != NULL ? "program" : "worker", (int)w->pid,
		    util_format_duration(w->pool->cfg.start_timeout, grace,
			sizeof grace));
		pool_worker_signal(w, SIGKILL);
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
			pool_worker_signal(w, SIGKILL);
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
	pool_program_free(w->prog);
	free(w);
}

/* Hands a job to an idle worker. */
void
pool_worker_run(struct worker *w, struct job *j)
{
	struct proto_buf       b;
	struct proto_job_start js;

	if (w->prog != NULL) {
		pool_worker_set_state(w, WORKER_BUSY);
		w->job = j;
		job_started(j, w);
		pool_program_run(w->prog, j);
		return;
	}
	memset(&js, 0, sizeof js);
	js.id = (uint64_t)j->id;
	js.max_output = w->pool->cfg.max_output;
	js.cwd = j->cwd;
	js.argv = j->argv;
	js.env = j->env;
	js.stdin_data = j->stdin_data;
	js.stdin_len = j->stdin_len;
	proto_pack_job_start(&b, &js);
	pool_channel_send(w, PROTO_JOB_START, b.data, b.len);
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
	/*
	 * A program's call cannot be ended alone: the program goes with it,
	 * and is started again (not a crash).
	 */
	if (w->prog != NULL) {
		if (w->stop == STOP_NONE)
			w->stop = STOP_RECYCLE;
		pool_program_kill(w->prog, sig);
		return;
	}
	proto_pack_job_signal(&b, (uint64_t)j->id, (uint32_t)sig);
	pool_channel_send(w, PROTO_JOB_SIGNAL, b.data, b.len);
	proto_buf_free(&b);
}

/*
 * A worker that does not answer, or broke its protocol: it takes no job
 * from now on, and its death is handled (as a crash) when it is reaped.
 */
void
pool_worker_kill(struct worker *w)
{
	if (w == NULL || w->pid <= 0 || w->state == WORKER_EXITED)
		return;
	if (w->state == WORKER_IDLE || w->state == WORKER_BUSY ||
	    w->state == WORKER_STARTING)
		pool_worker_set_state(w, WORKER_STOPPING);
	pool_worker_signal(w, SIGKILL);
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
	else if ((max != 0 && w->jobs_done >= max) ||
	    pool_program_over_memory(w->prog))
		pool_worker_stop(w, STOP_RECYCLE);
	else {
		pool_dispatch(w->pool);
		if (w->pool->removed)
			pool_trim(w->pool);
	}
}

/*
 * Job j on w has ended with wait status. The worker's next job goes out
 * first: the end of this one (its log record, its watchers' replies) need
 * not keep the worker waiting.
 */
void
pool_worker_finish_job(struct worker *w, struct job *j, int status,
    int truncated)
{
	pool_worker_job_done(w);
	job_done(j, status, truncated);
}

/*
 * HELLO: the worker's process reads its signals now; it is ready unless
 * it is being stopped or, in a program pool, its program has not answered
 * Hello yet.
 */
void
pool_worker_hello(struct worker *w)
{
	w->said_hello = 1;
	pool_worker_signal_reopen(w);
	if (w->state == WORKER_STOPPING)
		return; /* raced with the stop: let it finish */
	if (w->prog == NULL || pool_program_is_ready(w->prog))
		pool_worker_ready(w);
}

/* w has a new process (pid, channel): it is starting, from now. */
static void
pool_worker_started(struct worker *w)
{
	struct timeval tv;

	pool_worker_set_state(w, WORKER_STARTING);
	w->stop = STOP_NONE;
	w->job = NULL;
	w->jobs_done = 0;
	w->started_usec = util_now_usec();
	w->started_mono = util_mono_usec();
	tv = util_timeval(w->pool->cfg.start_timeout);
	if (w->timer != NULL)
		evtimer_add(w->timer, &tv);
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
 * The descriptors a program worker hands its program (its fd 3, stdout,
 * stderr), our ends in ours[]: -1 on failure, with errno set.
 */
static int
pool_worker_program_fds(int theirs[3], int ours[3])
{
	int sv[2], p[2][2], i;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	if (pipe2(p[0], O_CLOEXEC) == -1) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pipe2(p[1], O_CLOEXEC) == -1) {
		for (i = 0; i < 2; i++) {
			close(sv[i]);
			close(p[0][i]);
		}
		return -1;
	}
	ours[0] = sv[0];
	theirs[0] = sv[1];
	for (i = 0; i < 2; i++) {
		ours[i + 1] = p[i][0];
		theirs[i + 1] = p[i][1];
	}
	return 0;
}

/*
 * Starts the worker's process: mprocd re-executed as "--worker POOL/N", or
 * for a spare "--worker POOL/spare --spare"; in a program pool, with
 * "--program -- CMD ARG..." and the program's descriptors on 4, 5 and 6.
 */
void
pool_worker_spawn(struct worker *w)
{
	struct log_ctx ctx = pool_worker_ctx(w);
	struct spawn   sp;
	char	     **program = w->pool->cfg.program, **p;
	const char   **argv, **ap;
	size_t	       n = 0;
	int	       sv[2], theirs[3], ours[3], i;
	pid_t	       pid;

	for (p = program; p != NULL && *p != NULL; p++)
		n++;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		clog_warn(&ctx, "socketpair");
		goto fail;
	}
	if (program != NULL && pool_worker_program_fds(theirs, ours) == -1) {
		clog_warn(&ctx, "cannot make the program's socket and pipes");
		close(sv[0]);
		close(sv[1]);
		goto fail;
	}
	ap = argv = xcalloc(n + 11, sizeof *argv);
	*ap++ = "mprocd";
	*ap++ = "--worker";
	*ap++ = w->name;
	if (w->spare)
		*ap++ = "--spare";
	*ap++ = "--log-target";
	*ap++ = cfg->log_target;
	*ap++ = "--log-level";
	*ap++ = log_level_name(log_getlevel());
	if (program != NULL) {
		*ap++ = "--program";
		*ap++ = "--";
		for (p = program; *p != NULL; p++)
			*ap++ = *p;
	}
	*ap = NULL;
	memset(&sp, 0, sizeof sp);
	sp.argv = argv;
	sp.path = mprocd_self;
	sp.fds[0] = -1;
	sp.fds[1] = STDERR_FILENO;
	sp.fds[2] = STDERR_FILENO;
	sp.fds[3] = sv[1];
	sp.nfds = 4;
	if (program != NULL) {
		for (i = 0; i < 3; i++)
			sp.fds[4 + i] = theirs[i];
		sp.nfds = 7;
	}
	sp.pdeathsig = SIGTERM;
	pid = spawn_process(&sp);
	free(argv);
	close(sv[1]);
	for (i = 0; program != NULL && i < 3; i++)
		close(theirs[i]);
	if (pid == -1) {
		clog_warn(&ctx, "cannot start worker");
		close(sv[0]);
		for (i = 0; program != NULL && i < 3; i++)
			close(ours[i]);
		goto fail;
	}
	pool_channel_open(w, sv[0]);
	if (program != NULL)
		w->prog = pool_program_new(w, ours[0], ours[1], ours[2]);
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
	w->prog = s->prog;
	if (w->prog != NULL)
		pool_program_set_worker(w->prog, w);
	pool_channel_open(w, -1);
	w->said_hello = s->said_hello;
	w->reopen_log = s->reopen_log;
	pool_worker_started(w);

	s->pid = 0;
	s->bev = NULL;
	s->prog = NULL;
	s->said_hello = 0;
	s->reopen_log = 0;
	pool_worker_set_state(s, WORKER_WAITING);

	proto_pack_assign(&b, w->slot);
	pool_channel_send(w, PROTO_ASSIGN, b.data, b.len);
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
		pool_channel_close(w);
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
	pool_channel_drain(w);
	pool_channel_close(w);
	if (w->prog != NULL) {
		pool_program_drain(w->prog);
		pool_program_free(w->prog);
		w->prog = NULL;
	}
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
