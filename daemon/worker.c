/*
 * A worker process, "mprocd: worker POOL/N": re-executed from the supervisor
 * with its socketpair on descriptor 3. It blocks in poll() on that socket
 * and, while a job runs, on the job's pipes: it starts the job in a session
 * of its own, feeds it stdin, streams its stdout and stderr back as they
 * come (so a job never stalls on a full pipe), and reports how it ended.
 *
 * When the job's process exits, whatever it left in its process group is
 * killed. When the supervisor goes (end of stream, or the parent-death
 * signal), the worker kills its job's process group and exits.
 *
 * The worker is a subreaper: what a job leaves outside its group (setsid, a
 * double fork) is reparented to the worker, not to init. While the
 * supervisor lives such a process is left alone and, when the worker exits,
 * passes on to the supervisor (the next subreaper up), which kills it at
 * shutdown. If the supervisor is gone, even by SIGKILL, nobody else would:
 * the worker kills it on its way out.
 *
 * A spare ("--worker POOL/spare --spare") starts the same way but is in no
 * slot: it waits, runs no job, until ASSIGN gives it one; then it takes that
 * slot's name (title, log, jobs' MPROCD_WORKER) and says HELLO again.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocd.h"
#include "proto.h"
#include "util.h"
#include "xmalloc.h"

#define WORKER_FD   3
#define WORKER_READ 65536

/* Variables of ours that a job must not inherit. */
static const char *const worker_env_drop[] = {
	"NOTIFY_SOCKET=",
	"WATCHDOG_PID=",
	"WATCHDOG_USEC=",
	"LISTEN_PID=",
	"LISTEN_FDS=",
	"LISTEN_FDNAMES=",
	"JOURNAL_STREAM=",
	"MPROCD_JOB_ID=",
	"MPROCD_POOL=",
	"MPROCD_WORKER=",
};

extern char **environ;

static char *worker_name;
char	    *worker_env_pool, *worker_env_worker; /* "MPROCD_POOL=..." */
static int   worker_spare;			  /* in no slot yet */
int	     worker_sigfd = -1;
static pid_t worker_supervisor_pid; /* our parent, while it lives */

/* Who this worker's records about its job are about. */
static struct log_ctx
worker_job_ctx(const struct worker_job *r)
{
	struct log_ctx ctx = { NULL, NULL, (int64_t)r->id };

	return ctx;
}

static void __attribute__((noreturn)) worker_usage(void)
{
	fatalx("--worker is for mprocd's own use");
}

static void
worker_send(uint32_t type, const struct proto_buf *b)
{
	if (proto_send(WORKER_FD, type, b->data, b->len) != 0) {
		/* The supervisor is gone; worker_exit() will follow. */
		if (errno == EPIPE || errno == ECONNRESET)
			return;
		fatal("writing to the supervisor");
	}
}

/* Whether the supervisor's end would take a piece of output now. */
static int
worker_can_send(void)
{
	struct pollfd pfd = { WORKER_FD, POLLOUT, 0 };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT);
}

static void
worker_send_output(struct worker_job *r, int stream, const void *data,
    size_t len)
{
	struct proto_buf b;
	uint64_t	 room;
	uint32_t	 flags = 0;

	/*
	 * The supervisor keeps max_output and hands the rest to followers.
	 * Sending blocks, so a job waits for a busy supervisor on its pipe:
	 * for what is kept. The rest goes only if the supervisor has room
	 * for it now, else it is dropped and the next piece says so: a job
	 * is never held back for its followers.
	 */
	room = r->sent[stream] < r->max_output ? r->max_output - r->sent[stream]
					       : 0;
	if (len > room)
		r->truncated = 1;
	if (len == 0)
		return;
	if (room == 0 && !worker_can_send()) {
		r->dropped[stream] = 1;
		return;
	}
	if (r->dropped[stream])
		flags = PROTO_OUTPUT_AFTER_LOSS;
	r->dropped[stream] = 0;
	r->sent[stream] += len;
	proto_pack_job_output(&b, r->id, ((uint32_t)stream + 1) | flags, data,
	    len);
	worker_send(PROTO_JOB_OUTPUT, &b);
	proto_buf_free(&b);
}

