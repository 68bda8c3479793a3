/*
 * daemon/reload.c: a checked configuration applied to running pools, as
 * reload_apply() does after SIGHUP or Reload. The pools are made as
 * supervisor_main() makes them, with made-up processes (fake-process.c
 * stands in for spawn_process() and kill()); nothing is forked.
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

#define SEC USEC_PER_SEC

#define MAIN_SECTION \
	"[mprocd]\n" \
	"log_target = stderr\n"

/* What mprocd runs with before each reload. */
static const char config_before[] = MAIN_SECTION "log_level = warning\n"
						 "[pool default]\n"
						 "workers = 2\n"
						 "spare_workers = 0\n"
						 "[pool shrinks]\n"
						 "workers = 3\n"
						 "spare_workers = 0\n"
						 "[pool same]\n"
						 "workers = 1\n"
						 "spare_workers = 0\n"
						 "[pool limits]\n"
						 "workers = 1\n"
						 "spare_workers = 0\n"
						 "job_timeout = 10s\n"
						 "max_output = 1M\n"
						 "[pool gone]\n"
						 "workers = 1\n"
						 "spare_workers = 0\n";

/*
 * What it is reloaded with: default grows, shrinks shrinks, same stays,
 * limits changes its limits, gone goes and extra comes.
 */
#define POOLS_AFTER \
	"[pool default]\n" \
	"workers = 4\n" \
	"spare_workers = 0\n" \
	"[pool shrinks]\n" \
	"workers = 1\n" \
	"spare_workers = 0\n" \
	"[pool same]\n" \
	"workers = 1\n" \
	"spare_workers = 0\n" \
	"[pool limits]\n" \
	"workers = 1\n" \
	"spare_workers = 0\n" \
	"job_timeout = 30s\n" \
	"max_output = 64K\n" \
	"kill_grace = 2s\n" \
	"[pool extra]\n" \
	"workers = 2\n" \
	"spare_workers = 1\n"

static const char config_after[] = MAIN_SECTION
    "log_level = warning\n" POOLS_AFTER;

/* The same, and a new log_level. */
static const char config_after_level[] = MAIN_SECTION
    "log_level = error\n" POOLS_AFTER;

static struct config *
load(const char *text)
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

/* mprocd running with config_before, as supervisor_main() starts it. */
static int
setup(void **state)
{
	struct pool_config *pc;
	struct pool	   *p;

	if (fake_setup(load(config_before)) != 0)
		return -1;
	TAILQ_FOREACH(pc, &cfg->pools, entry) {
		p = pool_new(pc);
		pool_start(p);
	}
	return 0;
}

static int
teardown(void **state)
{
	return fake_teardown();
}

static struct pool *
pool(const char *name)
{
	struct pool *p;

	if ((p = pool_find(name)) == NULL)
		fail_msg("no pool %s", name);
	return p;
}

/* The worker of slot n of pool name that is not being stopped. */
static struct worker *
slot(const char *name, unsigned int n)
{
	struct worker *w;

	TAILQ_FOREACH(w, &pool(name)->workers, entry)
		if (w->slot == n && w->stop == STOP_NONE)
			return w;
	fail_msg("no worker in slot %s/%u", name, n);
	return NULL;
}

/* Workers of the pool in state, spares not counted. */
static unsigned int
count(const char *name, enum worker_state state)
{
	struct worker *w;
	unsigned int   n = 0;

	TAILQ_FOREACH(w, &pool(name)->workers, entry)
		if (w->state == state)
			n++;
	return n;
}

static unsigned int
count_all(const char *name)
{
	struct worker *w;
	unsigned int   n = 0;

	TAILQ_FOREACH(w, &pool(name)->workers, entry)
		n++;
	return n;
}

