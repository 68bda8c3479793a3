/* mprocctl: the command-line client of mprocd. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mprocctl.h"
#include "util.h"
#include "xmalloc.h"

/* Set by mprocctl_catch_signals(): what to undo when a signal ends us. */
static void (*mprocctl_cleanup)(void *);
static void		    *mprocctl_cleanup_arg;
static sigset_t		     mprocctl_oldmask;
static sigset_t		     mprocctl_caught;
static int		     mprocctl_catching;
static volatile sig_atomic_t mprocctl_signal;

static void
mprocctl_usage(FILE *f)
{
	size_t i;

	fprintf(f,
	    "usage: mprocctl [-s SOCKET] [--json] COMMAND [ARG]...\n"
	    "\n"
	    "Talks to mprocd over its UNIX socket.\n"
	    "\n"
	    "  -s, --socket PATH  mprocd's socket (default $MPROCD_SOCKET, else\n"
	    "                     /run/mprocd/mprocd.sock for root and\n"
	    "                     $XDG_RUNTIME_DIR/mprocd.sock for others)\n"
	    "  -j, --json         print replies as JSON, for scripts\n"
	    "  -h, --help         show this help; COMMAND --help for a command's\n"
	    "  -V, --version      show the version\n"
	    "\n"
	    "Commands:\n");
	for (i = 0; cmd_table[i] != NULL; i++)
		fprintf(f, "  %-8s %s\n", cmd_table[i]->name,
		    cmd_table[i]->help);
	fprintf(f,
	    "\n"
	    "Exit status:\n"
	    "  0        success: the job (or every job) succeeded\n"
	    "  N        the job's own exit status, where one job is waited for\n"
	    "  1        several jobs and not all succeeded; or a job cancelled or\n"
	    "           lost without a signal; or cancel found a job already finished\n"
	    "  124      the job timed out, or wait -t gave up\n"
	    "  125      mprocctl itself failed: cannot connect, error reply, bad usage\n"
	    "  128+N    the job was killed by signal N (or mprocctl was, while it\n"
	    "           waited for its jobs; it cancels them first)\n"
	    "See mprocctl(1).\n");
}

static void __attribute__((format(printf, 1, 0)))
mprocctl_vwarn(const char *fmt, va_list ap)
{
	progress_hide_current();
	fflush(stdout);
	fputs("mprocctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
mprocctl_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mprocctl_vwarn(fmt, ap);
	va_end(ap);
}

void
mprocctl_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mprocctl_vwarn(fmt, ap);
	va_end(ap);
	exit(CTL_EXIT_FAILURE);
}

/* One line: what is wrong, then the usage that would be right. */
void
mprocctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "mprocctl %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; usage: mprocctl %s%s%s\n", cmd->name,
	    *cmd->usage != '\0' ? " " : "", cmd->usage);
	exit(CTL_EXIT_FAILURE);
}

void
mprocctl_print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

/*
 * getopt(3) for a command's own options, argv[0] being the command's name.
 * Errors end mprocctl with a usage line; a leading '+' in optstring is
 * implied, so a job's arguments are never taken for ours.
 */
int
mprocctl_getopt(const struct ctl_cmd *cmd, int argc, char **argv,
    const char *optstring)
{
	return mprocctl_getopt_long(cmd, argc, argv, optstring, NULL);
}

/* mprocctl_getopt() with long options too (NULL: none), as getopt_long(3). */
int
mprocctl_getopt_long(const struct ctl_cmd *cmd, int argc, char **argv,
    const char *optstring, const struct option *longopts)
{
	char opts[64];
	int  ch, i;

	opterr = 0;
	snprintf(opts, sizeof opts, "+:%s", optstring);
	ch = getopt_long(argc, argv, opts, longopts, NULL);
	/* getopt_long(3) has moved past a long option it refuses. */
	if (ch == '?' && longopts != NULL && optopt == 0)
		mprocctl_usage_error(cmd, "unknown option %s",
		    argv[optind - 1]);
	if (ch == '?' && longopts != NULL && optopt > 0xff)
		mprocctl_usage_error(cmd, "option %s takes no value",
		    argv[optind - 1]);
	if (ch == '?' && optopt == '-') {
		/* getopt(3) reports only the second dash of "--name". */
		for (i = 1; i < argc - 1; i++) {
			if (strncmp(argv[i], "--", 2) == 0)
				break;
		}
		mprocctl_usage_error(cmd, "unknown option %s", argv[i]);
	}
	if (ch == '?')
		mprocctl_usage_error(cmd, "unknown option -%c", optopt);
	if (ch == ':')
		mprocctl_usage_error(cmd, "option -%c needs a value", optopt);
	return ch;
}

/* The number of arguments left after the options, against the table's. */
void
mprocctl_check_nargs(const struct ctl_cmd *cmd, int nargs, int min, int max)
{
	if (nargs < min)
		mprocctl_usage_error(cmd, "%s",
		    min == 1 && max == 1 ? "needs one argument"
					 : "missing arguments");
	if (max >= 0 && nargs > max)
		mprocctl_usage_error(cmd, "too many arguments");
}

