/*
 * Jobs and the state database (store.c): a job read back into memory, the
 * jobs not finished put back at start, the outcome of a commit for the
 * jobs it held, and what shutdown does to a running job when jobs outlive
 * mprocd. job.c keeps the table; store.c, the file.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mprocd.h"
#include "util.h"
#include "xmalloc.h"

/*
 * With a state database, a job that shutdown_timeout ended follows the
 * rule of one that was running when mprocd stopped (DESIGN §3): queued
 * again for the next start while its retries allow, else lost. Returns
 * whether it did.
 */
int
job_store_shutdown(struct job *j)
{
	struct log_ctx ctx = job_ctx(j);
	struct pool   *p;

	if (j->kill != JOB_KILL_SHUTDOWN || !store_is_open())
		return 0;
	if (j->timer != NULL)
		evtimer_del(j->timer);
	j->w = NULL;
	if (j->attempts > j->retries || (p = pool_find(j->pool)) == NULL) {
		clog_warnx(&ctx,
		    "mprocd stopped while it ran; job lost" LOG_KV
		    "attempts=%u",
		    j->attempts);
		job_wait_reason(j, "mprocd stopped while it ran");
		job_finish(j, JOB_LOST);
		return 1;
	}
	clog_notice(&ctx,
	    "mprocd stopped while it ran; the job runs again at the next "
	    "start" LOG_KV "attempt=%u",
	    j->attempts + 1);
	j->state = JOB_QUEUED;
	j->kill = JOB_KILL_NONE;
	j->kill_signal = 0;
	j->exit_status = -1;
	j->signal = 0;
	j->pid = 0;
	j->seq = job_front_seq(0);
	pool_enqueue(p, j, 1);
	job_store_put(j, 0);
	return 1;
}

/*
 * Writes j into this pass's transaction. Until it commits, j is unsaved:
 * it stays in memory (job_evict keeps it) and, if queued, does not run.
 */
void
job_store_put(struct job *j, int new)
{
	if (!store_is_open())
		return;
	j->unsaved = 1;
	store_put(j, new);
}

/* Queued jobs read back, admitted once all are: after may name later ones. */
static struct job **job_store_admit_v;
static size_t	    job_store_admit_n, job_store_admit_size;

static void
job_store_pending_admit(struct job *j)
{
	if (job_store_admit_n == job_store_admit_size) {
		job_store_admit_size = job_store_admit_size == 0
		    ? 1024
		    : 2 * job_store_admit_size;
		job_store_admit_v = xreallocarray(job_store_admit_v,
		    job_store_admit_size, sizeof *job_store_admit_v);
	}
	job_store_admit_v[job_store_admit_n++] = j;
}

/* Every job is back: the queued ones wait for their after, their lock. */
void
job_store_loaded(void)
{
	size_t i;

	for (i = 0; i < job_store_admit_n; i++)
		job_wait_admit(job_store_admit_v[i]);
	free(job_store_admit_v);
	job_store_admit_v = NULL;
	job_store_admit_n = job_store_admit_size = 0;
}

/* Frees what a job_row owns (what job_store_restore() did not take). */
void
job_store_row_free(struct job_row *row)
{
	util_strv_free(row->argv);
	util_strv_free(row->env);
	json_decref(row->input);
	json_decref(row->result);
	free(row->after);
	memset(row, 0, sizeof *row);
}

/* A job as the state database holds it, back in memory. */
struct job *
job_store_restore(struct job_row *row)
{
	struct job    *j = xcalloc(1, sizeof *j);
	struct log_ctx ctx;
	int	       s;

	j->id = row->id;
	j->pool = xstrdup(row->pool);
	j->name = row->name != NULL ? xstrdup(row->name) : NULL;
	j->argv = row->argv;
	j->env = row->env;
	j->cwd = xstrdup(row->cwd);
	if (row->stdin_data != NULL) {
		j->stdin_data = xmalloc(row->stdin_len + 1);
		memcpy(j->stdin_data, row->stdin_data, row->stdin_len);
		j->stdin_len = row->stdin_len;
	}
	j->input = row->input;
	j->result = row->result;
	row->argv = row->env = NULL;
	row->input = row->result = NULL;
	j->uid = row->uid;
	j->timeout_given = row->timeout_given;
	j->timeout = row->timeout;
	j->retries_given = row->retries_given;
	j->retries = row->retries;
	j->state = row->state;
	j->exit_status = row->exit_status;
	j->signal = row->signal;
	if (row->worker != NULL)
		snprintf(j->worker, sizeof j->worker, "%s", row->worker);
	j->pid = row->pid;
	j->attempts = row->attempts;
	j->submitted_usec = row->submitted_usec;
	j->started_usec = row->started_usec;
	j->finished_usec = row->finished_usec;
	for (s = 0; s < 2; s++)
		if (row->outlen[s] > 0)
			job_output_add(j, s, row->out[s], row->outlen[s],
			    row->outlen[s]);
	if (job_is_finished(j)) {
		job_output_trim_runs(j);
		if (job_output_set_runs(j, row->runs, row->runs_len) != 0) {
			ctx = job_ctx(j);
			clog_warnx(&ctx,
			    "its output's order in the state database does "
			    "not add up to its output: read back as stdout, "
			    "then stderr");
		}
	}
	j->truncated = row->truncated;
	j->seq = row->seq;
	job_set_deps(j, &row->after, row->nafter, row->lock);
	if (row->reason != NULL)
		j->reason = xstrdup(row->reason);
	job_link(j);
	if (job_is_finished(j))
		job_cache_add(j);
	job_store_row_free(row);
	return j;
}

