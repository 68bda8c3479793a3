/*
 * store.c and store-row.c: the state database on real SQLite files in a
 * temporary directory. A schema is made for a new file; jobs written in a
 * transaction come back, every field, once committed; the next id goes on
 * after the largest; a file with a newer schema, another program's tables
 * or garbage is refused with its path and left as it was.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "mprocd.h"
#include "util.h"
#include "xmalloc.h"

static char dir[64];
static char path[256];

static int
setup(void **state)
{
	(void)state;
	log_setlevel(LOG_CRIT);
	snprintf(dir, sizeof dir, "/tmp/mprocd-test-store-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/sub/mprocd.db", dir);
	ev_base = event_base_new();
	cfg = config_new();
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	store_close();
	job_free_all();
	config_free(cfg);
	cfg = NULL;
	event_base_free(ev_base);
	ev_base = NULL;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
open_ok(void)
{
	char *why = NULL;

	if (store_open(path, 0, &why) != 0)
		fail_msg("store_open: %s", why);
}

/* A job as job_new() makes one, with every field of a row set. */
static struct job *
make_job(const char *arg)
{
	struct job_spec spec;
	struct job     *j;

	memset(&spec, 0, sizeof spec);
	spec.argv = xcalloc(3, sizeof *spec.argv);
	spec.argv[0] = xstrdup("echo");
	spec.argv[1] = xstrdup(arg);
	spec.env = xcalloc(2, sizeof *spec.env);
	spec.env[0] = xstrdup("K=v");
	spec.cwd = "/tmp";
	spec.name = "n";
	spec.stdin_data = (uint8_t *)xstrdup("in");
	spec.stdin_len = 2;
	spec.has_retries = 1;
	spec.retries = 2;
	spec.input = json_pack("{s:[i]}", "args", 7);
	j = job_new("p", &spec, 1000);
	json_decref(spec.input);
	job_spec_free(&spec);
	return j;
}

static void
test_new_file_and_round_trip(void **state)
{
	struct job_row row;
	struct job    *j;
	struct stat    st;
	int64_t	      *ids;
	size_t	       n;

	(void)state;
	open_ok();
	assert_int_equal(stat(path, &st), 0);
	assert_true(store_is_open());
	assert_string_equal(store_file(), path);
	assert_int_equal(store_first_id(), 1);

	j = make_job("one");
	assert_true(j->unsaved);
	assert_true(store_holding()); /* replies wait for the commit */
	job_output_add(j, 0, "out", 3, 100);
	j->result = json_pack("{s:s}", "r", "x");
	j->exit_status = 3;
	j->state = JOB_FAILED;
	j->finished_usec = 42;
	j->started_usec = 41;
	j->attempts = 1;
	snprintf(j->worker, sizeof j->worker, "p/0");
	assert_int_equal(store_put(j, 0), 0);
	j->state = JOB_QUEUED; /* in no list of job.c's: as it was */
	store_flush();
	assert_false(store_holding());
	assert_false(j->unsaved); /* stored: it may run */

	/* Read back, every field. */
	assert_int_equal(store_get(j->id, &row), 1);
	assert_int_equal(row.id, j->id);
	assert_string_equal(row.pool, "p");
	assert_string_equal(row.name, "n");
	assert_string_equal(row.argv[0], "echo");
	assert_string_equal(row.argv[1], "one");
	assert_null(row.argv[2]);
	assert_string_equal(row.env[0], "K=v");
	assert_string_equal(row.cwd, "/tmp");
	assert_int_equal(row.stdin_len, 2);
	assert_memory_equal(row.stdin_data, "in", 2);
	assert_int_equal(json_integer_value(
			     json_array_get(json_object_get(row.input, "args"),
				 0)),
	    7);
	assert_int_equal(row.uid, 1000);
	assert_true(row.retries_given);
	assert_int_equal(row.retries, 2);
	assert_false(row.timeout_given);
	assert_int_equal(row.state, JOB_FAILED);
	assert_int_equal(row.exit_status, 3);
	assert_string_equal(row.worker, "p/0");
	assert_int_equal(row.attempts, 1);
	assert_int_equal(row.finished_usec, 42);
	assert_int_equal(row.outlen[0], 3);
	assert_memory_equal(row.out[0], "out", 3);
	assert_string_equal(json_string_value(json_object_get(row.result, "r")),
	    "x");
	job_store_row_free(&row);
	store_get_done();
	assert_int_equal(store_get(9999, &row), 0);

	ids = store_ids(NULL, -1, &n);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], j->id);
	free(ids);
	ids = store_ids("other", -1, &n);
	assert_int_equal(n, 0);
	free(ids);
	assert_int_equal(store_count_finished(), 1);
}

/* What store_load() hands back, in order. */
static int64_t loaded[16];
static size_t  nloaded;

static void
collect(struct job_row *row)
{
	loaded[nloaded++] = row->id;
	job_store_row_free(row);
}

