/*
 * Why a queued job may not start yet, and why a job ended as it did.
 *
 * A job whose after names jobs not finished waits outside its pool's
 * queue, with a watch on each; when the last has finished it runs if all
 * succeeded, else it ends cancelled, its reason naming the first that did
 * not. A job with a lock then waits for it (lock.c), also outside the
 * queue. So the queue holds only jobs that may start, and dispatch never
 * scans past ones that may not: waiting jobs let those behind them pass.
 *
 * A cancelled job's dependents end in turn, and theirs: a chain of a
 * million would recurse a million deep, so they are settled from a list,
 * one at a time, by whoever came first.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mprocd.h"
#include "util.h"
#include "varlink.h"
#include "xmalloc.h"

/* Jobs waiting for their after or their lock, oldest first. */
static struct jobs job_wait_list = TAILQ_HEAD_INITIALIZER(job_wait_list);

/* Jobs whose after have all finished, to be settled in turn. */
static struct job **job_wait_settle_v;
static size_t	    job_wait_settle_n, job_wait_settle_size;
static int	    job_wait_settling;

/* Sets why j ended as it did (or NULL). */
void
job_wait_reason(struct job *j, const char *fmt, ...)
{
	va_list ap;

	free(j->reason);
	j->reason = NULL;
	if (fmt == NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&j->reason, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
}

static void
job_wait_count(struct job *j, enum job_wait wait, int delta)
{
	struct pool *p = pool_find(j->pool);

	if (p == NULL)
		return;
	if (wait == JOB_WAIT_AFTER)
		p->nwait_after += (uint64_t)(int64_t)delta;
	else if (wait == JOB_WAIT_LOCK)
		p->nwait_lock += (uint64_t)(int64_t)delta;
	if (p->removed && delta < 0)
		supervisor_changed(SUPERVISOR_TRIM);
}

/* j waits (for its after, or its lock). */
static void
job_wait_set(struct job *j, enum job_wait wait)
{
	job_wait_count(j, j->wait, -1);
	j->wait = wait;
	job_wait_count(j, wait, 1);
	supervisor_changed(0);
}

/*
 * j may start as far as its after goes: it waits for its lock, or (lock.c
 * calls again once it holds it) goes into its pool's queue in its place.
 * Its pool runs it at the end of this loop pass.
 */
void
job_wait_ready(struct job *j)
{
	struct pool *p = pool_find(j->pool);

	if (j->deps->lock != NULL && !j->deps->lock_held) {
		job_wait_set(j, JOB_WAIT_LOCK);
		lock_wait(j); /* may grant it at once: it comes back here */
		return;
	}
	job_wait_set(j, JOB_WAIT_NONE);
	TAILQ_REMOVE(&job_wait_list, j, deps->wait_entry);
	if (p == NULL) {
		/* Its pool went in a reload while it waited. */
		job_wait_reason(j, "its pool %s is gone", j->pool);
		job_finish(j, JOB_CANCELLED);
		return;
	}
	pool_enqueue(p, j, POOL_ENQUEUE_ORDERED);
	supervisor_changed(SUPERVISOR_DISPATCH);
}

/* How a job that did not succeed ended, for its dependents' reason. */
static const char *
job_wait_how(enum job_state state)
{
	switch (state) {
	case JOB_FAILED:
		return "failed";
	case JOB_TIMEOUT:
		return "timed out";
	case JOB_CANCELLED:
		return "was cancelled";
	case JOB_LOST:
		return "was lost";
	default:
		return "did not succeed";
	}
}

/*
 * All of j's after have finished: it runs if all succeeded, else it ends
 * cancelled. Settled one at a time from a list: cancelling j finishes it,
 * which settles its own dependents.
 */
static void
job_wait_settle(struct job *j)
{
	if (job_wait_settle_n == job_wait_settle_size) {
		job_wait_settle_size = job_wait_settle_size == 0
		    ? 64
		    : job_wait_settle_size * 2;
		job_wait_settle_v = xreallocarray(job_wait_settle_v,
		    job_wait_settle_size, sizeof *job_wait_settle_v);
	}
	job_wait_settle_v[job_wait_settle_n++] = j;
	if (job_wait_settling)
		return;
	job_wait_settling = 1;
	/* Any order will do: each is settled on its own. */
	while (job_wait_settle_n > 0) {
		j = job_wait_settle_v[--job_wait_settle_n];
		free(j->deps->after_watch);
		j->deps->after_watch = NULL;
		if (j->deps->after_bad == 0) {
			job_wait_ready(j);
			continue;
		}
		job_wait_set(j, JOB_WAIT_NONE);
		TAILQ_REMOVE(&job_wait_list, j, deps->wait_entry);
		job_wait_reason(j, "job %" PRId64 " %s", j->deps->after_bad,
		    job_wait_how(j->deps->after_bad_state));
		job_finish(j, JOB_CANCELLED);
	}
	job_wait_settling = 0;
}

/* Notes how a job of j's after ended: the first not to succeed counts. */
static void
job_wait_note(struct job *j, const struct job *dep)
{
	if (dep->state != JOB_SUCCEEDED && j->deps->after_bad == 0) {
		j->deps->after_bad = dep->id;
		j->deps->after_bad_state = dep->state;
	}
}

/* One of j's after has finished. */
static void
job_wait_after_done(struct job_watch *jw, struct job *dep)
{
	struct job *j = jw->arg;

	job_wait_note(j, dep);
	if (--j->deps->after_left == 0)
		job_wait_settle(j);
}

/*
 * A new job (or one read back at start, still queued): it waits for those
 * of its after not finished, or is settled now. One of after that is gone
 * (pruned since) counts as succeeded: Submit found it.
 */
void
job_wait_admit(struct job *j)
{
	struct pool *p;
	struct job  *dep;
	size_t	     i;

	/* Most jobs: to the end of the queue, at once (the caller runs it). */
	if (j->deps == NULL) {
		if ((p = pool_find(j->pool)) != NULL)
			pool_enqueue(p, j, POOL_ENQUEUE_ORDERED);
		else {
			job_wait_reason(j, "its pool %s is gone", j->pool);
			job_finish(j, JOB_CANCELLED);
		}
		return;
	}
	TAILQ_INSERT_TAIL(&job_wait_list, j, deps->wait_entry);
	job_wait_set(j, JOB_WAIT_AFTER);
	if (j->deps->nafter == 0) {
		job_wait_ready(j);
		return;
	}
	j->deps->after_watch = xcalloc(j->deps->nafter,
	    sizeof *j->deps->after_watch);
	j->deps->after_left = 1; /* held while the watches go on */
	for (i = 0; i < j->deps->nafter; i++) {
		if ((dep = job_find(j->deps->after[i])) == NULL)
			continue;
		if (job_is_finished(dep)) {
			job_wait_note(j, dep);
			continue;
		}
		j->deps->after_watch[i].cb = job_wait_after_done;
		j->deps->after_watch[i].arg = j;
		j->deps->after_watch[i].after_commit = 1;
		job_watch_add(dep, &j->deps->after_watch[i]);
		j->deps->after_left++;
	}
	if (--j->deps->after_left == 0)
		job_wait_settle(j);
}

/* j leaves the queue (cancelled, forgotten): it waits no more. */
void
job_wait_forget(struct job *j)
{
	size_t i;

	if (j->wait == JOB_WAIT_NONE)
		return;
	if (j->wait == JOB_WAIT_LOCK)
		lock_unwait(j);
	for (i = 0; j->deps->after_watch != NULL && i < j->deps->nafter; i++)
		job_watch_remove(&j->deps->after_watch[i]);
	free(j->deps->after_watch);
	j->deps->after_watch = NULL;
	j->deps->after_left = 0;
	job_wait_set(j, JOB_WAIT_NONE);
	TAILQ_REMOVE(&job_wait_list, j, deps->wait_entry);
}

/* Why j ended as it did, unless whoever ended it said. */
void
job_wait_ended(struct job *j)
{
	char t[UTIL_FMTLEN];

	if (j->reason != NULL)
		return;
	switch (j->state) {
	case JOB_FAILED:
		if (j->signal > 0)
			job_wait_reason(j, "killed by signal %d (SIG%s)",
			    j->signal,
			    sigabbrev_np(j->signal) != NULL
				? sigabbrev_np(j->signal)
				: "?");
		else if (j->exit_status == 127)
			job_wait_reason(j,
			    "exit status 127 (not found, or "
			    "could not be run)");
		else if (j->exit_status > 0)
			job_wait_reason(j, "exit status %d", j->exit_status);
		break;
	case JOB_TIMEOUT:
		job_wait_reason(j, "timed out after %s",
		    util_format_duration(j->timeout, t, sizeof t));
		break;
	case JOB_CANCELLED:
		job_wait_reason(j, "cancelled");
		break;
	default:
		break;
	}
}

/* At shutdown without a state database: the waiting jobs end cancelled. */
void
job_wait_cancel_all(void)
{
	struct job *j;

	while ((j = TAILQ_FIRST(&job_wait_list)) != NULL) {
		job_wait_reason(j, "mprocd stopped");
		job_kill(j, JOB_KILL_SHUTDOWN);
	}
}

/* The first of j's after not finished yet. */
static int64_t
job_wait_first_after(const struct job *j)
{
	size_t i;

	for (i = 0; j->deps->after_watch != NULL && i < j->deps->nafter; i++)
		if (j->deps->after_watch[i].job != NULL)
			return j->deps->after[i];
	return 0;
}

/* ,"reason":"..." for the Job's JSON, if it has one. */
void
job_wait_write_reason(struct varlink_buf *b, const struct job *j)
{
	char text[JOB_MAX_LOCK + 64];

	if (j->wait == JOB_WAIT_AFTER && job_wait_first_after(j) != 0)
		snprintf(text, sizeof text, "waiting for job %" PRId64,
		    job_wait_first_after(j));
	else if (j->wait == JOB_WAIT_LOCK)
		snprintf(text, sizeof text, "waiting for lock %s",
		    j->deps->lock);
	else if (j->reason != NULL) {
		varlink_buf_raw(b, ",\"reason\":");
		varlink_buf_string(b, j->reason);
		return;
	} else
		return;
	varlink_buf_raw(b, ",\"reason\":");
	varlink_buf_string(b, text);
}
