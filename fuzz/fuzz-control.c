/*
 * libFuzzer target for the control socket. The input is what a client
 * sends (Varlink calls, each ended by a NUL byte), or what up to three
 * clients send, their parts separated by a 0x1e byte (which JSON text
 * cannot hold). Each goes through its socketpair, in chunks interleaved
 * with the others', to the daemon's own code (conn.c, method*.c, pool.c,
 * pool-worker.c, job.c and reload.c) on a real event_base, with real pools whose workers
 * are played by this file.
 *
 * No process is ever created or signalled: the target is linked with
 * --wrap=spawn_process and --wrap=kill (fuzz/Makefile.inc), so that the
 * daemon's calls come here. A "worker" is the far end of the socketpair
 * pool-worker.c made for it and answers frames as daemon/worker.c would; kill() of
 * a worker makes it die, and its death reaches pool_child_exited() from the
 * loop, as SIGCHLD's would. What a job does depends on its argv[0]: see
 * fake_run(). Any other kill() (pid 0, -1, or a pid mprocd never had, or
 * has reaped) stops the run as a finding.
 *
 * conn.c, control.c, method-wait.c and job.c are included, not linked, so
 * that a client accepted by control_accept() can be given a uid of our
 * choosing, their timers can be fired, and job ids start from 1 for every
 * input (so that "Get 3" names the same job on every run). The loop has no
 * supervisor_main(): STATUS= and READY= are worked out after each pass, as
 * supervisor_changed()'s event would.
 *
 * Whitespace before a client's first message (JSON ignores it) picks it:
 *	'\t'	root (may Reload, sees every job); else an ordinary user
 *	'\r'	never half-closes its socket: the daemon waits for more
 *	'\n'	closes its socket once everything is written
 *
 * Each input gets fresh state: two pools (default: 2 workers; slow: 1) and
 * jobs 1-5 (1 and 2 finished, 3 running, 4 and 5 queued; 1 and 5 of another
 * user). The clients write in chunks, the loop runs until nothing moves,
 * then time passes (every pending timer fires; a few rounds), then all is
 * freed so that LeakSanitizer sees any leak. Reload switches to a second
 * configuration: default grows to 3 workers, slow is removed, extra is added.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn.c"
#include "control.c"
#include "job.c"
#include "method-wait.c"

#include "proto.h"
#include "varlink.h"
#include "fuzz.h"

pid_t __wrap_spawn_process(const struct spawn *);
int   __wrap_kill(pid_t, int);

#define CONFIG_MAIN \
	"[mprocd]\n" \
	"socket = /run/mprocd-fuzz/never-bound.sock\n" \
	"log_target = stderr\n" \
	"max_clients = 4\n" \
	"max_message = 4096\n" \
	"message_timeout = 10s\n" \
	"shutdown_timeout = 1s\n"

/* What each input starts with. */
static const char config_a[] = CONFIG_MAIN "log_level = warning\n"
					   "keep_finished = 6\n"
					   "\n"
					   "[pool default]\n"
					   "workers = 2\n"
					   "queue_limit = 8\n"
					   "max_jobs_per_worker = 3\n"
					   "max_output = 64\n"
					   "retries = 1\n"
					   "kill_grace = 1s\n"
					   "restart_delay_max = 1s\n"
					   "crash_limit = 2\n"
					   "\n"
					   "[pool slow]\n"
					   "workers = 1\n"
					   "queue_limit = 3\n"
					   "job_timeout = 1h\n";

/* What Reload reads. */
static const char config_b[] = CONFIG_MAIN "log_level = info\n"
					   "keep_finished = 2\n"
					   "\n"
					   "[pool default]\n"
					   "workers = 3\n"
					   "queue_limit = 8\n"
					   "max_output = 64\n"
					   "\n"
					   "[pool extra]\n"
					   "workers = 1\n";

/* Above any real pid: PID_MAX_LIMIT is 2^22. */
#define FAKE_WORKER_PID 0x7f000000
#define FAKE_JOB_PID	0x7e000000
#define FAKE_MAX	64

#define USER_OTHER 4242

/* A worker process, played by us. */
struct fake {
	pid_t		    pid;
	struct bufferevent *bev;     /* our end; NULL once dead */
	int64_t		    job;     /* the job it runs, or 0 */
	int		    ignores; /* signals its job ignores */
	int		    spare;   /* started with --spare, in no slot */
	int		    dead;
	int		    reaped;
	int		    status; /* wait status of its death */
};
#define IGNORE_TERM 1
#define IGNORE_ALL  2

