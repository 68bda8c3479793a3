/*
 * The Varlink methods of io.mprocd and org.varlink.service: the table, the
 * dispatch of a call to its method, what every method shares (replies,
 * errors, parameter checks, access to a job), and the small methods. The
 * larger ones have a file each: method-submit.c, method-wait.c (Wait and
 * Cancel), method-list.c, method-follow.c (Follow, Run with "more").
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocd.h"
#include "util.h"
#include "varlink.h"
#include "xmalloc.h"

static const char method_interface_mprocd[] =
#include "io.mprocd.varlink.h"
    ;
static const char method_interface_service[] =
#include "org.varlink.service.varlink.h"
    ;

static void method_get(struct conn *, struct varlink_call *);
static void method_status(struct conn *, struct varlink_call *);
static void method_reload(struct conn *, struct varlink_call *);
static void method_getinfo(struct conn *, struct varlink_call *);
static void method_getinterface(struct conn *, struct varlink_call *);

static const struct {
	const char *name;
	void (*fn)(struct conn *, struct varlink_call *);
} method_table[] = {
	{ "io.mprocd.Submit", method_submit },
	{ "io.mprocd.Run", method_submit_run },
	{ "io.mprocd.Wait", method_wait },
	{ "io.mprocd.Get", method_get },
	{ "io.mprocd.Follow", method_follow },
	{ "io.mprocd.List", method_list },
	{ "io.mprocd.Cancel", method_wait_cancel },
	{ "io.mprocd.Status", method_status },
	{ "io.mprocd.Reload", method_reload },
	{ "org.varlink.service.GetInfo", method_getinfo },
	{ "org.varlink.service.GetInterfaceDescription", method_getinterface },
};

static const char *const method_interfaces[] = {
	"io.mprocd",
	"org.varlink.service",
};

void
method_reply(struct conn *c, struct varlink_call *call, json_t *params)
{
	conn_answer(c, call->flags & VARLINK_ONEWAY, NULL, params);
}

void
method_error(struct conn *c, struct varlink_call *call, const char *error,
    json_t *params)
{
	conn_answer(c, call->flags & VARLINK_ONEWAY, error, params);
}

static int
method_cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Whether an id stands twice among the n of ids (Wait's, a Submit's after). */
int
method_has_duplicate(const int64_t *ids, size_t n)
{
	int64_t *s;
	size_t	 i;
	int	 dup = 0;

	if (n < 2)
		return 0;
	s = xcalloc(n, sizeof *s);
	memcpy(s, ids, n * sizeof *s);
	qsort(s, n, sizeof *s, method_cmp_id);
	for (i = 1; i < n && !dup; i++)
		dup = s[i] == s[i - 1];
	free(s);
	return dup;
}

void
method_invalid_param(struct conn *c, struct varlink_call *call,
    const char *name)
{
	method_error(c, call, VARLINK_ERR_PARAM,
	    json_pack("{s:s}", "parameter", name));
}

/*
 * Refuses parameters the method does not have (a misspelt "timeout" would
 * otherwise be ignored in silence). Returns -1 once it has replied.
 */
int
method_check_params(struct conn *c, struct varlink_call *call,
    const char *const *known)
{
	const char *bad;

	if ((bad = method_unknown_param(call->params, known)) != NULL) {
		method_invalid_param(c, call, bad);
		return -1;
	}
	return 0;
}

/* The first parameter not in known (NULL-terminated), or NULL. */
const char *
method_unknown_param(json_t *params, const char *const *known)
{
	const char *key;
	json_t	   *v;
	size_t	    i;

	if (params == NULL)
		return NULL;
	json_object_foreach(params, key, v) {
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (known[i] == NULL)
			return key;
	}
	return NULL;
}

/* Get, Wait and Cancel: the job's submitter, root, or our own user. */
int
method_may(const struct conn *c, const struct job *j)
{
	return c->uid == 0 || c->uid == geteuid() || c->uid == j->uid;
}

/*
 * The job named by parameter name, if it exists and c may see it; else
 * replies with the error and returns NULL.
 */
struct job *
method_get_job(struct conn *c, struct varlink_call *call, int64_t id)
{
	struct job *j;

	if ((j = job_find(id)) == NULL) {
		method_error(c, call, "io.mprocd.NoSuchJob",
		    json_pack("{s:I}", "id", (json_int_t)id));
		return NULL;
	}
	if (!method_may(c, j)) {
		method_error(c, call, "io.mprocd.PermissionDenied",
		    json_pack("{s:I}", "id", (json_int_t)id));
		return NULL;
	}
	return j;
}

