/* mprocctl: the command-line client of mprocd. */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mprocctl.h"

static void
usage(FILE *f)
{
	size_t	 i;

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
	for (i = 0; ctl_cmds[i] != NULL; i++)
		fprintf(f, "  %-10s %s\n", ctl_cmds[i]->name, ctl_cmds[i]->help);
	fprintf(f,
"\n"
"Exit status: 125 when mprocctl itself fails (cannot connect, error\n"
"reply, bad usage). See mprocctl(1).\n");
}

void
ctl_fail(const char *fmt, ...)
{
	va_list	 ap;

	fputs("mprocctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(CTL_EXIT_FAILURE);
}

void
ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list	 ap;

	fputs("mprocctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: mprocctl %s %s\n", cmd->name, cmd->usage);
	exit(CTL_EXIT_FAILURE);
}

void
ctl_print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
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
	const struct ctl_cmd	*cmd;
	struct ctl		 ctl = { NULL, 0 };
	int			 ch, nargs;

	/* A daemon that hangs up is an error to report, not a way to die. */
	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt_long(argc, argv, "+s:jhV", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			ctl.socket = optarg;
			break;
		case 'j':
			ctl.json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("mprocctl %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return CTL_EXIT_FAILURE;
		}
	}
	if (optind == argc) {
		usage(stderr);
		return CTL_EXIT_FAILURE;
	}
	if ((cmd = cmd_find(argv[optind])) == NULL) {
		fprintf(stderr, "mprocctl: unknown command '%s' (see "
		    "'mprocctl --help')\n", argv[optind]);
		return CTL_EXIT_FAILURE;
	}
	argc -= optind;
	argv += optind;
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		printf("usage: mprocctl %s %s\n\n%s\n", cmd->name, cmd->usage,
		    cmd->help);
		return 0;
	}
	nargs = argc - 1;
	if (nargs < cmd->minargs || (cmd->maxargs >= 0 && nargs > cmd->maxargs))
		ctl_usage_error(cmd, "wrong number of arguments for %s",
		    cmd->name);
	if (ctl.socket == NULL)
		ctl.socket = client_default_socket();
	return cmd->exec(&ctl, argc, argv);
}
