/* The configuration file: good files, every kind of bad line, printing. */
#include "config.h"

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
#include "util.h"

#define MS  USEC_PER_MSEC
#define SEC USEC_PER_SEC

static struct config *
load_ok(const char *text)
{
	struct config_errors e;
	struct config	    *c;
	size_t		     i;

	c = config_load_string("t.conf", text, &e);
	for (i = 0; i < e.n; i++)
		print_message("unexpected error: %s\n", e.v[i]);
	assert_int_equal(e.n, 0);
	assert_non_null(c);
	config_errors_free(&e);
	return c;
}

/* The file must fail with exactly one error, and it must contain want. */
static void
expect_error(const char *text, const char *want)
{
	struct config_errors e;
	struct config	    *c;
	size_t		     i;

	c = config_load_string("t.conf", text, &e);
	assert_null(c);
	for (i = 0; i < e.n; i++)
		if (e.n != 1 || strstr(e.v[i], want) == NULL)
			print_message("error %zu: %s\n", i, e.v[i]);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.v[0], want));
	config_errors_free(&e);
}

static void
test_empty_gets_default_pool(void **state)
{
	struct config	   *c = load_ok("");
	struct pool_config *pc = TAILQ_FIRST(&c->pools);

	assert_non_null(pc);
	assert_string_equal(pc->name, "default");
	assert_null(TAILQ_NEXT(pc, entry));
	assert_int_equal(pc->workers, 4);
	assert_int_equal(pc->restart_delay, 100 * MS);
	assert_int_equal(pc->restart_delay_max, 30 * SEC);
	assert_int_equal(pc->crash_limit, 10);
	assert_int_equal(pc->crash_interval, 60 * SEC);
	assert_int_equal(pc->queue_limit, 100000);
	assert_int_equal(pc->kill_grace, 5 * SEC);
	assert_int_equal(pc->max_output, 1 << 20);
	assert_null(c->socket);
	assert_int_equal(c->socket_mode, 0660);
	assert_string_equal(c->log_target, "auto");
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->max_clients, 256);
	assert_int_equal(c->max_message, 4 << 20);
	assert_int_equal(c->message_timeout, 10 * SEC);
	assert_int_equal(c->keep_finished, 10000);
	assert_int_equal(c->shutdown_timeout, 30 * SEC);
	config_free(c);
}

static void
test_full_file(void **state)
{
	struct config	   *c;
	struct pool_config *pc;

	c = load_ok("; a comment\n"
		    "# another\n"
		    "[mprocd]\n"
		    "socket = /tmp/x/mprocd.sock   ; inline comment\n"
		    "socket_mode = 0600\n"
		    "log_target = file:/var/log/mprocd.log\n"
		    "log_level = debug\n"
		    "max_clients = 10\n"
		    "max_message = 64K\n"
		    "message_timeout = 250ms\n"
		    "keep_finished = 0\n"
		    "shutdown_timeout = 2min\n"
		    "\n"
		    "[pool fast]\n"
		    "workers = 8\n"
		    "restart_delay = 0\n"
		    "restart_delay_max = 1.5s\n"
		    "crash_limit = 0\n"
		    "crash_interval = 1h\n"
		    "job_timeout = 250ms\n"
		    "max_output = 1G\n"
		    "retries = 3\n"
		    "max_jobs_per_worker = 1000\n"
		    "queue_limit = 1\n"
		    "kill_grace = 0\n"
		    "[pool slow]\n");
	assert_string_equal(c->socket, "/tmp/x/mprocd.sock");
	assert_int_equal(c->socket_mode, 0600);
	assert_string_equal(c->log_target, "file:/var/log/mprocd.log");
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_int_equal(c->max_clients, 10);
	assert_int_equal(c->max_message, 64 * 1024);
	assert_int_equal(c->message_timeout, 250 * SEC / 1000);
	assert_int_equal(c->keep_finished, 0);
	assert_int_equal(c->shutdown_timeout, 120 * SEC);
	pc = config_find_pool(c, "fast");
	assert_non_null(pc);
	assert_int_equal(pc->workers, 8);
	assert_int_equal(pc->restart_delay, 0);
	assert_int_equal(pc->restart_delay_max, 1500 * MS);
	assert_int_equal(pc->crash_limit, 0);
	assert_int_equal(pc->crash_interval, 3600 * SEC);
	assert_int_equal(pc->job_timeout, 250 * MS);
	assert_int_equal(pc->max_output, 1ULL << 30);
	assert_int_equal(pc->retries, 3);
	assert_int_equal(pc->max_jobs_per_worker, 1000);
	assert_int_equal(pc->queue_limit, 1);
	assert_int_equal(pc->kill_grace, 0);
	/* An empty pool section is a pool with every default. */
	pc = config_find_pool(c, "slow");
	assert_non_null(pc);
	assert_int_equal(pc->workers, 4);
	assert_int_equal(pc->line, 26);
	assert_null(config_find_pool(c, "default"));
	config_free(c);
}

