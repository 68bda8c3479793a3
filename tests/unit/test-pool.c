/*
 * daemon/pool.c: the crash tally, a pool's size (slots and spares) brought
 * to its configuration by pool_trim(), a removed pool draining, and
 * Status, driven without forking: fake-process.c stands in for
 * spawn_process() and kill(), workers get made-up pids, say HELLO and
 * finish jobs on their channel, and pool_child_exited() is fed made-up
 * statuses.
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mprocd.h"
#include "proto.h"
#include "util.h"
#include "xmalloc.h"

#include "fake-process.c"

#define MS  USEC_PER_MSEC
#define SEC USEC_PER_SEC

/* The worker of slot n (one not being stopped, if there are two). */
static struct worker *
slot(struct pool *p, unsigned int n)
{
	struct worker *w, *found = NULL;

	TAILQ_FOREACH(w, &p->workers, entry)
		if (w->slot == n && (found == NULL || w->stop == STOP_NONE))
			found = w;
	if (found == NULL)
		fail_msg("no worker in slot %u", n);
	return found;
}

static unsigned int
count(const struct workers *list)
{
	const struct worker *w;
	unsigned int	     n = 0;

	TAILQ_FOREACH(w, list, entry)
		n++;
	return n;
}

/* The nth (from 0) of a pool's spares. */
static struct worker *
spare(struct pool *p, unsigned int n)
{
	struct worker *w;
	unsigned int   i = 0;

	TAILQ_FOREACH(w, &p->spares, entry)
		if (i++ == n)
			return w;
	fail_msg("no spare %u", n);
	return NULL;
}

/* A new pool started as supervisor_main() starts it. */
static struct pool *
start_pool(const struct pool_config *pc)
{
	struct pool *p = pool_new(pc);

	pool_start(p);
	return p;
}

/* A new pool's size, or other settings, as a reload applies them. */
static void
resize(struct pool *p, unsigned int workers, uint64_t spares)
{
	struct pool_config pc = p->cfg;

	pc.workers = workers;
	pc.spare_workers = spares;
	pool_apply(p, &pc);
}

static void
test_crash_tally(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	uint64_t	   t = 1000 * SEC;

	/* crash_limit 3: three deaths are tolerated, the fourth is not. */
	assert_false(pool_record_death(p, t));
	assert_false(pool_record_death(p, t + 1 * SEC));
	assert_false(pool_record_death(p, t + 2 * SEC));
	assert_true(pool_record_death(p, t + 3 * SEC));
	assert_true(p->degraded);
	/* Still four within any 60 s window ending here. */
	assert_true(pool_record_death(p, t + 59 * SEC));
	/* Long after: only this death is recent, so the pool recovers. */
	assert_false(pool_record_death(p, t + 200 * SEC));
	assert_false(p->degraded);
}

static void
test_crash_tally_spread(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	uint64_t	   t = 1000 * SEC;
	int		   i;

	/* One death every 30 s never puts four in one 60 s window. */
	for (i = 0; i < 20; i++)
		assert_false(pool_record_death(p, t + (uint64_t)i * 30 * SEC));
}

static void
test_crash_limit_zero(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p;

	pc.crash_limit = 0;
	p = pool_new(&pc);
	assert_true(pool_record_death(p, 5 * SEC));
}

static void
test_shutdown_stop_frees(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *a = pool_worker_new(p, 0);

	pool_worker_new(p, 1); /* in backoff: no process to wait for */
	/* A pid nobody has: the SIGTERM is only recorded (fake-process.c). */
	fake_start(a, 0x7ffffff0, 0);
	pool_stop(p, STOP_SHUTDOWN);
	assert_int_equal(a->state, WORKER_STOPPING);
	assert_int_equal(a->stop, STOP_SHUTDOWN);
	assert_int_equal(fake_signals(0x7ffffff0, SIGTERM), 1);
	/* The slot without a process went at once. */
	assert_ptr_equal(TAILQ_FIRST(&p->workers), a);
	assert_null(TAILQ_NEXT(a, entry));
	assert_int_equal(pool_child_exited(0x7ffffff0, SIGTERM), 1);
	/* A stopped worker is not a crash: nothing counted, slot gone. */
	assert_true(TAILQ_EMPTY(&p->workers));
	assert_int_equal(p->restarts, 0);
	assert_int_equal(pool_count_live(), 0);
}

