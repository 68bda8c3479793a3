/*
 * Process titles ("mprocd: supervisor", "mprocd: worker default/2") written
 * over argv, as ps and /proc/PID/cmdline show them. The environment that
 * follows argv in memory is copied away first so the title may use its room.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mprocd.h"
#include "xmalloc.h"

extern char **environ;

static char *title_start; /* argv[0] */
static char *title_end;	  /* one past the last byte we may use */
static char *argv_end;	  /* one past the NUL of the last argv string */
/* Our copies of the environment, kept even when unsetenv() drops one. */
static char **env_copies;
static char **volatile env_array; /* never read: keeps it reachable */

void
proctitle_init(int argc, char **argv)
{
	char **env;
	char  *end;
	int    i, n;

	if (argc == 0 || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	argv_end = end;
	for (n = 0; environ[n] != NULL; n++)
		if (environ[n] == end)
			end = environ[n] + strlen(environ[n]) + 1;
	/* Kept in env_array too: setenv() may move environ elsewhere. */
	env = env_array = xcalloc((size_t)n + 1, sizeof *env);
	env_copies = xcalloc((size_t)n + 1, sizeof *env_copies);
	for (i = 0; i < n; i++)
		env[i] = env_copies[i] = xstrdup(environ[i]);
	environ = env;
	title_start = argv[0];
	title_end = end;
}

void
proctitle_set(const char *fmt, ...)
{
	char	buf[256];
	size_t	n, room;
	va_list ap;

	if (title_start == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	room = (size_t)(title_end - title_start);
	n = strlen(buf);
	if (n > room - 1)
		n = room - 1;
	memset(title_start, '\0', room);
	memcpy(title_start, buf, n);
	/*
	 * A non-NUL last argv byte tells Linux the title was rewritten, so
	 * /proc/PID/cmdline shows it up to its NUL without trailing padding.
	 */
	if (argv_end - 1 > title_start + n)
		argv_end[-1] = ' ';
}
