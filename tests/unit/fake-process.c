/*
 * Made-up worker processes for the unit tests that start workers (pool.c,
 * pool-worker.c, reload.c), so that nothing is ever forked or signalled.
 *
 * The tests that include this file are linked with -Wl,--wrap=spawn_process
 * and -Wl,--wrap=kill (Makefile.am), as fuzz/fuzz-control.c is: the daemon's
 * calls come here. A "process" gets a made-up pid above FAKE_PID_BASE (never
 * a real one: pid_max is at most 2^22) and keeps the far end of the channel
 * pool-worker.c made for it, on which a test reads the frames sent to the
 * worker and writes the worker's. kill() only records the signal: a death
 * is whatever status the test feeds pool_child_exited(). A program
 * worker's ("--program") program is played by the test too: the ends of its
 * fd 3 socket and of its stdout and stderr pipes are kept (prog, out, err).
 *
 * Included, not linked: it is one file shared by several tests, listed in
 * their EXTRA_..._SOURCES so that it is distributed.
 */
#include <poll.h>

#define FAKE_PID_BASE  0x7e000000
#define FAKE_MAX       64
#define FAKE_MAX_KILLS 256
/* Not every test uses every helper. */
#define FAKE_UNUSED __attribute__((unused))

struct fake {
	pid_t pid;
	int   fd;	   /* the worker's end of the channel */
	int   spare;	   /* started with --spare */
	char  name[80];	   /* after --worker */
	int   prog;	   /* a program worker: its program's fd 3, or -1 */
	int   out, err;	   /* and the write ends of its stdout, stderr */
	char  program[80]; /* the words after "--", joined by spaces */
};

struct fake_kill {
	pid_t pid;
	int   sig;
};

static struct fake	fakes[FAKE_MAX];
static size_t		nfakes;
static struct fake_kill fake_kills[FAKE_MAX_KILLS];
static size_t		nfake_kills;
static int		fake_spawn_failures; /* the next ones fail */

pid_t __wrap_spawn_process(const struct spawn *);
int   __wrap_kill(pid_t, int);

pid_t
__wrap_spawn_process(const struct spawn *sp)
{
	struct fake *f;
	size_t	     i;
	int	     fd;

	if (fake_spawn_failures > 0) {
		fake_spawn_failures--;
		errno = EAGAIN;
		return -1;
	}
	if (nfakes == FAKE_MAX)
		fail_msg("more than %d workers spawned", FAKE_MAX);
	if (sp->argv[1] == NULL || strcmp(sp->argv[1], "--worker") != 0 ||
	    sp->argv[2] == NULL)
		fail_msg("spawn_process() of something else than a worker");
	if ((fd = fcntl(sp->fds[3], F_DUPFD_CLOEXEC, 0)) == -1)
		fail_msg("dup of the worker's channel: %s", strerror(errno));
	f = &fakes[nfakes];
	memset(f, 0, sizeof *f);
	f->pid = FAKE_PID_BASE + 1 + (pid_t)nfakes++;
	f->fd = fd;
	snprintf(f->name, sizeof f->name, "%s", sp->argv[2]);
	f->prog = f->out = f->err = -1;
	for (i = 3; sp->argv[i] != NULL; i++) {
		if (strcmp(sp->argv[i], "--spare") == 0)
			f->spare = 1;
		if (strcmp(sp->argv[i], "--") != 0)
			continue;
		for (i++; sp->argv[i] != NULL; i++)
			snprintf(f->program + strlen(f->program),
			    sizeof f->program - strlen(f->program), "%s%s",
			    f->program[0] != '\0' ? " " : "", sp->argv[i]);
		assert_int_equal(sp->nfds, 7);
		f->prog = fcntl(sp->fds[4], F_DUPFD_CLOEXEC, 0);
		f->out = fcntl(sp->fds[5], F_DUPFD_CLOEXEC, 0);
		f->err = fcntl(sp->fds[6], F_DUPFD_CLOEXEC, 0);
		assert_true(f->prog != -1 && f->out != -1 && f->err != -1);
		break;
	}
	return f->pid;
}

int
__wrap_kill(pid_t pid, int sig)
{
	pid_t who = pid < 0 ? -pid : pid;

	if (who < FAKE_PID_BASE)
		fail_msg("kill(%d, %d) of a pid that is not made up", (int)pid,
		    sig);
	if (nfake_kills == FAKE_MAX_KILLS)
		fail_msg("more than %d signals sent", FAKE_MAX_KILLS);
	fake_kills[nfake_kills].pid = pid;
	fake_kills[nfake_kills].sig = sig;
	nfake_kills++;
	return 0;
}

/* For a test's setup: no process yet, no signal sent. */
static void
fake_reset(void)
{
	nfakes = 0;
	nfake_kills = 0;
	fake_spawn_failures = 0;
}

/* For a test's teardown, once the pools (and their channels) are freed. */
static void
fake_close_all(void)
{
	size_t i;

	for (i = 0; i < nfakes; i++) {
		if (fakes[i].fd != -1)
			close(fakes[i].fd);
		if (fakes[i].prog != -1) {
			close(fakes[i].prog);
			close(fakes[i].out);
			close(fakes[i].err);
		}
	}
	nfakes = 0;
}

static struct fake *
fake_find(pid_t pid)
{
	size_t i;

	for (i = 0; i < nfakes; i++)
		if (fakes[i].pid == pid)
			return &fakes[i];
	fail_msg("pid %d was never spawned", (int)pid);
	return NULL;
}

/* How many times sig was sent to pid. */
static unsigned int
fake_signals(pid_t pid, int sig)
{
	size_t	     i;
	unsigned int n = 0;

	for (i = 0; i < nfake_kills; i++)
		if (fake_kills[i].pid == pid && fake_kills[i].sig == sig)
			n++;
	return n;
}