static struct fake   fakes[FAKE_MAX];
static int	     nfakes;
static struct event *reap_ev;

/* A client's end of its socket. */
struct peer {
	int	       fd;
	struct event  *rev, *wev;
	const uint8_t *data;
	size_t	       size, off, chunk;
	int	       half_close, full_close;
	char	      *in;
	size_t	       inlen, insize;
};
#define PEER_MAX       3
#define PEER_SEPARATOR 0x1e /* never valid in JSON text */

static struct peer peers[PEER_MAX];
static int	   npeers;

static char  reload_path[64]; /* config_b, in a memfd */
static int   progress;
static uid_t user_uid;

static struct fake *
fake_find(pid_t pid)
{
	int i;

	for (i = 0; i < nfakes; i++)
		if (fakes[i].pid == pid)
			return &fakes[i];
	return NULL;
}

static void
fake_send(struct fake *f, uint32_t type, struct proto_buf *b)
{
	uint8_t hdr[PROTO_HDRLEN];

	proto_hdr_pack(hdr, type, (uint32_t)b->len);
	bufferevent_write(f->bev, hdr, sizeof hdr);
	bufferevent_write(f->bev, b->data, b->len);
	proto_buf_free(b);
}

/* The worker exits (or is killed) with wait status; SIGCHLD follows. */
static void
fake_die(struct fake *f, int status)
{
	f->dead = 1;
	f->status = status;
	f->job = 0;
	bufferevent_free(f->bev);
	f->bev = NULL;
	event_active(reap_ev, 0, 0);
}

static void
fake_output(struct fake *f, int64_t id, uint32_t stream, const void *data,
    size_t len)
{
	struct proto_buf b;

	proto_buf_init(&b);
	proto_put_u64(&b, (uint64_t)id);
	proto_put_u32(&b, stream);
	proto_put_bytes(&b, data, len);
	fake_send(f, PROTO_JOB_OUTPUT, &b);
}

static void
fake_done(struct fake *f, int status)
{
	struct proto_buf b;

	proto_buf_init(&b);
	proto_put_u64(&b, (uint64_t)f->job);
	proto_put_u32(&b, (uint32_t)status);
	proto_put_u32(&b, 0);
	fake_send(f, PROTO_JOB_DONE, &b);
	f->job = 0;
	f->ignores = 0;
}

/*
 * JOB_START. argv[0] says what the job does: sleep (until a signal),
 * stubborn (ignores SIGTERM), hang (ignores everything), crash (its worker
 * dies), exit N, kill N (killed by signal N), false, cat (stdin to stdout),
 * yes (more output than max_output), frame B64 (its worker writes those
 * bytes to the supervisor, as a broken worker would, then goes on running
 * it); anything else echoes argv[1..].
 */
