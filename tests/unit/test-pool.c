/*
 * The worker state machine and its arithmetic, driven without forking:
 * workers get made-up pids and pool_child_exited() is fed made-up statuses.
 */
#include "config.h"

#include <sys/wait.h>

#include <signal.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mprocd.h"
#include "util.h"

#define MS	USEC_PER_MSEC
#define SEC	USEC_PER_SEC

static struct pool_config
test_pool_config(void)
{
	struct pool_config	 pc;

	memset(&pc, 0, sizeof pc);
	pc.name = (char *)(uintptr_t)"p";
	pc.workers = 2;
	pc.kill_grace = 5 * SEC;
	pc.restart_delay = 100 * MS;
	pc.restart_delay_max = 800 * MS;
	pc.crash_limit = 3;
	pc.crash_interval = 60 * SEC;
	return pc;
}

static int
setup(void **state)
{
	log_setlevel(LOG_CRIT);
	ev_base = event_base_new();
	return ev_base == NULL;
}

static int
teardown(void **state)
{
	struct pool	*p;

	while ((p = TAILQ_FIRST(&pools)) != NULL)
		pool_free(p);
	event_base_free(ev_base);
	ev_base = NULL;
	return 0;
}

/* Pretends the worker's process was started just now with this pid. */
static void
fake_start(struct worker *w, pid_t pid, uint64_t lived)
{
	w->pid = pid;
	w->state = WORKER_STARTING;
	w->started_mono = util_mono_usec() - lived;
}

static void
test_backoff_next(void **state)
{
	assert_int_equal(pool_worker_backoff_next(100 * MS, 30 * SEC), 200 * MS);
	assert_int_equal(pool_worker_backoff_next(20 * SEC, 30 * SEC), 30 * SEC);
	assert_int_equal(pool_worker_backoff_next(30 * SEC, 30 * SEC), 30 * SEC);
	assert_int_equal(pool_worker_backoff_next(0, 30 * SEC), 0);
	assert_int_equal(pool_worker_backoff_next(UINT64_MAX / 2 + 1, UINT64_MAX),
	    UINT64_MAX);
}

static void
test_crash_tally(void **state)
{
	struct pool_config	 pc = test_pool_config();
	struct pool		*p = pool_new(&pc);
	uint64_t		 t = 1000 * SEC;

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
	struct pool_config	 pc = test_pool_config();
	struct pool		*p = pool_new(&pc);
	uint64_t		 t = 1000 * SEC;
	int			 i;

	/* One death every 30 s never puts four in one 60 s window. */
	for (i = 0; i < 20; i++)
		assert_false(pool_record_death(p, t + (uint64_t)i * 30 * SEC));
}

static void
test_crash_limit_zero(void **state)
{
	struct pool_config	 pc = test_pool_config();
	struct pool		*p;

	pc.crash_limit = 0;
	p = pool_new(&pc);
	assert_true(pool_record_death(p, 5 * SEC));
}

static void
test_ready(void **state)
{
	struct pool_config	 pc = test_pool_config();
	struct pool		*p = pool_new(&pc);
	struct worker		*w = pool_worker_new(p, 0);

	assert_string_equal(w->name, "p/0");
	assert_int_equal(w->state, WORKER_BACKOFF);
	fake_start(w, 4242, 0);
	assert_ptr_equal(pool_find_worker(4242), w);
	assert_int_equal(pool_count_live(), 1);
	pool_worker_ready(w);
	assert_int_equal(w->state, WORKER_IDLE);
	assert_string_equal(pool_worker_state_name(w->state), "idle");
}

