/*
 * Jobs: the table of every job by id, their state machine and their output.
 *
 *   queued --(a worker takes it)--> running --(JOB_DONE)--> a final state
 *   running --(its worker died)--> queued at the front, or lost
 *   queued --(Cancel, shutdown)--> cancelled
 *
 * A job is never dropped without a final state: whoever waits for it is told,
 * and it is kept, output included, until keep_finished newer ones finished.
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "mprocd.h"
#include "util.h"
#include "varlink.h"
#include "xmalloc.h"

static struct jobs all_jobs = TAILQ_HEAD_INITIALIZER(all_jobs);
static struct jobs finished = TAILQ_HEAD_INITIALIZER(finished);
static uint64_t	   nfinished;
static int64_t	   next_id = 1;

/* Jobs by id: chained buckets, doubled as the table fills. */
static struct job **buckets;
static size_t	    nbuckets;
static size_t	    njobs;

/*
 * The most jobs held since memory was last given back. Freed jobs leave
 * holes all over the heap that free() keeps; once half of them are gone,
 * malloc_trim() returns those pages, so a burst of 100,000 queued jobs does
 * not pin 50 MiB for good.
 */
#define TRIM_MIN 4096
static size_t njobs_peak;

static const char *const state_names[] = {
	[JOB_QUEUED] = "queued",
	[JOB_RUNNING] = "running",
	[JOB_SUCCEEDED] = "succeeded",
	[JOB_FAILED] = "failed",
	[JOB_TIMEOUT] = "timeout",
	[JOB_CANCELLED] = "cancelled",
	[JOB_LOST] = "lost",
};

/* With a state database: finished jobs kept in memory, as a cache. */
#define JOB_CACHE 1000

/* The queue position of the next job put back at the front. */
static int64_t front_seq;

static void job_timer_cb(evutil_socket_t, short, void *);
static void job_arm(struct job *, uint64_t);
static void job_evict(struct job *);

/* Who a job's log records are about. */
struct log_ctx
job_ctx(const struct job *j)
{
	struct log_ctx ctx = { j->pool, j->worker[0] != '\0' ? j->worker : NULL,
		j->id };

	return ctx;
}

const char *
job_state_name(enum job_state state)
{
	if ((size_t)state < sizeof state_names / sizeof state_names[0])
		return state_names[state];
	return "unknown";
}

/* A state's number, or -1 if name is not one. */
int
job_parse_state(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof state_names / sizeof state_names[0]; i++)
		if (strcmp(name, state_names[i]) == 0)
			return (int)i;
	return -1;
}

int
job_is_finished(const struct job *j)
{
	return j->state != JOB_QUEUED && j->state != JOB_RUNNING;
}

