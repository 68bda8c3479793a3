/*
 * The job table and state machine, driven without workers: jobs are
 * created, "started" on a made-up worker and finished with made-up wait
 * statuses, as the supervisor would on frames from a worker.
 */
#include "config.h"

#include <sys/wait.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mprocd.h"
#include "varlink.h"
#include "util.h"
#include "xmalloc.h"

static struct pool   *pool;
static struct worker *fake;

static int
setup(void **state)
{
	struct pool_config pc;

	log_setlevel(LOG_CRIT);
	ev_base = event_base_new();
	cfg = config_new();
	cfg->keep_finished = 100;
	memset(&pc, 0, sizeof pc);
	pc.name = (char *)(uintptr_t) "p";
	pc.workers = 1;
	pc.queue_limit = 1000;
	pc.kill_grace = 5 * USEC_PER_SEC;
	pc.start_timeout = 30 * USEC_PER_SEC;
	pc.max_output = 10;
	pc.crash_limit = 3;
	pc.crash_interval = 60 * USEC_PER_SEC;
	pool = pool_new(&pc);
	/* A worker slot with no process: never idle, so nothing dispatches. */
	fake = pool_worker_new(pool, 0);
	return ev_base == NULL;
}

static int
teardown(void **state)
{
	job_free_all();
	pool_free(pool);
	config_free(cfg);
	cfg = NULL;
	event_base_free(ev_base);
	ev_base = NULL;
	return 0;
}

static char **
argv_of(const char *a0)
{
	char **v = xcalloc(2, sizeof *v);

	v[0] = xstrdup(a0);
	return v;
}

static struct job *
queued_job(void)
{
	struct job_spec spec = { .argv = argv_of("true"), .cwd = "/" };
	struct job     *j = job_new(pool->name, &spec, 1000);

	pool_enqueue(pool, j, 0);
	return j;
}

/* As the pool does when it hands the job to a worker. */
static struct job *
running_job(void)
{
	struct job *j = queued_job();

	pool_dequeue(j);
	job_started(j, fake);
	return j;
}

static void
test_final_state(void **state)
{
	assert_int_equal(job_final_state(JOB_KILL_NONE, 0), JOB_SUCCEEDED);
	assert_int_equal(job_final_state(JOB_KILL_NONE, 1 << 8), JOB_FAILED);
	assert_int_equal(job_final_state(JOB_KILL_NONE, 127 << 8), JOB_FAILED);
	/* Killed by a signal nobody in mprocd sent. */
	assert_int_equal(job_final_state(JOB_KILL_NONE, SIGKILL), JOB_FAILED);
	/* What we killed it for decides, whatever it exited with. */
	assert_int_equal(job_final_state(JOB_KILL_TIMEOUT, SIGTERM),
	    JOB_TIMEOUT);
	assert_int_equal(job_final_state(JOB_KILL_TIMEOUT, 0), JOB_TIMEOUT);
	assert_int_equal(job_final_state(JOB_KILL_CANCEL, SIGKILL),
	    JOB_CANCELLED);
	assert_int_equal(job_final_state(JOB_KILL_SHUTDOWN, 0), JOB_CANCELLED);
}

static void
test_state_names(void **state)
{
	int s;

	for (s = JOB_QUEUED; s <= JOB_LOST; s++)
		assert_int_equal(job_parse_state(job_state_name(s)), s);
	assert_string_equal(job_state_name(JOB_LOST), "lost");
	assert_int_equal(job_parse_state("done"), -1);
	assert_int_equal(job_parse_state(""), -1);
}

static void
test_ids_and_table(void **state)
{
	struct job *j[3000];
	int	    i;

	/* Enough to make the table grow a few times. */
	for (i = 0; i < 3000; i++) {
		j[i] = queued_job();
		if (i > 0)
			assert_int_equal(j[i]->id, j[i - 1]->id + 1);
	}
	for (i = 0; i < 3000; i++)
		assert_ptr_equal(job_find(j[i]->id), j[i]);
	assert_null(job_find(j[2999]->id + 1));
	assert_null(job_find(0));
	assert_int_equal(pool->nqueued, 3000);
}

static void
test_fifo_and_retry_front(void **state)
{
	struct job *a = queued_job(), *b = queued_job(), *c;

	assert_ptr_equal(TAILQ_FIRST(&pool->queue), a);
	pool_dequeue(a);
	assert_ptr_equal(TAILQ_FIRST(&pool->queue), b);
	c = queued_job();
	assert_ptr_equal(TAILQ_LAST(&pool->queue, jobs), c);
	/* A retried job goes first. */
	pool_enqueue(pool, a, 1);
	assert_ptr_equal(TAILQ_FIRST(&pool->queue), a);
	assert_int_equal(pool->nqueued, 3);
}