static void
fake_run(struct fake *f, struct proto_reader *r)
{
	struct proto_buf b;
	char		*cwd, **argv, **env, out[1024];
	const void	*in;
	uint8_t		*raw;
	uint64_t	 id;
	uint32_t	 argc, envc, i, has_stdin;
	size_t		 inlen, rawlen, off = 0;
	int		 status = 0;

	CHECK(f->job == 0); /* never a job for a busy worker */
	CHECK(!f->spare);   /* nor for a spare */
	id = proto_get_u64(r);
	(void)proto_get_u64(r); /* max_output */
	cwd = proto_get_str(r);
	argc = proto_get_u32(r);
	CHECK(!r->error && argc >= 1 && argc <= r->len);
	argv = xcalloc(argc + 1, sizeof *argv);
	for (i = 0; i < argc; i++)
		argv[i] = proto_get_str(r);
	envc = proto_get_u32(r);
	CHECK(!r->error && envc <= r->len);
	env = xcalloc(envc + 1, sizeof *env);
	for (i = 0; i < envc; i++)
		env[i] = proto_get_str(r);
	has_stdin = proto_get_u32(r);
	in = proto_get_bytes(r, &inlen);
	CHECK(!r->error && r->off == r->len && id > 0);
	CHECK(cwd[0] == '/' && argv[0][0] != '\0' && has_stdin <= 1);
	for (i = 0; i < envc; i++)
		CHECK(strchr(env[i], '=') != NULL && env[i][0] != '=');

	f->job = (int64_t)id;
	proto_buf_init(&b);
	proto_put_u64(&b, id);
	proto_put_u32(&b, (uint32_t)(FAKE_JOB_PID + (pid_t)(id % 0x100000)));
	fake_send(f, PROTO_JOB_STARTED, &b);

	if (strcmp(argv[0], "sleep") == 0)
		goto out;
	if (strcmp(argv[0], "stubborn") == 0) {
		f->ignores = IGNORE_TERM;
		goto out;
	}
	if (strcmp(argv[0], "hang") == 0) {
		f->ignores = IGNORE_ALL;
		goto out;
	}
	if (strcmp(argv[0], "crash") == 0) {
		fake_die(f, SIGSEGV);
		goto out;
	}
	if (strcmp(argv[0], "frame") == 0 && argc > 1) {
		if ((raw = util_base64_decode(argv[1], strlen(argv[1]),
			 &rawlen)) != NULL)
			bufferevent_write(f->bev, raw, rawlen);
		free(raw);
		f->job = 0; /* what it wrote may well have ended it */
		goto out;
	}
	if (strcmp(argv[0], "exit") == 0 && argc > 1)
		status = (atoi(argv[1]) & 0xff) << 8;
	else if (strcmp(argv[0], "kill") == 0 && argc > 1)
		status = atoi(argv[1]) & 0x7f ? atoi(argv[1]) & 0x7f : SIGKILL;
	else if (strcmp(argv[0], "false") == 0) {
		fake_output(f, f->job, 2, "false\n", 6);
		status = 1 << 8;
	} else if (strcmp(argv[0], "cat") == 0) {
		fake_output(f, f->job, 1, in, inlen < 4096 ? inlen : 4096);
	} else if (strcmp(argv[0], "yes") == 0) {
		for (i = 0; i < 100; i++)
			fake_output(f, f->job, 1, "y\n", 2);
	} else {
		for (i = 1; i < argc && off < sizeof out; i++)
			off += (size_t)snprintf(out + off, sizeof out - off,
			    "%s%s", i > 1 ? " " : "", argv[i]);
		if (off >= sizeof out)
			off = sizeof out - 1;
		out[off++] = '\n';
		fake_output(f, f->job, 1, out, off);
	}
	fake_done(f, status);
out:
	free(cwd);
	util_strv_free(argv);
	util_strv_free(env);
}

/* A frame from the supervisor, checked as daemon/worker.c does. */
static void
fake_frame(struct fake *f, const struct proto_hdr *h, const uint8_t *payload)
{
	struct proto_reader r;
	struct proto_buf    b;
	uint64_t	    id;
	uint32_t	    sig, level;

	proto_reader_init(&r, payload, h->len);
	switch (h->type) {
	case PROTO_ASSIGN:
		/* A spare takes a slot and says HELLO again, as it is now. */
		(void)proto_get_u32(&r);
		CHECK(!r.error && r.off == r.len && f->spare && f->job == 0);
		f->spare = 0;
		proto_buf_init(&b);
		proto_put_u32(&b, PROTO_VERSION);
		proto_put_u32(&b, (uint32_t)f->pid);
		fake_send(f, PROTO_HELLO, &b);
		break;
	case PROTO_JOB_START:
		fake_run(f, &r);
		break;
	case PROTO_JOB_SIGNAL:
		id = proto_get_u64(&r);
		sig = proto_get_u32(&r);
		CHECK(!r.error && (sig == SIGTERM || sig == SIGKILL));
		if (f->job == 0 || (int64_t)id != f->job ||
		    f->ignores == IGNORE_ALL ||
		    (f->ignores == IGNORE_TERM && sig == SIGTERM))
			break;
		fake_done(f, (int)sig);
		break;
	case PROTO_LOG_LEVEL:
		level = proto_get_u32(&r);
		CHECK(!r.error && level <= LOG_DEBUG);
		break;
	case PROTO_EXIT:
		fake_die(f, 0);
		break;
	default:
		fprintf(stderr, "frame type %u to a worker\n", h->type);
		CHECK(!"an unknown frame type");
	}
}

static void
fake_read_cb(struct bufferevent *bev, void *arg)
{
	struct fake	*f = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct proto_hdr h;
	uint8_t		*p;

	progress = 1;
	while (evbuffer_get_length(in) >= PROTO_HDRLEN) {
		p = evbuffer_pullup(in, PROTO_HDRLEN);
		CHECK(proto_hdr_parse(p, &h) == 0);
		if (evbuffer_get_length(in) < PROTO_HDRLEN + h.len)
			return;
		p = evbuffer_pullup(in, PROTO_HDRLEN + (ev_ssize_t)h.len);
		fake_frame(f, &h, p + PROTO_HDRLEN);
		if (f->bev == NULL)
			return; /* it died: in is gone */
		evbuffer_drain(in, PROTO_HDRLEN + h.len);
	}
}