/* What a job that ended with wait status became, given why we killed it. */
enum job_state
job_final_state(enum job_kill why, int status)
{
	switch (why) {
	case JOB_KILL_TIMEOUT:
		return JOB_TIMEOUT;
	case JOB_KILL_CANCEL:
	case JOB_KILL_SHUTDOWN:
		return JOB_CANCELLED;
	case JOB_KILL_NONE:
		break;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return JOB_SUCCEEDED;
	return JOB_FAILED;
}

static size_t
job_hash(int64_t id)
{
	return (size_t)((uint64_t)id * UINT64_C(0x9e3779b97f4a7c15) >> 32) &
	    (nbuckets - 1);
}

static void
job_table_grow(void)
{
	struct job **old = buckets, *j, *next;
	size_t	     i, n = nbuckets;

	nbuckets = n == 0 ? 1024 : n * 2;
	buckets = xcalloc(nbuckets, sizeof *buckets);
	for (i = 0; i < n; i++) {
		for (j = old[i]; j != NULL; j = next) {
			next = j->hnext;
			j->hnext = buckets[job_hash(j->id)];
			buckets[job_hash(j->id)] = j;
		}
	}
	free(old);
}

/* The job id if it is in memory (live, or finished and cached). */
struct job *
job_find_live(int64_t id)
{
	struct job *j;

	if (nbuckets == 0)
		return NULL;
	for (j = buckets[job_hash(id)]; j != NULL; j = j->hnext)
		if (j->id == id)
			return j;
	return NULL;
}

/* The job id: in memory, else read back from the state database. */
struct job *
job_find(int64_t id)
{
	struct job_row row;
	struct job    *j;

	if ((j = job_find_live(id)) != NULL || !store_is_open())
		return j;
	if (store_get(id, &row) != 1)
		return NULL;
	/* Only finished jobs leave memory; the file says otherwise: a bug. */
	if (row.state < JOB_SUCCEEDED) {
		log_warnx("job %" PRId64 " is %s in the state database but not "
			  "in memory (a bug), ignoring it",
		    id, job_state_name(row.state));
		job_store_row_free(&row);
		store_get_done();
		return NULL;
	}
	j = job_store_restore(&row);
	store_get_done();
	/* Not evicted here: a caller may hold others it found (Wait). */
	return j;
}

/*
 * The commit that held j's cancellation while queued failed: the caller
 * was answered StorageFailed, nothing done, so j is queued again, at the
 * front (the file still has it queued, in its place).
 */
void
job_uncancel(struct job *j)
{
	struct log_ctx ctx = job_ctx(j);
	struct pool   *p = pool_find(j->pool);

	j->cancel_unsaved = 0;
	if (j->state != JOB_CANCELLED || p == NULL)
		return;
	TAILQ_REMOVE(&finished, j, entry);
	nfinished--;
	pool_job_unfinished(j);
	j->state = JOB_QUEUED;
	j->finished_usec = 0;
	clog_notice(&ctx,
	    "the cancellation could not be stored; the job is "
	    "queued again");
	job_wait_reason(j, NULL);
	if (j->deps != NULL)
		j->deps->after_bad = 0;
	job_wait_admit(j); /* for its after and its lock, again */
	supervisor_changed(SUPERVISOR_DISPATCH);
}

/* Finished jobs read back for a reply go again once it is written. */
void
job_trim(void)
{
	job_evict(NULL);
}

/* Puts j in the table by id and the list of all jobs. */
void
job_link(struct job *j)
{
	size_t h;

	TAILQ_INIT(&j->watches);
	if (njobs >= nbuckets)
		job_table_grow();
	h = job_hash(j->id);
	j->hnext = buckets[h];
	buckets[h] = j;
	if (++njobs > njobs_peak)
		njobs_peak = njobs;
	TAILQ_INSERT_TAIL(&all_jobs, j, all);
}

/*
 * A new or read-back job's after (*after stolen, nafter ids) and lock, in
 * a struct job_deps only when it has either.
 */
void
job_set_deps(struct job *j, int64_t **after, size_t nafter, const char *lock)
{
	if (nafter == 0 && lock == NULL)
		return;
	j->deps = xcalloc(1, sizeof *j->deps);
	j->deps->after = *after;
	j->deps->nafter = nafter;
	*after = NULL;
	if (lock != NULL)
		j->deps->lock = xstrdup(lock);
}

/*
 * A new queued job of pool with the next id, as spec says: it takes the
 * spec's owned parts (argv, env, stdin), copies the rest.
 */
struct job *
job_new(const char *pool, struct job_spec *spec, uid_t uid)
{
	struct job *j = xcalloc(1, sizeof *j);

	j->id = next_id++;
	j->pool = xstrdup(pool);
	j->argv = spec->argv;
	spec->argv = NULL;
	j->cwd = xstrdup(spec->cwd);
	if (spec->name != NULL)
		j->name = xstrdup(spec->name);
	j->env = spec->env;
	spec->env = NULL;
	j->stdin_data = spec->stdin_data;
	j->stdin_len = spec->stdin_len;
	spec->stdin_data = NULL;
	if (spec->input != NULL)
		j->input = json_incref(spec->input);
	job_set_deps(j, &spec->after, spec->nafter, spec->lock);
	/* Else the pool's, as they are when the job starts. */
	j->timeout_given = spec->has_timeout == 1;
	j->timeout = spec->timeout;
	j->retries_given = spec->has_retries == 1;
	j->retries = spec->retries;
	j->uid = uid;
	j->state = JOB_QUEUED;
	j->exit_status = -1;
	j->submitted_usec = util_now_usec();
	j->seq = j->id;
	job_link(j);
	/* It runs once it is stored, at the end of this loop pass. */
	job_store_put(j, 1);
	return j;
}

/* Frees what a job_spec owns (what job_new() did not take). */
void
job_spec_free(struct job_spec *spec)
{
	util_strv_free(spec->argv);
	util_strv_free(spec->env);
	free(spec->stdin_data);
	free(spec->after);
	memset(spec, 0, sizeof *spec);
}

/* Frees a job that is in no queue and runs nowhere. */
void
job_free(struct job *j)
{
	struct job	**pp;
	struct job_watch *jw;

	if (j == NULL)
		return;
	job_wait_forget(j);
	lock_release(j);
	while ((jw = TAILQ_FIRST(&j->watches)) != NULL)
		job_watch_remove(jw);
	for (pp = &buckets[job_hash(j->id)]; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == j) {
			*pp = j->hnext;
			break;
		}
	}
	njobs--;
	TAILQ_REMOVE(&all_jobs, j, all);
	if (job_is_finished(j)) {
		TAILQ_REMOVE(&finished, j, entry);
		nfinished--;
	}
	if (j->timer != NULL)
		event_free(j->timer);
	util_strv_free(j->argv);
	util_strv_free(j->env);
	json_decref(j->input);
	json_decref(j->result);
	free(j->name);
	free(j->pool);
	free(j->cwd);
	free(j->stdin_data);
	free(j->out[0].data);
	free(j->out[1].data);
	if (j->live != NULL)
		free(j->live->runs);
	free(j->live);
	if (j->deps != NULL) {
		free(j->deps->after);
		free(j->deps->after_watch);
		free(j->deps->lock);
		free(j->deps);
	}
	free(j->reason);
	free(j);
	if (njobs_peak >= TRIM_MIN && njobs <= njobs_peak / 2) {
		malloc_trim(0);
		njobs_peak = njobs;
	}
}

