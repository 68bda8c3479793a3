/*
 * How a job is a row of the state database's jobs table (store.c's
 * STORE_COLUMNS, in that order), both ways: argv and env as blobs of
 * NUL-ended strings, input and result as JSON text.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "mprocd.h"
#include "util.h"
#include "xmalloc.h"

static void
store_row_text(sqlite3_stmt *st, int col, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
}

/* A NULL-terminated array of strings as one blob, each ended by a NUL. */
static void
store_row_strv(sqlite3_stmt *st, int col, char *const *v)
{
	char  *blob, *p;
	size_t n, len = 0;

	for (n = 0; v[n] != NULL; n++)
		len += strlen(v[n]) + 1;
	p = blob = xmalloc(len + 1);
	for (n = 0; v[n] != NULL; n++) {
		memcpy(p, v[n], strlen(v[n]) + 1);
		p += strlen(v[n]) + 1;
	}
	sqlite3_bind_blob(st, col, blob, (int)len, free);
}

static void
store_row_json(sqlite3_stmt *st, int col, const json_t *v)
{
	char *text;

	if (v == NULL)
		return;
	if ((text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		fatalx("cannot encode a job's JSON for the state database");
	sqlite3_bind_text(st, col, text, -1, free);
}

/* A job's after, as JSON text: [1,2,3]. */
static void
store_row_after(sqlite3_stmt *st, int col, const int64_t *after, size_t n)
{
	char  *text, *p;
	size_t i, size = 2 + n * 21;

	p = text = xmalloc(size + 1);
	*p++ = '[';
	for (i = 0; i < n; i++)
		p += snprintf(p, size - (size_t)(p - text), "%s%" PRId64,
		    i > 0 ? "," : "", after[i]);
	*p++ = ']';
	*p = '\0';
	sqlite3_bind_text(st, col, text, -1, free);
}

/* Binds j, as it is now, to the parameters ?1 to ?29 of STORE_COLUMNS. */
void
store_row_bind(struct sqlite3_stmt *st, const struct job *j)
{
	uint8_t *runs;
	size_t	 len;

	sqlite3_bind_int64(st, 1, j->id);
	store_row_text(st, 2, j->pool);
	store_row_text(st, 3, j->name);
	store_row_strv(st, 4, j->argv);
	store_row_text(st, 5, j->cwd);
	if (j->env != NULL)
		store_row_strv(st, 6, j->env);
	if (j->stdin_data != NULL)
		sqlite3_bind_blob(st, 7, j->stdin_data, (int)j->stdin_len,
		    SQLITE_STATIC);
	store_row_json(st, 8, j->input);
	sqlite3_bind_int64(st, 9, (int64_t)j->uid);
	if (j->timeout_given)
		sqlite3_bind_int64(st, 10, (int64_t)j->timeout);
	if (j->retries_given)
		sqlite3_bind_int64(st, 11, (int64_t)j->retries);
	sqlite3_bind_int(st, 12, (int)j->state);
	if (j->exit_status >= 0)
		sqlite3_bind_int(st, 13, j->exit_status);
	if (j->signal > 0)
		sqlite3_bind_int(st, 14, j->signal);
	if (j->worker[0] != '\0')
		store_row_text(st, 15, j->worker);
	if (j->pid > 0)
		sqlite3_bind_int64(st, 16, j->pid);
	sqlite3_bind_int(st, 17, (int)j->attempts);
	sqlite3_bind_int64(st, 18, (int64_t)j->submitted_usec);
	if (j->started_usec != 0)
		sqlite3_bind_int64(st, 19, (int64_t)j->started_usec);
	if (j->finished_usec != 0)
		sqlite3_bind_int64(st, 20, (int64_t)j->finished_usec);
	if (j->out[0].len > 0)
		sqlite3_bind_blob(st, 21, j->out[0].data, (int)j->out[0].len,
		    SQLITE_STATIC);
	if (j->out[1].len > 0)
		sqlite3_bind_blob(st, 22, j->out[1].data, (int)j->out[1].len,
		    SQLITE_STATIC);
	sqlite3_bind_int(st, 23, j->truncated);
	store_row_json(st, 24, j->result);
	sqlite3_bind_int64(st, 25, j->seq);
	if (j->deps != NULL && j->deps->nafter > 0)
		store_row_after(st, 26, j->deps->after, j->deps->nafter);
	if (j->deps != NULL)
		store_row_text(st, 27, j->deps->lock);
	store_row_text(st, 28, j->reason);
	if ((runs = job_output_runs_blob(j, &len)) != NULL)
		sqlite3_bind_blob(st, 29, runs, (int)len, free);
}

/* Reads a blob of NUL-ended strings back into an array (NULL if none). */
static char **
store_row_unpack_strv(sqlite3_stmt *st, int col)
{
	const char *blob = sqlite3_column_blob(st, col), *p, *end;
	char	  **v;
	size_t	    n = 0, i = 0;

	if (blob == NULL)
		return NULL;
	end = blob + sqlite3_column_bytes(st, col);
	for (p = blob; p < end; p++)
		n += *p == '\0';
	v = xcalloc(n + 1, sizeof *v);
	for (p = blob; p < end && i < n; p += strlen(p) + 1)
		v[i++] = xstrdup(p);
	return v;
}

static json_t *
store_row_column_json(sqlite3_stmt *st, int col)
{
	const char  *text = (const char *)sqlite3_column_text(st, col);
	json_error_t e;

	if (text == NULL)
		return NULL;
	return json_loads(text, JSON_DECODE_ANY, &e);
}

static const char *
store_row_column_text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

/* after_ids back into row->after: -1 if it is not a list of ids. */
static int
store_row_read_after(sqlite3_stmt *st, int col, struct job_row *row)
{
	json_t *a = store_row_column_json(st, col), *v;
	size_t	i;
	int	rv = 0;

	if (a == NULL)
		return sqlite3_column_type(st, col) == SQLITE_NULL ? 0 : -1;
	if (!json_is_array(a) || json_array_size(a) > JOB_MAX_AFTER)
		rv = -1;
	else if ((row->nafter = json_array_size(a)) > 0) {
		row->after = xcalloc(row->nafter, sizeof *row->after);
		json_array_foreach(a, i, v) {
			if (!json_is_integer(v) || json_integer_value(v) < 1)
				rv = -1;
			else
				row->after[i] = json_integer_value(v);
		}
	}
	json_decref(a);
	return rv;
}

/*
 * The row st is on (the columns of STORE_COLUMNS), as a job_row; *row's
 * strings point into st. -1 for a row that cannot be a job.
 */
int
store_row_read(struct sqlite3_stmt *st, struct job_row *row)
{
	int s;

	memset(row, 0, sizeof *row);
	row->id = sqlite3_column_int64(st, 0);
	row->pool = store_row_column_text(st, 1);
	row->name = store_row_column_text(st, 2);
	row->argv = store_row_unpack_strv(st, 3);
	row->cwd = store_row_column_text(st, 4);
	row->env = store_row_unpack_strv(st, 5);
	row->stdin_data = sqlite3_column_blob(st, 6);
	row->stdin_len = (size_t)sqlite3_column_bytes(st, 6);
	row->input = store_row_column_json(st, 7);
	row->uid = (uid_t)sqlite3_column_int64(st, 8);
	row->timeout_given = sqlite3_column_type(st, 9) != SQLITE_NULL;
	row->timeout = (uint64_t)sqlite3_column_int64(st, 9);
	row->retries_given = sqlite3_column_type(st, 10) != SQLITE_NULL;
	row->retries = (uint64_t)sqlite3_column_int64(st, 10);
	row->state = sqlite3_column_int(st, 11);
	row->exit_status = sqlite3_column_type(st, 12) != SQLITE_NULL
	    ? sqlite3_column_int(st, 12)
	    : -1;
	row->signal = sqlite3_column_int(st, 13);
	row->worker = store_row_column_text(st, 14);
	row->pid = (pid_t)sqlite3_column_int64(st, 15);
	row->attempts = (unsigned int)sqlite3_column_int(st, 16);
	row->submitted_usec = (uint64_t)sqlite3_column_int64(st, 17);
	row->started_usec = (uint64_t)sqlite3_column_int64(st, 18);
	row->finished_usec = (uint64_t)sqlite3_column_int64(st, 19);
	for (s = 0; s < 2; s++) {
		row->out[s] = sqlite3_column_blob(st, 20 + s);
		row->outlen[s] = (size_t)sqlite3_column_bytes(st, 20 + s);
	}
	row->truncated = sqlite3_column_int(st, 22);
	row->result = store_row_column_json(st, 23);
	row->seq = sqlite3_column_int64(st, 24);
	if (store_row_read_after(st, 25, row) != 0)
		goto bad;
	row->lock = store_row_column_text(st, 26);
	row->reason = store_row_column_text(st, 27);
	row->runs = sqlite3_column_blob(st, 28);
	row->runs_len = (size_t)sqlite3_column_bytes(st, 28);
	if (row->pool == NULL || row->argv == NULL || row->argv[0] == NULL ||
	    row->cwd == NULL || row->state < JOB_QUEUED ||
	    row->state > JOB_LOST)
		goto bad;
	return 0;
bad:
	job_store_row_free(row);
	return -1;
}