/* The supervisor closed our channel: a real worker exits. */
static void
fake_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fake *f = arg;

	progress = 1;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		fake_die(f, 0);
}

/* SIGCHLD: every dead worker is reaped, as supervisor_reap() does. */
static void
fake_reap(evutil_socket_t fd, short events, void *arg)
{
	int i;

	progress = 1;
	for (i = 0; i < nfakes; i++) {
		if (!fakes[i].dead || fakes[i].reaped)
			continue;
		fakes[i].reaped = 1;
		CHECK(pool_child_exited(fakes[i].pid, fakes[i].status) == 1);
	}
	supervisor_check_exit();
}

/* Instead of spawn.c's: a worker that says HELLO at once. */
pid_t
__wrap_spawn_process(const struct spawn *sp)
{
	struct proto_buf b;
	struct fake	*f;
	int		 fd;

	CHECK(sp->argv[1] != NULL && strcmp(sp->argv[1], "--worker") == 0);
	if (nfakes == FAKE_MAX) {
		errno = EAGAIN;
		return -1;
	}
	if ((fd = fcntl(sp->fds[3], F_DUPFD_CLOEXEC, 0)) == -1)
		return -1;
	util_set_nonblock(fd);
	f = &fakes[nfakes];
	memset(f, 0, sizeof *f);
	f->pid = FAKE_WORKER_PID + nfakes++;
	f->spare = sp->argv[3] != NULL && strcmp(sp->argv[3], "--spare") == 0;
	f->bev = bufferevent_socket_new(ev_base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(f->bev, fake_read_cb, NULL, fake_event_cb, f);
	bufferevent_enable(f->bev, EV_READ);
	proto_buf_init(&b);
	proto_put_u32(&b, PROTO_VERSION);
	proto_put_u32(&b, (uint32_t)f->pid);
	fake_send(f, PROTO_HELLO, &b);
	return f->pid;
}

/*
 * Instead of libc's, so nothing is ever signalled. A worker dies as
 * daemon/worker.c does; a job's process group is not ours to model.
 */
int
__wrap_kill(pid_t pid, int sig)
{
	struct fake *f;

	if (pid <= -FAKE_JOB_PID ||
	    (pid >= FAKE_JOB_PID && pid < FAKE_WORKER_PID))
		return 0;
	if ((f = fake_find(pid)) == NULL) {
		fprintf(stderr, "kill(%d, %d)\n", (int)pid, sig);
		CHECK(!"mprocd signalled a pid that was never its worker");
	}
	CHECK(!f->reaped); /* that pid may be someone else's by now */
	if (f->dead)
		return 0;
	switch (sig) {
	case 0:
	case SIGUSR1:
		break;
	case SIGTERM:
		fake_die(f, 0);
		break;
	default:
		fake_die(f, sig);
		break;
	}
	return 0;
}

/* Every reply must be one the interface allows. */
static void
peer_check_reply(const char *msg, size_t len)
{
	static const char *const errors[] = { "io.mprocd.NoSuchJob",
		"io.mprocd.NoSuchPool", "io.mprocd.QueueFull",
		"io.mprocd.PermissionDenied", "io.mprocd.TimedOut",
		"io.mprocd.ShuttingDown", "io.mprocd.ReloadFailed",
		VARLINK_ERR_METHOD, VARLINK_ERR_INTERFACE, VARLINK_ERR_PARAM,
		"org.varlink.service.PermissionDenied", NULL };
	struct varlink_reply	 reply;
	const char		*errstr;
	size_t			 i;

	if (varlink_reply_parse(msg, len, &reply, &errstr) != 0) {
		fprintf(stderr, "bad reply (%s): %.*s\n", errstr, (int)len,
		    msg);
		CHECK(!"the daemon sent a reply that does not parse");
	}
	if (reply.error != NULL) {
		for (i = 0; errors[i] != NULL; i++)
			if (strcmp(reply.error, errors[i]) == 0)
				break;
		CHECK(errors[i] != NULL && !reply.continues);
	}
	varlink_reply_free(&reply);
}

static void
peer_close(struct peer *pr)
{
	if (pr->rev != NULL)
		event_free(pr->rev);
	if (pr->wev != NULL)
		event_free(pr->wev);
	if (pr->fd != -1)
		close(pr->fd);
	pr->rev = pr->wev = NULL;
	pr->fd = -1;
}

static void
peer_read(evutil_socket_t fd, short events, void *arg)
{
	struct peer *pr = arg;
	char	    *nul;
	size_t	     len;
	ssize_t	     n;

	progress = 1;
	if (pr->insize - pr->inlen < 4096) {
		pr->insize = pr->insize * 2 + 4096;
		pr->in = xreallocarray(pr->in, 1, pr->insize);
	}
	n = read(fd, pr->in + pr->inlen, pr->insize - pr->inlen);
	if (n == -1 && errno == EAGAIN)
		return;
	if (n <= 0) {
		/* After a clean end, what was left was a whole reply. */
		CHECK(n == -1 || pr->inlen == 0);
		peer_close(pr);
		return;
	}
	pr->inlen += (size_t)n;
	while ((nul = memchr(pr->in, '\0', pr->inlen)) != NULL) {
		len = (size_t)(nul - pr->in);
		peer_check_reply(pr->in, len);
		memmove(pr->in, nul + 1, pr->inlen - len - 1);
		pr->inlen -= len + 1;
	}
}

/* One chunk a pass, so that messages arrive in pieces. */
static void
peer_write(evutil_socket_t fd, short events, void *arg)
{
	struct peer *pr = arg;
	size_t	     n = pr->size - pr->off;
	ssize_t	     w;

	progress = 1;
	if (n > pr->chunk)
		n = pr->chunk;
	w = write(fd, pr->data + pr->off, n);
	if (w == -1 && errno == EAGAIN)
		return;
	if (w == -1) { /* the daemon closed it */
		event_del(pr->wev);
		return;
	}
	pr->off += (size_t)w;
	if (pr->off < pr->size)
		return;
	event_del(pr->wev);
	if (pr->full_close)
		peer_close(pr);
	else if (pr->half_close)
		shutdown(fd, SHUT_WR);
}

/* Connects a client that will send data, as control_accept() would. */
static void
peer_connect(const uint8_t *data, size_t size)
{
	struct peer *pr = &peers[npeers++];
	struct conn *c;
	uid_t	     uid = user_uid;
	size_t	     i;
	int	     sv[2];

	memset(pr, 0, sizeof *pr);
	pr->data = data;
	pr->size = size;
	pr->chunk = 16 + size * 7919 % 240;
	pr->half_close = 1;
	for (i = 0; i < size && strchr(" \t\r\n", data[i]) != NULL; i++) {
		if (data[i] == '\t')
			uid = 0;
		else if (data[i] == '\r')
			pr->half_close = 0;
		else if (data[i] == '\n')
			pr->full_close = 1;
	}
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		  sv) == 0);
	control_accept(NULL, sv[0], NULL, 0, NULL);
	CHECK((c = TAILQ_LAST(&conn_list, conns)) != NULL);
	c->uid = uid;
	pr->fd = sv[1];
	pr->rev = event_new(ev_base, sv[1], EV_READ | EV_PERSIST, peer_read,
	    pr);
	pr->wev = event_new(ev_base, sv[1], EV_WRITE | EV_PERSIST, peer_write,
	    pr);
	event_add(pr->rev, NULL);
	if (size > 0)
		event_add(pr->wev, NULL);
	else if (pr->half_close)
		shutdown(sv[1], SHUT_WR);
}