static void
test_unknown_child(void **state)
{
	struct pool_config pc = fake_pool_config();

	pool_new(&pc);
	assert_int_equal(pool_child_exited(12345, 0), 0);
	assert_int_equal(pool_child_exited(0, 0), 0);
	assert_int_equal(pool_child_exited(-1, 0), 0);
}

static void
test_status_json(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *w = pool_worker_new(p, 0);
	json_t		  *j, *jw;

	pool_worker_new(p, 1);
	fake_start(w, 9000, 0);
	pool_worker_ready(w);
	j = pool_status_json(p);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "p");
	assert_int_equal(json_integer_value(json_object_get(j, "size")), 2);
	assert_true(json_is_false(json_object_get(j, "degraded")));
	assert_int_equal(json_array_size(json_object_get(j, "workers")), 2);
	jw = json_array_get(json_object_get(j, "workers"), 0);
	assert_string_equal(json_string_value(json_object_get(jw, "name")),
	    "p/0");
	assert_int_equal(json_integer_value(json_object_get(jw, "pid")), 9000);
	assert_string_equal(json_string_value(json_object_get(jw, "state")),
	    "idle");
	/* A slot without a process has no pid at all, not pid 0. */
	jw = json_array_get(json_object_get(j, "workers"), 1);
	assert_null(json_object_get(jw, "pid"));
	assert_string_equal(json_string_value(json_object_get(jw, "state")),
	    "backoff");
	json_decref(j);
	w->pid = 0;
}

/* A new pool: every slot spawned, spares wait for the slots to be up. */
static void
test_start(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p;
	unsigned int	   i;

	pc.workers = 3;
	pc.spare_workers = 1;
	p = start_pool(&pc);
	assert_int_equal(count(&p->workers), 3);
	assert_int_equal(nfakes, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(slot(p, i)->state, WORKER_STARTING);
		assert_int_equal(slot(p, i)->pid, fakes[i].pid);
		assert_false(fakes[i].spare);
	}
	assert_string_equal(fakes[2].name, "p/2");
	assert_int_equal(count(&p->spares), 1);
	assert_int_equal(spare(p, 0)->state, WORKER_WAITING);
	assert_int_equal(pool_count_starting(), 3);
	assert_int_equal(pool_count_live(), 3);
	assert_int_equal(pool_count_processes(), 3);
}

/* A pool that grows fills the lowest free slots. */
static void
test_grow_lowest_free_slots(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *a = pool_worker_new(p, 0);
	struct worker	  *c = pool_worker_new(p, 2);

	fake_start(a, FAKE_PID_BASE + 900, 0);
	pool_worker_ready(a);
	fake_start(c, FAKE_PID_BASE + 902, 0);
	pool_worker_ready(c);

	resize(p, 4, 0);
	assert_int_equal(p->cfg.workers, 4);
	assert_int_equal(count(&p->workers), 4);
	assert_int_equal(nfakes, 2);
	assert_string_equal(fakes[0].name, "p/1");
	assert_string_equal(fakes[1].name, "p/3");
	assert_int_equal(slot(p, 1)->pid, fakes[0].pid);
	assert_int_equal(slot(p, 1)->state, WORKER_STARTING);
	assert_int_equal(slot(p, 3)->pid, fakes[1].pid);
	assert_int_equal(slot(p, 3)->state, WORKER_STARTING);
	/* Those there are left alone. */
	assert_ptr_equal(slot(p, 0), a);
	assert_int_equal(a->state, WORKER_IDLE);
	assert_ptr_equal(slot(p, 2), c);
	assert_int_equal(c->state, WORKER_IDLE);
	assert_int_equal(nfake_kills, 0);
}

/*
 * A pool that shrinks retires its idle workers first, the highest slot
 * first, then those not started, and a busy one only once its job ended.
 */