/* At exit: every job, whatever its state (the queues went with the pools). */
void
job_free_all(void)
{
	struct job *j;

	while ((j = TAILQ_FIRST(&all_jobs)) != NULL) {
		if (job_is_finished(j)) {
			TAILQ_REMOVE(&finished, j, entry);
			nfinished--;
			j->state = JOB_QUEUED; /* no list left to leave */
		}
		job_free(j);
	}
	free(buckets);
	buckets = NULL;
	nbuckets = 0;
}

uint64_t
job_count_finished(void)
{
	return store_is_open() ? store_count_finished() : nfinished;
}

/* Whether j is of pool (NULL: any) and in state (-1: any). */
int
job_matches(const struct job *j, const char *pool, int state)
{
	return (pool == NULL || strcmp(j->pool, pool) == 0) &&
	    (state == -1 || (int)j->state == state);
}

static int
job_cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The ids of the jobs of pool (NULL: all) in state (-1: any), in order. */
int64_t *
job_ids(const char *pool, int state, size_t *n)
{
	struct job *j;
	int64_t	   *ids, *stored;
	size_t	    i = 0, k, ns = 0;

	/* The finished ones the database has, not only those in memory. */
	stored = store_ids(pool, state, &ns);
	TAILQ_FOREACH(j, &all_jobs, all)
		i += job_matches(j, pool, state);
	ids = xcalloc(i + ns + 1, sizeof *ids);
	i = 0;
	TAILQ_FOREACH(j, &all_jobs, all)
		if (job_matches(j, pool, state))
			ids[i++] = j->id;
	if (ns > 0) {
		memcpy(ids + i, stored, ns * sizeof *ids);
		qsort(ids, i + ns, sizeof *ids, job_cmp_id);
		for (k = 0, ns += i, i = 0; k < ns; k++)
			if (i == 0 || ids[i - 1] != ids[k])
				ids[i++] = ids[k];
	}
	free(stored);
	*n = i;
	return ids;
}

