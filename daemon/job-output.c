/*
 * A job's output: each stream's first max_output bytes, the order the
 * streams came in (runs, for followers), and the watches told of each
 * piece, of a gap, and of a new attempt's start.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mprocd.h"
#include "xmalloc.h"

/*
 * Whether runs are the order job_output_plain_runs() gives: none, stdout,
 * or stdout then stderr (a run of stderr alone is not: its index differs).
 */
int
job_output_plain(const uint32_t *runs, size_t nruns)
{
	return nruns == 0 || (nruns == 1 && (runs[0] & JOB_RUN_STDERR) == 0) ||
	    (nruns == 2 && (runs[0] & JOB_RUN_STDERR) == 0 &&
		(runs[1] & JOB_RUN_STDERR) != 0);
}

/*
 * The runs of a finished job that has no live part (trimmed, plain): its
 * stdout, then its stderr, into v[2].
 */
void
job_output_plain_runs(const struct job *j, uint32_t v[2])
{
	v[0] = (uint32_t)j->out[0].len;
	v[1] = JOB_RUN_STDERR | (uint32_t)j->out[1].len;
}

/*
 * The order of j's output for the state database: its runs as 4-byte
 * little-endian words, *len bytes; NULL when plain (none is needed).
 */
uint8_t *
job_output_runs_blob(const struct job *j, size_t *len)
{
	const struct job_live *l = j->live;
	uint8_t		      *blob;
	size_t		       i;

	if (l == NULL || job_output_plain(l->runs, l->nruns))
		return NULL;
	blob = xreallocarray(NULL, l->nruns, 4);
	for (i = 0; i < l->nruns; i++) {
		blob[4 * i] = (uint8_t)l->runs[i];
		blob[4 * i + 1] = (uint8_t)(l->runs[i] >> 8);
		blob[4 * i + 2] = (uint8_t)(l->runs[i] >> 16);
		blob[4 * i + 3] = (uint8_t)(l->runs[i] >> 24);
	}
	*len = 4 * l->nruns;
	return blob;
}

/*
 * A finished job read back: the order of its output from the state
 * database's blob (job_output_runs_blob), once its streams are in place.
 * A blob that does not add up to them (damaged, or none) leaves the plain
 * order: stdout, then stderr. -1 then if there was a blob.
 */
int
job_output_set_runs(struct job *j, const uint8_t *blob, size_t len)
{
	struct job_live *l;
	uint32_t	*runs;
	uint64_t	 sum[2] = { 0, 0 };
	size_t		 i, n = len / 4;

	if (blob == NULL || len == 0)
		return 0;
	if (len % 4 != 0 || n > (j->out[0].len + j->out[1].len))
		return -1;
	runs = xreallocarray(NULL, n, sizeof *runs);
	for (i = 0; i < n; i++) {
		runs[i] = (uint32_t)blob[4 * i] |
		    (uint32_t)blob[4 * i + 1] << 8 |
		    (uint32_t)blob[4 * i + 2] << 16 |
		    (uint32_t)blob[4 * i + 3] << 24;
		sum[(runs[i] & JOB_RUN_STDERR) != 0] += runs[i] & JOB_RUN_MAX;
	}
	if (sum[0] != j->out[0].len || sum[1] != j->out[1].len) {
		free(runs);
		return -1;
	}
	l = job_output_live(j);
	free(l->runs);
	l->runs = runs;
	l->nruns = l->runs_size = n;
	return 0;
}

/* j's live part, made at the first need. */
struct job_live *
job_output_live(struct job *j)
{
	if (j->live == NULL)
		j->live = xcalloc(1, sizeof *j->live);
	return j->live;
}

/* Notes that n bytes of stream came next, for followers' order. */
static void
job_output_run(struct job *j, int stream, size_t n)
{
	struct job_live *l = job_output_live(j);
	uint32_t	 flag = stream == 1 ? JOB_RUN_STDERR : 0, *last;

	last = l->nruns > 0 ? &l->runs[l->nruns - 1] : NULL;
	if (last != NULL && (*last & JOB_RUN_STDERR) == flag &&
	    (*last & JOB_RUN_MAX) + n <= JOB_RUN_MAX) {
		*last += (uint32_t)n;
		return;
	}
	if (l->nruns == l->runs_size) {
		l->runs_size = l->runs_size == 0 ? 4 : l->runs_size * 2;
		l->runs = xreallocarray(l->runs, l->runs_size, sizeof *l->runs);
	}
	l->runs[l->nruns++] = flag | (uint32_t)n;
}

