/* mprocctl get: a job's output, written as the job wrote it. */
#include "config.h"

#include <stdio.h>

#include "mprocctl.h"

static int cmd_get_exec(struct ctl *, int, char **);

const struct ctl_cmd cmd_get_entry = {
	.name = "get",
	.usage = "ID",
	.help = "write a job's stdout and stderr; exit with its status",
	.details =
	    "Writes the job's stdout to stdout and its stderr to stderr, byte for\n"
	    "byte, and exits with its status: its own; 128+N if it was killed by\n"
	    "signal N; 124 if it timed out; 1 if it was cancelled or lost without a\n"
	    "signal. A job that has not finished yet gets its output so far, a line\n"
	    "on stderr saying so, and exit status 125, as does any failure.\n"
	    "With --json, prints the reply of Get (the job, its output in base64).\n",
	.minargs = 1,
	.maxargs = 1,
	.exec = cmd_get_exec,
};

static int
cmd_get_exec(struct ctl *ctl, int argc, char **argv)
{
	struct client *c;
	json_t	      *r, *job;
	json_int_t     id;
	char	       desc[FORMAT_DESCLEN];
	int	       status;

	id = mprocctl_parse_id(&cmd_get_entry, argv[1]);
	c = client_connect(ctl->socket);
	r = client_call(c, "io.mprocd.Get", json_pack("{s:I}", "id", id));
	client_free(c);
	job = json_object_get(r, "job");
	if (!json_is_object(job))
		mprocctl_fail("bad reply from mprocd: Get has no job");
	if (ctl->json)
		mprocctl_print_json(r);
	else
		(void)format_write_output(r, !format_job_finished(job));
	status = format_exit_status(job);
	if (!format_job_finished(job))
		mprocctl_warn("job %" JSON_INTEGER_FORMAT " is still %s; "
			      "'mprocctl wait %" JSON_INTEGER_FORMAT
			      "' waits for it",
		    id, format_describe(job, desc, sizeof desc), id);
	json_decref(r);
	return status;
}
