/*
 * daemon/pool-worker.c: the worker state machine, its backoff arithmetic, a
 * worker's life and a spare given to a slot, driven without forking:
 * workers get made-up pids (fake-process.c stands in for spawn_process()
 * and kill()) and pool_child_exited() is fed made-up statuses.
 */
#include "config.h"

#include <sys/socket.h>
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

/* The log records written between capture_start() and capture_end(). */
struct capture {
	char dir[64];
	char path[128];
};

static void
capture_start(struct capture *c, int level)
{
	char	    target[160];
	const char *errstr = NULL;

	snprintf(c->dir, sizeof c->dir, "/tmp/test-pool-worker.XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	snprintf(c->path, sizeof c->path, "%s/log", c->dir);
	snprintf(target, sizeof target, "file:%s", c->path);
	if (log_open(target, &errstr) != 0)
		fail_msg("log_open %s: %s", target, errstr);
	log_setlevel(level);
}

/* What was logged, NUL-terminated, for the caller to free. */
static char *
capture_end(struct capture *c)
{
	FILE  *f;
	char  *s = xcalloc(1, 1 << 16);
	size_t n;

	log_close();
	log_setlevel(LOG_CRIT);
	if ((f = fopen(c->path, "r")) != NULL) {
		n = fread(s, 1, (1 << 16) - 1, f);
		s[n] = '\0';
		fclose(f);
	}
	unlink(c->path);
	rmdir(c->dir);
	return s;
}

/* The worker's JOB_DONE for job id, exit status 0. */
static void
fake_job_done(pid_t pid, const struct job *j)
{
	struct proto_buf b;

	proto_pack_job_done(&b, (uint64_t)j->id, 0, 0);
	fake_send(pid, PROTO_JOB_DONE, &b);
	proto_buf_free(&b);
}

static void
test_backoff_next(void **state)
{
	assert_int_equal(pool_worker_backoff_next(100 * MS, 30 * SEC),
	    200 * MS);
	assert_int_equal(pool_worker_backoff_next(20 * SEC, 30 * SEC),
	    30 * SEC);
	assert_int_equal(pool_worker_backoff_next(30 * SEC, 30 * SEC),
	    30 * SEC);
	assert_int_equal(pool_worker_backoff_next(0, 30 * SEC), 0);
	assert_int_equal(pool_worker_backoff_next(UINT64_MAX / 2 + 1,
			     UINT64_MAX),
	    UINT64_MAX);
}

static void
test_state_names(void **state)
{
	static const char *const names[WORKER_NSTATES] = {
		[WORKER_STARTING] = "starting",
		[WORKER_IDLE] = "idle",
		[WORKER_BUSY] = "busy",
		[WORKER_BACKOFF] = "backoff",
		[WORKER_STOPPING] = "stopping",
		[WORKER_WAITING] = "waiting",
		[WORKER_EXITED] = "exited",
	};
	int s;

	assert_int_equal(WORKER_NSTATES, 7);
	for (s = 0; s < WORKER_NSTATES; s++)
		assert_string_equal(pool_worker_state_name(s), names[s]);
	assert_string_equal(pool_worker_state_name(WORKER_NSTATES), "unknown");
	assert_string_equal(pool_worker_state_name((enum worker_state) - 1),
	    "unknown");
}

/*
 * The moves drawn in the comment above enum worker_state in mprocd.h,
 * copied by hand: the machine must have these and no other.
 */
static const struct {
	enum worker_state from, to;
} drawn_moves[] = {
	{ WORKER_BACKOFF, WORKER_STARTING },
	{ WORKER_BACKOFF, WORKER_BACKOFF },
	{ WORKER_BACKOFF, WORKER_WAITING },
	{ WORKER_WAITING, WORKER_BACKOFF },
	{ WORKER_STARTING, WORKER_IDLE },
	{ WORKER_STARTING, WORKER_STOPPING },
	{ WORKER_STARTING, WORKER_EXITED },
	{ WORKER_IDLE, WORKER_BUSY },
	{ WORKER_IDLE, WORKER_STOPPING },
	{ WORKER_IDLE, WORKER_EXITED },
	{ WORKER_IDLE, WORKER_WAITING },
	{ WORKER_BUSY, WORKER_IDLE },
	{ WORKER_BUSY, WORKER_STOPPING },
	{ WORKER_BUSY, WORKER_EXITED },
	{ WORKER_STOPPING, WORKER_EXITED },
	{ WORKER_EXITED, WORKER_BACKOFF },
	{ WORKER_EXITED, WORKER_STARTING },
};

static int
drawn(enum worker_state from, enum worker_state to)
{
	size_t i;

	for (i = 0; i < sizeof drawn_moves / sizeof drawn_moves[0]; i++)
		if (drawn_moves[i].from == from && drawn_moves[i].to == to)
			return 1;
	return 0;
}

static void
test_may_move_table(void **state)
{
	int from, to, n = 0;

	for (from = 0; from < WORKER_NSTATES; from++)
		for (to = 0; to < WORKER_NSTATES; to++) {
			if (pool_worker_may_move(from, to) != drawn(from, to))
				fail_msg("%s -> %s: the machine says %d, "
					 "mprocd.h draws %d",
				    pool_worker_state_name(from),
				    pool_worker_state_name(to),
				    pool_worker_may_move(from, to),
				    drawn(from, to));
			n += pool_worker_may_move(from, to);
		}
	assert_int_equal(n, 17);
	/* States that do not exist go nowhere. */
	assert_false(pool_worker_may_move(WORKER_NSTATES, WORKER_IDLE));
	assert_false(pool_worker_may_move(WORKER_IDLE, WORKER_NSTATES));
	assert_false(
	    pool_worker_may_move((enum worker_state) - 1, WORKER_BACKOFF));
	assert_false(
	    pool_worker_may_move(WORKER_EXITED, (enum worker_state) - 1));
}

static void
test_set_state(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *w = pool_worker_new(p, 0);
	int		   from, to;

	for (from = 0; from < WORKER_NSTATES; from++)
		for (to = 0; to < WORKER_NSTATES; to++) {
			w->state = from;
			if (drawn(from, to)) {
				assert_int_equal(pool_worker_set_state(w, to),
				    0);
				assert_int_equal(w->state, to);
			} else {
				assert_int_equal(pool_worker_set_state(w, to),
				    -1);
				assert_int_equal(w->state, from);
			}
		}
	/* A state that does not exist is refused too. */
	w->state = WORKER_IDLE;
	assert_int_equal(pool_worker_set_state(w, WORKER_NSTATES), -1);
	assert_int_equal(w->state, WORKER_IDLE);
}

/* An illegal move is a bug, and the log says which. */
static void
test_set_state_illegal_warns(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *w = pool_worker_new(p, 1);
	struct worker	  *s = pool_worker_new_spare(p);
	struct capture	   c;
	char		  *log;

	w->state = WORKER_BUSY;
	capture_start(&c, LOG_WARNING);
	assert_int_equal(pool_worker_set_state(w, WORKER_WAITING), -1);
	assert_int_equal(pool_worker_set_state(s, WORKER_IDLE), -1);
	/* A legal move says nothing at this level. */
	assert_int_equal(pool_worker_set_state(w, WORKER_IDLE), 0);
	log = capture_end(&c);
	assert_non_null(strstr(log,
	    "worker cannot go from busy to waiting "
	    "(a bug), ignoring"));
	assert_non_null(strstr(log, "worker=p/1"));
	assert_non_null(strstr(log, "spare cannot go from waiting to idle"));
	assert_null(strstr(log, "from idle"));
	assert_null(strstr(log, "from busy to idle"));
	free(log);
}

/* The life drawn in mprocd.h, one legal move after another. */
static void
test_walk(void **state)
{
	static const enum worker_state life[] = {
		WORKER_STARTING,
		WORKER_IDLE,
		WORKER_BUSY,
		WORKER_IDLE,
		WORKER_STOPPING,
		WORKER_EXITED,
		WORKER_BACKOFF,
		WORKER_STARTING,
	};
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *w = pool_worker_new(p, 0);
	size_t		   i;

	assert_int_equal(w->state, WORKER_BACKOFF);
	assert_int_equal(w->pid, 0);
	w->pid = FAKE_PID_BASE + 1000;
	for (i = 0; i < sizeof life / sizeof life[0]; i++) {
		assert_int_equal(pool_worker_set_state(w, life[i]), 0);
		assert_int_equal(w->state, life[i]);
		/* Only a spare's position waits, never a working slot. */
		if (life[i] != WORKER_IDLE && life[i] != WORKER_BACKOFF) {
			assert_int_equal(pool_worker_set_state(w,
					     WORKER_WAITING),
			    -1);
			assert_int_equal(w->state, life[i]);
		}
	}
	w->pid = 0;
}

/* The order the debug log saw moves in: each of want, in order. */
static void
assert_trail(const char *log, const char *const *want, size_t n)
{
	const char *at = log;
	size_t	    i;

	for (i = 0; i < n; i++) {
		if ((at = strstr(at, want[i])) == NULL)
			fail_msg("no \"%s\" after the moves before it in:\n%s",
			    want[i], log);
		at += strlen(want[i]);
	}
}

/*
 * The same life, driven as the supervisor drives it: spawned, HELLO, a job
 * dispatched and done, recycled (its respawn fails), then restarted.
 */
static void
test_life(void **state)
{
	static const char *const trail[] = {
		"from=backoff to=starting",
		"from=starting to=idle",
		"from=idle to=busy",
		"from=busy to=idle",
		"from=idle to=stopping",
		"from=stopping to=exited",
		"from=exited to=backoff",
		"from=backoff to=starting",
	};
	struct pool_config     pc = fake_pool_config();
	struct pool	      *p;
	struct worker	      *w;
	struct job	      *j;
	struct proto_hdr       h;
	struct proto_job_start js;
	struct capture	       c;
	uint8_t		      *payload;
	char		      *log;
	pid_t		       pid;

	pc.workers = 1;
	p = pool_new(&pc);
	w = pool_worker_new(p, 0);
	capture_start(&c, LOG_DEBUG);

	pool_worker_restart(w); /* no spare: it spawns */
	assert_int_equal(nfakes, 1);
	pid = fakes[0].pid;
	assert_string_equal(fakes[0].name, "p/0");
	assert_false(fakes[0].spare);
	assert_int_equal(w->state, WORKER_STARTING);
	assert_int_equal(w->pid, pid);
	assert_non_null(w->bev);

	fake_hello(pid);
	fake_loop();
	assert_int_equal(w->state, WORKER_IDLE);
	assert_true(w->said_hello);

	j = fake_submit(p, "true");
	pool_dispatch(p);
	assert_int_equal(w->state, WORKER_BUSY);
	assert_ptr_equal(w->job, j);
	assert_int_equal(j->state, JOB_RUNNING);
	assert_int_equal(fake_recv(pid, &h, &payload), 0);
	assert_int_equal(h.type, PROTO_JOB_START);
	assert_int_equal(proto_unpack_job_start(payload, h.len, &js), 0);
	assert_int_equal(js.id, j->id);
	assert_string_equal(js.argv[0], "true");
	proto_job_start_free(&js);
	free(payload);

	fake_job_done(pid, j);
	fake_loop();
	assert_int_equal(w->state, WORKER_IDLE);
	assert_null(w->job);
	assert_int_equal(w->jobs_done, 1);
	assert_int_equal(j->state, JOB_SUCCEEDED);

	pool_worker_stop(w, STOP_RECYCLE);
	assert_int_equal(w->state, WORKER_STOPPING);
	assert_int_equal(fake_signals(pid, SIGTERM), 1);

	/* Reaped; its replacement cannot be spawned: it backs off. */
	fake_spawn_failures = 1;
	assert_int_equal(pool_child_exited(pid, SIGTERM), 1);
	assert_int_equal(w->state, WORKER_BACKOFF);
	assert_int_equal(w->pid, 0);
	assert_null(w->bev);
	assert_ptr_equal(TAILQ_FIRST(&p->workers), w);
	assert_int_equal(nfakes, 1);

	/* Its backoff over, it starts again with a new process. */
	pool_worker_restart(w);
	log = capture_end(&c);
	assert_int_equal(w->state, WORKER_STARTING);
	assert_int_equal(nfakes, 2);
	assert_int_equal(w->pid, fakes[1].pid);
	assert_trail(log, trail, sizeof trail / sizeof trail[0]);
	assert_null(strstr(log, "(a bug)"));
	free(log);
}

static void
test_ready(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *w = pool_worker_new(p, 0);

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
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *w = pool_worker_new(p, 0);
	uint64_t expect[] = { 100 * MS, 200 * MS, 400 * MS, 800 * MS };
	size_t	 i;

	for (i = 0; i < sizeof expect / sizeof expect[0]; i++) {
		fake_start(w, 5000 + (pid_t)i, 10 * MS);
		pool_worker_ready(w);
		assert_int_equal(pool_child_exited(5000 + (pid_t)i,
				     W_EXITCODE(1, 0)),
		    1);
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
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *w = pool_worker_new(p, 0);

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
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *a = pool_worker_new(p, 0);
	struct worker	  *b = pool_worker_new(p, 1);

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

/* A spare's death is in the tally, but is no restart of a slot. */
static void
test_spare_crash_counts_no_restart(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *s = pool_worker_new_spare(p);

	assert_int_equal(pool_worker_set_state(s, WORKER_BACKOFF), 0);
	fake_start(s, FAKE_PID_BASE + 500, 0);
	assert_int_equal(pool_child_exited(FAKE_PID_BASE + 500, SIGKILL), 1);
	assert_int_equal(s->state, WORKER_BACKOFF);
	assert_int_equal(s->backoff, 100 * MS);
	assert_int_equal(s->restarts, 1);
	assert_int_equal(p->restarts, 0);
	assert_int_equal(p->ndeaths, 1);
}

static void
test_spare_waits(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *s = pool_worker_new_spare(p);

	assert_true(s->spare);
	assert_int_equal(s->state, WORKER_WAITING);
	assert_int_equal(s->pid, 0);
	assert_null(s->bev);
	assert_string_equal(s->name, "p/spare");
	assert_ptr_equal(TAILQ_FIRST(&p->spares), s);
	assert_true(TAILQ_EMPTY(&p->workers));
	assert_false(pool_worker_is_ready_spare(s));
	assert_int_equal(nfakes, 0);
	/* Slots first, then spares. */
	assert_ptr_equal(pool_next_worker(p, NULL), s);
	assert_null(pool_next_worker(p, s));
}

/*
 * Makes spare s ready, as if it had been spawned with pid and said HELLO:
 * its channel is sv[0] of a new socketpair, whose sv[1] is the worker's.
 */
static void
ready_spare(struct worker *s, pid_t pid, int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
	    0);
	assert_int_equal(util_set_nonblock(sv[0]), 0);
	assert_int_equal(pool_worker_set_state(s, WORKER_BACKOFF), 0);
	s->pid = pid;
	assert_int_equal(pool_worker_set_state(s, WORKER_STARTING), 0);
	s->bev = bufferevent_socket_new(ev_base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(s->bev);
	s->said_hello = 1;
	pool_worker_ready(s);
	assert_int_equal(s->state, WORKER_IDLE);
	assert_true(pool_worker_is_ready_spare(s));
}

static void
test_spare_adopted(void **state)
{
	struct pool_config  pc = fake_pool_config();
	struct pool	   *p;
	struct worker	   *s, *w;
	struct bufferevent *bev;
	struct proto_hdr    h;
	uint8_t		   *payload;
	uint32_t	    slot;
	int		    sv[2];

	pc.spare_workers = 1;
	p = pool_new(&pc);
	s = pool_worker_new_spare(p);
	ready_spare(s, FAKE_PID_BASE + 600, sv);
	bev = s->bev;
	w = pool_worker_new(p, 3);

	pool_worker_restart(w);
	assert_int_equal(nfakes, 0); /* nothing spawned */
	assert_int_equal(w->pid, FAKE_PID_BASE + 600);
	assert_int_equal(w->state, WORKER_STARTING);
	assert_ptr_equal(w->bev, bev);
	assert_true(w->said_hello);
	assert_ptr_equal(pool_find_worker(FAKE_PID_BASE + 600), w);
	/* The spare's position is back to waiting, with nothing. */
	assert_int_equal(s->state, WORKER_WAITING);
	assert_int_equal(s->pid, 0);
	assert_null(s->bev);
	assert_false(s->said_hello);
	assert_ptr_equal(TAILQ_FIRST(&p->spares), s);

	/* The process was told its slot, and nothing else. */
	assert_int_equal(fake_recv_fd(sv[1], &h, &payload), 0);
	assert_int_equal(h.type, PROTO_ASSIGN);
	assert_int_equal(proto_unpack_assign(payload, h.len, &slot), 0);
	assert_int_equal(slot, 3);
	free(payload);
	assert_int_equal(fake_recv_fd(sv[1], &h, &payload), -1);

	/* The spare's position waits while the slot starts... */
	pool_start_spares(p);
	assert_int_equal(s->state, WORKER_WAITING);
	/* ...and once the slot said HELLO, its new process is due. */
	pool_worker_ready(w);
	assert_int_equal(w->state, WORKER_IDLE);
	assert_int_equal(s->state, WORKER_BACKOFF);
	fake_loop();
	assert_int_equal(nfakes, 1);
	assert_true(fakes[0].spare);
	assert_string_equal(fakes[0].name, "p/spare");
	assert_int_equal(s->state, WORKER_STARTING);
	assert_int_equal(s->pid, fakes[0].pid);
	assert_int_equal(fake_signals(FAKE_PID_BASE + 600, SIGTERM), 0);
	close(sv[1]);
}

/* A spare not ready (no channel, being stopped, starting) is not taken. */
static void
test_spare_not_ready_not_adopted(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *a, *b, *c, *w;
	int		   sva[2], svb[2], svc[2];

	a = pool_worker_new_spare(p);
	b = pool_worker_new_spare(p);
	c = pool_worker_new_spare(p);
	ready_spare(a, FAKE_PID_BASE + 701, sva);
	bufferevent_free(a->bev); /* its channel is gone */
	a->bev = NULL;
	ready_spare(b, FAKE_PID_BASE + 702, svb);
	pool_worker_stop_later(b, STOP_RETIRE);
	ready_spare(c, FAKE_PID_BASE + 703, svc);
	c->state = WORKER_STARTING; /* no HELLO yet */
	w = pool_worker_new(p, 0);

	pool_worker_restart(w);
	assert_int_equal(nfakes, 1);
	assert_false(fakes[0].spare);
	assert_string_equal(fakes[0].name, "p/0");
	assert_int_equal(w->pid, fakes[0].pid);
	assert_int_equal(w->state, WORKER_STARTING);
	assert_int_equal(a->pid, FAKE_PID_BASE + 701);
	assert_int_equal(a->state, WORKER_IDLE);
	assert_int_equal(b->pid, FAKE_PID_BASE + 702);
	assert_int_equal(b->state, WORKER_IDLE);
	assert_int_equal(c->pid, FAKE_PID_BASE + 703);
	assert_int_equal(c->state, WORKER_STARTING);
	close(sva[1]);
	close(svb[1]);
	close(svc[1]);
}

/* A worker with no process goes at once; a recycled one stays. */
static void
test_stop_without_process(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *a = pool_worker_new(p, 0);
	struct worker	  *b = pool_worker_new(p, 1);

	pool_worker_stop(a, STOP_RECYCLE);
	assert_ptr_equal(TAILQ_FIRST(&p->workers), a);
	assert_int_equal(a->state, WORKER_BACKOFF);
	pool_worker_stop(b, STOP_RETIRE);
	assert_ptr_equal(TAILQ_FIRST(&p->workers), a);
	assert_null(TAILQ_NEXT(a, entry));
	assert_int_equal(nfake_kills, 0);
}

/* A worker's part of Status. */
static void
test_worker_json(void **state)
{
	struct pool_config pc = fake_pool_config();
	struct pool	  *p = pool_new(&pc);
	struct worker	  *w = pool_worker_new(p, 1);
	struct job_spec	   spec;
	struct job	  *j;
	json_t		  *jw;

	jw = pool_worker_json(w);
	assert_string_equal(json_string_value(json_object_get(jw, "name")),
	    "p/1");
	assert_string_equal(json_string_value(json_object_get(jw, "state")),
	    "backoff");
	assert_null(json_object_get(jw, "pid"));
	assert_null(json_object_get(jw, "job"));
	assert_null(json_object_get(jw, "started_usec"));
	assert_int_equal(json_integer_value(json_object_get(jw, "jobs_done")),
	    0);
	assert_int_equal(json_integer_value(json_object_get(jw, "restarts")),
	    0);
	json_decref(jw);

	memset(&spec, 0, sizeof spec);
	spec.argv = xcalloc(2, sizeof *spec.argv);
	spec.argv[0] = xstrdup("true");
	spec.cwd = "/";
	j = job_new(p->name, &spec, 1000);
	fake_start(w, FAKE_PID_BASE + 800, 0);
	w->started_usec = 1234567;
	w->state = WORKER_BUSY;
	w->job = j;
	w->jobs_done = 5;
	w->restarts = 2;
	jw = pool_worker_json(w);
	assert_int_equal(json_integer_value(json_object_get(jw, "pid")),
	    FAKE_PID_BASE + 800);
	assert_string_equal(json_string_value(json_object_get(jw, "state")),
	    "busy");
	assert_int_equal(json_integer_value(json_object_get(jw, "job")), j->id);
	assert_int_equal(json_integer_value(json_object_get(jw, "jobs_done")),
	    5);
	assert_int_equal(json_integer_value(json_object_get(jw, "restarts")),
	    2);
	assert_int_equal(json_integer_value(
			     json_object_get(jw, "started_usec")),
	    1234567);
	json_decref(jw);
	w->job = NULL;
	w->pid = 0;
}

#define T(f) \
	cmocka_unit_test_setup_teardown(f, fake_cmocka_setup, \
	    fake_cmocka_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_next),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_may_move_table),
		T(test_set_state),
		T(test_set_state_illegal_warns),
		T(test_walk),
		T(test_life),
		T(test_ready),
		T(test_crash_backoff_doubles),
		T(test_backoff_resets_after_long_life),
		T(test_slots_back_off_separately),
		T(test_spare_crash_counts_no_restart),
		T(test_spare_waits),
		T(test_spare_adopted),
		T(test_spare_not_ready_not_adopted),
		T(test_stop_without_process),
		T(test_worker_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
