/* Submit: a job's parameters checked, and the job queued in its pool. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mprocd.h"
#include "util.h"
#include "varlink.h"
#include "xmalloc.h"

#define METHOD_SUBMIT_MAX_ARGS 65536
#define METHOD_SUBMIT_MAX_NAME 256

/* A NULL-terminated copy of a JSON array of strings, or NULL if it is not. */
static char **
method_submit_strv(json_t *a, size_t max)
{
	char **v;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) > max)
		return NULL;
	for (i = 0; i < json_array_size(a); i++)
		if (!json_is_string(json_array_get(a, i)))
			return NULL;
	v = xcalloc(json_array_size(a) + 1, sizeof *v);
	for (i = 0; i < json_array_size(a); i++)
		v[i] = xstrdup(json_string_value(json_array_get(a, i)));
	return v;
}

/*
 * after: at most JOB_MAX_AFTER ids, each once (whether they exist is for
 * method_submit_job). Returns -1 if it is not such a list.
 */
static int
method_submit_after(json_t *a, struct job_spec *sb)
{
	json_t *v;
	size_t	i;

	if (a == NULL || json_is_null(a))
		return 0;
	if (!json_is_array(a) || json_array_size(a) > JOB_MAX_AFTER)
		return -1;
	sb->nafter = json_array_size(a);
	sb->after = xcalloc(sb->nafter + 1, sizeof *sb->after);
	json_array_foreach(a, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1)
			return -1;
		sb->after[i] = json_integer_value(v);
	}
	return method_has_duplicate(sb->after, sb->nafter) ? -1 : 0;
}