static void
test_shrink_order(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p;
	struct worker	  *w0, *w1, *w2, *w3;
	pid_t		   pid[4];
	int		   i;

	pc.workers = 4;
	p = start_pool(&pc);
	w0 = slot(p, 0);
	w1 = slot(p, 1);
	w2 = slot(p, 2);
	w3 = slot(p, 3);
	for (i = 0; i < 4; i++)
		pid[i] = slot(p, (unsigned int)i)->pid;
	fake_ready(w1);
	fake_run_on(w1);
	fake_ready(w0);
	fake_ready(w2); /* w3 is still starting */

	resize(p, 3, 0);
	assert_int_equal(w2->state, WORKER_STOPPING);
	assert_int_equal(w2->stop, STOP_RETIRE);
	assert_int_equal(fake_signals(pid[2], SIGTERM), 1);
	assert_int_equal(w0->state, WORKER_IDLE);

	resize(p, 2, 0);
	assert_int_equal(w0->state, WORKER_STOPPING);
	assert_int_equal(fake_signals(pid[0], SIGTERM), 1);
	assert_int_equal(w3->state, WORKER_STARTING);
	assert_int_equal(w3->stop, STOP_NONE);

	resize(p, 1, 0);
	assert_int_equal(w3->state, WORKER_STOPPING);
	assert_int_equal(fake_signals(pid[3], SIGTERM), 1);

	/* The busy one finishes its job first. */
	resize(p, 0, 0);
	assert_int_equal(w1->state, WORKER_BUSY);
	assert_int_equal(w1->stop, STOP_RETIRE);
	assert_int_equal(fake_signals(pid[1], SIGTERM), 0);
	fake_finish_job(w1);
	assert_int_equal(w1->state, WORKER_STOPPING);
	assert_int_equal(fake_signals(pid[1], SIGTERM), 1);
	assert_int_equal(nfake_kills, 4);
	assert_int_equal(nfakes, 4); /* none started meanwhile */

	/* Their deaths are no crashes: the slots go. */
	for (i = 0; i < 4; i++)
		fake_reap(pid[i], SIGTERM);
	assert_true(TAILQ_EMPTY(&p->workers));
	assert_int_equal(p->restarts, 0);
	assert_int_equal(p->ndeaths, 0);
	assert_ptr_equal(pool_find("p"), p);
	assert_int_equal(nfakes, 4);
}

/* Shrunk then grown back before its job ended, a busy worker stays. */
static void
test_shrink_then_grow_keeps_busy(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = start_pool(&pc);
	struct worker	  *w0 = slot(p, 0), *w1 = slot(p, 1);
	pid_t		   pid0 = w0->pid;

	fake_ready(w0);
	fake_ready(w1);
	fake_run_on(w0);
	resize(p, 0, 0);
	assert_int_equal(w1->state, WORKER_STOPPING);
	assert_int_equal(w0->stop, STOP_RETIRE);

	resize(p, 1, 0);
	assert_int_equal(w0->stop, STOP_NONE);
	assert_int_equal(w0->state, WORKER_BUSY);
	assert_int_equal(nfakes, 2);		 /* no new one */
	assert_int_equal(count(&p->workers), 2); /* w0, and w1 going */

	fake_finish_job(w0);
	assert_int_equal(w0->state, WORKER_IDLE);
	assert_int_equal(fake_signals(pid0, SIGTERM), 0);
	fake_reap(w1->pid, SIGTERM);
	assert_int_equal(count(&p->workers), 1);
	assert_ptr_equal(TAILQ_FIRST(&p->workers), w0);
	assert_int_equal(nfakes, 2);
}

/* Spares start once no slot of their pool is starting. */
static void
test_spares_start_after_slots(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p;
	struct worker	  *s0, *s1;

	pc.spare_workers = 2;
	p = start_pool(&pc);
	s0 = spare(p, 0);
	s1 = spare(p, 1);
	assert_int_equal(nfakes, 2);
	assert_int_equal(s0->state, WORKER_WAITING);
	assert_int_equal(s1->state, WORKER_WAITING);

	fake_ready(slot(p, 0));
	fake_loop();
	assert_int_equal(nfakes, 2);
	assert_int_equal(s0->state, WORKER_WAITING);
	assert_int_equal(s1->state, WORKER_WAITING);

	/* The last slot up: the spares' turn, at the loop's next pass. */
	fake_hello(slot(p, 1)->pid);
	fake_loop();
	assert_int_equal(nfakes, 4);
	assert_true(fakes[2].spare);
	assert_true(fakes[3].spare);
	assert_string_equal(fakes[2].name, "p/spare");
	assert_int_equal(s0->state, WORKER_STARTING);
	assert_int_equal(s1->state, WORKER_STARTING);
	assert_true(s0->pid == fakes[2].pid || s0->pid == fakes[3].pid);
	assert_true(s1->pid == fakes[2].pid || s1->pid == fakes[3].pid);
	/* Spares are processes, but not live slots nor starting ones. */
	assert_int_equal(pool_count_live(), 2);
	assert_int_equal(pool_count_processes(), 4);
	assert_int_equal(pool_count_starting(), 0);

	fake_ready(s0);
	assert_true(pool_worker_is_ready_spare(s0));
	assert_false(pool_worker_is_ready_spare(s1));
}

