/* mprocctl list: a table of jobs, oldest first. */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "mprocctl.h"

static int cmd_list_exec(struct ctl *, int, char **);

const struct ctl_cmd cmd_list_entry = {
	.name = "list",
	.usage = "[-p POOL] [-S STATE]",
	.help = "show the jobs mprocd knows, oldest first",
	.details =
	    "  -p POOL   only the jobs of POOL\n"
	    "  -S STATE  only the jobs in STATE: queued, running, succeeded, failed,\n"
	    "            timeout, cancelled or lost\n"
	    "\n"
	    "EXIT is the exit status, or the signal that killed the job. DURATION is\n"
	    "how long it ran (so far, if running). REASON, shown when some job has\n"
	    "one, says why a queued job waits (\"waiting for job 12\", \"waiting for\n"
	    "lock db\"), or why a job was cancelled or lost (\"job 12 failed\").\n"
	    "With --json, prints the reply of List.\n",
	.minargs = 0,
	.maxargs = -1,
	.exec = cmd_list_exec,
};

static const char *const list_states[] = { "queued", "running", "succeeded",
	"failed", "timeout", "cancelled", "lost", NULL };

static int
cmd_list_exec(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = &cmd_list_entry;
	struct client	     *c;
	json_t		     *params, *r, *jobs;
	size_t		      i;
	int		      ch;

	params = json_object();
	while ((ch = mprocctl_getopt(cmd, argc, argv, "p:S:")) != -1) {
		switch (ch) {
		case 'p':
			json_object_set_new(params, "pool",
			    mprocctl_string(cmd, "-p", optarg));
			break;
		case 'S':
			for (i = 0; list_states[i] != NULL; i++) {
				if (strcmp(optarg, list_states[i]) == 0)
					break;
			}
			if (list_states[i] == NULL)
				mprocctl_usage_error(cmd,
				    "unknown state '%s' "
				    "(one of queued, running, succeeded, "
				    "failed, timeout, cancelled, lost)",
				    optarg);
			json_object_set_new(params, "state",
			    json_string(optarg));
			break;
		}
	}
	mprocctl_check_nargs(cmd, argc - optind, 0, 0);

	c = client_connect(ctl->socket);
	r = client_call(c, "io.mprocd.List", params);
	client_free(c);
	jobs = format_check_jobs(r, "io.mprocd.List");
	if (ctl->json)
		mprocctl_print_json(r);
	else
		format_print_table(jobs);
	json_decref(r);
	return 0;
}
