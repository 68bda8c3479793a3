/*
 * Pools: their queues of jobs, dispatch to idle workers, their size (slots
 * and spares) brought to what the configuration says, and the tally of
 * recent worker deaths that marks a pool degraded. A pool's state is
 * changed only here; pool-worker.c is the supervisor's handle on each of
 * its workers.
 *
 * Most of a restart is the exec of a new worker, so a pool also keeps
 * spare_workers spares: workers started ahead, in no slot. Their deaths are
 * counted and backed off by the same rules, in a position of their own. A
 * spare's position starts another once no slot of the pool is starting, so
 * that its exec slows no start.
 */
#include "config.h"

#include <sys/param.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mprocd.h"
#include "proto.h"
#include "util.h"
#include "xmalloc.h"

struct pools pools = TAILQ_HEAD_INITIALIZER(pools);

/* Deaths in the window (now - crash_interval, now]. */
static uint64_t
pool_recent_deaths(const struct pool *p, uint64_t now, uint64_t *oldest)
{
	uint64_t cap = p->cfg.crash_limit + 1, i, n = 0, d;

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
	struct log_ctx ctx = { p->name, NULL, 0 };
	char	       iv[UTIL_FMTLEN], max[UTIL_FMTLEN];

	if (degraded == p->degraded)
		return;
	p->degraded = degraded;
	if (degraded)
		clog_warnx(&ctx,
		    "pool degraded: more worker deaths than "
		    "crash_limit within crash_interval; restarting each at "
		    "restart_delay_max" LOG_KV "deaths=%" PRIu64 LOG_KV
		    "crash_limit=%" PRIu64 LOG_KV "crash_interval=%s" LOG_KV
		    "restart_delay_max=%s",
		    ndeaths, p->cfg.crash_limit,
		    util_format_duration(p->cfg.crash_interval, iv, sizeof iv),
		    util_format_duration(p->cfg.restart_delay_max, max,
			sizeof max));
	else
		clog_notice(&ctx,
		    "pool recovered" LOG_KV "crash_limit=%" PRIu64 LOG_KV
		    "crash_interval=%s",
		    p->cfg.crash_limit,
		    util_format_duration(p->cfg.crash_interval, iv, sizeof iv));
	supervisor_changed(SUPERVISOR_NOW);
}

/*
 * Re-evaluates the tally at monotonic time now; while degraded, checks
 * again when the oldest recent death leaves the window.
 */