json_int_t
mprocctl_parse_id(const struct ctl_cmd *cmd, const char *s)
{
	const char *errstr;
	uint64_t    id;

	if (util_parse_uint(s, 1, INT64_MAX, &id, &errstr) != 0)
		mprocctl_usage_error(cmd, "bad job id '%s': %s", s, errstr);
	return (json_int_t)id;
}

/* Appends id to the array ids unless it is there already. */
void
mprocctl_add_id(json_t *ids, json_int_t id)
{
	json_t *v;
	size_t	i;

	json_array_foreach(ids, i, v) {
		if (json_integer_value(v) == id)
			return;
	}
	json_array_append_new(ids, json_integer(id));
}

/* Job ids from -a ID[,ID]... appended to after, each once. */
static void
mprocctl_add_after(const struct ctl_cmd *cmd, const char *arg, json_t *after)
{
	const char *p = arg, *errstr;
	uint64_t    id;
	size_t	    n;
	char	   *part;

	for (;;) {
		n = strcspn(p, ",");
		part = xstrndup(p, n);
		if (util_parse_uint(part, 1, INT64_MAX, &id, &errstr) != 0) {
			if (n == strlen(arg))
				mprocctl_usage_error(cmd,
				    "bad -a '%s': not a job id (%s)", arg,
				    errstr);
			mprocctl_usage_error(cmd,
			    "bad -a '%s': '%s' is not a job id (%s)", arg, part,
			    errstr);
		}
		free(part);
		mprocctl_add_id(after, (json_int_t)id);
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	if (json_array_size(after) > CTL_MAX_AFTER)
		mprocctl_usage_error(cmd,
		    "-a names %zu jobs; a job waits for %d at most",
		    json_array_size(after), CTL_MAX_AFTER);
}

/*
 * Option -a (job ids, comma-separated, and again for more) or -l LOCK of
 * the commands that submit jobs, into params as Submit and Run take them.
 */
void
mprocctl_dep_option(const struct ctl_cmd *cmd, int ch, const char *arg,
    json_t *params)
{
	json_t *after;
	char	buf[64];

	if (ch == 'l') {
		if (*arg == '\0' || strlen(arg) > CTL_MAX_LOCK)
			mprocctl_usage_error(cmd,
			    "bad -l '%s': a lock's name is 1 to %d bytes",
			    mprocctl_printable(arg, buf, sizeof buf),
			    CTL_MAX_LOCK);
		json_object_set_new(params, "lock",
		    mprocctl_string(cmd, "-l", arg));
		return;
	}
	if ((after = json_object_get(params, "after")) == NULL) {
		after = json_array();
		json_object_set_new(params, "after", after);
	}
	mprocctl_add_after(cmd, arg, after);
}

/* A duration for option -ch ("30", "1.5s", "2min") in seconds. */
double
mprocctl_parse_seconds(const struct ctl_cmd *cmd, int ch, const char *s)
{
	const char *errstr;
	uint64_t    usec;

	if (util_parse_duration(s, &usec, &errstr) != 0)
		mprocctl_usage_error(cmd, "bad -%c '%s': %s", ch, s, errstr);
	return (double)usec / (double)USEC_PER_SEC;
}

/* s as a JSON string; what names it in an error ("-n"). */
json_t *
mprocctl_string(const struct ctl_cmd *cmd, const char *what, const char *s)
{
	json_t *v;

	if ((v = json_string(s)) == NULL)
		mprocctl_usage_error(cmd,
		    "%s is not valid UTF-8 (mprocd "
		    "carries text only)",
		    what);
	return v;
}

/* A JSON array of the strings; what names them in an error ("argument"). */
json_t *
mprocctl_string_array(const struct ctl_cmd *cmd, char **v, int n,
    const char *what)
{
	json_t *a = json_array();
	json_t *s;
	int	i;

	for (i = 0; i < n; i++) {
		if ((s = json_string(v[i])) == NULL)
			mprocctl_usage_error(cmd,
			    "%s %d is not valid UTF-8 "
			    "(mprocd carries text only; pass data with -i)",
			    what, i + 1);
		json_array_append_new(a, s);
	}
	return a;
}

/* mprocctl's working directory, for the job to run in. */
json_t *
mprocctl_cwd(void)
{
	json_t *v;
	char   *cwd;

	if ((cwd = getcwd(NULL, 0)) == NULL)
		mprocctl_fail("cannot tell the current directory: %s (cd to "
			      "one that exists)",
		    strerror(errno));
	if ((v = json_string(cwd)) == NULL)
		mprocctl_fail("the current directory is not valid UTF-8, which "
			      "mprocd cannot carry (cd elsewhere)");
	free(cwd);
	return v;
}

/*
 * s with control characters escaped and cut to fit buf, so that text from
 * a job or the daemon can neither break a line nor drive the terminal.
 */
const char *
mprocctl_printable(const char *s, char *buf, size_t len)
{
	const unsigned char *p;
	size_t		     o = 0, n;
	char		     esc[5];

	if (s == NULL)
		s = "";
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			snprintf(esc, sizeof esc, "\\x%02x", *p);
		else {
			esc[0] = (char)*p;
			esc[1] = '\0';
		}
		n = strlen(esc);
		/* Always room left for "..." and the NUL (len >= 4). */
		if (o + n + 4 > len) {
			memcpy(buf + o, "...", 4);
			return buf;
		}
		memcpy(buf + o, esc, n);
		o += n;
	}
	buf[o] = '\0';
	return buf;
}