/* Every frame waiting for the worker of pid, freed: how many of type. */
static unsigned int
frames_of(pid_t pid, uint32_t type, uint32_t *last_u32)
{
	struct proto_hdr h;
	uint8_t		*payload;
	unsigned int	 n = 0;

	while (fake_recv(pid, &h, &payload) == 0) {
		if (h.type == type) {
			n++;
			if (last_u32 != NULL)
				assert_int_equal(proto_unpack_log_level(payload,
						     h.len, last_u32),
				    0);
		}
		free(payload);
	}
	return n;
}

static void
test_setup_as_supervisor(void **state)
{
	assert_int_equal(nfakes, 2 + 3 + 1 + 1 + 1);
	assert_int_equal(count("default", WORKER_STARTING), 2);
	assert_int_equal(count("shrinks", WORKER_STARTING), 3);
	assert_int_equal(pool_count_live(), 8);
	assert_null(pool_find("extra"));
}

static void
test_reload_resizes(void **state)
{
	struct worker *same = slot("same", 0);
	pid_t	       same_pid = same->pid;
	pid_t	       shrink_pid[3];
	unsigned int   i;

	for (i = 0; i < 3; i++)
		shrink_pid[i] = slot("shrinks", i)->pid;
	fake_ready(slot("shrinks", 0));
	fake_ready(slot("shrinks", 1));
	reload_apply(load(config_after));

	assert_int_equal(pool("default")->cfg.workers, 4);
	assert_int_equal(count_all("default"), 4);
	assert_int_equal(count("default", WORKER_STARTING), 4);
	assert_int_equal(slot("default", 2)->pid, fakes[8].pid);
	assert_int_equal(slot("default", 3)->pid, fakes[9].pid);
	assert_string_equal(fakes[9].name, "default/3");

	/* shrinks retires its idle workers first: slot 2 still starts. */
	assert_int_equal(pool("shrinks")->cfg.workers, 1);
	assert_int_equal(slot("shrinks", 2)->pid, shrink_pid[2]);
	assert_int_equal(count("shrinks", WORKER_STOPPING), 2);
	assert_int_equal(fake_signals(shrink_pid[0], SIGTERM), 1);
	assert_int_equal(fake_signals(shrink_pid[1], SIGTERM), 1);
	assert_int_equal(fake_signals(shrink_pid[2], SIGTERM), 0);
	fake_reap(shrink_pid[0], SIGTERM);
	fake_reap(shrink_pid[1], SIGTERM);
	assert_int_equal(count_all("shrinks"), 1);
	assert_int_equal(count("shrinks", WORKER_STARTING), 1);

	/* A pool the reload does not change is left alone. */
	assert_ptr_equal(slot("same", 0), same);
	assert_int_equal(same->pid, same_pid);
	assert_int_equal(fake_signals(same_pid, SIGTERM), 0);
}

static void
test_reload_adds_pool(void **state)
{
	struct pool   *p;
	struct worker *s;

	reload_apply(load(config_after));
	p = pool("extra");
	assert_int_equal(p->cfg.workers, 2);
	assert_int_equal(p->cfg.spare_workers, 1);
	assert_int_equal(count_all("extra"), 2);
	assert_int_equal(count("extra", WORKER_STARTING), 2);
	assert_string_equal(slot("extra", 0)->name, "extra/0");
	assert_string_equal(slot("extra", 1)->name, "extra/1");
	assert_ptr_equal(pool_find_worker(slot("extra", 1)->pid),
	    slot("extra", 1));
	/* Its spare waits for its slots. */
	s = TAILQ_FIRST(&p->spares);
	assert_non_null(s);
	assert_int_equal(s->state, WORKER_WAITING);
	assert_null(TAILQ_NEXT(s, entry));
	/* It takes jobs. */
	fake_ready(slot("extra", 0));
	fake_run_on(slot("extra", 0));
}

