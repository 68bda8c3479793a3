/*
 * sys/queue.h, plus the _SAFE iterators glibc's copy lacks (removing the
 * current element while walking a list).
 */
#ifndef MPROCD_QUEUE_H
#define MPROCD_QUEUE_H

#include <sys/queue.h>

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar) \
	for ((var) = TAILQ_FIRST(head); \
	     (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1); \
	     (var) = (tvar))
#endif

#ifndef LIST_FOREACH_SAFE
#define LIST_FOREACH_SAFE(var, head, field, tvar) \
	for ((var) = LIST_FIRST(head); \
	     (var) != NULL && ((tvar) = LIST_NEXT(var, field), 1); \
	     (var) = (tvar))
#endif

#endif
