/*
 * A worker process, "mprocd: worker POOL/N": re-executed from the supervisor
 * with its socketpair on descriptor 3. It blocks on that socket and does
 * what the frames say; when the supervisor goes (end of stream, or the
 * parent-death signal) it exits.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocd.h"
#include "proto.h"
#include "xmalloc.h"

#define WORKER_FD	3

static void
worker_sigusr1(int sig)
{
	log_request_reopen();
}

static void __attribute__((noreturn))
worker_usage(void)
{
	fatalx("--worker is for mprocd's own use");
}

int
worker_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "worker", required_argument, NULL, 'w' },
		{ "log-target", required_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	const char		*name = NULL, *target = "stderr", *errstr;
	char			 procname[96];
	struct proto_hdr	 h;
	struct proto_buf	 b;
	uint8_t			*payload;
	struct sigaction	 sa;
	int			 ch, level = LOG_INFO;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			name = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'l':
			if ((level = log_parse_level(optarg)) == -1)
				worker_usage();
			break;
		default:
			worker_usage();
		}
	}
	if (name == NULL)
		worker_usage();
	snprintf(procname, sizeof procname, "worker %s", name);
	log_procinit(procname);
	if (log_open(target, &errstr) != 0)
		log_warnx("log target %s: %s, using stderr", target, errstr);
	log_setlevel(level);
	proctitle_set("mprocd: %s", procname);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Ctrl-C and a hangup reach the whole foreground process group; the
	 * supervisor decides what they mean and stops workers with SIGTERM.
	 */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = worker_sigusr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	proto_buf_init(&b);
	proto_put_u32(&b, PROTO_VERSION);
	proto_put_u32(&b, (uint32_t)getpid());
	if (proto_send(WORKER_FD, PROTO_HELLO, b.data, b.len) != 0)
		fatal("sending hello to the supervisor");
	proto_buf_free(&b);

	for (;;) {
		if (proto_recv(WORKER_FD, &h, &payload) != 0) {
			if (errno == 0)
				exit(0);	/* the supervisor is gone */
			fatal("reading from the supervisor");
		}
		switch (h.type) {
		case PROTO_EXIT:
			free(payload);
			exit(0);
		default:
			fatalx("unexpected frame type %u from the supervisor",
			    h.type);
		}
	}
}
