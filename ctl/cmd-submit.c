/*
 * mprocctl submit: queue one job and print its id; with -w, wait for it and
 * behave as the command itself would have, output and exit status included.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocctl.h"
#include "util.h"
#include "xmalloc.h"

static int cmd_submit_exec(struct ctl *, int, char **);

const struct ctl_cmd cmd_submit_entry = {
	.name = "submit",
	.usage = "[-p POOL] [-n NAME] [-t SEC] [-r N] [-e K=V]... [-i] [-w] "
		 "[-a ID]... [-l LOCK] -- CMD [ARG]...",
	.help = "queue a job and print its id; -w runs it as if here",
	.details =
	    "  -p POOL  run it in POOL (default: mprocd's default pool)\n"
	    "  -n NAME  a name for it, shown by list instead of the command\n"
	    "  -t SEC   end it after SEC (30, 1.5s, 2min; 0: never) instead of the\n"
	    "           pool's job_timeout\n"
	    "  -r N     run it again up to N times if its worker dies, instead of the\n"
	    "           pool's retries\n"
	    "  -e K=V   add K=V to its environment; may be given more than once\n"
	    "  -i       send all of standard input as the job's standard input\n"
	    "  -w       wait for it, write its stdout and stderr to mprocctl's as it\n"
	    "           writes them, and exit with its status; a signal to mprocctl\n"
	    "           (Ctrl-C) cancels the job\n"
	    "  -a ID    run it only after job ID has finished, and only if it\n"
	    "           succeeded, else it ends cancelled; several ids separated by\n"
	    "           commas, or -a again, wait for them all (1000 at most)\n"
	    "  -l LOCK  hold the lock named LOCK while it runs: no two jobs holding\n"
	    "           the same lock run at once, in any pool; they take it in turn\n"
	    "\n"
	    "The job runs in mprocctl's current directory. Put -- before CMD.\n"
	    "With -w the exit status is the job's own; 128+N if it was killed by\n"
	    "signal N; 124 if it timed out; 1 if it was cancelled or lost without a\n"
	    "signal (one cancelled before it ran, as when a job of -a did not\n"
	    "succeed, also gets a line on stderr saying why); 125 if mprocctl\n"
	    "failed. With --json, prints the reply of Submit ({\"id\": N}), or with\n"
	    "-w that of Get (the job and its output in base64).\n",
	.minargs = 1,
	.maxargs = -1,
	.exec = cmd_submit_exec,
};

struct submit {
	const char *socket;
	json_int_t  id;
};

/* All of standard input, base64-encoded. */
static json_t *
cmd_submit_read_stdin(void)
{
	char   *buf = NULL, *b64;
	size_t	len = 0, size = 0;
	ssize_t n;
	json_t *v;

	for (;;) {
		if (len == size) {
			size = size == 0 ? 65536 : size * 2;
			buf = xreallocarray(buf, 1, size);
		}
		n = read(STDIN_FILENO, buf + len, size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			mprocctl_fail("reading standard input: %s",
			    strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if ((b64 = util_base64_encode(buf, len)) == NULL)
		mprocctl_fail("out of memory encoding %zu bytes of input", len);
	v = json_string_nocheck(b64);
	free(b64);
	free(buf);
	return v;
}

static void
cmd_submit_cancelled(void *arg, size_t i, struct varlink_reply *reply)
{
	struct submit *s = arg;

	if (reply->error == NULL)
		mprocctl_warn(
		    "interrupted: cancelled job %" JSON_INTEGER_FORMAT, s->id);
}

/* Interrupted while waiting: cancel the job, as Ctrl-C would end it. */
static void
cmd_submit_cancel(void *arg)
{
	struct submit *s = arg;

	cmd_cancel_jobs(s->socket, &s->id, 1, cmd_submit_cancelled, s);
}

/*
 * -w: one Run with "more" (params stolen), its first reply the queued job,
 * whose id a signal then cancels; then the job's output as it comes.
 * Returns its exit status.
 */
static int
cmd_submit_run(struct ctl *ctl, struct client *c, json_t *params)
{
	static struct submit s;
	struct varlink_reply reply;
	json_t		    *id;

	fflush(stdout);
	client_send(c, "io.mprocd.Run", params, VARLINK_MORE);
	client_recv(c, &reply);
	if (reply.error != NULL)
		client_fail_reply("io.mprocd.Run", &reply);
	client_hint(c, NULL);
	id = json_object_get(json_object_get(reply.params, "job"), "id");
	if (!reply.continues || !json_is_integer(id) ||
	    json_integer_value(id) <= 0)
		mprocctl_fail("bad reply from mprocd: Run gave no queued job");
	s.socket = ctl->socket;
	s.id = json_integer_value(id);
	varlink_reply_free(&reply);
	mprocctl_catch_signals(cmd_submit_cancel, &s);
	return cmd_follow_read(ctl, c, s.id, "io.mprocd.Run");
}

/*
 * -w with --json: waits for the job, then prints the reply of Get;
 * returns its exit status.
 */
static int
cmd_submit_wait(struct ctl *ctl, struct client *c, json_int_t id)
{
	static struct submit s;
	struct varlink_reply reply;
	json_t		    *r, *job;
	int		     status;

	s.socket = ctl->socket;
	s.id = id;
	mprocctl_catch_signals(cmd_submit_cancel, &s);
	/*
	 * The Get goes out with the Wait, one round trip fewer: mprocd reads
	 * a call only once those before it are answered, so the Get sees the
	 * job finished.
	 */
	client_queue(c, "io.mprocd.Wait", json_pack("{s:[I]}", "ids", id), 0);
	client_send(c, "io.mprocd.Get", json_pack("{s:I}", "id", id), 0);
	client_recv(c, &reply);
	if (reply.error != NULL)
		client_fail_reply("io.mprocd.Wait", &reply);
	varlink_reply_free(&reply);
	client_recv(c, &reply);
	if (reply.error != NULL)
		client_fail_reply("io.mprocd.Get", &reply);
	r = json_incref(reply.params);
	varlink_reply_free(&reply);
	job = json_object_get(r, "job");
	if (!json_is_object(job) || !format_job_finished(job))
		mprocctl_fail("bad reply from mprocd: Get after Wait has no "
			      "finished job");
	mprocctl_print_json(r);
	status = format_exit_status(job);
	json_decref(r);
	return status;
}

static int
cmd_submit_exec(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = &cmd_submit_entry;
	struct client	     *c;
	json_t		     *params, *env, *r, *id;
	const char	     *errstr;
	uint64_t	      n;
	int		      ch, in = 0, wait = 0, status = 0;

	params = json_object();
	env = json_array();
	while (
	    (ch = mprocctl_getopt(cmd, argc, argv, "p:n:t:r:e:iwa:l:")) != -1) {
		switch (ch) {
		case 'p':
			json_object_set_new(params, "pool",
			    mprocctl_string(cmd, "-p", optarg));
			break;
		case 'n':
			json_object_set_new(params, "name",
			    mprocctl_string(cmd, "-n", optarg));
			break;
		case 't':
			json_object_set_new(params, "timeout_sec",
			    json_real(mprocctl_parse_seconds(cmd, ch, optarg)));
			break;
		case 'r':
			if (util_parse_uint(optarg, 0, INT32_MAX, &n,
				&errstr) != 0)
				mprocctl_usage_error(cmd, "bad -r '%s': %s",
				    optarg, errstr);
			json_object_set_new(params, "retries",
			    json_integer((json_int_t)n));
			break;
		case 'e':
			if (strchr(optarg, '=') == NULL || *optarg == '=')
				mprocctl_usage_error(cmd,
				    "bad -e '%s': "
				    "expected NAME=VALUE",
				    optarg);
			json_array_append_new(env,
			    mprocctl_string(cmd, "-e", optarg));
			break;
		case 'i':
			in = 1;
			break;
		case 'w':
			wait = 1;
			break;
		case 'a':
		case 'l':
			mprocctl_dep_option(cmd, ch, optarg, params);
			break;
		}
	}
	argc -= optind;
	argv += optind;
	mprocctl_check_nargs(cmd, argc, 1, -1);
	json_object_set_new(params, "argv",
	    mprocctl_string_array(cmd, argv, argc, "argument"));
	json_object_set_new(params, "cwd", mprocctl_cwd());
	if (json_array_size(env) > 0)
		json_object_set(params, "env", env);
	json_decref(env);

	c = client_connect(ctl->socket);
	if (in) {
		json_object_set_new(params, "stdin", cmd_submit_read_stdin());
		client_hint(c,
		    "the input may be more than its max_message; "
		    "have the job read a file instead");
	}
	/*
	 * A signal while Submit or Run is answered is held until the id is
	 * known (cmd_submit_run, cmd_submit_wait), then cancels the job: the
	 * job may be running before mprocctl learns it exists.
	 */
	if (wait)
		mprocctl_catch_signals(NULL, NULL);
	if (wait && !ctl->json) {
		status = cmd_submit_run(ctl, c, params);
		client_free(c);
		return status;
	}
	r = client_call(c, "io.mprocd.Submit", params);
	client_hint(c, NULL);
	id = json_object_get(r, "id");
	if (!json_is_integer(id) || json_integer_value(id) <= 0)
		mprocctl_fail("bad reply from mprocd: Submit gave no job id");
	if (wait)
		status = cmd_submit_wait(ctl, c, json_integer_value(id));
	else if (ctl->json)
		mprocctl_print_json(r);
	else
		printf("%" JSON_INTEGER_FORMAT "\n", json_integer_value(id));
	json_decref(r);
	client_free(c);
	return status;
}
