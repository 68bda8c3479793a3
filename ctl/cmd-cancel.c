/* mprocctl cancel: take jobs off the queue, or end them if running. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "mprocctl.h"
#include "xmalloc.h"

static int	cmd_cancel_exec(struct ctl *, int, char **);

const struct ctl_cmd cmd_cancel_entry = {
	.name = "cancel",
	.usage = "ID...",
	.help = "cancel jobs: dequeue them, or end them if running",
	.details =
"A queued job is taken off its queue; a running one gets SIGTERM, then\n"
"SIGKILL after its pool's kill_grace, and cancel returns once it has\n"
"ended. Prints nothing for a job cancelled, and a line on stderr for a\n"
"job that had already finished, which is left as it was.\n"
"\n"
"Exit status: 0 if every job was cancelled; 1 if some had already\n"
"finished; 125 if mprocctl failed for some (no such job, another user's).\n"
"With --json, prints {\"jobs\": [...]}: each job as cancel left it.\n",
	.minargs = 1,
	.maxargs = -1,
	.exec = cmd_cancel_exec,
};

struct cancel {
	const json_int_t	*ids;
	json_t			*jobs;
	int			 status;
};

static void
cancel_reply(void *arg, size_t i, struct varlink_reply *reply)
{
	struct cancel	*cl = arg;
	json_t		*job = json_object_get(reply->params, "job");
	char		 msg[512], desc[JOB_DESCLEN];

	if (reply->error != NULL) {
		ctl_warn("%s", client_error_message("io.mprocd.Cancel", reply,
		    msg, sizeof msg));
		cl->status = CTL_EXIT_FAILURE;
		return;
	}
	if (!json_is_object(job) || job_id(job) != cl->ids[i])
		ctl_fail("bad reply from mprocd: Cancel of job %"
		    JSON_INTEGER_FORMAT " has no such job", cl->ids[i]);
	json_array_append(cl->jobs, job);
	if (job_state_is(job, "cancelled"))
		return;
	ctl_warn("job %" JSON_INTEGER_FORMAT " %s (%s)", cl->ids[i],
	    job_finished(job) ? "already finished" : "was not cancelled",
	    job_describe(job, desc, sizeof desc));
	if (cl->status == 0)
		cl->status = CTL_EXIT_SOME_FAILED;
}

static int
cmd_cancel_exec(struct ctl *ctl, int argc, char **argv)
{
	struct cancel	 cl;
	json_int_t	*ids;
	json_t		*r;
	int		 i;

	ids = xcalloc((size_t)argc, sizeof *ids);
	for (i = 1; i < argc; i++)
		ids[i - 1] = ctl_parse_id(&cmd_cancel_entry, argv[i]);
	cl.ids = ids;
	cl.jobs = json_array();
	cl.status = 0;
	job_cancel(ctl->socket, ids, (size_t)argc - 1, cancel_reply, &cl);
	if (ctl->json) {
		r = json_pack("{s:O}", "jobs", cl.jobs);
		ctl_print_json(r);
		json_decref(r);
	}
	json_decref(cl.jobs);
	free(ids);
	return cl.status;
}