/* Appends n bytes of stream to what j keeps (within max). */
static void
job_output_keep(struct job *j, int stream, const void *data, size_t n,
    uint64_t max)
{
	struct job_output *o = &j->out[stream];

	job_output_run(j, stream, n);
	if (o->size - o->len < n) {
		o->size = o->size == 0 ? 4096 : o->size;
		while (o->size - o->len < n)
			o->size *= 2;
		if (o->size > max && max >= o->len + n)
			o->size = (size_t)max;
		o->data = xreallocarray(o->data, 1, o->size);
	}
	memcpy(o->data + o->len, data, n);
	o->len += n;
}

/* Tells j's watches that follow its output of what (a stream, a gap...). */
static void
job_output_tell(struct job *j, int what, const uint8_t *data, size_t len)
{
	struct job_watch *jw, *next;

	for (jw = TAILQ_FIRST(&j->watches); jw != NULL; jw = next) {
		next = TAILQ_NEXT(jw, entry);
		if (jw->output != NULL)
			jw->output(jw, j, what, data, len);
	}
}

/*
 * Keeps up to max bytes of a stream (0 stdout, 1 stderr); the rest is
 * counted as truncated and dropped. Followers are told of both.
 */
void
job_output_add(struct job *j, int stream, const void *data, size_t len,
    uint64_t max)
{
	struct job_output *o = &j->out[stream];
	size_t		   room, n;

	room = o->len < max ? (size_t)(max - o->len) : 0;
	n = len < room ? len : room;
	if (n < len)
		j->truncated = 1;
	if (n > 0)
		job_output_keep(j, stream, data, n, max);
	job_output_live(j)->lost[stream] += len - n;
	job_output_tell(j, stream, (const uint8_t *)data + n, len - n);
}

/*
 * Output past max_output was dropped on its way here: followers mark a gap
 * at this place.
 */
void
job_output_gap(struct job *j)
{
	j->truncated = 1;
	job_output_tell(j, JOB_OUTPUT_GAP, NULL, 0);
}

/* A new attempt: its output begins again, and followers hear so. */
void
job_output_restart(struct job *j)
{
	j->truncated = 0;
	j->out[0].len = j->out[1].len = 0;
	if (j->live != NULL) {
		j->live->lost[0] = j->live->lost[1] = 0;
		j->live->nruns = 0;
	}
	job_output_tell(j, JOB_OUTPUT_RESTART, NULL, 0);
}

/*
 * A finished job's output grows no more: give back what the doubling left
 * spare. Thousands of finished jobs are kept, most with little output.
 */
void
job_output_trim(struct job_output *o)
{
	if (o->size == o->len)
		return;
	if (o->len == 0) {
		free(o->data);
		o->data = NULL;
	} else
		o->data = xreallocarray(o->data, 1, o->len);
	o->size = o->len;
}

/*
 * And the record of its order. Output that came as stdout then stderr (or
 * none) needs none: the job's live part goes, and method_follow_next()
 * reads such a finished job's runs off its streams. Most finished jobs
 * are such, and a part made when the job started, kept for as long as the
 * job, lies among the pages of jobs long gone and keeps them from being
 * given back to the system.
 */
void
job_output_trim_runs(struct job *j)
{
	struct job_live *l = j->live;

	if (l == NULL)
		return;
	if (job_output_plain(l->runs, l->nruns)) {
		free(l->runs);
		free(l);
		j->live = NULL;
		return;
	}
	if (l->nruns == l->runs_size)
		return;
	if (l->nruns == 0) {
		free(l->runs);
		l->runs = NULL;
	} else
		l->runs = xreallocarray(l->runs, l->nruns, sizeof *l->runs);
	l->runs_size = l->nruns;
}