/* Get and Cancel: the job named by the one parameter, "id". */
struct job *
method_id_param(struct conn *c, struct varlink_call *call)
{
	static const char *const known[] = { "id", NULL };
	int64_t			 id;

	if (method_check_params(c, call, known) != 0)
		return NULL;
	if (varlink_get_int(call->params, "id", 1, INT64_MAX, &id) != 1) {
		method_invalid_param(c, call, "id");
		return NULL;
	}
	return method_get_job(c, call, id);
}

/* A duration in seconds: finite, not negative, at most a year. */
int
method_get_seconds(json_t *params, const char *name, uint64_t *usec)
{
	double d;
	int    r;

	if ((r = varlink_get_number(params, name, &d)) != 1)
		return r;
	if (!isfinite(d) || d < 0 || d > 366.0 * 86400)
		return -1;
	*usec = (uint64_t)(d * 1e6 + 0.5);
	return 1;
}

/* What Get and Run answer: the job and its output (base64). */
/*
 * j as the interface's Job, its JSON text appended to b: the one encoder
 * of a job. Written by hand: building a json_t only to dump it was the
 * largest cost of a short job's replies.
 */
void
method_job_write(struct varlink_buf *b, const struct job *j)
{
	char **p;
	size_t i;

	varlink_buf_raw(b, "{\"id\":");
	varlink_buf_int(b, j->id);
	if (j->name != NULL) {
		varlink_buf_raw(b, ",\"name\":");
		varlink_buf_string(b, j->name);
	}
	varlink_buf_raw(b, ",\"pool\":");
	varlink_buf_string(b, j->pool);
	varlink_buf_raw(b, ",\"argv\":[");
	for (p = j->argv; *p != NULL; p++) {
		if (p != j->argv)
			varlink_buf_raw(b, ",");
		varlink_buf_string(b, *p);
	}
	varlink_buf_raw(b, "],\"cwd\":");
	varlink_buf_string(b, j->cwd);
	varlink_buf_raw(b, ",\"uid\":");
	varlink_buf_int(b, (int64_t)j->uid);
	varlink_buf_raw(b, ",\"state\":\"");
	varlink_buf_raw(b, job_state_name(j->state));
	varlink_buf_raw(b, "\"");
	if (j->exit_status >= 0) {
		varlink_buf_raw(b, ",\"exit_status\":");
		varlink_buf_int(b, j->exit_status);
	}
	if (j->signal > 0) {
		varlink_buf_raw(b, ",\"signal\":");
		varlink_buf_int(b, j->signal);
	}
	if (j->worker[0] != '\0') {
		varlink_buf_raw(b, ",\"worker\":");
		varlink_buf_string(b, j->worker);
	}
	if (j->pid > 0) {
		varlink_buf_raw(b, ",\"pid\":");
		varlink_buf_int(b, j->pid);
	}
	varlink_buf_raw(b, ",\"attempts\":");
	varlink_buf_int(b, j->attempts);
	job_wait_write_reason(b, j);
	if (j->deps != NULL && j->deps->nafter > 0) {
		varlink_buf_raw(b, ",\"after\":[");
		for (i = 0; i < j->deps->nafter; i++) {
			if (i > 0)
				varlink_buf_raw(b, ",");
			varlink_buf_int(b, j->deps->after[i]);
		}
		varlink_buf_raw(b, "]");
	}
	if (j->deps != NULL && j->deps->lock != NULL) {
		varlink_buf_raw(b, ",\"lock\":");
		varlink_buf_string(b, j->deps->lock);
	}
	varlink_buf_raw(b, ",\"submitted_usec\":");
	varlink_buf_int(b, (int64_t)j->submitted_usec);
	if (j->started_usec != 0) {
		varlink_buf_raw(b, ",\"started_usec\":");
		varlink_buf_int(b, (int64_t)j->started_usec);
	}
	if (j->finished_usec != 0) {
		varlink_buf_raw(b, ",\"finished_usec\":");
		varlink_buf_int(b, (int64_t)j->finished_usec);
	}
	varlink_buf_raw(b, "}");
}

/*
 * What Get answers for j: the job, its output (base64) if streams, its
 * result; without streams, Follow's and Run's last reply.
 */
void
method_job_output(struct varlink_buf *b, const struct job *j, int streams)
{
	char *text;
	int   s;

	varlink_buf_raw(b, "{\"job\":");
	method_job_write(b, j);
	for (s = 0; streams && s < 2; s++) {
		varlink_buf_raw(b, s == 0 ? ",\"stdout\":" : ",\"stderr\":");
		if ((text = util_base64_encode(j->out[s].data,
			 j->out[s].len)) == NULL)
			fatal("base64");
		varlink_buf_string(b, text);
		free(text);
	}
	varlink_buf_raw(b,
	    j->truncated ? ",\"truncated\":true" : ",\"truncated\":false");
	if (j->result != NULL) {
		varlink_buf_raw(b, ",\"result\":");
		varlink_buf_json(b, j->result);
	}
	varlink_buf_raw(b, "}");
}