static void
test_succeeded_and_failed(void **state)
{
	struct job *a = running_job(), *b = running_job();

	assert_int_equal(a->state, JOB_RUNNING);
	assert_int_equal(a->attempts, 1);
	assert_string_equal(a->worker, "p/0");
	job_done(a, 0, 0);
	assert_int_equal(a->state, JOB_SUCCEEDED);
	assert_int_equal(a->exit_status, 0);
	assert_int_equal(a->signal, 0);
	assert_true(a->finished_usec >= a->started_usec);
	assert_null(a->w);
	job_done(b, SIGSEGV, 0);
	assert_int_equal(b->state, JOB_FAILED);
	assert_int_equal(b->exit_status, -1);
	assert_int_equal(b->signal, SIGSEGV);
	assert_int_equal(pool->succeeded, 1);
	assert_int_equal(pool->failed, 1);
	assert_int_equal(job_count_finished(), 2);
}

static void
test_output_capped(void **state)
{
	struct job *j = running_job();

	job_output_add(j, 0, "0123456", 7, pool->cfg.max_output);
	assert_false(j->truncated);
	job_output_add(j, 0, "789abc", 6, pool->cfg.max_output);
	assert_true(j->truncated);
	assert_int_equal(j->out[0].len, 10);
	assert_memory_equal(j->out[0].data, "0123456789", 10);
	/* The other stream has its own allowance. */
	job_output_add(j, 1, "err", 3, pool->cfg.max_output);
	assert_int_equal(j->out[1].len, 3);
	/* Nothing kept at all with max_output 0. */
	j->out[1].len = 0;
	job_output_add(j, 1, "x", 1, 0);
	assert_int_equal(j->out[1].len, 0);
	/* A new attempt starts with empty output. */
	job_started(j, fake);
	assert_int_equal(j->out[0].len, 0);
	assert_false(j->truncated);
}

/* What a follower's watch was told, in order. */
static char seen[256];

static void
record_output(struct job_watch *jw, struct job *j, int stream, const void *lost,
    size_t len)
{
	size_t n = strlen(seen);

	(void)jw;
	(void)j;
	snprintf(seen + n, sizeof seen - n, "%d:%.*s;", stream, (int)len,
	    (const char *)lost);
}

static void
record_done(struct job_watch *jw, struct job *j)
{
	(void)jw;
	(void)j;
	strcat(seen, "done;");
}

/*
 * Followers' view: the runs record the order the streams came in, a watch
 * hears of each piece with what was not kept, of a gap, and of a retry,
 * which empties the output and its runs.
 */
static void
test_output_runs_and_followers(void **state)
{
	struct job	*j = running_job();
	struct job_watch jw = { .cb = record_done, .output = record_output };

	seen[0] = '\0';
	job_watch_add(j, &jw);
	job_output_add(j, 0, "abc", 3, pool->cfg.max_output);
	job_output_add(j, 0, "de", 2, pool->cfg.max_output);
	job_output_add(j, 1, "E", 1, pool->cfg.max_output);
	job_output_add(j, 0, "fghijklmno", 10, pool->cfg.max_output);
	assert_int_equal(j->live->nruns, 3);
	assert_int_equal(j->live->runs[0], 5);
	assert_int_equal(j->live->runs[1], JOB_RUN_STDERR | 1);
	assert_int_equal(j->live->runs[2], 5); /* 10 kept of stdout, in all */
	assert_int_equal(j->live->lost[0], 5);
	job_output_gap(j);
	assert_true(j->truncated);
	assert_string_equal(seen, "0:;0:;1:;0:klmno;-2:;");
	seen[0] = '\0';
	job_started(j, fake);
	assert_int_equal(j->live->nruns, 0);
	assert_int_equal(j->live->lost[0], 0);
	assert_false(j->truncated);
	job_done(j, 0, 0);
	assert_string_equal(seen, "-1:;done;");
}

static void
test_output_trimmed_when_finished(void **state)
{
	struct job *j = running_job();

	job_output_add(j, 0, "abc", 3, 1 << 20);
	assert_true(j->out[0].size > 3);
	job_output_add(j, 1, "x", 1, 1 << 20);
	j->out[1].len = 0;
	job_done(j, 0, 0);
	/* Only what was kept stays allocated; nothing for an empty stream. */
	assert_int_equal(j->out[0].size, 3);
	assert_memory_equal(j->out[0].data, "abc", 3);
	assert_int_equal(j->out[1].size, 0);
	assert_null(j->out[1].data);
}