static void
test_crash_backoff_doubles(void **state)
{
	struct pool_config	 pc = test_pool_config();
	struct pool		*p = pool_new(&pc);
	struct worker		*w = pool_worker_new(p, 0);
	uint64_t		 expect[] = { 100 * MS, 200 * MS, 400 * MS,
				    800 * MS };
	size_t			 i;

	for (i = 0; i < sizeof expect / sizeof expect[0]; i++) {
		fake_start(w, 5000 + (pid_t)i, 10 * MS);
		pool_worker_ready(w);
		assert_int_equal(pool_child_exited(5000 + (pid_t)i,
		    W_EXITCODE(1, 0)), 1);
		assert_int_equal(w->state, WORKER_BACKOFF);
		assert_int_equal(w->pid, 0);
		assert_int_equal(w->backoff, expect[i]);
		assert_int_equal(w->restarts, i + 1);
	}
	assert_int_equal(p->restarts, 4);
	/* The fourth death within crash_interval passed crash_limit 3. */
	assert_true(p->degraded);
	/* Degraded: restarts go on, at the longest delay. */
	fake_start(w, 6000, 10 * MS);
	assert_int_equal(pool_child_exited(6000, SIGKILL), 1);
	assert_int_equal(w->backoff, 800 * MS);
	assert_int_equal(pool_count_live(), 0);
}

static void
test_backoff_resets_after_long_life(void **state)
{
	struct pool_config	 pc = test_pool_config();
	struct pool		*p = pool_new(&pc);
	struct worker		*w = pool_worker_new(p, 0);

	fake_start(w, 7000, 0);
	pool_child_exited(7000, SIGSEGV);
	fake_start(w, 7001, 0);
	pool_child_exited(7001, SIGSEGV);
	assert_int_equal(w->backoff, 200 * MS);
	/* This one lived a whole crash_interval: it starts afresh. */
	fake_start(w, 7002, 61 * SEC);
	pool_child_exited(7002, SIGSEGV);
	assert_int_equal(w->backoff, 100 * MS);
}

static void
test_slots_back_off_separately(void **state)
{
	struct pool_config	 pc = test_pool_config();
	struct pool		*p = pool_new(&pc);
	struct worker		*a = pool_worker_new(p, 0);
	struct worker		*b = pool_worker_new(p, 1);

	fake_start(a, 8000, 0);
	pool_child_exited(8000, SIGKILL);
	fake_start(a, 8001, 0);
	pool_child_exited(8001, SIGKILL);
	fake_start(b, 8002, 0);
	pool_child_exited(8002, SIGKILL);
	assert_int_equal(a->backoff, 200 * MS);
	assert_int_equal(b->backoff, 100 * MS);
	assert_int_equal(p->restarts, 3);
}

static void
test_shutdown_stop_frees(void **state)
{
	struct pool_config	 pc = test_pool_config();
	struct pool		*p = pool_new(&pc);
	struct worker		*a = pool_worker_new(p, 0);

	pool_worker_new(p, 1);	/* in backoff: no process to wait for */
	/* Stop with a pid nobody has, so the SIGTERM goes nowhere. */
	fake_start(a, 0x7ffffff0, 0);
	pool_stop(p, STOP_SHUTDOWN);
	assert_int_equal(a->state, WORKER_STOPPING);
	assert_int_equal(a->stop, STOP_SHUTDOWN);
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
	struct pool_config	 pc = test_pool_config();

	pool_new(&pc);
	assert_int_equal(pool_child_exited(12345, 0), 0);
	assert_int_equal(pool_child_exited(0, 0), 0);
	assert_int_equal(pool_child_exited(-1, 0), 0);
}

static void
test_describe_status(void **state)
{
	char	 buf[128];

	log_wait_status(W_EXITCODE(3, 0), buf, sizeof buf);
	assert_string_equal(buf, LOG_KV "status=3");
	log_wait_status(SIGKILL, buf, sizeof buf);
	assert_string_equal(buf, LOG_KV "signal=9");
	log_wait_status(SIGSEGV | 0x80, buf, sizeof buf);
	assert_string_equal(buf, LOG_KV "signal=11" LOG_KV "core_dumped=yes");
}

static void
test_status_json(void **state)
{
	struct pool_config	 pc = test_pool_config();
	struct pool		*p = pool_new(&pc);
	struct worker		*w = pool_worker_new(p, 0);
	json_t			*j, *jw;

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_next),
		cmocka_unit_test_setup_teardown(test_crash_tally, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crash_tally_spread, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crash_limit_zero, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_backoff_doubles,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_backoff_resets_after_long_life, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots_back_off_separately,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_stop_frees, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unknown_child, setup,
		    teardown),
		cmocka_unit_test(test_describe_status),
		cmocka_unit_test_setup_teardown(test_status_json, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