/* A lock's name: 1 to JOB_MAX_LOCK bytes, no control character. */
static int
method_submit_lock_ok(const char *lock)
{
	const unsigned char *p;

	if (lock[0] == '\0' || strlen(lock) > JOB_MAX_LOCK)
		return 0;
	for (p = (const unsigned char *)lock; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/*
 * Checks and converts Submit's parameters. Returns 0, or -1 with *bad set
 * to the name of the first parameter that is wrong.
 */
int
method_submit_parse(json_t *params, struct job_spec *sb, const char **bad)
{
	static const char *const known[] = { "argv", "pool", "name", "cwd",
		"env", "stdin", "timeout_sec", "retries", "input", "after",
		"lock", NULL };
	json_t			*env;
	const char		*in = NULL;
	char		       **e;
	int64_t			 retries = 0;

	memset(sb, 0, sizeof *sb);
	sb->cwd = "/";
	if ((*bad = method_unknown_param(params, known)) != NULL)
		return -1;
	sb->argv = method_submit_strv(json_object_get(params, "argv"),
	    METHOD_SUBMIT_MAX_ARGS);
	if (sb->argv == NULL || sb->argv[0] == NULL || sb->argv[0][0] == '\0')
		*bad = "argv";
	else if (varlink_get_string(params, "pool", &sb->pool) == -1)
		*bad = "pool";
	else if (varlink_get_string(params, "name", &sb->name) == -1 ||
	    (sb->name != NULL && strlen(sb->name) > METHOD_SUBMIT_MAX_NAME))
		*bad = "name";
	else if (varlink_get_string(params, "cwd", &sb->cwd) == -1 ||
	    sb->cwd[0] != '/' || strlen(sb->cwd) >= 4096)
		*bad = "cwd";
	else if (varlink_get_string(params, "stdin", &in) == -1)
		*bad = "stdin";
	else if ((sb->has_timeout = method_get_seconds(params, "timeout_sec",
		      &sb->timeout)) == -1)
		*bad = "timeout_sec";
	else if ((sb->has_retries = varlink_get_int(params, "retries", 0, 100,
		      &retries)) == -1)
		*bad = "retries";
	else if (method_submit_after(json_object_get(params, "after"), sb) != 0)
		*bad = "after";
	else if (varlink_get_string(params, "lock", &sb->lock) == -1 ||
	    (sb->lock != NULL && !method_submit_lock_ok(sb->lock)))
		*bad = "lock";
	sb->retries = (uint64_t)retries;
	env = json_object_get(params, "env");
	if (*bad == NULL && env != NULL && !json_is_null(env)) {
		sb->env = method_submit_strv(env, METHOD_SUBMIT_MAX_ARGS);
		for (e = sb->env; e != NULL && *e != NULL; e++)
			if (**e == '=' || strchr(*e, '=') == NULL)
				break;
		if (sb->env == NULL || *e != NULL)
			*bad = "env";
	}
	sb->input = json_object_get(params, "input");
	if (json_is_null(sb->input))
		sb->input = NULL;
	if (*bad == NULL && in != NULL) {
		sb->stdin_data = util_base64_decode(in, strlen(in),
		    &sb->stdin_len);
		if (sb->stdin_data == NULL || sb->stdin_len > JOB_MAX_STDIN)
			*bad = "stdin";
	}
	if (*bad != NULL) {
		job_spec_free(sb);
		return -1;
	}
	return 0;
}

/*
 * Each job of after exists, and c may see it (as Get would); else the call
 * is answered: an unknown id (its own future one too) is InvalidParameter
 * naming after, one of another user PermissionDenied. Returns -1 then.
 */
static int
method_submit_check_after(struct conn *c, struct varlink_call *call,
    const struct job_spec *spec)
{
	struct job *dep;
	size_t	    i;
	int	    rv = 0;

	for (i = 0; i < spec->nafter && rv == 0; i++) {
		if ((dep = job_find(spec->after[i])) == NULL) {
			method_invalid_param(c, call, "after");
			rv = -1;
		} else if (!method_may(c, dep)) {
			method_error(c, call, "io.mprocd.PermissionDenied",
			    json_pack("{s:I}", "id", (json_int_t)dep->id));
			rv = -1;
		}
	}
	job_trim(); /* those read back to be checked */
	return rv;
}

/*
 * The job a Submit or Run asks for, queued in its pool *pp (not yet
 * dispatched); or NULL once the call has been answered with why not.
 */
static struct job *
method_submit_job(struct conn *c, struct varlink_call *call, struct pool **pp)
{
	struct job_spec	  spec;
	struct pool	 *p;
	struct job	 *j;
	struct log_ctx	  ctx;
	enum pool_refusal why;
	char		  cmd[1024];
	const char	 *bad;

	if (method_submit_parse(call->params, &spec, &bad) != 0) {
		method_invalid_param(c, call, bad);
		return NULL;
	}
	if (method_submit_check_after(c, call, &spec) != 0) {
		job_spec_free(&spec);
		return NULL;
	}
	p = spec.pool != NULL ? pool_find(spec.pool) : pool_default();
	/* input is a call's, for a program pool. */
	if (spec.input != NULL && p != NULL && !p->removed &&
	    p->cfg.program == NULL) {
		method_invalid_param(c, call, "input");
		job_spec_free(&spec);
		return NULL;
	}
	if ((j = pool_submit(p, &spec, c->uid, &why)) == NULL) {
		switch (why) {
		case POOL_SHUTTING_DOWN:
			method_error(c, call, "io.mprocd.ShuttingDown", NULL);
			break;
		case POOL_FULL:
			method_error(c, call, "io.mprocd.QueueFull",
			    json_pack("{s:s, s:I}", "pool", p->name, "limit",
				(json_int_t)p->cfg.queue_limit));
			break;
		default:
			method_error(c, call, "io.mprocd.NoSuchPool",
			    json_pack("{s:s}", "pool",
				spec.pool != NULL ? spec.pool : "default"));
			break;
		}
		job_spec_free(&spec);
		return NULL;
	}
	ctx = (struct log_ctx){ p->name, NULL, j->id };
	clog_debug(&ctx,
	    "job submitted" LOG_KV "uid=%u" LOG_KV "client_pid=%d" LOG_KV
	    "cmd=%s",
	    (unsigned)c->uid, (int)c->pid,
	    log_safe(j->argv[0], cmd, sizeof cmd));
	job_spec_free(&spec);
	*pp = p;
	return j;
}

/* Submit: queue a job; its id is the answer. */
void
method_submit(struct conn *c, struct varlink_call *call)
{
	struct varlink_buf b;
	struct pool	  *p;
	struct job	  *j;

	if ((j = method_submit_job(c, call, &p)) == NULL)
		return;
	/* By hand: the hot path of pipelined Submits. */
	varlink_buf_init(&b);
	varlink_buf_raw(&b, "{\"id\":");
	varlink_buf_int(&b, j->id);
	varlink_buf_raw(&b, "}");
	conn_answer_text(c, call->flags & VARLINK_ONEWAY, &b);
	pool_dispatch(p);
}

/*
 * Run: Submit, then answer once the job has finished, with what Get
 * answers; with "more", the job, its output as it comes, then the end.
 */
void
method_submit_run(struct conn *c, struct varlink_call *call)
{
	struct pool *p;
	struct job  *j;

	if ((j = method_submit_job(c, call, &p)) == NULL)
		return;
	/* Oneway: a Submit that says nothing, and holds nothing back. */
	if (!(call->flags & VARLINK_ONEWAY) && (call->flags & VARLINK_MORE))
		method_follow_run(c, call, j);
	else if (!(call->flags & VARLINK_ONEWAY))
		method_wait_run(c, call, j);
	pool_dispatch(p);
}