/* jw->cb is called once, when the job finishes (at once if it has). */
void
job_watch_add(struct job *j, struct job_watch *jw)
{
	jw->job = j;
	TAILQ_INSERT_TAIL(&j->watches, jw, entry);
}

void
job_watch_remove(struct job_watch *jw)
{
	if (jw->job == NULL)
		return;
	TAILQ_REMOVE(&jw->job->watches, jw, entry);
	jw->job = NULL;
}

/*
 * Forgets the oldest finished jobs beyond keep_finished, but never keep,
 * the one finishing now: its caller (a Cancel, say) may still use it. With
 * keep_finished 0 it goes when the next job finishes.
 */
static void
job_evict(struct job *keep)
{
	struct job *j, *next;
	uint64_t    max = cfg != NULL ? cfg->keep_finished : 0;

	/* The database keeps them; memory, only the most recent. */
	if (store_is_open() && max > JOB_CACHE)
		max = JOB_CACHE;
	/* One whose last change is not written yet stays. */
	for (j = TAILQ_FIRST(&finished); j != NULL && nfinished > max;
	     j = next) {
		next = TAILQ_NEXT(j, entry);
		if (j != keep && !j->unsaved && !j->cancel_unsaved &&
		    j->pins == 0)
			job_free(j);
	}
}

/*
 * Tells j's watchers it has finished. Those of its dependents wait while a
 * Cancel of it is not stored (it may be undone): job_store_saved() fires
 * them once it is.
 */
void
job_watch_fire(struct job *j)
{
	struct job_watches later = TAILQ_HEAD_INITIALIZER(later);
	struct job_watch  *jw;

	while ((jw = TAILQ_FIRST(&j->watches)) != NULL) {
		job_watch_remove(jw);
		if (j->cancel_unsaved && jw->after_commit) {
			TAILQ_INSERT_TAIL(&later, jw, entry);
			continue;
		}
		jw->cb(jw, j);
	}
	while ((jw = TAILQ_FIRST(&later)) != NULL) {
		TAILQ_REMOVE(&later, jw, entry);
		job_watch_add(j, jw);
	}
}

/* A follower holds j: it stays in memory until job_unpin(). */
void
job_pin(struct job *j)
{
	j->pins++;
}

void
job_unpin(struct job *j)
{
	if (j->pins > 0)
		j->pins--;
}

/* Gives a job its final state; tells its watchers; forgets old jobs. */
void
job_finish(struct job *j, enum job_state state)
{
	struct log_ctx ctx = job_ctx(j);
	char	       how[64] = "";
	uint64_t       ms = 0;

	if (j->timer != NULL)
		evtimer_del(j->timer);
	j->state = state;
	j->w = NULL;
	j->finished_usec = util_now_usec();
	job_output_trim(&j->out[0]);
	job_output_trim(&j->out[1]);
	job_output_trim_runs(j);
	/* It runs no more (unless a cancel that could not be stored is). */
	if (!j->cancel_unsaved) {
		json_decref(j->input);
		j->input = NULL;
	}
	TAILQ_INSERT_TAIL(&finished, j, entry);
	nfinished++;
	job_wait_ended(j);
	/* A cancel not stored yet may be undone: its lock waits for that. */
	if (!j->cancel_unsaved)
		lock_release(j);
	job_store_put(j, 0);
	store_crash("finish");
	pool_job_finished(j);
	if (j->signal > 0)
		snprintf(how, sizeof how, LOG_KV "signal=%d", j->signal);
	else if (j->exit_status >= 0)
		snprintf(how, sizeof how, LOG_KV "status=%d", j->exit_status);
	if (j->pid > 0)
		snprintf(how + strlen(how), sizeof how - strlen(how),
		    LOG_KV "pid=%d", (int)j->pid);
	if (j->started_mono != 0)
		ms = (util_mono_usec() - j->started_mono) / USEC_PER_MSEC;
	clog_info(&ctx,
	    "job finished" LOG_KV "state=%s%s" LOG_KV "ms=%" PRIu64 LOG_KV
	    "attempts=%u",
	    job_state_name(state), how, ms, j->attempts);

	supervisor_changed(0);
	/*
	 * Pinned while its watchers run: ending its dependents ends others,
	 * whose evictions must not free it under this loop.
	 */
	job_pin(j);
	job_watch_fire(j);
	job_unpin(j);
	if (cfg != NULL)
		job_evict(j);
}

