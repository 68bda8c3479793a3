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
 * is whatever status the test feeds pool_child_exited().
 *
 * Included, not linked: it is one file shared by several tests, listed in
 * their EXTRA_..._SOURCES so that it is distributed.
 */
#include <poll.h>

#define FAKE_PID_BASE	0x7e000000
#define FAKE_MAX	64
#define FAKE_MAX_KILLS	256

struct fake {
	pid_t		 pid;
	int		 fd;		/* the worker's end of the channel */
	int		 spare;		/* started with --spare */
	char		 name[80];	/* after --worker */
};

struct fake_kill {
	pid_t		 pid;
	int		 sig;
};

static struct fake	 fakes[FAKE_MAX];
static size_t		 nfakes;
static struct fake_kill	 fake_kills[FAKE_MAX_KILLS];
static size_t		 nfake_kills;
static int		 fake_spawn_failures;	/* the next ones fail */

pid_t	__wrap_spawn_process(const struct spawn *);
int	__wrap_kill(pid_t, int);

pid_t
__wrap_spawn_process(const struct spawn *sp)
{
	struct fake	*f;
	size_t		 i;
	int		 fd;

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
	for (i = 3; sp->argv[i] != NULL; i++)
		if (strcmp(sp->argv[i], "--spare") == 0)
			f->spare = 1;
	return f->pid;
}

int
__wrap_kill(pid_t pid, int sig)
{
	pid_t	 who = pid < 0 ? -pid : pid;

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
	size_t	 i;

	for (i = 0; i < nfakes; i++)
		if (fakes[i].fd != -1)
			close(fakes[i].fd);
	nfakes = 0;
}

static struct fake *
fake_find(pid_t pid)
{
	size_t	 i;

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
	size_t		 i;
	unsigned int	 n = 0;

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
	struct proto_buf	 b;

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
	struct pollfd	 pfd = { fd, POLLIN, 0 };

	*payload = NULL;
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
		return -1;
	assert_int_equal(proto_recv(fd, h, payload), 0);
	return 0;
}

static int
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
	int	 i;

	for (i = 0; i < 4; i++)
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
}
