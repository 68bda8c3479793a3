/*
 * Named locks that jobs hold: at most one job holding a given lock runs at
 * any time, in any pool (multiprocessing's Lock, flock(1)).
 *
 * A job with a lock, once its after allow it to start, waits in its lock's
 * line, in submission order (seq: a job put back at the front of its queue
 * comes first here too). The first in line is granted the lock and goes
 * into its pool's queue; it holds the lock while queued there and while it
 * runs, and lets go when it stops running, whatever the reason (job.c
 * calls lock_release from job_finish); a job run again after its worker
 * died keeps it. So the lock goes to its jobs strictly in turn, and a
 * waiting job never sits in a pool's queue in the way of others.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mprocd.h"
#include "util.h"
#include "xmalloc.h"

struct lock {
	char	    *name;
	struct job  *holder; /* granted: queued to run, or running; or NULL */
	struct jobs  waiters;
	struct job  *placed; /* the last to get in line, while it waits */
	struct lock *next;   /* hash chain */
};

#define LOCK_BUCKETS 1024

static struct lock *lock_table[LOCK_BUCKETS];

static size_t
lock_hash(const char *name)
{
	size_t h = 5381;

	while (*name != '\0')
		h = h * 33 + (unsigned char)*name++;
	return h % LOCK_BUCKETS;
}

/* The lock name; made if create, else NULL when nobody holds or waits. */
static struct lock *
lock_find(const char *name, int create)
{
	struct lock **pp = &lock_table[lock_hash(name)], *l;

	for (l = *pp; l != NULL; l = l->next)
		if (strcmp(l->name, name) == 0)
			return l;
	if (!create)
		return NULL;
	l = xcalloc(1, sizeof *l);
	l->name = xstrdup(name);
	TAILQ_INIT(&l->waiters);
	l->next = *pp;
	*pp = l;
	return l;
}

/* A lock nobody holds or waits for is forgotten. */
static void
lock_drop(struct lock *l)
{
	struct lock **pp;

	if (l->holder != NULL || !TAILQ_EMPTY(&l->waiters))
		return;
	for (pp = &lock_table[lock_hash(l->name)]; *pp != l; pp = &(*pp)->next)
		;
	*pp = l->next;
	free(l->name);
	free(l);
}

/* The lock is free: the first in line gets it, and may start. */
static void
lock_grant(struct lock *l)
{
	struct job *j;

	if (l->holder != NULL || (j = TAILQ_FIRST(&l->waiters)) == NULL) {
		lock_drop(l);
		return;
	}
	TAILQ_REMOVE(&l->waiters, j, deps->lock_entry);
	if (l->placed == j)
		l->placed = NULL;
	l->holder = j;
	j->deps->lock_held = 1;
	job_wait_ready(j);
}

/* j, which may start but for its lock, gets in line, in its place. */
void
lock_wait(struct job *j)
{
	struct lock *l = lock_find(j->deps->lock, 1);
	struct job  *at;

	/*
	 * After the last to get in line if it is older (dependents come in
	 * order, each one step on), else from the end (mostly the newest).
	 */
	if (l->placed != NULL && l->placed->seq < j->seq) {
		for (at = l->placed; TAILQ_NEXT(at, deps->lock_entry) != NULL;
		     at = TAILQ_NEXT(at, deps->lock_entry))
			if (TAILQ_NEXT(at, deps->lock_entry)->seq > j->seq)
				break;
	} else
		TAILQ_FOREACH_REVERSE(at, &l->waiters, jobs, deps->lock_entry)
			if (at->seq < j->seq)
				break;
	if (at != NULL)
		TAILQ_INSERT_AFTER(&l->waiters, at, j, deps->lock_entry);
	else
		TAILQ_INSERT_HEAD(&l->waiters, j, deps->lock_entry);
	l->placed = j;
	lock_grant(l);
}

/* j leaves the line (cancelled, forgotten). */
void
lock_unwait(struct job *j)
{
	struct lock *l = lock_find(j->deps->lock, 0);

	if (l == NULL)
		return;
	TAILQ_REMOVE(&l->waiters, j, deps->lock_entry);
	if (l->placed == j)
		l->placed = NULL;
	lock_drop(l);
}

/* j, which held its lock, stopped running (or never will): the next. */
void
lock_release(struct job *j)
{
	struct lock *l;

	if (j->deps == NULL || !j->deps->lock_held)
		return;
	j->deps->lock_held = 0;
	if ((l = lock_find(j->deps->lock, 0)) == NULL || l->holder != j)
		return;
	l->holder = NULL;
	lock_grant(l);
}

/* At exit: the jobs are gone; so are their locks. */
void
lock_free_all(void)
{
	struct lock *l;
	size_t	     i;

	for (i = 0; i < LOCK_BUCKETS; i++)
		while ((l = lock_table[i]) != NULL) {
			lock_table[i] = l->next;
			free(l->name);
			free(l);
		}
}