/* Output as stdout then stderr needs no record of its order once done. */
static void
test_output_plain_order_let_go(void **state)
{
	struct job *j = running_job();
	uint32_t    v[2];

	job_output_add(j, 0, "ab", 2, 1 << 20);
	job_output_add(j, 1, "E", 1, 1 << 20);
	job_done(j, 0, 0);
	assert_null(j->live);
	job_output_plain_runs(j, v);
	assert_int_equal(v[0], 2);
	assert_int_equal(v[1], JOB_RUN_STDERR | 1);

	/* stderr alone, or stderr first: kept. */
	j = running_job();
	job_output_add(j, 1, "E", 1, 1 << 20);
	job_done(j, 0, 0);
	assert_non_null(j->live);
	assert_int_equal(j->live->nruns, 1);
	j = running_job();
	job_output_add(j, 0, "a", 1, 1 << 20);
	job_output_add(j, 1, "E", 1, 1 << 20);
	job_output_add(j, 0, "b", 1, 1 << 20);
	job_done(j, 0, 0);
	assert_non_null(j->live);
	assert_int_equal(j->live->nruns, 3);
	assert_int_equal(j->live->runs_size, 3); /* trimmed */

	/* Its order for the state database, and back. */
	{
		uint8_t *blob, bad[4] = { 1, 0, 0, 0 };
		size_t	 len;

		blob = job_output_runs_blob(j, &len);
		assert_non_null(blob);
		assert_int_equal(len, 12);
		assert_int_equal(blob[4], 1);
		assert_int_equal(blob[7], 0x80);
		j->live->nruns = 0;
		assert_int_equal(job_output_set_runs(j, blob, len), 0);
		assert_int_equal(j->live->nruns, 3);
		assert_int_equal(j->live->runs[1], JOB_RUN_STDERR | 1);
		/* Not adding up, or not whole words: left as it was. */
		assert_int_equal(job_output_set_runs(j, bad, 4), -1);
		assert_int_equal(job_output_set_runs(j, blob, 11), -1);
		assert_int_equal(j->live->nruns, 3);
		assert_int_equal(job_output_set_runs(j, NULL, 0), 0);
		free(blob);
	}
	j = running_job();
	job_output_add(j, 0, "a", 1, 1 << 20);
	job_done(j, 0, 0);
	assert_null(job_output_runs_blob(j, &(size_t){ 0 }));

	assert_true(job_output_plain(NULL, 0));
	assert_false(job_output_plain((uint32_t[]){ JOB_RUN_STDERR | 1 }, 1));
	assert_false(job_output_plain((uint32_t[]){ 1, 1 }, 2));
}

static void
test_worker_died_retries_then_lost(void **state)
{
	struct job *j = running_job();

	j->retries = 1;
	job_worker_died(j);
	assert_int_equal(j->state, JOB_QUEUED);
	assert_ptr_equal(TAILQ_FIRST(&pool->queue), j);
	pool_dequeue(j);
	job_started(j, fake);
	assert_int_equal(j->attempts, 2);
	job_worker_died(j);
	assert_int_equal(j->state, JOB_LOST);
	assert_int_equal(pool->failed, 1);
	assert_int_equal(pool->nqueued, 0);
}

static void
test_worker_died_while_killed(void **state)
{
	struct job *j = running_job();

	j->retries = 5;
	job_kill(j, JOB_KILL_CANCEL);
	assert_int_equal(j->kill_signal, SIGTERM);
	/* A job being cancelled is not run again when its worker dies. */
	job_worker_died(j);
	assert_int_equal(j->state, JOB_CANCELLED);
	assert_int_equal(pool->cancelled, 1);
}

static void
test_kill_queued_and_reasons(void **state)
{
	struct job *q = queued_job(), *r = running_job();

	/* A timeout does not apply to a job that is not running. */
	job_kill(q, JOB_KILL_TIMEOUT);
	assert_int_equal(q->state, JOB_QUEUED);
	job_kill(q, JOB_KILL_CANCEL);
	assert_int_equal(q->state, JOB_CANCELLED);
	assert_int_equal(pool->nqueued, 0);
	assert_int_equal(q->attempts, 0);

	/* The first reason sticks: a timed-out job cancelled later. */
	job_kill(r, JOB_KILL_TIMEOUT);
	job_kill(r, JOB_KILL_CANCEL);
	assert_int_equal(r->kill, JOB_KILL_TIMEOUT);
	job_done(r, SIGTERM, 0);
	assert_int_equal(r->state, JOB_TIMEOUT);
	assert_int_equal(r->signal, SIGTERM);
	/* Killing a finished job changes nothing. */
	job_kill(r, JOB_KILL_CANCEL);
	assert_int_equal(r->state, JOB_TIMEOUT);
}

