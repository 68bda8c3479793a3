/*
 * A program worker, "mprocd: worker POOL/N" started with "--program -- CMD
 * ARG...": the keeper of a program pool's program. It starts the program
 * once, in a session of its own, with fd 3 a socket whose other end the
 * supervisor holds (passed as systemd passes sockets: LISTEN_FDS=1,
 * LISTEN_PID, LISTEN_FDNAMES=mprocd), stdin /dev/null, and the supervisor's
 * pipes for stdout and stderr; all three come to us on fds 4, 5 and 6.
 *
 * Calls and output go between the supervisor and the program directly,
 * never through us: we are not on the path a call takes. We stay for what
 * only a parent can do: the program's group is killed when the supervisor
 * goes (even by SIGKILL: our parent-death signal, then its end of our
 * channel), what escaped it is killed then too (we are a subreaper), and
 * we exit as the program does, so its death is this worker's.
 */
#include "config.h"

#include <sys/signalfd.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocd.h"
#include "proto.h"
#include "util.h"

#define WORKER_CHANNEL_FD 3 /* the supervisor's */
#define WORKER_PROGRAM_FD 4

/* How a program's process is announced (see worker_program_announce). */
struct worker_program_start {
	struct proto_buf frame;	     /* JOB_STARTED for job 0 */
	int		 chan;	     /* the supervisor's channel, not on 3 */
	char		*listen_pid; /* "LISTEN_PID=", room for the digits */
};

/*
 * In a program worker's program, between vfork and exec: LISTEN_PID gets
 * our pid, and the supervisor learns it (JOB_STARTED for job 0) before
 * any code of the program runs. fd 3 is the program's socket by now.
 */
static void
worker_program_announce(pid_t pid, void *arg)
{
	struct worker_program_start *ps = arg;
	uint32_t		     p = (uint32_t)pid;
	char			     digits[16], *d;
	int			     n = 0;

	do
		digits[n++] = (char)('0' + p % 10);
	while ((p /= 10) != 0);
	d = ps->listen_pid + strlen(ps->listen_pid);
	while (n > 0)
		*d++ = digits[--n];
	*d = '\0';
	p = (uint32_t)pid;
	memcpy(ps->frame.data + ps->frame.len - sizeof p, &p, sizeof p);
	if (proto_send(ps->chan, PROTO_JOB_STARTED, ps->frame.data,
		ps->frame.len) != 0)
		_exit(1);
}

/*
 * The program has exited: end what it left in its group, and exit with
 * its status (128+N for signal N), so the supervisor's record of this
 * worker's death says how the program ended.
 */
static void __attribute__((noreturn))
worker_program_exited(const struct worker_job *r, int status)
{
	char how[64];

	kill(-r->pid, SIGKILL);
	log_wait_status(status, how, sizeof how);
	log_debug("program exited%s" LOG_KV "pid=%d", how, (int)r->pid);
	if (WIFSIGNALED(status))
		exit(128 + WTERMSIG(status));
	exit(WEXITSTATUS(status));
}

/* A program worker's signals: TERM goes on to the program's group. */
static void
worker_program_signal(struct worker_job *r)
{
	struct signalfd_siginfo si;
	int			status;

	if (read(worker_sigfd, &si, sizeof si) != sizeof si)
		return;
	switch (si.ssi_signo) {
	case SIGUSR1:
		log_reopen();
		break;
	case SIGTERM:
		worker_kill_job(r, SIGTERM);
		break;
	case SIGCHLD:
		if (worker_reap(r, &status))
			worker_program_exited(r, status);
		break;
	}
}

/* A frame from the supervisor to a program worker. */
static void
worker_program_frame(struct worker_job *r)
{
	struct proto_hdr h;
	uint8_t		*payload;

	if (proto_recv(WORKER_CHANNEL_FD, &h, &payload) != 0) {
		if (errno != 0)
			log_warn("reading from the supervisor");
		worker_exit(r, 1);
	}
	switch (h.type) {
	case PROTO_ASSIGN:
		worker_take_slot(payload, h.len);
		break;
	case PROTO_LOG_LEVEL:
		worker_set_log_level(payload, h.len);
		break;
	case PROTO_JOB_SIGNAL:
		break; /* the supervisor signals the program itself */
	case PROTO_EXIT:
		worker_exit(r, 0);
	default:
		fatalx("unexpected frame type %u for a program worker", h.type);
	}
	free(payload);
}

/* Starts the program, then waits for its end, or the supervisor's. */
void __attribute__((noreturn)) worker_program_run(char **argv)
{
	struct worker_program_start ps;
	struct worker_job	    r;
	struct spawn		    sp;
	const char		   *ids[6];
	char			    listen_pid[32] = "LISTEN_PID=";
	char *const		    none[] = { NULL };
	int			    i, ready;

	memset(&r, 0, sizeof r);
	r.out[0] = r.out[1] = r.in = -1;
	ids[0] = worker_env_pool;
	ids[1] = worker_env_worker;
	ids[2] = "LISTEN_FDS=1";
	ids[3] = listen_pid;
	ids[4] = "LISTEN_FDNAMES=mprocd";
	ids[5] = NULL;
	r.env = worker_job_environ(none, ids);
	memset(&sp, 0, sizeof sp);
	sp.argv = (const char *const *)argv;
	sp.envp = r.env;
	sp.fds[0] = -1;
	sp.fds[1] = WORKER_PROGRAM_FD + 1;
	sp.fds[2] = WORKER_PROGRAM_FD + 2;
	sp.fds[3] = WORKER_PROGRAM_FD;
	sp.nfds = 4;
	sp.setsid = 1;
	sp.pdeathsig = SIGKILL;
	if ((ps.chan = fcntl(WORKER_CHANNEL_FD, F_DUPFD_CLOEXEC, 10)) == -1)
		fatal("dup");
	proto_pack_job_started(&ps.frame, 0, 0);
	ps.listen_pid = listen_pid;
	sp.announce = worker_program_announce;
	sp.announce_arg = &ps;
	r.pid = spawn_process(&sp);
	if (r.pid == -1)
		fatal("cannot start the program");
	proto_buf_free(&ps.frame);
	close(ps.chan);
	free(r.env);
	r.env = NULL;
	for (i = 0; i < 3; i++)
		close(WORKER_PROGRAM_FD + i);
	log_debug("program started" LOG_KV "pid=%d", (int)r.pid);
	worker_send_hello();

	for (;;) {
		ready = worker_wait();
		if (ready & WORKER_SIGNAL)
			worker_program_signal(&r);
		if (ready & WORKER_CHANNEL)
			worker_program_frame(&r);
	}
}