/*
 * At start, a job the state database had not finished: queued again in its
 * pool, in its place; one that was running when mprocd stopped or died is
 * queued again while its retries allow, else lost (DESIGN §3).
 */
void
job_store_load(struct job_row *row)
{
	struct job    *j = job_store_restore(row);
	struct pool   *p = pool_find(j->pool);
	struct log_ctx ctx = job_ctx(j);
	uint64_t       retries;

	job_set_next_id(j->id + 1);
	job_front_seq(j->seq);
	if (j->state == JOB_RUNNING) {
		retries = j->retries_given ? j->retries
		    : p != NULL		   ? p->cfg.retries
					   : 0;
		j->pid = 0;
		j->state = JOB_QUEUED;
		if (j->attempts > retries) {
			clog_warnx(&ctx,
			    "mprocd stopped while it ran; job lost" LOG_KV
			    "attempts=%u",
			    j->attempts);
			job_wait_reason(j, "mprocd stopped while it ran");
			job_finish(j, JOB_LOST);
			return;
		}
		clog_notice(&ctx,
		    "mprocd stopped while it ran; running the job again" LOG_KV
		    "attempt=%u",
		    j->attempts + 1);
		job_store_put(j, 0);
	}
	if (p == NULL) {
		clog_warnx(&ctx,
		    "the job's pool is no longer in the "
		    "configuration; job cancelled");
		job_wait_reason(j, "its pool %s is gone", j->pool);
		job_finish(j, JOB_CANCELLED);
		return;
	}
	/* Its after and its lock, once every live job is back. */
	job_store_pending_admit(j);
}

/*
 * Job id is stored as it is (its pass committed): a new one may run, one
 * whose change had failed to be written may leave memory again.
 */
void
job_store_saved(int64_t id)
{
	struct job *j = job_find_live(id);

	if (j == NULL)
		return;
	j->unsaved = 0;
	if (j->cancel_unsaved) {
		j->cancel_unsaved = 0;
		json_decref(j->input); /* it runs no more */
		j->input = NULL;
		/* Its cancel stands: its lock goes, its dependents hear. */
		lock_release(j);
		job_watch_fire(j);
	}
}

/*
 * The commit that held job id's submission failed: it was never
 * acknowledged, and goes; one with a watcher already (a Run's) ends
 * cancelled, so that the watcher is answered.
 */
void
job_store_unsaved(int64_t id)
{
	struct job *j = job_find_live(id);

	if (j == NULL)
		return;
	j->unsaved = 0;
	/*
	 * Submitted and cancelled in the same pass (by a Cancel, or as a
	 * dependent of a job that never was either): neither happened.
	 */
	if (j->state == JOB_CANCELLED &&
	    (j->cancel_unsaved ||
		(j->attempts == 0 && TAILQ_EMPTY(&j->watches)))) {
		pool_job_unfinished(j);
		job_free(j);
		return;
	}
	if (j->state != JOB_QUEUED)
		return;
	pool_dequeue(j);
	if (TAILQ_EMPTY(&j->watches))
		job_free(j);
	else
		job_finish(j, JOB_CANCELLED);
}

/*
 * The commit that held job id's change failed: until it is written again
 * (job_store_again), the job stays in memory, and a queued one does not
 * run.
 */
void
job_store_pending(int64_t id)
{
	struct job *j = job_find_live(id);

	if (j == NULL)
		return;
	/* A cancel of a queued job is undone: the file has it queued. */
	if (j->cancel_unsaved) {
		job_uncancel(j);
		return;
	}
	j->unsaved = 1;
}

/* The commit that held job id's change failed: it is written again. */
void
job_store_again(int64_t id)
{
	struct job *j = job_find_live(id);

	if (j != NULL)
		job_store_put(j, 0);
}