static void
test_reload_removes_pool(void **state)
{
	struct pool	 *p = pool("gone");
	struct worker	 *w = slot("gone", 0);
	struct job_spec	  spec;
	enum pool_refusal why;
	pid_t		  pid = w->pid;

	fake_ready(w);
	fake_run_on(w);
	reload_apply(load(config_after));

	assert_ptr_equal(pool_find("gone"), p);
	assert_true(p->removed);
	assert_null(config_find_pool(cfg, "gone"));
	/* It takes no new job. */
	memset(&spec, 0, sizeof spec);
	assert_null(pool_submit(p, &spec, 1000, &why));
	assert_int_equal(why, POOL_NO_SUCH);
	/* Its running job finishes; then its worker goes, and the pool. */
	assert_int_equal(w->state, WORKER_BUSY);
	assert_int_equal(w->stop, STOP_RETIRE);
	assert_int_equal(fake_signals(pid, SIGTERM), 0);
	fake_finish_job(w);
	assert_int_equal(w->state, WORKER_STOPPING);
	assert_int_equal(fake_signals(pid, SIGTERM), 1);
	fake_reap(pid, SIGTERM);
	assert_null(pool_find("gone"));
}

static void
test_reload_changes_limits(void **state)
{
	struct pool   *p = pool("limits");
	struct worker *w = slot("limits", 0);
	struct job    *before, *after;

	assert_int_equal(p->cfg.job_timeout, 10 * SEC);
	fake_ready(w);
	before = fake_run_on(w);
	assert_int_equal(before->timeout, 10 * SEC);
	reload_apply(load(config_after));

	assert_ptr_equal(pool("limits"), p);
	assert_int_equal(p->cfg.job_timeout, 30 * SEC);
	assert_int_equal(p->cfg.max_output, 64 * 1024);
	assert_int_equal(p->cfg.kill_grace, 2 * SEC);
	assert_string_equal(p->cfg.name, "limits");
	assert_ptr_equal(p->cfg.name, p->name);
	/* Same size: its worker stays. */
	assert_ptr_equal(slot("limits", 0), w);
	assert_int_equal(w->stop, STOP_NONE);
	/* A running job keeps its limits; the next one gets the new. */
	assert_int_equal(before->timeout, 10 * SEC);
	fake_finish_job(w);
	after = fake_run_on(w);
	assert_int_equal(after->timeout, 30 * SEC);
}

static void
test_reload_replaces_cfg(void **state)
{
	struct config *nc = load(config_after);

	reload_apply(nc);
	assert_ptr_equal(cfg, nc);
	assert_non_null(config_find_pool(cfg, "extra"));
	assert_null(config_find_pool(cfg, "gone"));
	/* A second reload with the same file changes nothing. */
	nc = load(config_after);
	reload_apply(nc);
	assert_ptr_equal(cfg, nc);
	assert_int_equal(count_all("default"), 4);
	assert_int_equal(count_all("extra"), 2);
	assert_int_equal(nfakes, 8 + 2 + 2);
}

static void
test_reload_log_level(void **state)
{
	struct worker *w = slot("same", 0);
	uint32_t       level = 0;
	size_t	       i;

	/* The same log_level: no frame. */
	reload_apply(load(config_after));
	assert_int_equal(log_getlevel(), LOG_CRIT);
	assert_int_equal(frames_of(w->pid, PROTO_LOG_LEVEL, NULL), 0);

	reload_apply(load(config_after_level));
	assert_int_equal(cfg->log_level, LOG_ERR);
	assert_int_equal(log_getlevel(), LOG_ERR);
	log_setlevel(LOG_CRIT);
	/* Every worker with a channel is told, the new ones too. */
	for (i = 0; i < nfakes; i++) {
		if (pool_find_worker(fakes[i].pid) == NULL ||
		    pool_find_worker(fakes[i].pid)->bev == NULL)
			continue;
		assert_int_equal(frames_of(fakes[i].pid, PROTO_LOG_LEVEL,
				     &level),
		    1);
		assert_int_equal(level, LOG_ERR);
	}
	assert_int_equal(frames_of(w->pid, PROTO_LOG_LEVEL, NULL), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_setup_as_supervisor),
		T(test_reload_resizes),
		T(test_reload_adds_pool),
		T(test_reload_removes_pool),
		T(test_reload_changes_limits),
		T(test_reload_replaces_cfg),
		T(test_reload_log_level),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
