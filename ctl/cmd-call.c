/*
 * mprocctl call: one call of a function in a program pool, as if it ran
 * here: its output, its result as one line of JSON, its exit status. One
 * Run call does it all. Also what map needs for a program pool: arguments
 * read as JSON, the pool a call goes to, the result written out.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocctl.h"
#include "util.h"
#include "xmalloc.h"

static int cmd_call_exec(struct ctl *, int, char **);

const struct ctl_cmd cmd_call_entry = {
	.name = "call",
	.usage = "[-p POOL] [-t SEC] [-a ID]... [-l LOCK] FUNCTION [ARG]...",
	.help = "call FUNCTION in a program pool; print its result as JSON",
	.details =
	    "  -p POOL  call it in POOL (default: mprocd's default pool), a program\n"
	    "           pool: one with program = ... in mprocd.conf\n"
	    "  -t SEC   end the call after SEC (30, 1.5s, 2min; 0: never) instead of\n"
	    "           the pool's job_timeout\n"
	    "  -a ID    call it only after job ID has succeeded, as for submit\n"
	    "  -l LOCK  hold the lock LOCK during the call, as for submit\n"
	    "\n"
	    "Each ARG is JSON if it parses as JSON (42, 1.5, true, null, \"text\",\n"
	    "[1, 2], {\"k\": 1}), else the string as it is; they are FUNCTION's\n"
	    "positional arguments. What FUNCTION prints goes to stdout and stderr;\n"
	    "then its result, unless null, is written to stdout as JSON on a line\n"
	    "of its own. A signal to mprocctl stops the wait, not the call.\n"
	    "\n"
	    "Exit status: 0 if the call succeeded; the job's own status if it failed\n"
	    "(1 for an exception, whose traceback is on stderr and whose result says\n"
	    "what it was); 124 if it timed out; 1 if it was cancelled, or lost when\n"
	    "its program died; 125 if mprocctl failed (no such pool, a command\n"
	    "pool...).\n"
	    "With --json, prints the reply of Run (the job, its output in base64,\n"
	    "its result).\n",
	.minargs = 1,
	.maxargs = -1,
	.exec = cmd_call_exec,
};

/*
 * An argument as the function gets it: s as JSON if it parses, else s as a
 * string. NULL if s is not valid UTF-8.
 */
json_t *
cmd_call_arg(const char *s)
{
	json_error_t err;
	json_t	    *v;

	if ((v = json_loads(s, JSON_DECODE_ANY, &err)) != NULL)
		return v;
	return json_string(s);
}

/*
 * The pool of a Status reply that a call naming pool (NULL: none) goes to,
 * by mprocd's rule: the pool named "default", else the first. NULL if none.
 */
json_t *
cmd_call_pool(json_t *status, const char *pool)
{
	json_t	   *p;
	const char *name;
	size_t	    i;

	json_array_foreach(json_object_get(status, "pools"), i, p) {
		name = json_string_value(json_object_get(p, "name"));
		if (name != NULL &&
		    strcmp(name, pool != NULL ? pool : "default") == 0)
			return p;
	}
	if (pool == NULL)
		return json_array_get(json_object_get(status, "pools"), 0);
	return NULL;
}

/*
 * v as one line of JSON, newline included: reals as short as reads back
 * the same (0.1, not jansson's 0.10000000000000001).
 */
static char *
cmd_call_dump(json_t *v)
{
	const size_t flags = JSON_ENCODE_ANY | JSON_PRESERVE_ORDER;
	json_t	    *back;
	char	    *s, *line;
	int	     prec, same;

	for (prec = 15;; prec++) {
		if ((s = json_dumps(v, flags | JSON_REAL_PRECISION(prec))) ==
		    NULL)
			mprocctl_fail("cannot encode the result as JSON");
		if (prec == 17)
			break;
		back = json_loads(s, JSON_DECODE_ANY, NULL);
		same = back != NULL && json_equal(v, back);
		json_decref(back);
		if (same)
			break;
		free(s);
	}
	xasprintf(&line, "%s\n", s);
	free(s);
	return line;
}

/* True if the job's stdout (base64) in a Get or Run reply ends a line. */
static int
cmd_call_output_ended(json_t *reply)
{
	const char *s = json_string_value(json_object_get(reply, "stdout"));
	size_t	    len, n;
	char	   *tail;
	int	    nl;

	if (s == NULL || (len = strlen(s)) < 4)
		return 1;
	/* The last four characters hold the last byte. */
	if ((tail = util_base64_decode(s + len - 4, 4, &n)) == NULL)
		return 1;
	nl = n == 0 || tail[n - 1] == '\n';
	free(tail);
	return nl;
}

