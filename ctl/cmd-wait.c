/* mprocctl wait: until jobs finish; exits with their status. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocctl.h"
#include "xmalloc.h"

static int cmd_wait_exec(struct ctl *, int, char **);

const struct ctl_cmd cmd_wait_entry = {
	.name = "wait",
	.usage = "[-t SEC] [--[no-]progress] ID...",
	.help = "wait until the jobs have finished",
	.details =
	    "  -t SEC   give up after SEC (30, 1.5s, 2min; 0: do not wait, only\n"
	    "           check) and exit 124\n"
	    "  --progress, --no-progress\n"
	    "           draw the progress line even if stderr is not a terminal;\n"
	    "           never draw it\n"
	    "\n"
	    "Prints a line for each job as it finishes. When stderr is a terminal, a\n"
	    "progress line there shows the jobs done of all, how many failed and run,\n"
	    "jobs a second, the time elapsed and the time left; it is redrawn a few\n"
	    "times a second and erased at the end. Never with --json.\n"
	    "\n"
	    "Exit status, for one job: its own; 128+N if it was killed by signal N;\n"
	    "124 if it timed out; 1 if it was cancelled or lost without a signal. For\n"
	    "several jobs: 0 if all succeeded, else 1. 124 if -t ran out; 125 if\n"
	    "mprocctl failed (say, no such job). With --json, prints the reply of\n"
	    "Wait: the jobs in the order given.\n",
	.minargs = 1,
	.maxargs = -1,
	.exec = cmd_wait_exec,
};

/* The ids as a JSON array, each once, in the order given. */
static json_t *
cmd_wait_ids(const struct ctl_cmd *cmd, int argc, char **argv)
{
	json_t *ids = json_array();
	int	i;

	for (i = 0; i < argc; i++)
		mprocctl_add_id(ids, mprocctl_parse_id(cmd, argv[i]));
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

/* The ids waited for, sorted: the jobs the progress line counts. */
struct wait_ids {
	json_int_t *v;
	size_t	    n;
};

static int
cmd_wait_compare(const void *a, const void *b)
{
	json_int_t x = *(const json_int_t *)a, y = *(const json_int_t *)b;

	return x < y ? -1 : x > y;
}

/* Whether job id is one waited for, for the progress line to count. */
static int
cmd_wait_ours(void *arg, json_int_t id)
{
	struct wait_ids *w = arg;

	return bsearch(&id, w->v, w->n, sizeof *w->v, cmd_wait_compare) != NULL;
}

static void
cmd_wait_interrupted(void *arg)
{
	progress_hide(arg);
}

/* The progress line, if mode and stderr call for one; else NULL. */
static struct progress *
cmd_wait_progress(struct ctl *ctl, int mode, json_t *ids, struct wait_ids *w)
{
	struct progress *p;
	json_t		*v;
	size_t		 i;

	if (!progress_wanted(mode, ctl->json))
		return NULL;
	w->n = json_array_size(ids);
	w->v = xreallocarray(NULL, w->n, sizeof *w->v);
	json_array_foreach(ids, i, v)
		w->v[i] = json_integer_value(v);
	qsort(w->v, w->n, sizeof *w->v, cmd_wait_compare);
	p = progress_new(STDERR_FILENO, ctl->socket, cmd_wait_ours, w);
	progress_total(p, w->n, 1);
	/* So that a signal, ending the wait, erases the line. */
	mprocctl_catch_signals(cmd_wait_interrupted, p);
	return p;
}

/*
 * Until the next reply is read whole, keeping the progress line drawn;
 * without one, client_recv() waits.
 */
static void
cmd_wait_next(struct client *c, struct progress *p)
{
	struct pollfd pfd[2];

	while (p != NULL && !client_buffered(c)) {
		pfd[0].fd = client_fd(c);
		pfd[0].events = POLLIN;
		progress_pollfd(p, &pfd[1]);
		if (mprocctl_poll(pfd, 2, progress_timeout(p, -1)) == -1) {
			if (errno != EINTR)
				mprocctl_fail("poll: %s", strerror(errno));
			continue;
		}
		if (pfd[0].revents != 0)
			client_read(c);
		progress_update(p, &pfd[1]);
	}
}

static void
cmd_wait_print(json_t *job)
{
	char desc[FORMAT_DESCLEN], dur[32];

	printf("job %" JSON_INTEGER_FORMAT " %s", format_job_id(job),
	    format_describe(job, desc, sizeof desc));
	/* None for a job that never ran ("cancelled: job 5 failed"). */
	if (strcmp(format_duration(job, dur, sizeof dur), "-") != 0)
		printf(" (%s)", dur);
	putchar('\n');
	fflush(stdout);
}

static int
cmd_wait_exec(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = &cmd_wait_entry;
	struct client	     *c;
	struct progress	     *p;
	struct wait_ids	      w = { NULL, 0 };
	struct varlink_reply  reply;
	json_t		     *params, *ids, *all, *jobs, *job;
	double		      timeout = -1;
	size_t		      i, nids;
	int		      ch, more, status, mode = PROGRESS_AUTO;

	while ((ch = mprocctl_getopt_long(cmd, argc, argv,
		    "t:", progress_options)) != -1) {
		switch (ch) {
		case 't':
			timeout = mprocctl_parse_seconds(cmd, ch, optarg);
			break;
		case PROGRESS_ON:
		case PROGRESS_OFF:
			mode = ch;
			break;
		}
	}
	argc -= optind;
	argv += optind;
	mprocctl_check_nargs(cmd, argc, 1, -1);
	ids = cmd_wait_ids(cmd, argc, argv);
	nids = json_array_size(ids);
	p = cmd_wait_progress(ctl, mode, ids, &w);
	params = json_pack("{s:o}", "ids", ids);
	if (timeout >= 0)
		json_object_set_new(params, "timeout_sec", json_real(timeout));

	/* People see each job as it finishes; scripts get one reply. */
	c = client_connect(ctl->socket);
	client_send(c, "io.mprocd.Wait", params, ctl->json ? 0 : VARLINK_MORE);
	all = json_array();
	do {
		cmd_wait_next(c, p);
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
			progress_done(p, format_exit_status(job) != 0);
			if (!ctl->json) {
				progress_output(p, NULL);
				cmd_wait_print(job);
			}
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
	progress_free(p);
	free(w.v);
	json_decref(all);
	client_free(c);
	return status;
}