static void
test_header_spacing(void **state)
{
	struct config *c = load_ok("[ pool  web ]\nworkers = +3\n[ mprocd ]\n");

	assert_non_null(config_find_pool(c, "web"));
	assert_int_equal(config_find_pool(c, "web")->workers, 3);
	config_free(c);
}

static void
test_workers_auto(void **state)
{
	struct config	   *c = load_ok("[pool a]\nworkers = auto\n");
	struct pool_config *pc = TAILQ_FIRST(&c->pools);
	long		    n = sysconf(_SC_NPROCESSORS_ONLN);

	assert_true(pc->workers_auto);
	assert_int_equal(pc->workers, n > 0 ? n : 1);
	config_free(c);
}

static void
test_bad_values(void **state)
{
	expect_error("[pool a]\nworkers = 0\n",
	    "t.conf:2: workers = 0: too small (expected a whole number from "
	    "1 to 4096, or auto");
	expect_error("[pool a]\nworkers = -2\n",
	    "t.conf:2: workers = -2: "
	    "negative");
	expect_error("[pool a]\nworkers = many\n",
	    "t.conf:2: workers = many: "
	    "not a number");
	expect_error("[pool a]\nworkers = 5000\n", "too large");
	expect_error("[pool a]\nworkers = 2.5\n", "not a whole number");
	expect_error("[pool a]\nrestart_delay = 5x\n",
	    "t.conf:2: restart_delay = 5x: unknown unit");
	expect_error("[pool a]\nrestart_delay = -1s\n", "negative");
	expect_error("[pool a]\nrestart_delay = 2h\n",
	    "restart_delay = 2h: "
	    "too large (expected a duration from 0 to 1h");
	expect_error("[pool a]\ncrash_interval = 0\n", "too small");
	expect_error("[pool a]\nrestart_delay = 0\nrestart_delay_max = 0\n",
	    "t.conf:3: restart_delay_max = 0: too small (expected a duration "
	    "from 10ms");
	expect_error("[pool a]\nmax_output = 4Q\n",
	    "max_output = 4Q: unknown "
	    "unit (use K, M or G)");
	expect_error("[pool a]\nmax_output = 99999999999999999999\n",
	    "too large");
	expect_error("[pool a]\nretries = 1000\n", "too large");
	expect_error("[mprocd]\nmax_message = 10\n", "too small");
	/* A Submit must fit in one frame to a worker. */
	expect_error("[mprocd]\nmax_message = 64M\n", "too large");
	expect_error("[mprocd]\nmessage_timeout = 0\n",
	    "t.conf:2: "
	    "message_timeout");
	expect_error("[mprocd]\nsocket = relative/path\n",
	    "not an absolute "
	    "path");
	expect_error("[mprocd]\nsocket_mode = 999\n", "not an octal mode");
	expect_error("[mprocd]\nsocket_mode = 01777\n",
	    "not a permission mode");
	expect_error("[mprocd]\nlog_level = loud\n", "unknown log level");
	expect_error("[mprocd]\nlog_target = syslog\n", "unknown log target");
	expect_error("[mprocd]\nlog_target = file:rel\n", "unknown log target");
	expect_error("[mprocd]\nmax_clients =\n",
	    "t.conf:2: max_clients has "
	    "no value");
}