static void
worker_send_done(struct worker_job *r, int status)
{
	struct proto_buf b;

	proto_pack_job_done(&b, r->id, (uint32_t)status,
	    r->truncated ? PROTO_DONE_TRUNCATED : 0);
	worker_send(PROTO_JOB_DONE, &b);
	proto_buf_free(&b);
}

static int
worker_env_dropped(const char *var)
{
	size_t i;

	for (i = 0; i < sizeof worker_env_drop / sizeof worker_env_drop[0]; i++)
		if (strncmp(var, worker_env_drop[i],
			strlen(worker_env_drop[i])) == 0)
			return 1;
	return 0;
}

/*
 * The pool's environment (ours, less mprocd's own), the job's, then ids
 * (NULL-terminated): borrowed strings. Ours is filtered once; it does not
 * change.
 */
const char **
worker_job_environ(char *const *jobenv, const char *const *ids)
{
	static const char **base;
	static size_t	    nbase;
	const char	  **env;
	char		  **e;
	size_t		    i, n = 0, k, keylen, njobenv = 0, nids = 0;

	while (jobenv[njobenv] != NULL)
		njobenv++;
	while (ids[nids] != NULL)
		nids++;
	if (base == NULL) {
		for (e = environ; *e != NULL; e++)
			n++;
		base = xcalloc(n + 1, sizeof *base);
		for (e = environ; *e != NULL; e++)
			if (!worker_env_dropped(*e))
				base[nbase++] = *e;
	}
	env = xcalloc(nbase + njobenv + nids + 1, sizeof *env);
	n = 0;
	for (i = 0; i < nbase; i++) {
		/* The job's own value wins. */
		keylen = strcspn(base[i], "=") + 1;
		for (k = 0; k < njobenv; k++)
			if (strncmp(base[i], jobenv[k], keylen) == 0)
				break;
		if (k == njobenv)
			env[n++] = base[i];
	}
	for (k = 0; k < njobenv; k++)
		if (!worker_env_dropped(jobenv[k]))
			env[n++] = jobenv[k];
	for (i = 0; i < nids; i++)
		env[n++] = ids[i];
	env[n] = NULL;
	return env;
}

static void
worker_close_fd(int *fd)
{
	if (*fd != -1) {
		close(*fd);
		*fd = -1;
	}
}