static void
mprocctl_signal_handler(int sig)
{
	mprocctl_signal = sig;
}

/*
 * From now on SIGINT, SIGTERM and SIGHUP end mprocctl through cleanup (which
 * cancels the jobs it waits for), exiting 128+N as if the signal had killed
 * it. They are blocked but while mprocctl_poll() waits, so none goes unseen.
 */
void
mprocctl_catch_signals(void (*cleanup)(void *), void *arg)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa, old;
	sigset_t	 set;
	size_t		 i;

	mprocctl_cleanup = cleanup;
	mprocctl_cleanup_arg = arg;
	if (mprocctl_catching)
		return;
	/*
	 * Blocked before the handler is in place: one that came in between
	 * would be caught, then not seen until poll() next returned, which
	 * may be when the job ends.
	 */
	sigemptyset(&set);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		/* One ignored from the start (nohup, &) stays ignored. */
		if (sigaction(sigs[i], NULL, &old) == 0 &&
		    old.sa_handler == SIG_IGN)
			continue;
		sigaddset(&set, sigs[i]);
	}
	sigprocmask(SIG_BLOCK, &set, &mprocctl_oldmask);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = mprocctl_signal_handler;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (sigismember(&set, sigs[i]))
			sigaction(sigs[i], &sa, NULL);
	mprocctl_caught = set;
	mprocctl_catching = 1;
}

static void
mprocctl_interrupted(void)
{
	void (*cleanup)(void *) = mprocctl_cleanup;
	int sig = mprocctl_signal;

	/* A second signal kills at once. */
	if (sigismember(&mprocctl_caught, SIGINT))
		signal(SIGINT, SIG_DFL);
	if (sigismember(&mprocctl_caught, SIGTERM))
		signal(SIGTERM, SIG_DFL);
	if (sigismember(&mprocctl_caught, SIGHUP))
		signal(SIGHUP, SIG_DFL);
	sigprocmask(SIG_SETMASK, &mprocctl_oldmask, NULL);
	mprocctl_cleanup = NULL;
	if (cleanup != NULL)
		cleanup(mprocctl_cleanup_arg);
	exit(CTL_EXIT_SIGNAL + sig);
}

/*
 * poll(2) that lets the signals of mprocctl_catch_signals() in while it waits,
 * and ends mprocctl if one came; interrupted otherwise, it returns -1 EINTR.
 */
int
mprocctl_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	struct timespec ts, *tsp = NULL;
	int		n;

	if (timeout >= 0) {
		ts.tv_sec = timeout / 1000;
		ts.tv_nsec = (long)(timeout % 1000) * 1000000;
		tsp = &ts;
	}
	if (mprocctl_signal != 0 && mprocctl_cleanup != NULL)
		mprocctl_interrupted();
	n = ppoll(fds, nfds, tsp, mprocctl_catching ? &mprocctl_oldmask : NULL);
	if (mprocctl_signal != 0 && mprocctl_cleanup != NULL)
		mprocctl_interrupted();
	return n;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct ctl_cmd *cmd;
	struct ctl	      ctl = { NULL, 0 };
	int		      ch;

	/* A daemon that hangs up is an error to report, not a way to die. */
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:s:jhV", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			ctl.socket = optarg;
			break;
		case 'j':
			ctl.json = 1;
			break;
		case 'h':
			mprocctl_usage(stdout);
			return 0;
		case 'V':
			printf("mprocctl %s\n", PACKAGE_VERSION);
			return 0;
		case ':':
			mprocctl_fail("option %s needs a value; see 'mprocctl "
				      "--help'",
			    argv[optind - 1]);
		default:
			if (optopt != 0)
				mprocctl_fail("unknown option -%c; see "
					      "'mprocctl --help'",
				    optopt);
			mprocctl_fail("unknown option %s; see 'mprocctl "
				      "--help'",
			    argv[optind - 1]);
		}
	}
	if (optind == argc)
		mprocctl_fail("no command given; see 'mprocctl --help'");
	if ((cmd = cmd_find(argv[optind])) == NULL)
		mprocctl_fail("unknown command '%s' (see 'mprocctl --help')",
		    argv[optind]);
	argc -= optind;
	argv += optind;
	if (argc > 1 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: mprocctl %s %s\n\n%c%s.\n", cmd->name,
		    cmd->usage, toupper((unsigned char)*cmd->help),
		    cmd->help + 1);
		if (cmd->details != NULL)
			printf("\n%s", cmd->details);
		return 0;
	}
	mprocctl_check_nargs(cmd, argc - 1, cmd->minargs, cmd->maxargs);
	if (ctl.socket == NULL)
		ctl.socket = client_default_socket();
	optind = 0; /* the command's options next: start afresh */
	return cmd->exec(&ctl, argc, argv);
}