static void
test_reopen_loads_live_jobs_in_order(void **state)
{
	struct job *a, *b, *c;
	char	   *why = NULL;

	(void)state;
	open_ok();
	a = make_job("a");
	b = make_job("b");
	c = make_job("c");
	b->seq = -5; /* put back at the front */
	store_put(b, 0);
	c->state = JOB_SUCCEEDED;
	c->finished_usec = 1;
	store_put(c, 0);
	c->state = JOB_QUEUED; /* in no list of job.c's: as it was */
	store_flush();
	store_close();

	open_ok();
	assert_int_equal(store_first_id(), c->id + 1);
	nloaded = 0;
	assert_int_equal(store_load(collect, &why), 2);
	assert_int_equal(nloaded, 2);
	assert_int_equal(loaded[0], b->id);
	assert_int_equal(loaded[1], a->id);
}

/* Starts on path as it is; returns store_open's message, or NULL. */
static char *
refused(void)
{
	char *why = NULL;

	if (store_open(path, 0, &why) == 0) {
		store_close();
		return NULL;
	}
	assert_false(store_is_open());
	return why;
}

static void
sql(const char *text)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
test_refusals(void **state)
{
	FILE *f;
	char *why;
	int   i;

	(void)state;
	open_ok();
	store_close();
	sql("PRAGMA user_version = 7");
	why = refused();
	assert_non_null(why);
	assert_non_null(strstr(why, path));
	assert_non_null(strstr(why, "schema version 7 is newer"));
	free(why);

	unlink(path);
	sql("CREATE TABLE t (x)");
	why = refused();
	assert_non_null(why);
	assert_non_null(strstr(why, "not mprocd's state database"));
	free(why);

	assert_non_null(f = fopen(path, "w"));
	for (i = 0; i < 4096; i++)
		fputc(i * 7, f);
	fclose(f);
	why = refused();
	assert_non_null(why);
	assert_non_null(strstr(why, "not a database"));
	free(why);
}

/*
 * The disk is full from now on: no file may grow past the write-ahead
 * log's size (RLIMIT_FSIZE, SIGXFSZ ignored). *was: the limit to put back.
 */
static void
disk_full(struct rlimit *was)
{
	struct rlimit full;
	struct stat   st;
	char	      wal[300];

	snprintf(wal, sizeof wal, "%s-wal", path);
	assert_int_equal(stat(wal, &st), 0);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, was), 0);
	full = *was;
	full.rlim_cur = (rlim_t)st.st_size;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &full), 0);
}

/*
 * A commit that fails (the files may grow no more: RLIMIT_FSIZE, as a
 * full disk would have it) is rolled back: the job submitted in that pass
 * is forgotten, the others are written again; once writes work, a new job
 * is stored.
 */
static void
test_failed_commit_rolls_back(void **state)
{
	struct job_row row;
	struct job    *old, *j;
	struct rlimit  was;
	int64_t	       id;

	(void)state;
	open_ok();
	old = make_job("old");
	store_flush();
	assert_false(old->unsaved);

	disk_full(&was);
	j = make_job("new");
	id = j->id;
	old->attempts = 1;
	store_put(old, 0);
	store_flush(); /* fails: rolled back */
	assert_false(store_holding());
	assert_null(job_find_live(id)); /* never acknowledged: gone */
	assert_true(old->unsaved);	/* to be written again */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);

	/* Writes work again. */
	store_put(old, 0);
	j = make_job("after");
	store_flush();
	assert_false(old->unsaved);
	assert_int_equal(store_get(old->id, &row), 1);
	assert_int_equal(row.attempts, 1);
	job_store_row_free(&row);
	store_get_done();
	assert_int_equal(store_get(j->id, &row), 1);
	job_store_row_free(&row);
	store_get_done();
	assert_int_equal(store_get(id, &row), 0);
}

/*
 * A job that finishes in a pass whose commit fails stays in memory, even
 * past keep_finished: the file still has it queued, and it is written
 * again, finished, once writes work.
 */
static void
test_finish_not_evicted_before_commit(void **state)
{
	struct job_row row;
	struct job    *a, *b;
	struct rlimit  was;
	int64_t	       id;

	(void)state;
	cfg->keep_finished = 0;
	open_ok();
	a = make_job("a");
	b = make_job("b");
	id = a->id;
	store_flush();

	disk_full(&was);
	job_finish(a, JOB_SUCCEEDED);
	job_finish(b, JOB_SUCCEEDED); /* would evict a, were it written */
	assert_ptr_equal(job_find_live(id), a);
	store_flush(); /* fails */
	assert_ptr_equal(job_find_live(id), a);
	assert_true(a->unsaved);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);

	job_store_put(a, 0);
	job_store_put(b, 0);
	store_flush();
	assert_int_equal(store_get(id, &row), 1);
	assert_int_equal(row.state, JOB_SUCCEEDED);
	job_store_row_free(&row);
	store_get_done();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_file_and_round_trip,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_reopen_loads_live_jobs_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_commit_rolls_back,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_finish_not_evicted_before_commit, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