/*
 * Writes a Get or Run reply's result to stdout as one line of JSON, after
 * a newline if the job's output did not end one; a null or missing result
 * only if null_too ("null"). Returns -1 if stdout takes no more, else 0.
 */
int
cmd_call_write_result(json_t *reply, int null_too)
{
	json_t *result = json_object_get(reply, "result");
	char   *line;
	int	rv = 0;

	if (result == NULL)
		result = json_null();
	if (json_is_null(result) && !null_too)
		return 0;
	line = cmd_call_dump(result);
	if (fflush(stdout) != 0 ||
	    (!cmd_call_output_ended(reply) &&
		format_write_all(STDOUT_FILENO, "\n", 1) != 0) ||
	    format_write_all(STDOUT_FILENO, line, strlen(line)) != 0)
		rv = -1;
	free(line);
	return rv;
}

/*
 * Run tells the job's id only once it has finished, so there is nothing to
 * cancel: say where the call is.
 */
static void
cmd_call_interrupted(void *arg)
{
	const char *pool = arg;
	char	    buf[128];

	mprocctl_warn("interrupted; the call goes on in mprocd ('mprocctl "
		      "list%s%s' shows it, queued or running)",
	    pool != NULL ? " -p " : "",
	    pool != NULL ? mprocctl_printable(pool, buf, sizeof buf) : "");
}

/*
 * Run's error reply as one line; a refused input says which pool is a
 * command pool, as only a command pool refuses it.
 */
static const char *
cmd_call_error(struct client *c, const char *pool, struct varlink_reply *reply,
    char *buf, size_t len)
{
	const char *param;
	json_t	   *st = NULL;
	char	    name[128];

	param = json_string_value(json_object_get(reply->params, "parameter"));
	if (strcmp(reply->error, VARLINK_ERR_PARAM) != 0 || param == NULL ||
	    strcmp(param, "input") != 0)
		return client_error_message("io.mprocd.Run", reply, buf, len);
	if (pool == NULL) {
		st = client_call(c, "io.mprocd.Status", NULL);
		pool = json_string_value(
		    json_object_get(cmd_call_pool(st, NULL), "name"));
	}
	snprintf(buf, len,
	    "pool '%s' is a command pool; call needs a program pool (a pool "
	    "with program = ...)",
	    mprocctl_printable(pool != NULL ? pool : "default", name,
		sizeof name));
	json_decref(st);
	return buf;
}

static int
cmd_call_exec(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = &cmd_call_entry;
	struct varlink_reply  reply;
	struct client	     *c;
	json_t		     *params, *args, *v, *r, *job;
	char		     *pool = NULL, msg[512];
	int		      ch, i, status;

	params = json_object();
	while ((ch = mprocctl_getopt(cmd, argc, argv, "p:t:a:l:")) != -1) {
		switch (ch) {
		case 'p':
			json_object_set_new(params, "pool",
			    mprocctl_string(cmd, "-p", optarg));
			pool = optarg;
			break;
		case 't':
			json_object_set_new(params, "timeout_sec",
			    json_real(mprocctl_parse_seconds(cmd, ch, optarg)));
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
	args = json_array();
	for (i = 1; i < argc; i++) {
		if ((v = cmd_call_arg(argv[i])) == NULL)
			mprocctl_usage_error(cmd,
			    "argument %d is not valid UTF-8 (mprocd carries "
			    "text only)",
			    i);
		json_array_append_new(args, v);
	}
	json_object_set_new(params, "argv",
	    json_pack("[o]", mprocctl_string(cmd, "FUNCTION", argv[0])));
	json_object_set_new(params, "input",
	    json_pack("{s:o, s:{}}", "args", args, "kwargs"));
	json_object_set_new(params, "cwd", mprocctl_cwd());

	c = client_connect(ctl->socket);
	mprocctl_catch_signals(cmd_call_interrupted, pool);
	client_send(c, "io.mprocd.Run", params, 0);
	client_recv(c, &reply);
	if (reply.error != NULL) {
		cmd_call_error(c, pool, &reply, msg, sizeof msg);
		varlink_reply_free(&reply);
		client_free(c);
		mprocctl_fail("%s", msg);
	}
	r = json_incref(reply.params);
	varlink_reply_free(&reply);
	job = json_object_get(r, "job");
	if (!json_is_object(job) || !format_job_finished(job))
		mprocctl_fail("bad reply from mprocd: Run has no finished job");
	if (ctl->json)
		mprocctl_print_json(r);
	else if (format_write_output(r, 0) == 0)
		(void)cmd_call_write_result(r, 0);
	status = format_exit_status(job);
	json_decref(r);
	client_free(c);
	return status;
}