/*
 * A pool that grows gives its new slot a ready spare; the spare's position
 * and a new one wait until that slot said HELLO.
 */
static void
test_grow_takes_spare(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p;
	struct worker	  *s, *w;
	struct proto_hdr   h;
	uint8_t		  *payload;
	uint32_t	   n;
	pid_t		   spid;

	pc.workers = 1;
	pc.spare_workers = 1;
	p = start_pool(&pc);
	fake_ready(slot(p, 0));
	fake_loop();
	s = spare(p, 0);
	spid = s->pid;
	assert_int_equal(spid, fakes[1].pid);
	fake_ready(s);

	resize(p, 2, 2);
	w = slot(p, 1);
	assert_int_equal(w->pid, spid);
	assert_int_equal(w->state, WORKER_STARTING);
	assert_int_equal(fake_recv(spid, &h, &payload), 0);
	assert_int_equal(h.type, PROTO_ASSIGN);
	assert_int_equal(proto_unpack_assign(payload, h.len, &n), 0);
	assert_int_equal(n, 1);
	free(payload);
	assert_int_equal(nfakes, 2);
	assert_int_equal(count(&p->spares), 2);
	assert_int_equal(spare(p, 0)->state, WORKER_WAITING);
	assert_int_equal(spare(p, 0)->pid, 0);
	assert_int_equal(spare(p, 1)->state, WORKER_WAITING);

	fake_ready(w);
	fake_loop();
	assert_int_equal(nfakes, 4);
	assert_int_equal(spare(p, 0)->state, WORKER_STARTING);
	assert_int_equal(spare(p, 1)->state, WORKER_STARTING);
	assert_true(fakes[2].spare && fakes[3].spare);
}

/*
 * Surplus spares go least ready first: one without a process, then one
 * starting, then one ready.
 */
static void
test_spares_retired_least_ready_first(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p;
	struct worker	  *ready, *starting, *none;

	pc.workers = 1;
	pc.spare_workers = 3;
	p = start_pool(&pc);
	fake_ready(slot(p, 0));
	fake_loop();
	assert_int_equal(nfakes, 4);
	ready = spare(p, 0);
	starting = spare(p, 1);
	none = spare(p, 2);
	fake_ready(ready);
	fake_reap(none->pid, SIGKILL); /* backs off: no process */
	assert_int_equal(none->state, WORKER_BACKOFF);
	assert_int_equal(none->pid, 0);
	assert_int_equal(starting->state, WORKER_STARTING);

	resize(p, 1, 2);
	assert_int_equal(count(&p->spares), 2); /* freed at once */
	assert_ptr_equal(spare(p, 0), ready);
	assert_ptr_equal(spare(p, 1), starting);
	assert_int_equal(nfake_kills, 0);

	resize(p, 1, 1);
	assert_int_equal(starting->state, WORKER_STOPPING);
	assert_int_equal(starting->stop, STOP_RETIRE);
	assert_int_equal(fake_signals(starting->pid, SIGTERM), 1);
	/* A spare is told by the end of its channel too. */
	assert_null(starting->bev);
	assert_int_equal(ready->state, WORKER_IDLE);

	resize(p, 1, 0);
	assert_int_equal(ready->state, WORKER_STOPPING);
	assert_int_equal(fake_signals(ready->pid, SIGTERM), 1);
	assert_int_equal(nfake_kills, 2);

	fake_reap(starting->pid, SIGTERM);
	fake_reap(ready->pid, SIGTERM);
	assert_true(TAILQ_EMPTY(&p->spares));
	assert_int_equal(nfakes, 4);
	assert_int_equal(slot(p, 0)->state, WORKER_IDLE);
}

