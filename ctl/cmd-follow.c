/*
 * mprocctl follow: a job's output from its start and as it comes, then
 * its exit status (tail -f for a job). submit -w streams the same way.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocctl.h"
#include "util.h"

static int cmd_follow_exec(struct ctl *, int, char **);

const struct ctl_cmd cmd_follow_entry = {
	.name = "follow",
	.usage = "ID",
	.help = "write a job's output as it comes; exit with its status",
	.details =
	    "Writes the job's stdout to stdout and its stderr to stderr, byte for\n"
	    "byte: what it wrote so far, then each piece as the job writes it,\n"
	    "until it ends. Exit status as for get: its own; 128+N if it was\n"
	    "killed by signal N; 124 if it timed out; 1 if it was cancelled or\n"
	    "lost without a signal (one cancelled before it ran gets a line on\n"
	    "stderr saying why); 125 if mprocctl failed. Ctrl-C stops following\n"
	    "and leaves the job running ('mprocctl cancel ID' ends it).\n"
	    "With --json, prints each reply of Follow as a line: pieces of output\n"
	    "(base64), then the finished job.\n",
	.minargs = 1,
	.maxargs = 1,
	.exec = cmd_follow_exec,
};

/*
 * Writes a piece of stream key ("stdout", "stderr") to fd; a stdout that
 * takes no more (a closed pipe) is written no more: *open says so.
 */
static void
cmd_follow_write(json_t *params, const char *key, int fd, int *open)
{
	const char *s = json_string_value(json_object_get(params, key));
	void	   *data;
	size_t	    len;

	if (s == NULL)
		return;
	if ((data = util_base64_decode(s, strlen(s), &len)) == NULL)
		mprocctl_fail("bad reply from mprocd: the job's %s is not "
			      "base64",
		    key);
	if (*open && format_write_all(fd, data, len) != 0)
		*open = 0;
	free(data);
}

/*
 * Follows job id on c with a Follow call ("more"): its output to ours as
 * it comes. Returns the finished job's exit status.
 */
static int
cmd_follow_stream(struct ctl *ctl, struct client *c, json_int_t id)
{
	fflush(stdout);
	client_send(c, "io.mprocd.Follow", json_pack("{s:I}", "id", id),
	    VARLINK_MORE);
	return cmd_follow_read(ctl, c, id, "io.mprocd.Follow");
}

/*
 * The rest of a call with "more" already sent (Follow, or Run past its
 * first reply) for job id: its output written as it comes, then the
 * job's exit status.
 */
int
cmd_follow_read(struct ctl *ctl, struct client *c, json_int_t id,
    const char *method)
{
	struct varlink_reply reply;
	json_t		    *job;
	int		     out_open = 1, err_open = 1, lost = 0, status;

	for (;;) {
		client_recv(c, &reply);
		if (reply.error != NULL)
			client_fail_reply(method, &reply);
		if (ctl->json)
			mprocctl_print_json(reply.params);
		else {
			cmd_follow_write(reply.params, "stdout", STDOUT_FILENO,
			    &out_open);
			cmd_follow_write(reply.params, "stderr", STDERR_FILENO,
			    &err_open);
		}
		if (!reply.continues)
			break;
		if (json_is_true(json_object_get(reply.params, "truncated")))
			lost = 1;
		varlink_reply_free(&reply);
	}
	job = json_object_get(reply.params, "job");
	if (!json_is_object(job) || !format_job_finished(job))
		mprocctl_fail("bad reply from mprocd: %s ended without a "
			      "finished job",
		    method);
	if (!ctl->json &&
	    (lost || json_is_true(json_object_get(reply.params, "truncated"))))
		mprocctl_warn("job %" JSON_INTEGER_FORMAT "'s output went past "
			      "max_output and was cut",
		    id);
	if (!ctl->json)
		format_warn_unrun(job);
	status = format_exit_status(job);
	varlink_reply_free(&reply);
	return status;
}

static int
cmd_follow_exec(struct ctl *ctl, int argc, char **argv)
{
	struct client *c;
	json_int_t     id;
	int	       status;

	(void)argc;
	id = mprocctl_parse_id(&cmd_follow_entry, argv[1]);
	c = client_connect(ctl->socket);
	status = cmd_follow_stream(ctl, c, id);
	client_free(c);
	return status;
}