/* Its worker says the job's process has this pid (JOB_STARTED). */
void
job_set_pid(struct job *j, pid_t pid)
{
	j->pid = pid;
}

/* A program's answer to the job (the reference is taken; NULL: none). */
void
job_set_result(struct job *j, json_t *result)
{
	json_decref(j->result);
	j->result = result;
}

/* A worker has been sent the job. */
void
job_started(struct job *j, struct worker *w)
{
	struct log_ctx ctx;

	j->state = JOB_RUNNING;
	j->w = w;
	j->attempts++;
	j->pid = 0;
	j->exit_status = -1;
	j->signal = 0;
	j->kill = JOB_KILL_NONE;
	j->kill_signal = 0;
	job_output_restart(j);
	job_set_result(j, NULL);
	/* A reload changes max_output for jobs that start after it. */
	job_output_live(j)->max_output = w->pool->cfg.max_output;
	j->started_usec = util_now_usec();
	j->started_mono = util_mono_usec();
	snprintf(j->worker, sizeof j->worker, "%s", w->name);
	/* A reload changes the pool's limits for jobs that start after it. */
	if (!j->timeout_given)
		j->timeout = w->pool->cfg.job_timeout;
	if (!j->retries_given)
		j->retries = w->pool->cfg.retries;
	job_store_put(j, 0); /* its attempt counts, should mprocd die */
	ctx = job_ctx(j);
	clog_debug(&ctx, "job started" LOG_KV "attempt=%u", j->attempts);
	supervisor_changed(0);
	if (j->timeout != 0)
		job_arm(j, j->timeout);
}

/* The worker reports the job's process ended with wait status. */
void
job_done(struct job *j, int status, int truncated)
{
	if (WIFEXITED(status))
		j->exit_status = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		j->signal = WTERMSIG(status);
	if (truncated)
		j->truncated = 1;
	if (job_store_shutdown(j))
		return;
	job_finish(j, job_final_state(j->kill, status));
}

/* Its worker died while running it: run it again, or it is lost. */
void
job_worker_died(struct job *j)
{
	struct log_ctx ctx = job_ctx(j);
	struct pool   *p;

	if (j->timer != NULL)
		evtimer_del(j->timer);
	j->w = NULL;
	/*
	 * Its process group is ours to reap now (we are a subreaper). A job
	 * that had not called setsid() yet is only its own process.
	 */
	if (j->pid > 0 && kill(-j->pid, SIGKILL) == -1 && errno == ESRCH)
		kill(j->pid, SIGKILL);
	if (job_store_shutdown(j))
		return;
	if (j->kill != JOB_KILL_NONE) {
		/* Ended by our signal (a program's call always ends so). */
		if (j->signal == 0 && j->kill_signal != 0)
			j->signal = j->kill_signal;
		job_finish(j, job_final_state(j->kill, 0));
		return;
	}
	if (mprocd_shutting_down && !store_is_open()) {
		job_finish(j, JOB_CANCELLED);
		return;
	}
	if (j->attempts <= j->retries && (p = pool_find(j->pool)) != NULL) {
		clog_warnx(&ctx,
		    "%s; running the job again" LOG_KV "attempt=%u" LOG_KV
		    "attempts_max=%" PRIu64,
		    mprocd_shutting_down ? "mprocd stopped while it ran"
					 : "the job's worker died",
		    j->attempts + 1, j->retries + 1);
		j->state = JOB_QUEUED;
		j->pid = 0;
		j->seq = job_front_seq(0);
		pool_enqueue(p, j, 1);
		job_store_put(j, 0);
		if (!mprocd_shutting_down)
			pool_dispatch(p);
		return;
	}
	clog_warnx(&ctx, "the job's worker died; job lost" LOG_KV "attempts=%u",
	    j->attempts);
	job_wait_reason(j, "worker died; no retries left");
	job_finish(j, JOB_LOST);
}