/*
 * A removed pool takes no job, keeps its workers while it has queued jobs,
 * retires them all once their jobs are done, and goes with the last.
 */
static void
test_remove_drains(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p;
	struct worker	  *w0, *w1, *s;
	struct job	  *j1, *j2, *j3;
	struct job_spec	   spec;
	enum pool_refusal  why;
	pid_t		   pid0, pid1, spid;

	pc.spare_workers = 1;
	p = start_pool(&pc);
	w0 = slot(p, 0);
	w1 = slot(p, 1);
	pid0 = w0->pid;
	pid1 = w1->pid;
	fake_ready(w0);
	fake_ready(w1);
	fake_loop();
	s = spare(p, 0);
	spid = s->pid;
	fake_ready(s);
	j1 = fake_run_on(w0);
	j2 = fake_run_on(w1);
	j3 = fake_submit(p, "true");
	pool_dispatch(p);
	assert_int_equal(j3->state, JOB_QUEUED);

	pool_remove(p);
	assert_true(p->removed);
	/* Its spare goes at once; its workers stay for the queued job. */
	assert_int_equal(s->state, WORKER_STOPPING);
	assert_int_equal(fake_signals(spid, SIGTERM), 1);
	assert_int_equal(w0->stop, STOP_NONE);
	assert_int_equal(w1->stop, STOP_NONE);
	assert_ptr_equal(pool_find("p"), p);
	memset(&spec, 0, sizeof spec);
	assert_null(pool_submit(p, &spec, 1000, &why));
	assert_int_equal(why, POOL_NO_SUCH);
	assert_ptr_equal(pool_default(), NULL);

	/* w0 takes the last queued job; then both are to retire. */
	fake_finish_job(w0);
	assert_int_equal(j1->state, JOB_SUCCEEDED);
	assert_ptr_equal(w0->job, j3);
	assert_int_equal(w0->stop, STOP_RETIRE);
	assert_int_equal(w1->stop, STOP_RETIRE);
	assert_int_equal(fake_signals(pid0, SIGTERM), 0);
	assert_int_equal(fake_signals(pid1, SIGTERM), 0);

	fake_finish_job(w1);
	assert_int_equal(j2->state, JOB_SUCCEEDED);
	assert_int_equal(w1->state, WORKER_STOPPING);
	assert_int_equal(fake_signals(pid1, SIGTERM), 1);
	fake_finish_job(w0);
	assert_int_equal(j3->state, JOB_SUCCEEDED);
	assert_int_equal(w0->state, WORKER_STOPPING);
	assert_int_equal(fake_signals(pid0, SIGTERM), 1);

	fake_reap(pid1, SIGTERM);
	fake_reap(spid, SIGTERM);
	assert_ptr_equal(pool_find("p"), p);
	fake_reap(pid0, SIGTERM);
	assert_null(pool_find("p"));
	assert_true(TAILQ_EMPTY(&pools));
	assert_int_equal(nfakes, 3);
}

/*
 * A removed pool whose queue empties without a job ending there (its only
 * queued job cancelled while its worker starts) still retires its worker
 * once it is ready. (It once stayed idle, and the pool with it, for good.)
 */
static void
test_remove_queue_cancelled(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p;
	struct worker	  *w;
	struct job	  *j;
	pid_t		   pid;

	pc.workers = 1;
	p = start_pool(&pc);
	w = slot(p, 0);
	pid = w->pid;
	j = fake_submit(p, "true");
	pool_remove(p);
	/* Kept for the queued job. */
	assert_int_equal(w->stop, STOP_NONE);
	job_kill(j, JOB_KILL_CANCEL);
	assert_int_equal(j->state, JOB_CANCELLED);
	assert_true(TAILQ_EMPTY(&p->queue));

	fake_hello(pid);
	fake_loop();
	/* Nothing left to run: the worker goes, and the pool with it. */
	assert_int_equal(w->state, WORKER_STOPPING);
	assert_int_equal(fake_signals(pid, SIGTERM), 1);
	fake_reap(pid, SIGTERM);
	assert_null(pool_find("p"));
}