/* One client per part of the input, the parts split at PEER_SEPARATOR. */
static void
peers_connect(const uint8_t *data, size_t size)
{
	const uint8_t *sep;

	while (npeers < PEER_MAX - 1 &&
	    (sep = memchr(data, PEER_SEPARATOR, size)) != NULL) {
		peer_connect(data, (size_t)(sep - data));
		size -= (size_t)(sep - data) + 1;
		data = sep + 1;
	}
	peer_connect(data, size);
}

/*
 * Runs the loop until nothing has happened for a few passes: data written
 * in one pass is read in the next, answered in the one after.
 */
static void
run_until_idle(void)
{
	int idle = 0, passes = 0;

	while (idle < 8) {
		progress = 0;
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
		systemd_changed(SUPERVISOR_NOW | SUPERVISOR_WORKERS);
		idle = progress ? 0 : idle + 1;
		CHECK(++passes < 1000000);
	}
}

static int
expire(struct event *ev)
{
	if (ev == NULL || !evtimer_pending(ev, NULL))
		return 0;
	event_active(ev, EV_TIMEOUT, 0);
	return 1;
}

/* Time passes: every pending timer fires now. */
static int
expire_timers(void)
{
	struct conn   *c;
	struct job    *j;
	struct pool   *p;
	struct worker *w;
	int	       n = 0;

	TAILQ_FOREACH(c, &conn_list, entry) {
		n += expire(c->stall);
		if (c->pending != NULL)
			n += expire(c->pending->timer);
	}
	TAILQ_FOREACH(j, &all_jobs, all)
		n += expire(j->timer);
	TAILQ_FOREACH(p, &pools, entry) {
		n += expire(p->timer);
		TAILQ_FOREACH(w, &p->workers, entry)
			n += expire(w->timer);
		TAILQ_FOREACH(w, &p->spares, entry)
			n += expire(w->timer);
	}
	return n;
}