static void
job_arm(struct job *j, uint64_t usec)
{
	struct timeval tv;

	/* Made at the first need: most queued jobs never wait for one. */
	if (j->timer == NULL) {
		if (ev_base == NULL)
			return; /* unit tests run no loop */
		j->timer = evtimer_new(ev_base, job_timer_cb, j);
	}
	tv = util_timeval(usec);
	evtimer_add(j->timer, &tv);
}

static uint64_t
job_kill_grace(const struct job *j)
{
	struct pool *p = pool_find(j->pool);

	return p != NULL ? p->cfg.kill_grace : 5 * USEC_PER_SEC;
}

/*
 * Ends a job for why: a queued one at once, a running one by SIGTERM to its
 * process group and SIGKILL after kill_grace. The first reason sticks.
 */
void
job_kill(struct job *j, enum job_kill why)
{
	struct log_ctx ctx = job_ctx(j);
	char	       took[UTIL_FMTLEN];

	switch (j->state) {
	case JOB_QUEUED:
		if (why == JOB_KILL_TIMEOUT)
			return;
		pool_dequeue(j);
		/* Undone if its commit fails (job_uncancel). */
		j->cancel_unsaved = store_is_open();
		job_finish(j, JOB_CANCELLED);
		return;
	case JOB_RUNNING:
		break;
	default:
		return;
	}
	if (j->kill == JOB_KILL_NONE)
		j->kill = why;
	if (j->kill_signal != 0)
		return;
	if (why == JOB_KILL_TIMEOUT)
		clog_notice(&ctx,
		    "job timed out, sending SIGTERM" LOG_KV "timeout=%s",
		    util_format_duration(j->timeout, took, sizeof took));
	else
		clog_debug(&ctx, "%s the job: sending SIGTERM",
		    why == JOB_KILL_CANCEL ? "cancelling" : "shutting down");
	j->kill_signal = SIGTERM;
	pool_worker_signal_job(j->w, j, SIGTERM);
	job_arm(j, job_kill_grace(j));
}

static void
job_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct job    *j = arg;
	struct log_ctx ctx = job_ctx(j);
	char	       grace[UTIL_FMTLEN];

	if (j->state != JOB_RUNNING)
		return;
	util_format_duration(job_kill_grace(j), grace, sizeof grace);
	switch (j->kill_signal) {
	case 0:
		job_kill(j, JOB_KILL_TIMEOUT);
		break;
	case SIGTERM:
		clog_notice(&ctx,
		    "job still running after SIGTERM, "
		    "sending SIGKILL" LOG_KV "kill_grace=%s",
		    grace);
		j->kill_signal = SIGKILL;
		pool_worker_signal_job(j->w, j, SIGKILL);
		job_arm(j, job_kill_grace(j));
		break;
	default:
		/* The worker does not answer: kill both, it ends as a crash. */
		clog_warnx(&ctx,
		    "worker did not end the job after SIGKILL, "
		    "killing the worker" LOG_KV "kill_grace=%s",
		    grace);
		if (j->pid > 0)
			kill(-j->pid, SIGKILL);
		pool_worker_kill(j->w);
		break;
	}
}

/* The ids from here on come after the largest ever given. */
void
job_set_next_id(int64_t id)
{
	if (id > next_id)
		next_id = id;
}

/* Puts a finished job (read back from the database) in the cache. */
void
job_cache_add(struct job *j)
{
	TAILQ_INSERT_TAIL(&finished, j, entry);
	nfinished++;
}

/*
 * The queue position of a job put back at the front: before any other.
 * seq, from a job read back, is one to stay before.
 */
int64_t
job_front_seq(int64_t seq)
{
	if (seq != 0) {
		if (seq <= front_seq)
			front_seq = seq - 1;
		return seq;
	}
	return --front_seq;
}