/* A frame from the worker to the supervisor. */
static void
fake_send(pid_t pid, uint32_t type, const struct proto_buf *b)
{
	assert_int_equal(proto_send(fake_find(pid)->fd, type, b->data, b->len),
	    0);
}

static void
fake_hello(pid_t pid)
{
	struct proto_buf b;

	proto_pack_hello(&b, PROTO_VERSION, (uint32_t)pid);
	fake_send(pid, PROTO_HELLO, &b);
	proto_buf_free(&b);
}

/*
 * The next frame the supervisor sent the worker on fd: 0, or -1 if there
 * is none. The payload is the caller's to free.
 */
static int
fake_recv_fd(int fd, struct proto_hdr *h, uint8_t **payload)
{
	struct pollfd pfd = { fd, POLLIN, 0 };

	*payload = NULL;
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
		return -1;
	assert_int_equal(proto_recv(fd, h, payload), 0);
	return 0;
}

static FAKE_UNUSED int
fake_recv(pid_t pid, struct proto_hdr *h, uint8_t **payload)
{
	return fake_recv_fd(fake_find(pid)->fd, h, payload);
}

/*
 * Lets the loop run what is due now: frames written by fake_send(), timers
 * of zero (a spare's start). A few passes, so one event's follow-ups run.
 */
static void
fake_loop(void)
{
	int i;

	for (i = 0; i < 4; i++)
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
}

/* A pool's settings for the tests: 2 workers, backoff 100 ms to 800 ms. */
static FAKE_UNUSED struct pool_config
fake_pool_config(void)
{
	struct pool_config pc;

	memset(&pc, 0, sizeof pc);
	pc.name = (char *)(uintptr_t) "p";
	pc.workers = 2;
	pc.queue_limit = 100;
	pc.kill_grace = 5 * USEC_PER_SEC;
	pc.start_timeout = 30 * USEC_PER_SEC;
	pc.restart_delay = 100 * USEC_PER_MSEC;
	pc.restart_delay_max = 800 * USEC_PER_MSEC;
	pc.crash_limit = 3;
	pc.crash_interval = 60 * USEC_PER_SEC;
	return pc;
}

/* A test's setup: a loop, no process, quiet log; cfg as given (or empty). */
static FAKE_UNUSED int
fake_setup(struct config *c)
{
	log_setlevel(LOG_CRIT);
	fake_reset();
	ev_base = event_base_new();
	cfg = c != NULL ? c : config_new();
	return ev_base == NULL;
}

/* A test's teardown: every pool, job and made-up process gone. */
static FAKE_UNUSED int
fake_teardown(void)
{
	struct pool *p;

	log_close();
	log_setlevel(LOG_CRIT);
	while ((p = TAILQ_FIRST(&pools)) != NULL)
		pool_free(p);
	job_free_all();
	fake_close_all();
	event_base_free(ev_base);
	ev_base = NULL;
	config_free(cfg);
	cfg = NULL;
	return 0;
}

/* The same, as cmocka calls them, for a test that needs nothing more. */
static FAKE_UNUSED int
fake_cmocka_setup(void **state)
{
	return fake_setup(NULL);
}

static FAKE_UNUSED int
fake_cmocka_teardown(void **state)
{
	return fake_teardown();
}

/* Pretends the worker's process was started just now with this pid. */
static FAKE_UNUSED void
fake_start(struct worker *w, pid_t pid, uint64_t lived)
{
	w->pid = pid;
	w->state = WORKER_STARTING;
	w->started_mono = util_mono_usec() - lived;
}

/* The worker's process says HELLO, and the supervisor reads it. */
static FAKE_UNUSED void
fake_ready(struct worker *w)
{
	assert_true(w->pid >= FAKE_PID_BASE);
	fake_hello(w->pid);
	fake_loop();
	assert_int_equal(w->state, WORKER_IDLE);
}

/* A job for pool p, queued: it runs on the first idle worker. */
static FAKE_UNUSED struct job *
fake_submit(struct pool *p, const char *argv0)
{
	struct job_spec	  spec;
	enum pool_refusal why;
	struct job	 *j;

	memset(&spec, 0, sizeof spec);
	spec.argv = xcalloc(2, sizeof *spec.argv);
	spec.argv[0] = xstrdup(argv0);
	spec.cwd = "/";
	j = pool_submit(p, &spec, 1000, &why);
	assert_int_equal(why, POOL_ACCEPTED);
	assert_non_null(j);
	return j;
}

/* A job started on w, which must be idle and the pool's first idle one. */
static FAKE_UNUSED struct job *
fake_run_on(struct worker *w)
{
	struct job *j = fake_submit(w->pool, "true");

	pool_dispatch(w->pool);
	assert_int_equal(w->state, WORKER_BUSY);
	assert_ptr_equal(w->job, j);
	return j;
}

/* w's worker reports its job done, and the supervisor reads it. */
static FAKE_UNUSED void
fake_finish_job(struct worker *w)
{
	struct proto_buf b;
	struct job	*j = w->job;

	assert_non_null(j);
	proto_pack_job_done(&b, (uint64_t)j->id, 0, 0);
	fake_send(w->pid, PROTO_JOB_DONE, &b);
	proto_buf_free(&b);
	fake_loop();
	assert_int_equal(j->state, JOB_SUCCEEDED);
}

/* The process of pid is reaped with status. */
static FAKE_UNUSED void
fake_reap(pid_t pid, int status)
{
	assert_int_equal(pool_child_exited(pid, status), 1);
}