static void
preset(const char *pool, uid_t uid, const char *a0, const char *a1)
{
	struct pool    *p = pool_find(pool);
	struct job     *j;
	struct job_spec spec = { .cwd = "/" };

	spec.argv = xcalloc(3, sizeof *spec.argv);
	spec.argv[0] = xstrdup(a0);
	if (a1 != NULL)
		spec.argv[1] = xstrdup(a1);
	CHECK(p != NULL);
	j = job_new(p->name, &spec, uid);
	pool_enqueue(p, j, 0);
	pool_dispatch(p);
}

static void
setup(void)
{
	struct config_errors errs;
	struct pool_config  *pc;

	/* Reload reads config_b from reload_path. */
	if (cfg == NULL) {
		cfg = config_load_string(reload_path, config_a, &errs);
		CHECK(cfg != NULL);
	}
	log_setlevel(cfg->log_level);
	TAILQ_FOREACH(pc, &cfg->pools, entry)
		pool_start(pool_new(pc));
	run_until_idle();

	preset("default", USER_OTHER, "echo", "hello");
	preset("default", user_uid, "false", NULL);
	run_until_idle();
	preset("slow", user_uid, "sleep", NULL);
	preset("slow", user_uid, "echo", "queued");
	preset("slow", USER_OTHER, "stubborn", NULL);
	run_until_idle();
}

static void
teardown(void)
{
	struct pool *p;
	int	     i;

	for (i = 0; i < npeers; i++) {
		peer_close(&peers[i]);
		free(peers[i].in);
	}
	npeers = 0;
	control_close();
	while ((p = TAILQ_FIRST(&pools)) != NULL)
		pool_free(p);
	job_free_all();
	next_id = 1;
	for (i = 0; i < nfakes; i++)
		if (fakes[i].bev != NULL)
			bufferevent_free(fakes[i].bev);
	nfakes = 0;
	event_del(reap_ev);
	/* Kept for the next input unless a Reload replaced it. */
	if (config_find_pool(cfg, "slow") == NULL) {
		config_free(cfg);
		cfg = NULL;
	}
	/* Frees what the frees above left to the loop. */
	event_base_loop(ev_base, EVLOOP_NONBLOCK);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *errstr;
	int	    fd;

	signal(SIGPIPE, SIG_IGN);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	/* FUZZ_LOG=stderr shows the daemon's log, to follow a finding. */
	if (log_open(getenv("FUZZ_LOG") != NULL ? getenv("FUZZ_LOG")
						: "file:/dev/null",
		&errstr) != 0) {
		fprintf(stderr, "log: %s\n", errstr);
		exit(1);
	}
	log_procinit("supervisor");
	user_uid = geteuid() == 1000 ? 1001 : 1000;
	if ((ev_base = event_base_new()) == NULL)
		exit(1);
	reap_ev = event_new(ev_base, -1, 0, fake_reap, NULL);
	if ((fd = memfd_create("fuzz-control", MFD_CLOEXEC)) == -1 ||
	    write(fd, config_b, strlen(config_b)) !=
		(ssize_t)strlen(config_b)) {
		perror("memfd");
		exit(1);
	}
	snprintf(reload_path, sizeof reload_path, "/proc/self/fd/%d", fd);
	mprocd_self = "/nonexistent/mprocd-fuzz";
	mprocd_started_usec = util_now_usec();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int round;

	setup();
	peers_connect(data, size);
	run_until_idle();
	for (round = 0; round < 4 && expire_timers() > 0; round++)
		run_until_idle();
	teardown();
	return 0;
}