/* A removed pool with no process left goes at once. */
static void
test_remove_without_process(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);

	pool_worker_new(p, 0);
	pool_worker_new(p, 1);
	pool_worker_new_spare(p);
	pool_remove(p);
	assert_null(pool_find("p"));
	assert_int_equal(nfake_kills, 0);
}

/* A removed pool put back by a reload keeps what it has. */
static void
test_apply_takes_removed_back(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = start_pool(&pc);
	struct worker	  *w0 = slot(p, 0), *w1 = slot(p, 1);

	fake_ready(w0);
	fake_ready(w1);
	fake_run_on(w0);
	pool_remove(p);
	assert_int_equal(w0->stop, STOP_RETIRE);
	assert_int_equal(w1->state, WORKER_STOPPING);

	pool_apply(p, &pc);
	assert_false(p->removed);
	assert_int_equal(p->cfg.workers, 2);
	assert_int_equal(w0->stop, STOP_NONE);
	assert_ptr_equal(pool_default(), p);
	/* w1 is on its way out: slot 2 replaces it. */
	assert_int_equal(nfakes, 3);
	assert_string_equal(fakes[2].name, "p/2");
	fake_submit(p, "true");
}

/*
 * A worker being recycled (max_jobs_per_worker) comes back in its slot:
 * a reload of the same size meanwhile starts no other worker. (pool_trim()
 * once counted only workers not being stopped, and started a third.)
 */
static void
test_apply_during_recycle(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p;
	struct worker	  *w0, *w1;
	pid_t		   pid0;

	pc.max_jobs_per_worker = 1;
	p = start_pool(&pc);
	w0 = slot(p, 0);
	w1 = slot(p, 1);
	pid0 = w0->pid;
	fake_ready(w0);
	fake_ready(w1);
	fake_run_on(w0);
	fake_finish_job(w0);
	assert_int_equal(w0->state, WORKER_STOPPING);
	assert_int_equal(w0->stop, STOP_RECYCLE);

	pc.job_timeout = 10 * SEC; /* any other change */
	pool_apply(p, &pc);
	assert_int_equal(nfakes, 2);
	fake_reap(pid0, SIGTERM);
	assert_int_equal(w0->state, WORKER_STARTING); /* recycled */
	assert_int_equal(count(&p->workers), 2);
	assert_int_equal(nfakes, 3);
}

/* A reload that changes crash_limit starts the tally afresh. */
static void
test_apply_crash_limit_resets_tally(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	uint64_t	   t = util_mono_usec();
	int		   i;

	for (i = 0; i < 4; i++)
		pool_record_death(p, t + (uint64_t)i);
	assert_true(p->degraded);

	/* The same crash_limit: the tally stays. */
	pc.job_timeout = 10 * SEC;
	pool_apply(p, &pc);
	assert_true(p->degraded);
	assert_int_equal(p->ndeaths, 4);
	assert_int_equal(p->cfg.job_timeout, 10 * SEC);

	pc.crash_limit = 5;
	pool_apply(p, &pc);
	assert_false(p->degraded);
	assert_int_equal(p->ndeaths, 0);
	assert_int_equal(p->cfg.crash_limit, 5);
	/* Five deaths are tolerated now, the sixth is not. */
	for (i = 0; i < 5; i++)
		assert_false(pool_record_death(p, t + 10 + (uint64_t)i));
	assert_true(pool_record_death(p, t + 20));
}

#define T(f) \
	cmocka_unit_test_setup_teardown(f, fake_cmocka_setup, \
	    fake_cmocka_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_crash_tally),
		T(test_crash_tally_spread),
		T(test_crash_limit_zero),
		T(test_shutdown_stop_frees),
		T(test_unknown_child),
		T(test_status_json),
		T(test_start),
		T(test_grow_lowest_free_slots),
		T(test_shrink_order),
		T(test_shrink_then_grow_keeps_busy),
		T(test_spares_start_after_slots),
		T(test_grow_takes_spare),
		T(test_spares_retired_least_ready_first),
		T(test_remove_drains),
		T(test_remove_queue_cancelled),
		T(test_remove_without_process),
		T(test_apply_takes_removed_back),
		T(test_apply_during_recycle),
		T(test_apply_crash_limit_resets_tally),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