static void
method_get(struct conn *c, struct varlink_call *call)
{
	struct varlink_buf b;
	struct job	  *j;

	if ((j = method_id_param(c, call)) == NULL)
		return;
	varlink_buf_init(&b);
	method_job_output(&b, j, 1);
	conn_answer_text(c, call->flags & VARLINK_ONEWAY, &b);
	job_trim();
}

static void
method_reload(struct conn *c, struct varlink_call *call)
{
	static const char *const known[] = { NULL };
	char			 reason[1024];
	json_t			*params;

	if (method_check_params(c, call, known) != 0)
		return;
	if (c->uid != 0 && c->uid != geteuid()) {
		method_error(c, call, "org.varlink.service.PermissionDenied",
		    NULL);
		return;
	}
	log_notice("reload requested" LOG_KV "uid=%u" LOG_KV "client_pid=%d",
	    (unsigned)c->uid, (int)c->pid);
	if (reload_run(reason, sizeof reason) != 0) {
		if ((params = json_pack("{s:s}", "reason", reason)) == NULL)
			params = json_pack("{s:s}", "reason",
			    "the configuration "
			    "is invalid (not UTF-8: see the log)");
		method_error(c, call, "io.mprocd.ReloadFailed", params);
		return;
	}
	method_reply(c, call, json_object());
}

static void
method_status(struct conn *c, struct varlink_call *call)
{
	static const char *const known[] = { NULL };
	json_t			*jpools, *o;
	struct pool		*p;

	if (method_check_params(c, call, known) != 0)
		return;
	jpools = json_array();
	TAILQ_FOREACH(p, &pools, entry)
		json_array_append_new(jpools, pool_status_json(p));
	o = json_pack("{s:s, s:I, s:I, s:o}", "version", PACKAGE_VERSION, "pid",
	    (json_int_t)getpid(), "started_usec",
	    (json_int_t)mprocd_started_usec, "pools", jpools);
	/* The state database, and its size on disk with its WAL. */
	if (store_is_open()) {
		json_object_set_new(o, "state", json_string(store_file()));
		json_object_set_new(o, "state_size",
		    json_integer((json_int_t)store_size()));
	}
	method_reply(c, call, o);
}

static void
method_getinfo(struct conn *c, struct varlink_call *call)
{
	static const char *const known[] = { NULL };

	if (method_check_params(c, call, known) != 0)
		return;
	method_reply(c, call,
	    json_pack("{s:s, s:s, s:s, s:s, s:[s, s]}", "vendor", "mprocd",
		"product", "mprocd", "version", PACKAGE_VERSION, "url",
		"https://github.com/mprocd/mprocd", "interfaces",
		method_interfaces[0], method_interfaces[1]));
}

static void
method_getinterface(struct conn *c, struct varlink_call *call)
{
	static const char *const known[] = { "interface", NULL };
	const char		*name = NULL, *text;

	if (method_check_params(c, call, known) != 0)
		return;
	if (varlink_get_string(call->params, "interface", &name) != 1) {
		method_invalid_param(c, call, "interface");
		return;
	}
	if (strcmp(name, "io.mprocd") == 0)
		text = method_interface_mprocd;
	else if (strcmp(name, "org.varlink.service") == 0)
		text = method_interface_service;
	else {
		method_error(c, call, VARLINK_ERR_INTERFACE,
		    json_pack("{s:s}", "interface", name));
		return;
	}
	method_reply(c, call, json_pack("{s:s}", "description", text));
}

void
method_dispatch(struct conn *c, struct varlink_call *call)
{
	size_t i, len;
	char  *iface;

	for (i = 0; i < sizeof method_table / sizeof method_table[0]; i++) {
		if (strcmp(call->method, method_table[i].name) == 0) {
			method_table[i].fn(c, call);
			return;
		}
	}
	/* A method name is at most max_message long: no fixed buffer. */
	len = strlen(call->method) + 1;
	iface = xcalloc(1, len);
	if (varlink_method_interface(call->method, iface, len) == 0) {
		for (i = 0;
		     i < sizeof method_interfaces / sizeof method_interfaces[0];
		     i++) {
			if (strcmp(iface, method_interfaces[i]) == 0) {
				method_error(c, call, VARLINK_ERR_METHOD,
				    json_pack("{s:s}", "method", call->method));
				goto out;
			}
		}
	}
	method_error(c, call, VARLINK_ERR_INTERFACE,
	    json_pack("{s:s}", "interface", iface));
out:
	free(iface);
}