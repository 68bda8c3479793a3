/*
 * Wait, Cancel of a running job, and Run: calls answered once jobs finish.
 * While one is pending, the client's later calls wait their turn, so
 * replies go out in the order of the calls.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mprocd.h"
#include "util.h"
#include "varlink.h"
#include "xmalloc.h"

/* What the call is, and so what its reply says. */
enum method_wait_kind {
	METHOD_WAIT_JOBS,   /* Wait: {jobs} */
	METHOD_WAIT_CANCEL, /* Cancel: {job} */
	METHOD_WAIT_RUN,    /* Run: what Get says */
};

/* A call waiting for jobs to finish. */
struct method_wait {
	struct conn	     *c;
	int		      flags; /* the call's: more */
	enum method_wait_kind kind;
	size_t		      n;
	size_t		      left;
	int64_t		     *ids;
	char		**done; /* a finished job's snapshot (JSON), by index */
	struct job_watch *watches;
	struct event	 *timer;
};

void
method_wait_free(struct method_wait *pd)
{
	size_t i;

	if (pd == NULL)
		return;
	for (i = 0; i < pd->n; i++) {
		job_watch_remove(&pd->watches[i]);
		free(pd->done[i]);
	}
	if (pd->timer != NULL)
		event_free(pd->timer);
	free(pd->watches);
	free(pd->done);
	free(pd->ids);
	free(pd);
}

/* The pending call has been answered: go on with the client's next. */
static void
method_wait_finish(struct method_wait *pd)
{
	struct conn *c = pd->c;

	c->pending = NULL;
	method_wait_free(pd);
	conn_resume(c);
}

/*
 * A reply to a pending call (never oneway); with "more", one per job.
 * b holds the reply's parameters, written by hand.
 */
static void
method_wait_reply(struct method_wait *pd, struct varlink_buf *b, int continues)
{
	conn_answer_text(pd->c, continues ? VARLINK_CONTINUES : 0, b);
}

/* The reply's parameters: head, the snapshots of jobs [from, to), "]}". */
static void
method_wait_jobs(struct method_wait *pd, struct varlink_buf *b,
    const char *head, size_t from, size_t to)
{
	size_t k;

	varlink_buf_init(b);
	varlink_buf_raw(b, head);
	for (k = from; k < to; k++) {
		if (k > from)
			varlink_buf_raw(b, ",");
		varlink_buf_raw(b, pd->done[k]);
	}
}

static void
method_wait_job_done(struct method_wait *pd, size_t i, const struct job *j)
{
	struct varlink_buf b;
	size_t		   len;

	pd->left--;
	if (pd->kind == METHOD_WAIT_RUN) {
		varlink_buf_init(&b);
		method_job_output(&b, j, 1);
		pd->done[i] = xstrdup(""); /* a Run's job is done with */
		method_wait_reply(pd, &b, 0);
		goto out;
	}
	/* A snapshot: the job itself may be gone by the time all are. */
	varlink_buf_init(&b);
	method_job_write(&b, j);
	pd->done[i] = varlink_buf_finish(&b, &len);
	if (pd->kind == METHOD_WAIT_CANCEL) {
		method_wait_jobs(pd, &b, "{\"job\":", i, i + 1);
		varlink_buf_raw(&b, "}");
		method_wait_reply(pd, &b, 0);
	} else if (pd->flags & VARLINK_MORE) {
		method_wait_jobs(pd, &b, "{\"jobs\":[", i, i + 1);
		varlink_buf_raw(&b, "]}");
		method_wait_reply(pd, &b, pd->left > 0);
	} else if (pd->left == 0) {
		method_wait_jobs(pd, &b, "{\"jobs\":[", 0, pd->n);
		varlink_buf_raw(&b, "]}");
		method_wait_reply(pd, &b, 0);
	}
out:
	if (pd->left == 0)
		method_wait_finish(pd);
}

static void
method_wait_watch_cb(struct job_watch *jw, struct job *j)
{
	method_wait_job_done(jw->arg, jw->index, j);
}

static void
method_wait_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct method_wait *pd = arg;
	json_t		   *ids = json_array();
	size_t		    i;

	for (i = 0; i < pd->n; i++)
		if (pd->done[i] == NULL)
			json_array_append_new(ids, json_integer(pd->ids[i]));
	conn_answer(pd->c, 0, "io.mprocd.TimedOut",
	    json_pack("{s:o}", "ids", ids));
	method_wait_finish(pd);
}

