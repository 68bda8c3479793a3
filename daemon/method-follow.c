/*
 * Follow, and Run with "more": a job's output sent to a client as it
 * comes, then the job once it has finished.
 *
 * A follower keeps no copy of the output. It is a place in the job's own
 * buffers (the bytes of each stream sent, the run of output it is in), and
 * sends from them while less than METHOD_FOLLOW_BACKLOG is unsent to its
 * client; one that reads slowly catches up from them when it reads again,
 * so a hundred followers cost one copy and none slows the job. Output past
 * max_output is not kept: a follower that is behind when it comes misses
 * it, and the piece after that place in the kept output says truncated.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mprocd.h"
#include "util.h"
#include "varlink.h"
#include "xmalloc.h"

#define METHOD_FOLLOW_PIECE   (64 * 1024)  /* raw bytes in one reply */
#define METHOD_FOLLOW_BACKLOG (256 * 1024) /* unsent to the client, at most */
#define METHOD_FOLLOW_LOW     (64 * 1024)  /* go on once no more is unsent */

struct method_follow {
	struct conn	*c;
	struct job	*job;	/* pinned while it is followed */
	struct job_watch watch; /* its output and its end, while it runs */
	size_t		 sent[2];
	size_t		 at;	 /* the run of output it is in, */
	size_t		 at_off; /* and how far into it */
	size_t		 gap;	 /* where in the kept output some was lost */
};

#define METHOD_FOLLOW_NO_GAP SIZE_MAX

/*
 * The last piece made into a reply. Followers that keep pace send the same
 * pieces: each is encoded once, and their clients share its text.
 */
struct method_follow_last {
	int64_t		 job;
	unsigned int	 attempt;
	int		 stream;
	size_t		 pos;
	size_t		 len;
	int		 truncated;
	struct conn_msg *msg;
};
static struct method_follow_last method_follow_last;
static unsigned int		 method_follow_n; /* followers */

static int method_follow_send(struct method_follow *);

void
method_follow_free(struct method_follow *f)
{
	if (f == NULL)
		return;
	job_watch_remove(&f->watch);
	job_unpin(f->job);
	free(f);
	/* The last one gone: so is the piece kept for others. */
	if (--method_follow_n == 0) {
		conn_msg_unref(method_follow_last.msg);
		method_follow_last.msg = NULL;
	}
}

/*
 * The next piece of kept output f has not sent: its stream (-1: none),
 * where it starts and how long it is.
 */
static int
method_follow_next(struct method_follow *f, const uint8_t **data, size_t *len)
{
	struct job     *j = f->job;
	const uint32_t *runs;
	uint32_t	r, plain[2];
	size_t		n, pos, nruns;
	int		s;

	if (j->live != NULL) {
		runs = j->live->runs;
		nruns = j->live->nruns;
	} else if (job_is_finished(j)) {
		/* Its runs were plain: job_output_trim_runs() let them go. */
		job_output_plain_runs(j, plain);
		runs = plain;
		nruns = 2;
	} else
		return -1; /* not started: no output yet */
	/* The last run may still grow: f stays in it. */
	for (; f->at < nruns; f->at++, f->at_off = 0) {
		r = runs[f->at];
		s = (r & JOB_RUN_STDERR) != 0;
		n = r & JOB_RUN_MAX;
		if (f->at_off < n) {
			n -= f->at_off;
			*len = n < METHOD_FOLLOW_PIECE ? n
						       : METHOD_FOLLOW_PIECE;
			*data = j->out[s].data + f->sent[s];
			/* A piece ends where output was lost. */
			pos = f->sent[0] + f->sent[1];
			if (pos < f->gap && f->gap - pos < *len)
				*len = f->gap - pos;
			return s;
		}
		if (f->at + 1 == nruns)
			break;
	}
	return -1;
}

/*
 * The reply with len bytes of stream s at pos (its place in the stream,
 * kept or not): the text, made once for every follower that sends it.
 */
static struct conn_msg *
method_follow_message(const struct job *j, int s, size_t pos,
    const uint8_t *data, size_t len, int truncated)
{
	static const char	   tail[] = "},\"continues\":true}";
	struct method_follow_last *last = &method_follow_last;
	char			  *text, *t;

	if (last->msg != NULL && last->job == j->id &&
	    last->attempt == j->attempts && last->stream == s &&
	    last->pos == pos && last->len == len &&
	    last->truncated == truncated)
		return last->msg;
	t = text = xmalloc(128 + (len + 2) / 3 * 4);
	t = stpcpy(t,
	    s == 0 ? "{\"parameters\":{\"stdout\":\""
		   : "{\"parameters\":{\"stderr\":\"");
	t += util_base64_encode_to(t, data, len);
	*t++ = '"';
	if (truncated)
		t = stpcpy(t, ",\"truncated\":true");
	t = stpcpy(t, tail);
	conn_msg_unref(last->msg);
	last->msg = conn_msg_new(text, (size_t)(t - text) + 1, 1);
	last->job = j->id;
	last->attempt = j->attempts;
	last->stream = s;
	last->pos = pos;
	last->len = len;
	last->truncated = truncated;
	return last->msg;
}

/* One reply with len bytes of stream s at pos. */
static void
method_follow_piece(struct method_follow *f, int s, size_t pos,
    const uint8_t *data, size_t len, int truncated)
{
	conn_send_msg(f->c,
	    method_follow_message(f->job, s, pos, data, len, truncated));
}