static void
test_bad_structure(void **state)
{
	expect_error("[pool a]\nwokers = 2\n",
	    "t.conf:2: unknown key "
	    "'wokers' in [pool a]; did you mean 'workers'?");
	expect_error("[mprocd]\nsokcet = /x\n", "did you mean 'socket'?");
	expect_error("[mprocd]\nworkers = 2\n",
	    "t.conf:2: workers belongs in "
	    "a [pool NAME] section, not here");
	expect_error("[pool a]\nlog_level = info\n",
	    "t.conf:2: log_level "
	    "belongs in [mprocd], not here");
	expect_error("[mprocdd]\n", "t.conf:1: unknown section [mprocdd]");
	expect_error("[mprocdd]\n", "did you mean [mprocd]?");
	expect_error("\n[pool]\n", "t.conf:2: [pool] needs a name");
	expect_error("[pool a/b]\n", "bad pool name 'a/b'");
	expect_error("[pool a]\n[pool b]\n[pool a]\n",
	    "t.conf:3: pool 'a' "
	    "defined twice (first at line 1)");
	expect_error("[mprocd]\n[mprocd]\n",
	    "t.conf:2: section [mprocd] given "
	    "twice (first at line 1)");
	expect_error("[pool a]\nworkers = 1\nworkers = 2\n",
	    "t.conf:3: workers "
	    "given twice in this section (first at line 2)");
	expect_error("workers = 1\n",
	    "t.conf:1: 'workers' is outside any "
	    "section");
	expect_error("[pool a]\nthis line is junk\n", "t.conf:2: syntax error");
	expect_error("[pool a]\nrestart_delay = 2s\nrestart_delay_max = 1s\n",
	    "t.conf:3: restart_delay_max (1s) is smaller than restart_delay "
	    "(2s) in [pool a]");
}

static void
test_bad_keys_in_bad_section_ignored(void **state)
{
	/* Only the header is reported, not every key under it. */
	expect_error("[bogus]\nworkers = 1\nfoo = 2\n", "unknown section");
}

static void
test_long_line(void **state)
{
	char text[1024];

	snprintf(text, sizeof text,
	    "[mprocd]\nsocket = /%0500d\n"
	    "bad = 1\n",
	    0);
	/* The long line is reported and line numbering stays right after. */
	struct config_errors e;

	assert_null(config_load_string("t.conf", text, &e));
	assert_int_equal(e.n, 2);
	assert_non_null(strstr(e.v[0], "t.conf:2: line too long"));
	assert_non_null(strstr(e.v[1], "t.conf:3: unknown key 'bad'"));
	config_errors_free(&e);
}

static void
test_all_errors_reported(void **state)
{
	struct config_errors e;

	assert_null(config_load_string("t.conf",
	    "[pool a]\nworkers = x\n"
	    "retries = y\n[nope]\n",
	    &e));
	assert_int_equal(e.n, 3);
	assert_non_null(strstr(e.v[0], "t.conf:2:"));
	assert_non_null(strstr(e.v[1], "t.conf:3:"));
	assert_non_null(strstr(e.v[2], "t.conf:4:"));
	config_errors_free(&e);
}

static void
test_missing_file(void **state)
{
	struct config_errors e;

	assert_null(config_load("/nonexistent/mprocd.conf", &e));
	assert_int_equal(e.n, 1);
	assert_string_equal(e.v[0],
	    "/nonexistent/mprocd.conf: No such file or directory");
	config_errors_free(&e);
}

/* Printing is a valid file that reads back to the same configuration. */
static void
test_print_round_trip(void **state)
{
	struct config *c, *c2;
	char	      *out1 = NULL, *out2 = NULL;
	size_t	       n1, n2;
	FILE	      *f;

	c = load_ok("[mprocd]\nsocket = /tmp/s.sock\nlog_level = notice\n"
		    "[pool a]\nworkers = 3\nrestart_delay = 250ms\n"
		    "max_output = 1536\n[pool b]\nworkers = auto\n");
	f = open_memstream(&out1, &n1);
	config_print(c, f);
	fclose(f);
	assert_non_null(strstr(out1, "[pool a]\nworkers = 3\n"));
	assert_non_null(strstr(out1, "restart_delay = 250ms\n"));
	assert_non_null(strstr(out1, "max_output = 1536\n"));
	assert_non_null(strstr(out1, "[pool b]\nworkers = auto\n"));
	assert_non_null(strstr(out1, "log_level = notice\n"));
	assert_non_null(strstr(out1, "socket_mode = 0660\n"));
	c2 = load_ok(out1);
	f = open_memstream(&out2, &n2);
	config_print(c2, f);
	fclose(f);
	assert_string_equal(out1, out2);
	free(out1);
	free(out2);
	config_free(c);
	config_free(c2);
}

