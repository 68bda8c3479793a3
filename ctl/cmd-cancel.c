/* mprocctl cancel: take jobs off the queue, or end them if running. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "mprocctl.h"
#include "xmalloc.h"

static int cmd_cancel_exec(struct ctl *, int, char **);

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

/*
 * Cancels jobs, calling cb with each reply in the order of ids. mprocd
 * answers a connection's calls one at a time and a Cancel only once its
 * job has ended, so the calls are spread over a few connections: running
 * jobs then end together rather than one after the other.
 */
void
cmd_cancel_jobs(const char *socket, const json_int_t *ids, size_t n,
    void (*cb)(void *, size_t, struct varlink_reply *), void *arg)
{
	struct client	    *c[CMD_CANCEL_CONNS];
	struct varlink_reply reply;
	size_t		     i, nc;

	nc = n < CMD_CANCEL_CONNS ? n : CMD_CANCEL_CONNS;
	for (i = 0; i < nc; i++)
		c[i] = client_connect(socket);
	for (i = 0; i < n; i++)
		client_send(c[i % nc], "io.mprocd.Cancel",
		    json_pack("{s:I}", "id", ids[i]), 0);
	for (i = 0; i < n; i++) {
		client_recv(c[i % nc], &reply);
		cb(arg, i, &reply);
		varlink_reply_free(&reply);
	}
	for (i = 0; i < nc; i++)
		client_free(c[i]);
}

struct cancel {
	const json_int_t *ids;
	json_t		 *jobs;
	int		  status;
};

static void
cmd_cancel_reply(void *arg, size_t i, struct varlink_reply *reply)
{
	struct cancel *cl = arg;
	json_t	      *job = json_object_get(reply->params, "job");
	char	       msg[512], desc[FORMAT_DESCLEN];

	if (reply->error != NULL) {
		mprocctl_warn("%s",
		    client_error_message("io.mprocd.Cancel", reply, msg,
			sizeof msg));
		cl->status = CTL_EXIT_FAILURE;
		return;
	}
	if (!json_is_object(job) || format_job_id(job) != cl->ids[i])
		mprocctl_fail(
		    "bad reply from mprocd: Cancel of job %" JSON_INTEGER_FORMAT
		    " has no such job",
		    cl->ids[i]);
	json_array_append(cl->jobs, job);
	if (format_job_state_is(job, "cancelled"))
		return;
	mprocctl_warn("job %" JSON_INTEGER_FORMAT " %s (%s)", cl->ids[i],
	    format_job_finished(job) ? "already finished" : "was not cancelled",
	    format_describe(job, desc, sizeof desc));
	if (cl->status == 0)
		cl->status = CTL_EXIT_SOME_FAILED;
}

static int
cmd_cancel_exec(struct ctl *ctl, int argc, char **argv)
{
	struct cancel cl;
	json_int_t   *ids;
	json_t	     *r;
	int	      i;

	ids = xcalloc((size_t)argc, sizeof *ids);
	for (i = 1; i < argc; i++)
		ids[i - 1] = mprocctl_parse_id(&cmd_cancel_entry, argv[i]);
	cl.ids = ids;
	cl.jobs = json_array();
	cl.status = 0;
	cmd_cancel_jobs(ctl->socket, ids, (size_t)argc - 1, cmd_cancel_reply,
	    &cl);
	if (ctl->json) {
		r = json_pack("{s:O}", "jobs", cl.jobs);
		mprocctl_print_json(r);
		json_decref(r);
	}
	json_decref(cl.jobs);
	free(ids);
	return cl.status;
}