static int fired;

static void
count_cb(struct job_watch *jw, struct job *j)
{
	assert_ptr_equal(jw->arg, j);
	assert_true(job_is_finished(j));
	fired++;
}

static void
test_watches_fire_once(void **state)
{
	struct job	*j = running_job(), *k = running_job();
	struct job_watch a = { .cb = count_cb, .arg = j };
	struct job_watch b = { .cb = count_cb, .arg = j };
	struct job_watch c = { .cb = count_cb, .arg = k };

	fired = 0;
	job_watch_add(j, &a);
	job_watch_add(j, &b);
	job_watch_add(k, &c);
	job_watch_remove(&c);
	job_done(j, 0, 0);
	assert_int_equal(fired, 2);
	assert_null(a.job);
	job_done(k, 0, 0);
	assert_int_equal(fired, 2);
	/* Removing a fired watch is harmless. */
	job_watch_remove(&a);
}

static void
test_keep_finished(void **state)
{
	struct job *j[5];
	int64_t	    ids[5];
	int	    i;

	cfg->keep_finished = 3;
	for (i = 0; i < 5; i++) {
		j[i] = running_job();
		ids[i] = j[i]->id;
		job_done(j[i], 0, 0);
	}
	assert_int_equal(job_count_finished(), 3);
	assert_null(job_find(ids[0]));
	assert_null(job_find(ids[1]));
	for (i = 2; i < 5; i++)
		assert_non_null(job_find(ids[i]));
	/*
	 * Queued and running jobs are never evicted; with keep_finished 0
	 * the job finishing stays until the next one finishes, so whoever
	 * finished it can still use it.
	 */
	cfg->keep_finished = 0;
	j[0] = queued_job();
	j[1] = running_job();
	j[2] = running_job();
	job_done(j[2], 0, 0);
	assert_int_equal(job_count_finished(), 1);
	assert_ptr_equal(job_find(j[2]->id), j[2]);
	ids[2] = j[2]->id;
	job_kill(j[0], JOB_KILL_CANCEL);
	assert_int_equal(j[0]->state, JOB_CANCELLED);
	assert_null(job_find(ids[2]));
	assert_int_equal(job_count_finished(), 1);
	assert_non_null(job_find(j[1]->id));
}

/* What method_job_write() writes, read back. */
static json_t *
job_json(const struct job *j)
{
	struct varlink_buf b;
	json_error_t	   e;
	json_t		  *o;

	varlink_buf_init(&b);
	method_job_write(&b, j);
	o = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &e);
	assert_non_null(o);
	free(b.data);
	return o;
}

static void
test_json(void **state)
{
	struct job *j = running_job();
	json_t	   *o;
	int64_t	   *ids;
	size_t	    n;

	j->name = xstrdup("n");
	j->pid = 4242;
	o = job_json(j);
	assert_string_equal(json_string_value(json_object_get(o, "state")),
	    "running");
	assert_string_equal(json_string_value(json_object_get(o, "name")), "n");
	assert_int_equal(json_integer_value(json_object_get(o, "uid")), 1000);
	assert_int_equal(json_integer_value(json_object_get(o, "pid")), 4242);
	assert_string_equal(json_string_value(json_object_get(o, "worker")),
	    "p/0");
	assert_null(json_object_get(o, "exit_status"));
	assert_null(json_object_get(o, "finished_usec"));
	json_decref(o);
	job_done(j, 3 << 8, 0);
	o = job_json(j);
	assert_int_equal(json_integer_value(json_object_get(o, "exit_status")),
	    3);
	assert_null(json_object_get(o, "signal"));
	assert_non_null(json_object_get(o, "finished_usec"));
	json_decref(o);

	ids = job_ids("p", JOB_FAILED, &n);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], j->id);
	assert_true(job_matches(j, "p", JOB_FAILED));
	assert_true(job_matches(j, NULL, -1));
	assert_false(job_matches(j, "p", JOB_SUCCEEDED));
	free(ids);
	ids = job_ids("nope", -1, &n);
	assert_int_equal(n, 0);
	free(ids);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_final_state),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test_setup_teardown(test_ids_and_table, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fifo_and_retry_front,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_succeeded_and_failed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_runs_and_followers,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_capped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_output_trimmed_when_finished, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_plain_order_let_go,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_worker_died_retries_then_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_died_while_killed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_queued_and_reasons,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_watches_fire_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_keep_finished, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_json, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
