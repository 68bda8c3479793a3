/* mprocctl wait: until jobs finish; exits with their status. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mprocctl.h"

static int cmd_wait_exec(struct ctl *, int, char **);

const struct ctl_cmd cmd_wait_entry = {
	.name = "wait",
	.usage = "[-t SEC] ID...",
	.help = "wait until the jobs have finished",
	.details =
	    "  -t SEC   give up after SEC (30, 1.5s, 2min; 0: do not wait, only\n"
	    "           check) and exit 124\n"
	    "\n"
	    "Prints a line for each job as it finishes. Exit status, for one job: its\n"
	    "own; 128+N if it was killed by signal N; 124 if it timed out; 1 if it was\n"
	    "cancelled or lost without a signal. For several jobs: 0 if all succeeded,\n"
	    "else 1. 124 if -t ran out; 125 if mprocctl failed (say, no such job).\n"
	    "With --json, prints the reply of Wait: the jobs in the order given.\n",
	.minargs = 1,
	.maxargs = -1,
	.exec = cmd_wait_exec,
};

/* The ids as a JSON array, each once, in the order given. */
static json_t *
cmd_wait_ids(const struct ctl_cmd *cmd, int argc, char **argv)
{
	json_t	  *ids = json_array(), *v;
	json_int_t id;
	size_t	   j;
	int	   i, dup;

	for (i = 0; i < argc; i++) {
		id = mprocctl_parse_id(cmd, argv[i]);
		dup = 0;
		json_array_foreach(ids, j, v) {
			if (json_integer_value(v) == id)
				dup = 1;
		}
		if (!dup)
			json_array_append_new(ids, json_integer(id));
	}
	return ids;
}

/* TimedOut is an answer, not a failure: say which, exit 124. */
static int
cmd_wait_error(struct ctl *ctl, struct varlink_reply *reply)
{
	char msg[512];

	if (strcmp(reply->error, "io.mprocd.TimedOut") != 0)
		client_fail_reply("io.mprocd.Wait", reply);
	if (ctl->json)
		mprocctl_print_json(reply->msg);
	mprocctl_warn("%s",
	    client_error_message("io.mprocd.Wait", reply, msg, sizeof msg));
	return CTL_EXIT_TIMEOUT;
}

static void
cmd_wait_print(json_t *job)
{
	char desc[FORMAT_DESCLEN], dur[32];

	printf("job %" JSON_INTEGER_FORMAT " %s (%s)\n", format_job_id(job),
	    format_describe(job, desc, sizeof desc),
	    format_duration(job, dur, sizeof dur));
	fflush(stdout);
}

static int
cmd_wait_exec(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = &cmd_wait_entry;
	struct client	     *c;
	struct varlink_reply  reply;
	json_t		     *params, *ids, *all, *jobs, *job;
	double		      timeout = -1;
	size_t		      i, nids;
	int		      ch, more, status;

	while ((ch = mprocctl_getopt(cmd, argc, argv, "t:")) != -1)
		timeout = mprocctl_parse_seconds(cmd, ch, optarg);
	argc -= optind;
	argv += optind;
	mprocctl_check_nargs(cmd, argc, 1, -1);
	ids = cmd_wait_ids(cmd, argc, argv);
	nids = json_array_size(ids);
	params = json_pack("{s:o}", "ids", ids);
	if (timeout >= 0)
		json_object_set_new(params, "timeout_sec", json_real(timeout));

	/* People see each job as it finishes; scripts get one reply. */
	c = client_connect(ctl->socket);
	client_send(c, "io.mprocd.Wait", params, ctl->json ? 0 : VARLINK_MORE);
	all = json_array();
	do {
		client_recv(c, &reply);
		if (reply.error != NULL) {
			status = cmd_wait_error(ctl, &reply);
			varlink_reply_free(&reply);
			goto out;
		}
		jobs = format_check_jobs(reply.params, "io.mprocd.Wait");
		json_array_foreach(jobs, i, job) {
			if (!format_job_finished(job))
				mprocctl_fail("bad reply from mprocd: Wait "
					      "gave job %" JSON_INTEGER_FORMAT
					      " unfinished",
				    format_job_id(job));
			if (!ctl->json)
				cmd_wait_print(job);
			json_array_append(all, job);
		}
		if (ctl->json)
			mprocctl_print_json(reply.params);
		more = reply.continues && !ctl->json;
		varlink_reply_free(&reply);
	} while (more);
	if (json_array_size(all) != nids)
		mprocctl_fail("bad reply from mprocd: Wait gave %zu jobs for "
			      "%zu ids",
		    json_array_size(all), nids);
	status = format_jobs_status(all, nids);
out:
	json_decref(all);
	client_free(c);
	return status;
}