/* Waits on jobs (all of which c may see); replies at once if all ended. */
static void
method_wait_start(struct conn *c, struct varlink_call *call, struct job **jobs,
    int64_t *ids, size_t n, enum method_wait_kind kind, int has_timeout,
    uint64_t timeout)
{
	struct method_wait *pd = xcalloc(1, sizeof *pd);
	struct varlink_buf  b;
	struct timeval	    tv;
	size_t		    i;

	pd->c = c;
	pd->flags = call->flags;
	pd->kind = kind;
	pd->n = pd->left = n;
	pd->ids = ids;
	/* n may be 0, which xcalloc refuses. */
	pd->done = xcalloc(n + 1, sizeof *pd->done);
	pd->watches = xcalloc(n + 1, sizeof *pd->watches);
	c->pending = pd;
	if (n == 0) {
		method_wait_jobs(pd, &b, "{\"jobs\":[]}", 0, 0);
		method_wait_reply(pd, &b, 0);
		method_wait_finish(pd);
		return;
	}
	for (i = 0; i < n; i++) {
		pd->watches[i].cb = method_wait_watch_cb;
		pd->watches[i].arg = pd;
		pd->watches[i].index = i;
		if (!job_is_finished(jobs[i]))
			job_watch_add(jobs[i], &pd->watches[i]);
	}
	/* Those already finished answer first, in the order asked. */
	for (i = 0; i < n && c->pending == pd; i++)
		if (jobs[i] != NULL && job_is_finished(jobs[i]))
			method_wait_job_done(pd, i, jobs[i]);
	if (c->pending != pd)
		return;
	if (has_timeout) {
		pd->timer = evtimer_new(ev_base, method_wait_timeout, pd);
		tv = util_timeval(timeout);
		evtimer_add(pd->timer, &tv);
	}
}

void
method_wait(struct conn *c, struct varlink_call *call)
{
	static const char *const known[] = { "ids", "timeout_sec", NULL };
	json_t			*a = json_object_get(call->params, "ids"), *v;
	struct job	       **jobs;
	int64_t			*ids;
	uint64_t		 timeout = 0;
	size_t			 i, n;
	int			 has_timeout;

	if (method_check_params(c, call, known) != 0)
		return;
	if (!json_is_array(a)) {
		method_invalid_param(c, call, "ids");
		return;
	}
	n = json_array_size(a);
	json_array_foreach(a, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			method_invalid_param(c, call, "ids");
			return;
		}
	}
	if ((has_timeout = method_get_seconds(call->params, "timeout_sec",
		 &timeout)) == -1) {
		method_invalid_param(c, call, "timeout_sec");
		return;
	}
	jobs = xcalloc(n + 1, sizeof *jobs);
	ids = xcalloc(n + 1, sizeof *ids);
	for (i = 0; i < n; i++)
		ids[i] = json_integer_value(json_array_get(a, i));
	/* Each job once: a Wait costs memory per id. */
	if (method_has_duplicate(ids, n)) {
		method_invalid_param(c, call, "ids");
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((jobs[i] = method_get_job(c, call, ids[i])) == NULL)
			goto out;
	/* Nothing to answer: do not hold the connection's later calls. */
	if (call->flags & VARLINK_ONEWAY)
		goto out;
	method_wait_start(c, call, jobs, ids, n, METHOD_WAIT_JOBS,
	    has_timeout == 1, timeout);
	ids = NULL;
out:
	free(ids);
	free(jobs);
	job_trim(); /* those read back for it are in its snapshots */
}

void
method_wait_cancel(struct conn *c, struct varlink_call *call)
{
	struct job    *j;
	struct log_ctx ctx;
	int64_t	      *ids;

	if ((j = method_id_param(c, call)) == NULL)
		return;
	if (!job_is_finished(j)) {
		ctx = (struct log_ctx){ j->pool, NULL, j->id };
		clog_info(&ctx,
		    "job cancelled" LOG_KV "was=%s" LOG_KV "uid=%u" LOG_KV
		    "client_pid=%d",
		    job_state_name(j->state), (unsigned)c->uid, (int)c->pid);
		if (j->kill == JOB_KILL_NONE)
			job_wait_reason(j, "cancelled by uid %u",
			    (unsigned)c->uid);
		job_kill(j, JOB_KILL_CANCEL);
	}
	if (call->flags & VARLINK_ONEWAY)
		return;
	/* A running job answers once its process group is gone. */
	ids = xcalloc(1, sizeof *ids);
	ids[0] = j->id;
	method_wait_start(c, call, &j, ids, 1, METHOD_WAIT_CANCEL, 0, 0);
}

/* Run, once its job is queued: answered when the job has finished. */
void
method_wait_run(struct conn *c, struct varlink_call *call, struct job *j)
{
	int64_t *ids = xcalloc(1, sizeof *ids);

	ids[0] = j->id;
	method_wait_start(c, call, &j, ids, 1, METHOD_WAIT_RUN, 0, 0);
}
