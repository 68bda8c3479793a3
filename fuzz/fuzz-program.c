/*
 * libFuzzer target for what a program pool's program can send: the input
 * is what the program writes, in parts separated by a 0x1e byte (which
 * JSON text cannot hold). A part that starts with 0x01 goes to its stdout
 * pipe, 0x02 to its stderr pipe (without that byte), any other to its fd 3
 * socket, where mprocd expects Varlink replies ended by NUL bytes. They
 * reach the daemon's own code (pool-program.c, pool-worker.c, pool.c,
 * job.c) on a real event_base, through real socketpairs and pipes.
 *
 * No process is created or signalled: the target is linked with
 * --wrap=spawn_process and --wrap=kill. The one worker of pool "calc" is
 * made here, starting, its worker process having said HELLO; three jobs
 * are queued, so that each Run answered brings the next. A kill() of the
 * worker or its program's group ends the input: the worker's death is
 * handed to pool_child_exited(), as SIGCHLD's would be. Any other kill()
 * is a finding. After the last part, the program's ends are closed (the
 * program is gone), and everything is freed, for LeakSanitizer.
 */
#include "config.h"

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

#include <event2/event.h>

#include "mprocd.h"
#include "xmalloc.h"
#include "fuzz.h"

pid_t __wrap_spawn_process(const struct spawn *);
int   __wrap_kill(pid_t, int);

/* Above any real pid: PID_MAX_LIMIT is 2^22. */
#define FAKE_WORKER_PID	 0x7f000000
#define FAKE_PROGRAM_PID 0x7e000000

static const char fuzz_config[] = "[mprocd]\n"
				  "log_target = stderr\n"
				  "log_level = error\n"
				  "max_message = 4096\n"
				  "keep_finished = 4\n"
				  "[pool calc]\n"
				  "workers = 1\n"
				  "spare_workers = 0\n"
				  "program = true\n"
				  "max_output = 256\n"
				  "max_memory = 1G\n"
				  "max_jobs_per_worker = 2\n"
				  "retries = 1\n";

static int fuzz_killed;

/* The worker's process is never spawned again within an input. */
pid_t
__wrap_spawn_process(const struct spawn *sp)
{
	(void)sp;
	errno = EAGAIN;
	return -1;
}

int
__wrap_kill(pid_t pid, int sig)
{
	CHECK(pid == FAKE_WORKER_PID || pid == -FAKE_PROGRAM_PID);
	CHECK(sig == SIGKILL || sig == SIGTERM);
	fuzz_killed = 1;
	return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void
fuzz_loop(void)
{
	int i;

	for (i = 0; i < 4; i++)
		event_base_loop(ev_base, EVLOOP_NONBLOCK);
}

/* Writes all of data to fd, letting the loop read in between. */
static void
fuzz_write(int fd, const uint8_t *data, size_t len)
{
	ssize_t n;

	while (len > 0 && !fuzz_killed) {
		n = write(fd, data, len);
		if (n == -1 && errno == EAGAIN) {
			fuzz_loop();
			continue;
		}
		if (n <= 0)
			return; /* the daemon closed its end */
		data += n;
		len -= (size_t)n;
		fuzz_loop();
	}
}

static void
fuzz_submit(struct pool *p, int k)
{
	struct job_spec	  spec;
	enum pool_refusal why;
	char		  arg[16];

	memset(&spec, 0, sizeof spec);
	snprintf(arg, sizeof arg, "%d", k);
	spec.argv = xcalloc(3, sizeof *spec.argv);
	spec.argv[0] = xstrdup("f");
	spec.argv[1] = xstrdup(arg);
	spec.cwd = "/";
	spec.input = json_pack("{s:[i], s:{}}", "args", k, "kwargs");
	CHECK(pool_submit(p, &spec, 0, &why) != NULL);
	json_decref(spec.input);
	job_spec_free(&spec);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errors = { NULL, 0 };
	struct worker	    *w;
	struct pool	    *p;
	const uint8_t	    *sep;
	size_t		     at, len, skip;
	int		     sv[2], out[2], err[2], i, fd;

	fuzz_killed = 0;
	ev_base = event_base_new();
	cfg = config_load_string("fuzz.conf", fuzz_config, &errors);
	CHECK(cfg != NULL);
	log_setlevel(LOG_CRIT);
	p = pool_new(config_find_pool(cfg, "calc"));
	w = pool_worker_new(p, 0);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	fcntl(out[1], F_SETFL, O_NONBLOCK);
	fcntl(err[1], F_SETFL, O_NONBLOCK);
	w->pid = FAKE_WORKER_PID;
	w->said_hello = 1;
	pool_worker_set_state(w, WORKER_STARTING);
	w->prog = pool_program_new(w, sv[0], out[0], err[0]);
	pool_program_set_pid(w->prog, FAKE_PROGRAM_PID);
	for (i = 0; i < 3; i++)
		fuzz_submit(p, i);

	for (at = 0; at <= size && !fuzz_killed; at += len + 1) {
		sep = memchr(data + at, 0x1e, size - at);
		len = sep != NULL ? (size_t)(sep - (data + at)) : size - at;
		fd = sv[1];
		skip = 0;
		if (len > 0 && (data[at] == 1 || data[at] == 2)) {
			fd = data[at] == 1 ? out[1] : err[1];
			skip = 1;
		}
		fuzz_write(fd, data + at + skip, len - skip);
		fuzz_loop();
	}
	/* The program goes: its ends close; then its worker is reaped. */
	close(sv[1]);
	close(out[1]);
	close(err[1]);
	fuzz_loop();
	if (w->pid > 0 && w->state != WORKER_BACKOFF)
		pool_child_exited(FAKE_WORKER_PID, fuzz_killed ? SIGKILL : 0);
	fuzz_loop();

	job_free_all();
	pool_free(p);
	config_free(cfg);
	cfg = NULL;
	event_base_free(ev_base);
	ev_base = NULL;
	return 0;
}