/* Reads what a stream has now; returns 0 at end of file. */
static int
worker_pump_output(struct worker_job *r, int stream)
{
	char	buf[WORKER_READ];
	ssize_t n;

	for (;;) {
		n = read(r->out[stream], buf, sizeof buf);
		if (n > 0) {
			worker_send_output(r, stream, buf, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return 1;
		worker_close_fd(&r->out[stream]);
		return 0;
	}
}

static void
worker_pump_input(struct worker_job *r)
{
	ssize_t n;

	while (r->stdin_off < r->stdin_len) {
		n = write(r->in, r->stdin_data + r->stdin_off,
		    r->stdin_len - r->stdin_off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == -1)
			break; /* EPIPE: the job does not want the rest */
		r->stdin_off += (size_t)n;
	}
	worker_close_fd(&r->in);
}

/*
 * Signals the job's process group. Just after fork() the child may not have
 * called setsid() yet, so there is no such group: signal the process then
 * (it has every signal blocked until exec, so none is lost).
 */
void
worker_kill_job(struct worker_job *r, int sig)
{
	if (kill(-r->pid, sig) == -1 && errno == ESRCH)
		kill(r->pid, sig);
}

/*
 * Reaps every child that has ended: whatever jobs left to us, and the job's
 * own process (r->pid), whose wait status goes to status. Returns whether
 * that was among them.
 */
int
worker_reap(const struct worker_job *r, int *status)
{
	pid_t pid;
	int   st, found = 0;

	for (;;) {
		pid = waitpid(-1, &st, WNOHANG);
		if (pid == -1 && errno == EINTR)
			continue;
		if (pid <= 0)
			return found;
		if (r != NULL && r->pid > 0 && pid == r->pid) {
			*status = st;
			found = 1;
		}
	}
}

/*
 * Kills what is left of the job, reaps it and exits; if the supervisor is
 * gone, kills what earlier jobs left to us too.
 */
void __attribute__((noreturn))
worker_exit(struct worker_job *r, int supervisor_gone)
{
	if (r != NULL && r->pid > 0) {
		worker_kill_job(r, SIGKILL);
		while (waitpid(r->pid, NULL, 0) == -1 && errno == EINTR)
			;
	}
	if (supervisor_gone || getppid() != worker_supervisor_pid) {
		log_info("the supervisor is gone: killing what jobs left "
			 "behind");
		spawn_kill_orphans();
	}
	exit(0);
}

/*
 * A signal from the signalfd: SIGTERM ends us (the supervisor stopping us,
 * or its death), SIGCHLD may end the job.
 */
static int
worker_signal(struct worker_job *r, int *status)
{
	struct signalfd_siginfo si;
	struct log_ctx		ctx;

	if (read(worker_sigfd, &si, sizeof si) != sizeof si)
		return 0;
	if (si.ssi_signo == SIGUSR1) {
		log_reopen();
		return 0;
	}
	if (si.ssi_signo == SIGTERM) {
		if (r != NULL && r->pid > 0) {
			ctx = worker_job_ctx(r);
			clog_notice(&ctx,
			    "worker stopping, killing its job" LOG_KV "pid=%d",
			    (int)r->pid);
		}
		worker_exit(r, 0);
	}
	if (si.ssi_signo != SIGCHLD)
		return 0;
	return worker_reap(r, status);
}

/* What a job is told of us: MPROCD_POOL and MPROCD_WORKER. */
static void
worker_set_env_names(void)
{
	free(worker_env_pool);
	free(worker_env_worker);
	xasprintf(&worker_env_pool, "MPROCD_POOL=%.*s",
	    (int)strcspn(worker_name, "/"), worker_name);
	xasprintf(&worker_env_worker, "MPROCD_WORKER=%s", worker_name);
}

/* PROTO_LOG_LEVEL: a reload changed log_level. */
void
worker_set_log_level(const uint8_t *payload, size_t len)
{
	uint32_t level;

	if (proto_unpack_log_level(payload, len, &level) != 0 ||
	    level > LOG_DEBUG)
		fatalx("bad LOG_LEVEL from the supervisor");
	log_setlevel((int)level);
}

/* A spare's new name in the log and in ps: "worker POOL/N". */
static void
worker_set_name(void)
{
	char procname[96];

	snprintf(procname, sizeof procname, "worker %s", worker_name);
	log_procinit(procname);
	proctitle_set("mprocd: %s", procname);
	worker_set_env_names();
}

void
worker_send_hello(void)
{
	struct proto_buf b;

	proto_pack_hello(&b, PROTO_VERSION, (uint32_t)getpid());
	if (proto_send(WORKER_FD, PROTO_HELLO, b.data, b.len) != 0)
		fatal("sending hello to the supervisor");
	proto_buf_free(&b);
}

/* PROTO_ASSIGN: a spare is given a slot of its pool. */
void
worker_take_slot(const uint8_t *payload, size_t len)
{
	uint32_t slot;
	char	*name;

	if (proto_unpack_assign(payload, len, &slot) != 0 || !worker_spare)
		fatalx("bad ASSIGN from the supervisor");
	xasprintf(&name, "%.*s/%u", (int)strcspn(worker_name, "/"), worker_name,
	    slot);
	free(worker_name);
	worker_name = name;
	worker_spare = 0;
	worker_set_name();
	worker_send_hello();
}

/* A frame from the supervisor while a job runs. */
static void
worker_frame(struct worker_job *r)
{
	struct proto_hdr	h;
	struct proto_job_signal js;
	uint8_t		       *payload;

	if (proto_recv(WORKER_FD, &h, &payload) != 0) {
		if (errno != 0)
			log_warn("reading from the supervisor");
		worker_exit(r, 1);
	}
	switch (h.type) {
	case PROTO_JOB_SIGNAL:
		if (proto_unpack_job_signal(payload, h.len, &js) != 0 ||
		    (js.signal != SIGTERM && js.signal != SIGKILL))
			fatalx("bad JOB_SIGNAL from the supervisor");
		if (r != NULL && js.id == r->id && r->pid > 0)
			worker_kill_job(r, (int)js.signal);
		break;
	case PROTO_LOG_LEVEL:
		worker_set_log_level(payload, h.len);
		break;
	case PROTO_EXIT:
		worker_exit(r, 0);
	default:
		fatalx("unexpected frame type %u from the supervisor", h.type);
	}
	free(payload);
}

/*
 * In the job's process, between vfork and exec (spawn.c): JOB_STARTED with
 * our pid in the frame our parent prepared. Our parent is suspended, so the
 * frame goes out whole and alone; if the supervisor is gone, the job does
 * not run.
 */
static void
worker_announce_started(pid_t pid, void *arg)
{
	struct proto_buf *b = arg;
	uint32_t	  p = (uint32_t)pid;

	memcpy(b->data + b->len - sizeof p, &p, sizeof p);
	if (proto_send(WORKER_FD, PROTO_JOB_STARTED, b->data, b->len) != 0)
		_exit(1);
}

/*
 * Starts the job JOB_START describes, in a session of its own, with pipes
 * for its stdout and stderr (and stdin, if it has one): r is what the
 * other steps need. A job that cannot be started has ended already, with
 * status 127 and why on its stderr, as a shell does; returns 1 then.
 */
static int
worker_job_begin(struct worker_job *r, const struct proto_job_start *js,
    int *status)
{
	struct proto_buf b;
	struct spawn	 sp;
	const char	*ids[4];
	char		 idvar[40];
	int		 outp[2][2], inp[2] = { -1, -1 };
	int		 n, error;
	char		 msg[512], cmd[1024];
	struct log_ctx	 ctx;

	memset(r, 0, sizeof *r);
	r->id = js->id;
	r->max_output = js->max_output;
	r->stdin_data = js->stdin_data;
	r->stdin_len = js->stdin_len;
	snprintf(idvar, sizeof idvar, "MPROCD_JOB_ID=%llu",
	    (unsigned long long)r->id);
	ids[0] = idvar;
	ids[1] = worker_env_pool;
	ids[2] = worker_env_worker;
	ids[3] = NULL;
	r->env = worker_job_environ(js->env, ids);
	ctx = worker_job_ctx(r);

	if (pipe2(outp[0], O_CLOEXEC) != 0 || pipe2(outp[1], O_CLOEXEC) != 0 ||
	    (js->has_stdin && pipe2(inp, O_CLOEXEC) != 0))
		fatal("pipe");
	memset(&sp, 0, sizeof sp);
	sp.argv = (const char *const *)js->argv;
	sp.envp = r->env;
	sp.cwd = js->cwd;
	sp.fds[0] = inp[0];
	sp.fds[1] = outp[0][1];
	sp.fds[2] = outp[1][1];
	sp.nfds = 3;
	sp.setsid = 1;
	sp.pdeathsig = SIGKILL;
	/*
	 * The job runs only once the supervisor has its pid (JOB_STARTED):
	 * if we die before, it never starts; if after, the supervisor kills
	 * its process group. Else it could start processes in its group that
	 * nobody would kill. We are suspended in vfork() meanwhile, so the
	 * child itself sends it.
	 */
	proto_pack_job_started(&b, r->id, 0);
	sp.announce = worker_announce_started;
	sp.announce_arg = &b;
	r->pid = spawn_process(&sp);
	error = errno;
	proto_buf_free(&b);
	close(outp[0][1]);
	close(outp[1][1]);
	worker_close_fd(&inp[0]);
	r->out[0] = outp[0][0];
	r->out[1] = outp[1][0];
	r->in = inp[1];
	/* New pipes: no other status flag to keep. */
	fcntl(r->out[0], F_SETFL, O_NONBLOCK);
	fcntl(r->out[1], F_SETFL, O_NONBLOCK);
	if (r->in != -1)
		fcntl(r->in, F_SETFL, O_NONBLOCK);

	if (r->pid == -1) {
		/* As a shell does: status 127 and why on the job's stderr. */
		n = snprintf(msg, sizeof msg,
		    "mprocd: cannot start "
		    "'%.300s%s': %s\n",
		    js->argv[0], strlen(js->argv[0]) > 300 ? "..." : "",
		    strerror(error));
		if (n > (int)sizeof msg - 1)
			n = (int)sizeof msg - 1;
		clog_warnx(&ctx,
		    "cannot start the job" LOG_KV "error=%s" LOG_KV "cmd=%s",
		    strerror(error), log_safe(js->argv[0], cmd, sizeof cmd));
		r->pid = 0;
		worker_send_output(r, 1, msg, (size_t)n);
		*status = 127 << 8;
		return 1;
	}
	clog_debug(&ctx, "job running" LOG_KV "pid=%d" LOG_KV "cmd=%s",
	    (int)r->pid, log_safe(js->argv[0], cmd, sizeof cmd));
	if (r->in != -1)
		worker_pump_input(r);
	return 0;
}

/*
 * Runs the job to the end of its process: its output streamed as it comes,
 * its stdin fed, signals and the supervisor's frames handled meanwhile.
 * Returns its wait status.
 */
static int
worker_job_wait(struct worker_job *r)
{
	struct pollfd pfd[5];
	int	      exited = 0, n, s, status = 0;

	while (!exited) {
		n = 0;
		pfd[n++] = (struct pollfd){ WORKER_FD, POLLIN, 0 };
		pfd[n++] = (struct pollfd){ worker_sigfd, POLLIN, 0 };
		pfd[n++] = (struct pollfd){ r->out[0], POLLIN, 0 };
		pfd[n++] = (struct pollfd){ r->out[1], POLLIN, 0 };
		pfd[n++] = (struct pollfd){ r->in, POLLOUT, 0 };
		if (poll(pfd, (nfds_t)n, -1) == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		if (pfd[1].revents & POLLIN)
			exited = worker_signal(r, &status);
		for (s = 0; s < 2; s++)
			if (pfd[2 + s].revents != 0)
				worker_pump_output(r, s);
		if (pfd[4].revents != 0)
			worker_pump_input(r);
		/*
		 * A process closes its descriptors as it exits, before its
		 * parent is signalled: when both pipes are at their end, it
		 * has most likely exited already. Reaping it now spares the
		 * wait for SIGCHLD (read later, with nothing left to reap).
		 */
		if (!exited && r->out[0] == -1 && r->out[1] == -1)
			exited = worker_reap(r, &status);
		if (!exited && pfd[0].revents != 0)
			worker_frame(r);
	}
	return status;
}

/*
 * The job's process is gone: end what it left behind in its group, then
 * take what is still in the pipes (what the job wrote is there whole; a
 * writer that escaped the group does not hold us up), and report.
 */
static void
worker_job_end(struct worker_job *r, int status)
{
	struct log_ctx ctx = worker_job_ctx(r);
	char	       how[64];
	int	       s;

	if (r->pid > 0)
		kill(-r->pid, SIGKILL);
	for (s = 0; s < 2; s++)
		if (r->out[s] != -1) {
			worker_pump_output(r, s);
			worker_close_fd(&r->out[s]);
		}
	worker_close_fd(&r->in);
	worker_send_done(r, status);
	log_wait_status(status, how, sizeof how);
	clog_debug(&ctx, "job done%s", how);
	free(r->env);
}

/* Runs one job to its end: JOB_STARTED, JOB_OUTPUT..., JOB_DONE. */
static void
worker_run_job(const uint8_t *payload, size_t len)
{
	struct proto_job_start js;
	struct worker_job      r;
	int		       status = 0;

	if (proto_unpack_job_start(payload, len, &js) != 0)
		fatalx("bad JOB_START from the supervisor");
	if (worker_job_begin(&r, &js, &status) == 0)
		status = worker_job_wait(&r);
	worker_job_end(&r, status);
	proto_job_start_free(&js);
}

/*
 * Waits, between jobs, for a frame on the supervisor's channel or a
 * signal: returns which have come (WORKER_CHANNEL, WORKER_SIGNAL).
 */
int
worker_wait(void)
{
	struct pollfd pfd[2];

	for (;;) {
		pfd[0] = (struct pollfd){ WORKER_FD, POLLIN, 0 };
		pfd[1] = (struct pollfd){ worker_sigfd, POLLIN, 0 };
		if (poll(pfd, 2, -1) != -1)
			break;
		if (errno != EINTR)
			fatal("poll");
	}
	return (pfd[0].revents != 0 ? WORKER_CHANNEL : 0) |
	    (pfd[1].revents & POLLIN ? WORKER_SIGNAL : 0);
}

int
worker_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "worker", required_argument, NULL, 'w' },
		{ "log-target", required_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "spare", no_argument, NULL, 's' },
		{ "program", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char	*target = "stderr", *errstr;
	char		 procname[96];
	struct proto_hdr h;
	uint8_t		*payload;
	sigset_t	 mask;
	char	       **program = NULL;
	int		 ch, level = LOG_INFO, status, is_program = 0, ready;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			worker_name = xstrdup(optarg); /* argv is the title */
			break;
		case 't':
			target = optarg;
			break;
		case 'l':
			if ((level = log_parse_level(optarg)) == -1)
				worker_usage();
			break;
		case 's':
			worker_spare = 1;
			break;
		case 'p':
			is_program = 1;
			break;
		default:
			worker_usage();
		}
	}
	if (worker_name == NULL || is_program != (argv[optind] != NULL))
		worker_usage();
	/* Over argv too: the title is written there. */
	if (is_program)
		program = util_strv_dup(argv + optind);
	worker_supervisor_pid = getppid();
	snprintf(procname, sizeof procname, "worker %s", worker_name);
	log_procinit(procname);
	if (log_open(target, &errstr) != 0)
		log_warnx("log target %s: %s, using stderr", target, errstr);
	log_setlevel(level);
	/* Over argv: target is gone from here on. */
	proctitle_set("mprocd: %s", procname);
	worker_set_env_names();
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Ctrl-C and a hangup reach the whole foreground process group; the
	 * supervisor decides what they mean and stops workers with SIGTERM.
	 */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/*
	 * Signals are read from a signalfd, so none slips in between a check
	 * and poll(): SIGUSR1 reopens the log at once, even when idle.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((worker_sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) ==
	    -1)
		fatal("signalfd");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		log_warn("PR_SET_CHILD_SUBREAPER, ignoring");

	if (program != NULL)
		worker_program_run(program);
	worker_send_hello();

	for (;;) {
		ready = worker_wait();
		if (ready & WORKER_SIGNAL)
			worker_signal(NULL, &status);
		if (!(ready & WORKER_CHANNEL))
			continue;
		if (proto_recv(WORKER_FD, &h, &payload) != 0) {
			if (errno == 0)
				worker_exit(NULL,
				    1); /* the supervisor is gone */
			fatal("reading from the supervisor");
		}
		switch (h.type) {
		case PROTO_JOB_START:
			if (worker_spare)
				fatalx("a job for a spare from the supervisor");
			worker_run_job(payload, h.len);
			break;
		case PROTO_ASSIGN:
			worker_take_slot(payload, h.len);
			break;
		case PROTO_JOB_SIGNAL:
			break; /* for a job that has just ended */
		case PROTO_LOG_LEVEL:
			worker_set_log_level(payload, h.len);
			break;
		case PROTO_EXIT:
			free(payload);
			exit(0);
		default:
			fatalx("unexpected frame type %u from the supervisor",
			    h.type);
		}
		free(payload);
	}
}