/* The change reload_diff found for pool, which must be there once. */
static const struct config_change *
change_of(const struct config_change *ch, size_t n, const char *pool)
{
	const struct config_change *found = NULL;
	size_t			    i;

	for (i = 0; i < n; i++)
		if (strcmp(ch[i].pool, pool) == 0) {
			assert_null(found);
			found = &ch[i];
		}
	if (found == NULL)
		fail_msg("no change for pool %s", pool);
	return found;
}

/* What a reload does to each pool: grows, shrinks, appears, goes, keeps. */
static void
test_diff(void **state)
{
	struct config *old = load_ok(
	    "[pool keep]\nworkers = 2\n"
	    "[pool grow]\nworkers = 1\n"
	    "[pool shrink]\nworkers = 4\n"
	    "[pool limits]\nworkers = 2\njob_timeout = 5s\n"
	    "[pool gone]\nworkers = 3\n");
	struct config *new = load_ok(
	    "[pool shrink]\nworkers = 1\nretries = 2\n"
	    "[pool keep]\nworkers = 2\n"
	    "[pool grow]\nworkers = 6\n"
	    "[pool limits]\nworkers = 2\njob_timeout = 10s\n"
	    "[pool fresh]\nworkers = 5\n");
	const struct config_change *c;
	struct config_change	   *ch;
	size_t			    i, n;

	n = reload_diff(old, new, &ch);
	assert_int_equal(n, 6);
	/* The new file's pools in its order, then those it dropped. */
	assert_string_equal(ch[0].pool, "shrink");
	assert_string_equal(ch[4].pool, "fresh");
	assert_string_equal(ch[5].pool, "gone");

	c = change_of(ch, n, "keep");
	assert_int_equal(c->kind, POOL_KEPT);
	assert_int_equal(c->limits, 0);
	c = change_of(ch, n, "grow");
	assert_int_equal(c->kind, POOL_GROWS);
	assert_int_equal(c->from, 1);
	assert_int_equal(c->to, 6);
	c = change_of(ch, n, "shrink");
	assert_int_equal(c->kind, POOL_SHRINKS);
	assert_int_equal(c->from, 4);
	assert_int_equal(c->to, 1);
	assert_int_equal(c->limits, 1);
	c = change_of(ch, n, "limits");
	assert_int_equal(c->kind, POOL_KEPT);
	assert_int_equal(c->limits, 1);
	c = change_of(ch, n, "fresh");
	assert_int_equal(c->kind, POOL_ADDED);
	assert_int_equal(c->to, 5);
	c = change_of(ch, n, "gone");
	assert_int_equal(c->kind, POOL_REMOVED);
	assert_int_equal(c->from, 3);
	free(ch);

	/* The same file: every pool kept, nothing else. */
	n = reload_diff(old, old, &ch);
	assert_int_equal(n, 5);
	for (i = 0; i < n; i++) {
		assert_int_equal(ch[i].kind, POOL_KEPT);
		assert_int_equal(ch[i].limits, 0);
	}
	free(ch);

	/* Every limit counts as a change of limits. */
	config_free(new);
	new = load_ok("[pool keep]\nworkers = 2\nkill_grace = 1s\n");
	n = reload_diff(old, new, &ch);
	c = change_of(ch, n, "keep");
	assert_int_equal(c->kind, POOL_KEPT);
	assert_int_equal(c->limits, 1);
	assert_int_equal(change_of(ch, n, "grow")->kind, POOL_REMOVED);
	free(ch);
	config_free(old);
	config_free(new);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_gets_default_pool),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_header_spacing),
		cmocka_unit_test(test_workers_auto),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_bad_structure),
		cmocka_unit_test(test_bad_keys_in_bad_section_ignored),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_print_round_trip),
		cmocka_unit_test(test_diff),
	};

	setenv("XDG_RUNTIME_DIR", "/run/user/test", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