/* The last reply: the finished job, whether output was lost, its result. */
static void
method_follow_end(struct method_follow *f)
{
	struct conn	  *c = f->c;
	struct job	  *j = f->job;
	struct varlink_buf b;

	varlink_buf_init(&b);
	method_job_output(&b, j, 0);
	conn_answer_text(c, 0, &b);
	c->following = NULL;
	conn_watch_output(c, 0);
	/* Not job_trim(): this may run inside job_finish(). */
	method_follow_free(f);
	conn_resume(c);
}

/*
 * Sends what kept output the client has room for; the end once all is
 * sent and the job has finished (1). Else it goes on when the client has
 * read (conn.c calls), or when more output comes (0).
 */
static int
method_follow_send(struct method_follow *f)
{
	const uint8_t *data;
	size_t	       len;
	int	       s, truncated;

	while ((s = method_follow_next(f, &data, &len)) != -1) {
		if (conn_unsent(f->c) >= METHOD_FOLLOW_BACKLOG) {
			conn_watch_output(f->c, METHOD_FOLLOW_LOW);
			return 0;
		}
		truncated = f->sent[0] + f->sent[1] >= f->gap;
		if (truncated)
			f->gap = METHOD_FOLLOW_NO_GAP;
		method_follow_piece(f, s, f->sent[s], data, len, truncated);
		f->sent[s] += len;
		f->at_off += len;
	}
	if (!job_is_finished(f->job))
		return 0;
	method_follow_end(f);
	return 1;
}

/*
 * From conn.c: the client read, or replies held or gathered went. Not
 * inside job_finish() here: a job read back for it may go now.
 */
void
method_follow_continue(struct conn *c)
{
	if (method_follow_send(c->following))
		job_trim();
}

/*
 * New output of the followed job. What was kept is sent if there is room;
 * what was not (lost, past max_output) only to a follower that has sent
 * all the rest and has room for it, else it is a gap.
 */
static void
method_follow_output(struct job_watch *jw, struct job *j, int stream,
    const void *lost, size_t lostlen)
{
	struct method_follow *f = jw->arg;
	const uint8_t	     *data;
	size_t		      len, n, pos;
	int		      truncated;

	if (stream == JOB_OUTPUT_RESTART) {
		/* A new attempt: its output from the start. */
		f->sent[0] = f->sent[1] = 0;
		f->at = f->at_off = 0;
		f->gap = METHOD_FOLLOW_NO_GAP;
		return;
	}
	if (stream == JOB_OUTPUT_GAP) {
		if (f->gap == METHOD_FOLLOW_NO_GAP)
			f->gap = j->out[0].len + j->out[1].len;
		return;
	}
	(void)method_follow_send(f); /* the job runs: this is no end */
	if (lostlen == 0)
		return;
	if (method_follow_next(f, &data, &len) != -1 ||
	    conn_unsent(f->c) >= METHOD_FOLLOW_BACKLOG) {
		if (f->gap == METHOD_FOLLOW_NO_GAP)
			f->gap = j->out[0].len + j->out[1].len;
		return;
	}
	/* Its place in the stream: past the kept and the lost before it. */
	pos = j->out[stream].len + j->live->lost[stream] - lostlen;
	for (; lostlen > 0; lostlen -= n, pos += n) {
		n = lostlen < METHOD_FOLLOW_PIECE ? lostlen
						  : METHOD_FOLLOW_PIECE;
		/* Some was lost to it before: this piece says so. */
		truncated = f->gap != METHOD_FOLLOW_NO_GAP;
		f->gap = METHOD_FOLLOW_NO_GAP;
		method_follow_piece(f, stream, pos, lost, n, truncated);
		lost = (const uint8_t *)lost + n;
	}
}

/* The followed job has finished: what is left of its output, then it. */
static void
method_follow_done(struct job_watch *jw, struct job *j)
{
	(void)j;
	(void)method_follow_send(jw->arg); /* inside job_finish: no trim */
}

/* c follows j from the start of its output. */
static void
method_follow_start(struct conn *c, struct job *j)
{
	struct method_follow *f = xcalloc(1, sizeof *f);

	f->c = c;
	f->job = j;
	/* Output already lost (past max_output): a gap after what is kept. */
	f->gap = j->truncated ? j->out[0].len + j->out[1].len
			      : METHOD_FOLLOW_NO_GAP;
	method_follow_n++;
	job_pin(j);
	f->watch.cb = method_follow_done;
	f->watch.output = method_follow_output;
	f->watch.arg = f;
	if (!job_is_finished(j))
		job_watch_add(j, &f->watch);
	c->following = f;
	if (method_follow_send(f))
		job_trim();
}

/*
 * Follow(id): with "more", the output so far, then as it comes, then the
 * job; without, a finished job's whole output (what Get answers).
 */
void
method_follow(struct conn *c, struct varlink_call *call)
{
	struct varlink_buf b;
	struct job	  *j;

	if ((j = method_id_param(c, call)) == NULL)
		return;
	if (!(call->flags & VARLINK_MORE)) {
		if (!job_is_finished(j))
			method_invalid_param(c, call, "more");
		else {
			varlink_buf_init(&b);
			method_job_output(&b, j, 1);
			conn_answer_text(c, call->flags & VARLINK_ONEWAY, &b);
		}
		job_trim();
		return;
	}
	if (call->flags & VARLINK_ONEWAY) {
		job_trim();
		return;
	}
	method_follow_start(c, j);
}

/* Run with "more", once its job is queued: the job, then follow it. */
void
method_follow_run(struct conn *c, struct varlink_call *call, struct job *j)
{
	struct varlink_buf b;

	(void)call;
	varlink_buf_init(&b);
	varlink_buf_raw(&b, "{\"job\":");
	method_job_write(&b, j);
	varlink_buf_raw(&b, "}");
	conn_answer_text(c, VARLINK_CONTINUES, &b);
	method_follow_start(c, j);
}