static void
pool_check_degraded(struct pool *p, uint64_t now)
{
	uint64_t       oldest, n, left;
	struct timeval tv;

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
 * A worker of the pool died unexpectedly at monotonic time now: a restart
 * of one of its slots, unless it was a spare, and a death in the tally.
 * Returns whether the pool is degraded.
 */
int
pool_note_death(struct pool *p, int spare, uint64_t now)
{
	if (!spare)
		p->restarts++;
	return pool_record_death(p, now);
}

/*
 * Counts one worker death at monotonic time now. Returns whether the pool
 * is degraded: more than crash_limit deaths within crash_interval.
 */
int
pool_record_death(struct pool *p, uint64_t now)
{
	uint64_t cap = p->cfg.crash_limit + 1;

	p->deaths[p->ndeaths % cap] = now;
	p->ndeaths++;
	pool_check_degraded(p, now);
	return p->degraded;
}

struct pool *
pool_new(const struct pool_config *pc)
{
	struct pool *p = xcalloc(1, sizeof *p);

	p->name = xstrdup(pc->name);
	config_pool_copy(&p->cfg, pc);
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
	struct worker *w;

	if (p == NULL)
		return;
	while ((w = TAILQ_FIRST(&p->workers)) != NULL)
		pool_worker_free(w);
	while ((w = TAILQ_FIRST(&p->spares)) != NULL)
		pool_worker_free(w);
	TAILQ_REMOVE(&pools, p, entry);
	if (p->timer != NULL)
		event_free(p->timer);
	free(p->deaths);
	config_pool_clear(&p->cfg);
	free(p->name);
	free(p);
}

struct pool *
pool_find(const char *name)
{
	struct pool *p;

	TAILQ_FOREACH(p, &pools, entry)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

/*
 * The pool's workers, those of slots and then the spares; w NULL for the
 * first. (Not for a loop that frees them.)
 */
struct worker *
pool_next_worker(struct pool *p, struct worker *w)
{
	struct worker *n;

	n = w == NULL ? TAILQ_FIRST(&p->workers) : TAILQ_NEXT(w, entry);
	if (n == NULL && (w == NULL || !w->spare))
		n = TAILQ_FIRST(&p->spares);
	return n;
}

/* Queues a job at the back (or, for a retry, the front) of its pool. */
void
pool_enqueue(struct pool *p, struct job *j, int front)
{
	struct job *at;

	/* One that waited goes back to its place (seq): FIFO, as submitted. */
	if (front == POOL_ENQUEUE_ORDERED &&
	    ((at = TAILQ_LAST(&p->queue, jobs)) == NULL || at->seq < j->seq))
		front = 0; /* a new job, or none before it: at the end */
	else if (front == POOL_ENQUEUE_ORDERED) {
		/*
		 * From the last put back in its place if it is older: a fan
		 * of dependents comes back in order, each one step on.
		 */
		at = p->placed != NULL && p->placed->seq < j->seq
		    ? TAILQ_NEXT(p->placed, entry)
		    : TAILQ_FIRST(&p->queue);
		for (; at != NULL; at = TAILQ_NEXT(at, entry))
			if (at->seq > j->seq)
				break;
		p->placed = j;
		if (at != NULL) {
			TAILQ_INSERT_BEFORE(at, j, entry);
			p->nqueued++;
			supervisor_changed(0);
			return;
		}
		front = 0;
	}
	if (front)
		TAILQ_INSERT_HEAD(&p->queue, j, entry);
	else
		TAILQ_INSERT_TAIL(&p->queue, j, entry);
	p->nqueued++;
	supervisor_changed(0);
}

/* The pool a Submit without "pool" goes to: "default", else the first. */
struct pool *
pool_default(void)
{
	struct pool *p;

	if ((p = pool_find("default")) != NULL && !p->removed)
		return p;
	TAILQ_FOREACH(p, &pools, entry)
		if (!p->removed)
			return p;
	return NULL;
}

/* p's queued jobs: in its queue, and waiting for jobs or a lock. */
static uint64_t
pool_backlog(const struct pool *p)
{
	return p->nqueued + p->nwait_after + p->nwait_lock;
}

/*
 * Admits a job to pool p (NULL: there is no such pool) and queues it at
 * the back: a new job from spec, whose owned parts it takes. Returns NULL
 * with why set if the pool refuses it; then no id is used. The caller
 * dispatches, once it has answered.
 */
struct job *
pool_submit(struct pool *p, struct job_spec *spec, uid_t uid,
    enum pool_refusal *why)
{
	struct job *j;

	if (mprocd_shutting_down)
		*why = POOL_SHUTTING_DOWN;
	else if (p == NULL || p->removed) /* a removed pool only drains */
		*why = POOL_NO_SUCH;
	else if (pool_backlog(p) >= p->cfg.queue_limit)
		*why = POOL_FULL;
	else
		*why = POOL_ACCEPTED;
	if (*why != POOL_ACCEPTED)
		return NULL;
	j = job_new(p->name, spec, uid);
	job_wait_admit(j);
	return j;
}

/* Takes queued job j out of p's queue. */
static void
pool_unqueue(struct pool *p, struct job *j)
{
	TAILQ_REMOVE(&p->queue, j, entry);
	p->nqueued--;
	if (p->placed == j)
		p->placed = NULL;
}

/* Takes a queued job out of its pool's queue. */
void
pool_dequeue(struct job *j)
{
	struct pool *p = pool_find(j->pool);

	if (j->state != JOB_QUEUED)
		return;
	if (j->wait != JOB_WAIT_NONE)
		job_wait_forget(j);
	else if (p != NULL)
		pool_unqueue(p, j);
}

/* A job of the pool's reached its final state: count it. */
void
pool_job_finished(const struct job *j)
{
	struct pool *p = pool_find(j->pool);

	if (p == NULL)
		return;
	switch (j->state) {
	case JOB_SUCCEEDED:
		p->succeeded++;
		break;
	case JOB_CANCELLED:
		p->cancelled++;
		break;
	default:
		p->failed++;
		break;
	}
}

/* A cancellation taken back (job_uncancel): the count goes back too. */
void
pool_job_unfinished(const struct job *j)
{
	struct pool *p = pool_find(j->pool);

	if (p != NULL && j->state == JOB_CANCELLED && p->cancelled > 0)
		p->cancelled--;
}

/* Shutdown without a job to run: every queued job ends cancelled. */
void
pool_cancel_queued(struct pool *p)
{
	struct job *j;

	while ((j = TAILQ_FIRST(&p->queue)) != NULL)
		job_kill(j, JOB_KILL_SHUTDOWN);
}

/* Gives queued jobs to idle workers, oldest job first. */
void
pool_dispatch(struct pool *p)
{
	struct worker *w;
	struct job    *j;

	if (mprocd_shutting_down)
		return;
	TAILQ_FOREACH(w, &p->workers, entry) {
		/* Not yet stored: it runs once this pass has committed. */
		if ((j = TAILQ_FIRST(&p->queue)) == NULL || j->unsaved)
			break;
		/* One whose channel is gone is dying: SIGCHLD will tell. */
		if (w->state != WORKER_IDLE || w->stop != STOP_NONE ||
		    w->bev == NULL ||
		    (w->prog != NULL && !pool_program_usable(w->prog)))
			continue;
		pool_unqueue(p, j);
		pool_worker_run(w, j);
	}
}

/* Kills every running job for why (shutdown_timeout passed, or forced). */
void
pool_kill_running(enum job_kill why)
{
	struct pool   *p;
	struct worker *w;

	TAILQ_FOREACH(p, &pools, entry)
		TAILQ_FOREACH(w, &p->workers, entry)
			if (w->job != NULL)
				job_kill(w->job, why);
}

uint64_t
pool_count_queued(void)
{
	struct pool *p;
	uint64_t     n = 0;

	TAILQ_FOREACH(p, &pools, entry)
		n += pool_backlog(p);
	return n;
}

/*
 * Starts the spares that wait, once no slot of the pool is starting: so
 * that their exec slows neither a pool's start (nor READY=1) nor a slot
 * taking a spare. They start at the loop's next pass, after what is
 * pending now (a job just dispatched, a reply).
 */
void
pool_start_spares(struct pool *p)
{
	struct worker *w;

	if (mprocd_shutting_down)
		return;
	TAILQ_FOREACH(w, &p->workers, entry)
		if (w->state == WORKER_STARTING)
			return;
	TAILQ_FOREACH(w, &p->spares, entry)
		if (w->state == WORKER_WAITING)
			pool_worker_start_soon(w);
}

/*
 * Whether a worker will still hold its place: not being stopped, or being
 * recycled (it comes back in its slot). These are what a pool's size
 * counts, and what may be retired.
 */
static int
pool_keeps(const struct worker *w)
{
	return w->stop == STOP_NONE || w->stop == STOP_RECYCLE;
}

/*
 * Of the workers in list that it keeps, the one rank() puts highest (the
 * highest slot of those): the next to retire.
 */
static struct worker *
pool_pick_retiree(struct workers *list, int (*rank)(const struct worker *))
{
	struct worker *w, *pick = NULL;
	int	       r, best = -1;

	TAILQ_FOREACH(w, list, entry) {
		if (!pool_keeps(w))
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
pool_spare_rank(const struct worker *w)
{
	return w->pid <= 0 ? 3 : w->state == WORKER_STARTING ? 2 : 1;
}

/* Idle workers go first, then those not started, then busy ones. */
static int
pool_slot_rank(const struct worker *w)
{
	return w->state == WORKER_IDLE ? 3 : w->state == WORKER_BUSY ? 1 : 2;
}

/* Nothing queued in p, nor waiting to be. */
static int
pool_drained(const struct pool *p)
{
	return TAILQ_EMPTY(&p->queue) && p->nwait_after == 0 &&
	    p->nwait_lock == 0;
}

/*
 * Brings the pool's spares to spare_workers (none for a removed pool),
 * retiring first those least ready: without a process, then starting. New
 * ones start once the slots are up.
 */
static void
pool_trim_spares(struct pool *p)
{
	struct worker *w;
	unsigned int   kept = 0, target = p->cfg.spare_workers;

	if (p->removed)
		target = 0;
	TAILQ_FOREACH(w, &p->spares, entry)
		if (w->stop == STOP_NONE)
			kept++;
	for (; kept > target; kept--)
		pool_worker_stop(pool_pick_retiree(&p->spares, pool_spare_rank),
		    STOP_RETIRE);
	for (; kept < target; kept++)
		pool_worker_new_spare(p);
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
	struct log_ctx ctx = { p->name, NULL, 0 };
	struct worker *w, *pick;
	unsigned int   kept = 0, target = p->cfg.workers, slot;

	if (mprocd_shutting_down)
		return;
	TAILQ_FOREACH(w, &p->workers, entry)
		if (pool_keeps(w))
			kept++;
	/* A removed pool drains: the jobs queued, those waiting too. */
	if (p->removed)
		target = pool_drained(p) ? 0 : MAX(kept, 1);
	for (; kept > target; kept--) {
		pick = pool_pick_retiree(&p->workers, pool_slot_rank);
		if (pick->state == WORKER_BUSY)
			pool_worker_stop_later(pick, STOP_RETIRE);
		else
			pool_worker_stop(pick, STOP_RETIRE);
	}
	for (; kept < target; kept++) {
		/* A busy worker due to retire is kept rather than a new one. */
		TAILQ_FOREACH(w, &p->workers, entry)
			if (w->state == WORKER_BUSY && w->stop == STOP_RETIRE)
				break;
		if (w != NULL) {
			pool_worker_stop_later(w, STOP_NONE);
			continue;
		}
		for (slot = 0;; slot++) {
			TAILQ_FOREACH(w, &p->workers, entry)
				if (w->slot == slot)
					break;
			if (w == NULL)
				break;
		}
		pool_worker_restart(pool_worker_new(p, slot));
	}
	pool_trim_spares(p);
	if (p->removed && TAILQ_EMPTY(&p->workers) && TAILQ_EMPTY(&p->spares) &&
	    pool_drained(p)) {
		clog_info(&ctx, "pool removed, its jobs done");
		pool_free(p);
	}
	supervisor_changed(0);
}

/*
 * The pool's program changed: each process is replaced by one that runs
 * the new program, an idle one now, a busy one when its job ends; a worker
 * without a process starts the new one anyway.
 */
static void
pool_renew(struct pool *p)
{
	struct worker *w, *next;

	for (w = pool_next_worker(p, NULL); w != NULL; w = next) {
		next = pool_next_worker(p, w);
		if (w->state == WORKER_BUSY && w->stop == STOP_NONE)
			pool_worker_stop_later(w, STOP_RECYCLE);
		else if (w->state == WORKER_IDLE || w->state == WORKER_STARTING)
			pool_worker_stop(w, STOP_RECYCLE);
	}
}

/*
 * A reload's new settings for a pool: its size now, other limits for jobs
 * that start from now on. A pool being removed is taken back.
 */
void
pool_apply(struct pool *p, const struct pool_config *pc)
{
	uint64_t crash_limit = p->cfg.crash_limit;
	int	 renew = !util_strv_equal(p->cfg.program, pc->program);

	config_pool_copy(&p->cfg, pc);
	p->cfg.name = p->name;
	p->removed = 0;
	if (renew)
		pool_renew(p);
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
	struct proto_buf b;
	struct pool	*p;
	struct worker	*w;

	proto_pack_log_level(&b, (uint32_t)level);
	TAILQ_FOREACH(p, &pools, entry)
		POOL_FOREACH_WORKER(w, p)
			pool_channel_send(w, PROTO_LOG_LEVEL, b.data, b.len);
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
	struct worker *w;
	unsigned int   slot;

	for (slot = 0; slot < p->cfg.workers; slot++) {
		w = pool_worker_new(p, slot);
		pool_worker_spawn(w);
	}
	pool_trim_spares(p);
}

void
pool_stop(struct pool *p, enum worker_stop why)
{
	struct worker *w, *next;

	TAILQ_FOREACH_SAFE(w, &p->workers, entry, next) {
		/* At shutdown a running job gets shutdown_timeout to end. */
		if (w->state == WORKER_BUSY && why == STOP_SHUTDOWN) {
			pool_worker_stop_later(w, why);
			continue;
		}
		pool_worker_stop(w, why);
	}
	TAILQ_FOREACH_SAFE(w, &p->spares, entry, next)
		pool_worker_stop(w, why);
	if (p->timer != NULL)
		evtimer_del(p->timer);
}

struct worker *
pool_find_worker(pid_t pid)
{
	struct pool   *p;
	struct worker *w;

	TAILQ_FOREACH(p, &pools, entry)
		POOL_FOREACH_WORKER(w, p)
			if (w->pid == pid)
				return w;
	return NULL;
}

/* A slot's worker with a process: STATUS= and the log count these. */
static int
pool_match_live(const struct worker *w)
{
	return !w->spare && w->pid > 0;
}

/* A process of ours, spares too: mprocd exits once none is left. */
static int
pool_match_process(const struct worker *w)
{
	return w->pid > 0;
}

/* READY=1 waits for slots' workers, not for spares. */
static int
pool_match_starting(const struct worker *w)
{
	return !w->spare && w->state == WORKER_STARTING;
}

static int
pool_match_busy(const struct worker *w)
{
	return w->job != NULL;
}

/* Workers of every pool, spares too, that match. */
static unsigned int
pool_count(int (*match)(const struct worker *))
{
	struct pool   *p;
	struct worker *w;
	unsigned int   n = 0;

	TAILQ_FOREACH(p, &pools, entry)
		POOL_FOREACH_WORKER(w, p)
			if (match(w))
				n++;
	return n;
}

/* Slots' workers with a process (see pool_match_live). */
unsigned int
pool_count_live(void)
{
	return pool_count(pool_match_live);
}

/* Processes of ours not yet reaped: slots' workers and spares. */
unsigned int
pool_count_processes(void)
{
	return pool_count(pool_match_process);
}

/* Workers started but not yet ready. */
unsigned int
pool_count_starting(void)
{
	return pool_count(pool_match_starting);
}

/* Workers running a job. */
unsigned int
pool_count_busy(void)
{
	return pool_count(pool_match_busy);
}

/* Has every worker, spares and stopping ones too, reopen its log file. */
void
pool_reopen_logs(void)
{
	struct pool   *p;
	struct worker *w;

	TAILQ_FOREACH(p, &pools, entry)
		POOL_FOREACH_WORKER(w, p) {
			pool_worker_reopen_log(w);
		}
}

/* A child was reaped. Returns 1 if it was one of our workers. */
int
pool_child_exited(pid_t pid, int status)
{
	struct pool   *p, *retired;
	struct worker *w;

	if (pid <= 0)
		return 0;
	if ((w = pool_find_worker(pid)) == NULL)
		return 0;
	p = w->pool;
	retired = pool_worker_exited(w, status);
	pool_start_spares(p);
	if (retired != NULL)
		pool_trim(retired); /* a removed pool may go */
	supervisor_changed(SUPERVISOR_WORKERS);
	return 1;
}

json_t *
pool_status_json(const struct pool *p)
{
	json_t		    *jp, *workers = json_array();
	const struct worker *w;
	json_int_t	     running = 0;

	TAILQ_FOREACH(w, &p->workers, entry) {
		json_array_append_new(workers, pool_worker_json(w));
		if (w->job != NULL)
			running++;
	}
	jp = json_object();
	json_object_set_new(jp, "name", json_string(p->name));
	json_object_set_new(jp, "size", json_integer(p->cfg.workers));
	json_object_set_new(jp, "degraded", json_boolean(p->degraded));
	json_object_set_new(jp, "program",
	    p->cfg.program_text != NULL ? json_string(p->cfg.program_text)
					: json_null());
	json_object_set_new(jp, "queued",
	    json_integer((json_int_t)pool_backlog(p)));
	json_object_set_new(jp, "waiting_after",
	    json_integer((json_int_t)p->nwait_after));
	json_object_set_new(jp, "waiting_lock",
	    json_integer((json_int_t)p->nwait_lock));
	json_object_set_new(jp, "running", json_integer(running));
	json_object_set_new(jp, "succeeded",
	    json_integer((json_int_t)p->succeeded));
	json_object_set_new(jp, "failed", json_integer((json_int_t)p->failed));
	json_object_set_new(jp, "cancelled",
	    json_integer((json_int_t)p->cancelled));
	json_object_set_new(jp, "restarts",
	    json_integer((json_int_t)p->restarts));
	json_object_set_new(jp, "workers", workers);
	return jp;
}
