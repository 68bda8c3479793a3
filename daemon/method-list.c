/*
 * List: a reply written a slice at a time as the client reads it: the ids
 * that matched when the call came, each job described as it is when its
 * turn comes. Neither memory nor the loop goes to one huge reply, and the
 * client's later calls wait until it is written.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mprocd.h"
#include "varlink.h"
#include "xmalloc.h"

#define METHOD_LIST_SLICE (64 * 1024) /* written while less is queued */
#define METHOD_LIST_HEAD  "{\"parameters\":{\"jobs\":["

struct method_list {
	int64_t *ids;
	size_t	 n;
	size_t	 next;
	size_t	 written; /* jobs in the reply so far */
	int	 started; /* its head is written */
	char	*pool;	  /* the call's filters; NULL, -1: any */
	int	 state;
};

void
method_list_free(struct method_list *ls)
{
	if (ls == NULL)
		return;
	free(ls->ids);
	free(ls->pool);
	free(ls);
}

/* Writes the next slice of the List reply; the end lets later calls in. */
void
method_list_continue(struct conn *c)
{
	struct method_list *ls = c->listing;
	struct varlink_buf  b;
	struct job	   *j;

	/*
	 * Replies before it held for a commit of the state database go
	 * first: the reply starts once they are released (conn.c calls).
	 */
	if (c->holding)
		return;
	if (!ls->started) {
		conn_write(c, METHOD_LIST_HEAD, strlen(METHOD_LIST_HEAD));
		ls->started = 1;
	}
	while (conn_queued(c) < METHOD_LIST_SLICE && ls->next < ls->n) {
		j = job_find(ls->ids[ls->next++]);
		if (j == NULL || !job_matches(j, ls->pool, ls->state))
			continue;
		varlink_buf_init(&b);
		if (ls->written++ > 0)
			varlink_buf_raw(&b, ",");
		method_job_write(&b, j);
		conn_write(c, b.data, b.len);
		free(b.data);
	}
	job_trim();
	if (ls->next < ls->n)
		return;
	conn_write(c, "]}}", 4); /* with the NUL that ends it */
	c->listing = NULL;
	method_list_free(ls);
	conn_watch_output(c, 0);
	conn_resume(c);
}

/* Starts the List reply of the jobs of pool (NULL: all) in state (-1). */
static void
method_list_start(struct conn *c, const char *pool, int state)
{
	struct method_list *ls = xcalloc(1, sizeof *ls);

	ls->pool = pool != NULL ? xstrdup(pool) : NULL;
	ls->state = state;
	ls->ids = job_ids(pool, state, &ls->n);
	c->listing = ls;
	conn_flush(c); /* the replies before it go first */
	/* The write callback comes for more while a slice is in flight. */
	conn_watch_output(c, METHOD_LIST_SLICE / 2);
	method_list_continue(c);
}

void
method_list(struct conn *c, struct varlink_call *call)
{
	static const char *const known[] = { "pool", "state", NULL };
	const char		*pool = NULL, *state = NULL;
	int			 st = -1;

	if (method_check_params(c, call, known) != 0)
		return;
	if (varlink_get_string(call->params, "pool", &pool) == -1) {
		method_invalid_param(c, call, "pool");
		return;
	}
	if (varlink_get_string(call->params, "state", &state) == -1 ||
	    (state != NULL && (st = job_parse_state(state)) == -1)) {
		method_invalid_param(c, call, "state");
		return;
	}
	if (pool != NULL && pool_find(pool) == NULL) {
		method_error(c, call, "io.mprocd.NoSuchPool",
		    json_pack("{s:s}", "pool", pool));
		return;
	}
	if (call->flags & VARLINK_ONEWAY)
		return;
	method_list_start(c, pool, st);
}