/* mprocd: supervised worker pools that run jobs. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "mprocd.h"
#include "xmalloc.h"

static void
mprocd_usage(FILE *f)
{
	fprintf(f,
	    "usage: mprocd [-c FILE] [-s SOCKET] [--check-config | --print-config]\n"
	    "\n"
	    "Keeps pools of worker processes, restarts those that die, and runs jobs\n"
	    "that clients (mprocctl) submit over a UNIX socket. Runs in the foreground.\n"
	    "\n"
	    "  -c, --config FILE   configuration file (default %s)\n"
	    "  -s, --socket PATH   listen on PATH instead of the configured socket\n"
	    "      --check-config  check the configuration file; exit 0 if valid, else 1\n"
	    "      --print-config  print the effective configuration, defaults included\n"
	    "  -h, --help          show this help\n"
	    "  -V, --version       show the version\n"
	    "\n"
	    "Signals: TERM or INT stop every worker and exit; HUP reloads the\n"
	    "configuration; USR1 reopens a log file. See mprocd(8) and mprocd.conf(5).\n",
	    MPROCD_DEFAULT_CONFIG);
}

static void
mprocd_print_errors(const struct config_errors *errors)
{
	size_t i;

	for (i = 0; i < errors->n; i++)
		fprintf(stderr, "mprocd: %s\n", errors->v[i]);
}

/* Where our executable is, so workers can be started from it. */
static const char *
mprocd_self_path(void)
{
	static char path[PATH_MAX];
	ssize_t	    n;

	n = readlink("/proc/self/exe", path, sizeof path - 1);
	if (n <= 0)
		return "/proc/self/exe";
	path[n] = '\0';
	return path;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "print-config", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct config	    *c;
	struct config_errors errors;
	const char	    *file = MPROCD_DEFAULT_CONFIG, *errstr;
	char		    *socket = NULL, *state;
	int		     ch, check = 0, print = 0, status, fd;

	/*
	 * Make sure 0, 1 and 2 are open, or the first socket we open would
	 * become "stderr" and take log records.
	 */
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= STDERR_FILENO)
		;
	if (fd > STDERR_FILENO)
		close(fd);

	proctitle_init(argc, argv);
	log_use_journal(sd_journal_sendv);
	if (argc > 1 && strcmp(argv[1], "--worker") == 0)
		return worker_main(argc, argv);

	while ((ch = getopt_long(argc, argv, "c:s:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 's':
			socket = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'P':
			print = 1;
			break;
		case 'h':
			mprocd_usage(stdout);
			return 0;
		case 'V':
			printf("mprocd %s\n", PACKAGE_VERSION);
			return 0;
		default:
			mprocd_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "mprocd: unexpected argument '%s'\n",
		    argv[optind]);
		mprocd_usage(stderr);
		return 2;
	}

	if ((c = config_load(file, &errors)) == NULL) {
		mprocd_print_errors(&errors);
		if (!check && !print)
			fprintf(stderr,
			    "mprocd: not starting: fix %s, then "
			    "check it with 'mprocd --check-config -c %s'\n",
			    file, file);
		config_errors_free(&errors);
		return 1;
	}
	if (socket != NULL) {
		free(c->socket);
		c->socket = xstrdup(socket);
		/* For reloads too; argv becomes the process title. */
		mprocd_socket_override = xstrdup(socket);
	}
	if (check) {
		/* Where the jobs would be kept, as the daemon would see it. */
		if ((state = config_state_path(c, &errstr)) != NULL)
			printf("%s: OK (state database %s, durability %s)\n",
			    file, state,
			    c->durability_power ? "power" : "crash");
		else if (errstr == NULL)
			printf("%s: OK (state = none: jobs in memory only)\n",
			    file);
		else {
			printf("%s: OK, but %s\n", file, errstr);
			config_free(c);
			return 1;
		}
		free(state);
		config_free(c);
		return 0;
	}
	if (print) {
		config_print(c, stdout);
		config_free(c);
		return 0;
	}

	/* Under socket activation the path is systemd's business. */
	fd = systemd_listen_fd();
	if (fd == -1 && c->socket == NULL &&
	    (c->socket = config_default_socket(&errstr)) == NULL) {
		fprintf(stderr, "mprocd: %s\n", errstr);
		config_free(c);
		return 1;
	}
	if (log_open(c->log_target, &errstr) != 0) {
		fprintf(stderr, "mprocd: log_target %s: %s\n", c->log_target,
		    errstr);
		config_free(c);
		return 1;
	}
	log_setlevel(c->log_level);
	mprocd_self = mprocd_self_path();

	status = supervisor_main(c, fd); /* frees c, or what replaced it */
	log_close();
	return status;
}
