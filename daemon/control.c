/*
 * The control socket: Varlink over a UNIX stream socket. Each client's
 * calls are answered in order; a client that misbehaves (bad JSON, an
 * oversize message) is closed, and one that does not read its replies stops
 * being read until it does, so its buffers stay bounded.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/listener.h>

#include "mprocd.h"
#include "util.h"
#include "varlink.h"
#include "xmalloc.h"

static const char interface_mprocd[] =
#include "io.mprocd.varlink.h"
;
static const char interface_service[] =
#include "org.varlink.service.varlink.h"
;

struct client;

/*
 * A call waiting for jobs to finish (Wait, or Cancel of a running job).
 * While one is pending, the client's later calls wait their turn: replies
 * go out in the order of the calls.
 */
struct pending {
	struct client	*c;
	int		 flags;		/* the call's: more */
	int		 cancel;	/* Cancel: reply {job} */
	size_t		 n;
	size_t		 left;
	int64_t		*ids;
	json_t		**done;		/* a finished job's snapshot, by index */
	struct job_watch *watches;
	struct event	*timer;
};

/*
 * A List reply is written a slice at a time as the client reads it: the
 * ids that matched when the call came, each job described as it is when
 * its turn comes. Neither memory nor the loop goes to one huge reply.
 */
struct listing {
	int64_t		*ids;
	size_t		 n;
	size_t		 next;
	size_t		 written;	/* jobs in the reply so far */
	char		*pool;		/* the call's filters; NULL, -1: any */
	int		 state;
};
#define LIST_SLICE	(64 * 1024)	/* written while less is queued */

struct client {
	TAILQ_ENTRY(client) entry;
	struct bufferevent *bev;
	uid_t		 uid;
	gid_t		 gid;
	pid_t		 pid;
	size_t		 scanned;	/* input already searched for a NUL */
	int		 closing;	/* flush replies, then close */
	int		 eof;		/* it sends no more; answer what it sent */
	struct pending	*pending;
	struct listing	*listing;	/* a List reply still being written */
	struct event	*resume;	/* go on after a pending call */
	struct event	*stall;		/* message_timeout for a partial one */
	struct event	*hup;		/* not read: notice a hang-up anyway */
};
TAILQ_HEAD(clients, client);

struct method {
	const char	*name;
	void		(*fn)(struct client *, struct varlink_call *);
};

static struct evconnlistener	*listener;
static struct event		*accept_timer;
static char			*socket_path;	/* ours to unlink */
static struct clients		 clients = TAILQ_HEAD_INITIALIZER(clients);
static unsigned int		 nclients;

/*
 * The replies to the calls read in one go (pipelined) are gathered in
 * batch and written together once the last is answered: one writev(), not
 * one a call.
 */
static struct client		*batching;
static struct evbuffer		*batch;

/* Notices about misbehaving clients, at most this many a minute. */
static struct log_ratelimit	 client_notices =
				    LOG_RATELIMIT("client error", 20, 60);
static struct log_ratelimit	 client_refusals =
				    LOG_RATELIMIT("refused client", 5, 60);

/*
 * Connections beyond max_clients kept for root and mprocd's own user, so
 * that a flood of connections cannot lock the administrator out.
 */
#define CLIENT_RESERVE	4

static void	client_free(struct client *);
static void	client_read_cb(struct bufferevent *, void *);

static void	method_submit(struct client *, struct varlink_call *);
static void	method_wait(struct client *, struct varlink_call *);
static void	method_get(struct client *, struct varlink_call *);
static void	method_list(struct client *, struct varlink_call *);
static void	method_cancel(struct client *, struct varlink_call *);
static void	method_status(struct client *, struct varlink_call *);
static void	method_reload(struct client *, struct varlink_call *);
static void	method_getinfo(struct client *, struct varlink_call *);
static void	method_getinterface(struct client *, struct varlink_call *);

static const struct method methods[] = {
	{ "io.mprocd.Submit", method_submit },
	{ "io.mprocd.Wait", method_wait },
	{ "io.mprocd.Get", method_get },
	{ "io.mprocd.List", method_list },
	{ "io.mprocd.Cancel", method_cancel },
	{ "io.mprocd.Status", method_status },
	{ "io.mprocd.Reload", method_reload },
	{ "org.varlink.service.GetInfo", method_getinfo },
	{ "org.varlink.service.GetInterfaceDescription", method_getinterface },
};

static const char *const interfaces[] = {
	"io.mprocd",
	"org.varlink.service",
};

/* Rate-limited, so a hostile client cannot flood the log. */
static void
client_notice(struct client *c, const char *what)
{
	if (log_ratelimit(&client_notices, util_mono_usec()))
		log_notice("client error: %s" LOG_KV "uid=%u" LOG_KV
		    "client_pid=%d", what, (unsigned)c->uid, (int)c->pid);
}

/* Sends a message (freed): gathered in a batch, else as bev_send() does. */
static void
client_send(struct client *c, char *msg, size_t len)
{
	struct iovec	 iov = { msg, len };

	if (c == batching)
		evbuffer_add(batch, msg, len);
	else
		bev_send(c->bev, &iov, 1);
	free(msg);
}

/* Replies queued or gathered, not yet written. */
static size_t
client_unsent(struct client *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) +
	    (c == batching ? evbuffer_get_length(batch) : 0);
}

/* Ends c's batch: what was gathered is sent, as bev_send() does. */
static void
client_flush(struct client *c)
{
	struct evbuffer_iovec	 v[16];
	struct iovec		 iov[16];
	int			 i, n;

	if (c != batching)
		return;
	batching = NULL;
	if (evbuffer_get_length(batch) == 0)
		return;
	n = evbuffer_peek(batch, -1, NULL, v, 16);
	for (i = 0; i < n && i < 16; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	evbuffer_drain(batch, bev_write_now(c->bev, iov, i));
	evbuffer_add_buffer(bufferevent_get_output(c->bev), batch);
}

/*
 * Answers a call: a reply, or the error if error is set. flags: ONEWAY
 * (say nothing), CONTINUES (more replies follow). params (stolen) may be
 * NULL.
 */
static void
client_answer(struct client *c, int flags, const char *error, json_t *params)
{
	char	*msg;
	size_t	 len;

	if (flags & VARLINK_ONEWAY) {
		json_decref(params);
		return;
	}
	if (error != NULL)
		msg = varlink_error_encode(error, params, &len);
	else
		msg = varlink_reply_encode(params, flags & VARLINK_CONTINUES,
		    &len);
	client_send(c, msg, len);
}

static void
control_reply(struct client *c, struct varlink_call *call, json_t *params)
{
	client_answer(c, call->flags & VARLINK_ONEWAY, NULL, params);
}

static void
control_error(struct client *c, struct varlink_call *call, const char *error,
    json_t *params)
{
	client_answer(c, call->flags & VARLINK_ONEWAY, error, params);
}

static void
control_invalid_param(struct client *c, struct varlink_call *call,
    const char *name)
{
	control_error(c, call, VARLINK_ERR_PARAM,
	    json_pack("{s:s}", "parameter", name));
}

/*
 * Refuses parameters the method does not have (a misspelt "timeout" would
 * otherwise be ignored in silence). Returns -1 once it has replied.
 */
static int
control_check_params(struct client *c, struct varlink_call *call,
    const char *const *known)
{
	const char	*bad;

	if ((bad = control_unknown_param(call->params, known)) != NULL) {
		control_invalid_param(c, call, bad);
		return -1;
	}
	return 0;
}

/* The first parameter not in known (NULL-terminated), or NULL. */
const char *
control_unknown_param(json_t *params, const char *const *known)
{
	const char	*key;
	json_t		*v;
	size_t		 i;

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
static int
client_may(const struct client *c, const struct job *j)
{
	return c->uid == 0 || c->uid == geteuid() || c->uid == j->uid;
}

/*
 * The job named by parameter name, if it exists and c may see it; else
 * replies with the error and returns NULL.
 */
static struct job *
control_get_job(struct client *c, struct varlink_call *call, int64_t id)
{
	struct job	*j;

	if ((j = job_find(id)) == NULL) {
		control_error(c, call, "io.mprocd.NoSuchJob",
		    json_pack("{s:I}", "id", (json_int_t)id));
		return NULL;
	}
	if (!client_may(c, j)) {
		control_error(c, call, "io.mprocd.PermissionDenied",
		    json_pack("{s:I}", "id", (json_int_t)id));
		return NULL;
	}
	return j;
}

/* Get and Cancel: the job named by the one parameter, "id". */
static struct job *
control_id_param(struct client *c, struct varlink_call *call)
{
	static const char *const known[] = { "id", NULL };
	int64_t		 id;

	if (control_check_params(c, call, known) != 0)
		return NULL;
	if (varlink_get_int(call->params, "id", 1, INT64_MAX, &id) != 1) {
		control_invalid_param(c, call, "id");
		return NULL;
	}
	return control_get_job(c, call, id);
}

/* A NULL-terminated copy of a JSON array of strings, or NULL if it is not. */
static char **
strv_from_json(json_t *a, size_t max)
{
	char	**v;
	size_t	 i;

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

/* A duration in seconds: finite, not negative, at most a year. */
int
control_get_seconds(json_t *params, const char *name, uint64_t *usec)
{
	double	 d;
	int	 r;

	if ((r = varlink_get_number(params, name, &d)) != 1)
		return r;
	if (!isfinite(d) || d < 0 || d > 366.0 * 86400)
		return -1;
	*usec = (uint64_t)(d * 1e6 + 0.5);
	return 1;
}

/* The pool a Submit without "pool" goes to: "default", else the first. */
static struct pool *
control_default_pool(void)
{
	struct pool	*p;

	if ((p = pool_find("default")) != NULL && !p->removed)
		return p;
	TAILQ_FOREACH(p, &pools, entry)
		if (!p->removed)
			return p;
	return NULL;
}

#define MAX_ARGS	65536
#define MAX_NAME	256

/* Frees what control_parse_submit() allocated. */
void
control_submit_free(struct submit *sb)
{
	util_strv_free(sb->argv);
	util_strv_free(sb->env);
	free(sb->stdin_data);
	memset(sb, 0, sizeof *sb);
}

/*
 * Checks and converts Submit's parameters. Returns 0, or -1 with *bad set
 * to the name of the first parameter that is wrong.
 */
int
control_parse_submit(json_t *params, struct submit *sb, const char **bad)
{
	static const char *const known[] = { "argv", "pool", "name", "cwd",
	    "env", "stdin", "timeout_sec", "retries", NULL };
	json_t		*env;
	const char	*in = NULL;
	char		**e;
	int64_t		 retries = 0;

	memset(sb, 0, sizeof *sb);
	sb->cwd = "/";
	if ((*bad = control_unknown_param(params, known)) != NULL)
		return -1;
	sb->argv = strv_from_json(json_object_get(params, "argv"), MAX_ARGS);
	if (sb->argv == NULL || sb->argv[0] == NULL || sb->argv[0][0] == '\0')
		*bad = "argv";
	else if (varlink_get_string(params, "pool", &sb->pool) == -1)
		*bad = "pool";
	else if (varlink_get_string(params, "name", &sb->name) == -1 ||
	    (sb->name != NULL && strlen(sb->name) > MAX_NAME))
		*bad = "name";
	else if (varlink_get_string(params, "cwd", &sb->cwd) == -1 ||
	    sb->cwd[0] != '/' || strlen(sb->cwd) >= 4096)
		*bad = "cwd";
	else if (varlink_get_string(params, "stdin", &in) == -1)
		*bad = "stdin";
	else if ((sb->has_timeout = control_get_seconds(params,
	    "timeout_sec", &sb->timeout)) == -1)
		*bad = "timeout_sec";
	else if ((sb->has_retries = varlink_get_int(params, "retries", 0,
	    100, &retries)) == -1)
		*bad = "retries";
	sb->retries = (uint64_t)retries;
	env = json_object_get(params, "env");
	if (*bad == NULL && env != NULL && !json_is_null(env)) {
		sb->env = strv_from_json(env, MAX_ARGS);
		for (e = sb->env; e != NULL && *e != NULL; e++)
			if (**e == '=' || strchr(*e, '=') == NULL)
				break;
		if (sb->env == NULL || *e != NULL)
			*bad = "env";
	}
	if (*bad == NULL && in != NULL) {
		sb->stdin_data = util_base64_decode(in, strlen(in),
		    &sb->stdin_len);
		if (sb->stdin_data == NULL || sb->stdin_len > JOB_MAX_STDIN)
			*bad = "stdin";
	}
	if (*bad != NULL) {
		control_submit_free(sb);
		return -1;
	}
	return 0;
}

static void
method_submit(struct client *c, struct varlink_call *call)
{
	struct submit	 sb;
	struct pool	*p;
	struct job	*j;
	struct log_ctx	 ctx;
	char		 cmd[1024];
	const char	*bad;

	if (control_parse_submit(call->params, &sb, &bad) != 0) {
		control_invalid_param(c, call, bad);
		return;
	}
	if (mprocd_shutting_down) {
		control_error(c, call, "io.mprocd.ShuttingDown", NULL);
		goto out;
	}
	p = sb.pool != NULL ? pool_find(sb.pool) : control_default_pool();
	if (p == NULL || p->removed) {	/* a removed pool only drains */
		control_error(c, call, "io.mprocd.NoSuchPool", json_pack(
		    "{s:s}", "pool", sb.pool != NULL ? sb.pool : "default"));
		goto out;
	}
	if (p->nqueued >= p->cfg.queue_limit) {
		control_error(c, call, "io.mprocd.QueueFull",
		    json_pack("{s:s, s:I}", "pool", p->name, "limit",
		    (json_int_t)p->cfg.queue_limit));
		goto out;
	}

	j = job_new(p->name, sb.argv, sb.cwd, c->uid);
	sb.argv = NULL;
	if (sb.name != NULL)
		j->name = xstrdup(sb.name);
	j->env = sb.env;
	sb.env = NULL;
	j->stdin_data = sb.stdin_data;
	j->stdin_len = sb.stdin_len;
	sb.stdin_data = NULL;
	/* Else the pool's, as they are when the job starts. */
	j->timeout_given = sb.has_timeout == 1;
	j->timeout = sb.timeout;
	j->retries_given = sb.has_retries == 1;
	j->retries = sb.retries;
	ctx = (struct log_ctx){ p->name, NULL, j->id };
	clog_debug(&ctx, "job submitted" LOG_KV "uid=%u" LOG_KV "client_pid=%d"
	    LOG_KV "cmd=%s", (unsigned)c->uid, (int)c->pid,
	    log_safe(j->argv[0], cmd, sizeof cmd));
	pool_enqueue(p, j, 0);
	control_reply(c, call, json_pack("{s:I}", "id", (json_int_t)j->id));
	pool_dispatch(p);
out:
	control_submit_free(&sb);
}

static void
method_get(struct client *c, struct varlink_call *call)
{
	struct job	*j;
	char		*out, *err;

	if ((j = control_id_param(c, call)) == NULL)
		return;
	out = util_base64_encode(j->out[0].data, j->out[0].len);
	err = util_base64_encode(j->out[1].data, j->out[1].len);
	if (out == NULL || err == NULL)
		fatal("base64");
	control_reply(c, call, json_pack("{s:o, s:s, s:s, s:b}",
	    "job", job_to_json(j), "stdout", out, "stderr", err,
	    "truncated", j->truncated));
	free(out);
	free(err);
}

static void
listing_free(struct listing *ls)
{
	if (ls == NULL)
		return;
	free(ls->ids);
	free(ls->pool);
	free(ls);
}

/* Writes the next slice of the List reply; the end lets later calls in. */
static void
listing_continue(struct client *c)
{
	struct listing	*ls = c->listing;
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	struct job	*j;
	json_t		*o;
	char		*s;

	while (evbuffer_get_length(out) < LIST_SLICE && ls->next < ls->n) {
		j = job_find(ls->ids[ls->next++]);
		if (j == NULL || !job_matches(j, ls->pool, ls->state))
			continue;
		o = job_to_json(j);
		if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
			fatalx("cannot encode a job");
		json_decref(o);
		if (ls->written++ > 0)
			evbuffer_add(out, ",", 1);
		evbuffer_add(out, s, strlen(s));
		free(s);
	}
	if (ls->next < ls->n)
		return;
	evbuffer_add(out, "]}}", 4);
	c->listing = NULL;
	listing_free(ls);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	event_active(c->resume, 0, 0);
}

/* Starts the List reply of the jobs of pool (NULL: all) in state (-1). */
static void
listing_start(struct client *c, const char *pool, int state)
{
	struct listing	*ls = xcalloc(1, sizeof *ls);

	ls->pool = pool != NULL ? xstrdup(pool) : NULL;
	ls->state = state;
	ls->ids = job_ids(pool, state, &ls->n);
	c->listing = ls;
	client_flush(c);	/* the replies before it go first */
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	    "{\"parameters\":{\"jobs\":[");
	/* The write callback comes for more while a slice is in flight. */
	bufferevent_setwatermark(c->bev, EV_WRITE, LIST_SLICE / 2, 0);
	listing_continue(c);
}

static void
method_list(struct client *c, struct varlink_call *call)
{
	static const char *const known[] = { "pool", "state", NULL };
	const char	*pool = NULL, *state = NULL;
	int		 st = -1;

	if (control_check_params(c, call, known) != 0)
		return;
	if (varlink_get_string(call->params, "pool", &pool) == -1) {
		control_invalid_param(c, call, "pool");
		return;
	}
	if (varlink_get_string(call->params, "state", &state) == -1 ||
	    (state != NULL && (st = job_parse_state(state)) == -1)) {
		control_invalid_param(c, call, "state");
		return;
	}
	if (pool != NULL && pool_find(pool) == NULL) {
		control_error(c, call, "io.mprocd.NoSuchPool",
		    json_pack("{s:s}", "pool", pool));
		return;
	}
	if (call->flags & VARLINK_ONEWAY)
		return;
	listing_start(c, pool, st);
}

static void
pending_free(struct pending *pd)
{
	size_t	 i;

	if (pd == NULL)
		return;
	for (i = 0; i < pd->n; i++) {
		job_watch_remove(&pd->watches[i]);
		json_decref(pd->done[i]);
	}
	if (pd->timer != NULL)
		event_free(pd->timer);
	free(pd->watches);
	free(pd->done);
	free(pd->ids);
	free(pd);
}

/* The pending call has been answered: go on with the client's next. */
static void
pending_finish(struct pending *pd)
{
	struct client	*c = pd->c;

	c->pending = NULL;
	pending_free(pd);
	event_active(c->resume, 0, 0);
}

/* A reply to a pending call (never oneway); with "more", one per job. */
static void
pending_reply(struct pending *pd, json_t *params, int continues)
{
	client_answer(pd->c, continues ? VARLINK_CONTINUES : 0, NULL, params);
}

static void
pending_job_done(struct pending *pd, size_t i, const struct job *j)
{
	json_t	*all;
	size_t	 k;

	pd->done[i] = job_to_json(j);
	pd->left--;
	if (pd->cancel) {
		pending_reply(pd, json_pack("{s:O}", "job", pd->done[i]), 0);
	} else if (pd->flags & VARLINK_MORE) {
		pending_reply(pd, json_pack("{s:[O]}", "jobs", pd->done[i]),
		    pd->left > 0);
	} else if (pd->left == 0) {
		all = json_array();
		for (k = 0; k < pd->n; k++)
			json_array_append(all, pd->done[k]);
		pending_reply(pd, json_pack("{s:o}", "jobs", all), 0);
	}
	if (pd->left == 0)
		pending_finish(pd);
}

static void
pending_watch_cb(struct job_watch *jw, struct job *j)
{
	pending_job_done(jw->arg, jw->index, j);
}

static void
pending_timeout(evutil_socket_t fd, short events, void *arg)
{
	struct pending	*pd = arg;
	json_t		*ids = json_array();
	size_t		 i;

	for (i = 0; i < pd->n; i++)
		if (pd->done[i] == NULL)
			json_array_append_new(ids, json_integer(pd->ids[i]));
	client_answer(pd->c, 0, "io.mprocd.TimedOut",
	    json_pack("{s:o}", "ids", ids));
	pending_finish(pd);
}

/* Waits on jobs (all of which c may see); replies at once if all ended. */
static void
pending_start(struct client *c, struct varlink_call *call, struct job **jobs,
    int64_t *ids, size_t n, int cancel, int has_timeout, uint64_t timeout)
{
	struct pending	*pd = xcalloc(1, sizeof *pd);
	struct timeval	 tv;
	size_t		 i;

	pd->c = c;
	pd->flags = call->flags;
	pd->cancel = cancel;
	pd->n = pd->left = n;
	pd->ids = ids;
	/* n may be 0, which xcalloc refuses. */
	pd->done = xcalloc(n + 1, sizeof *pd->done);
	pd->watches = xcalloc(n + 1, sizeof *pd->watches);
	c->pending = pd;
	if (n == 0) {
		pending_reply(pd, json_pack("{s:[]}", "jobs"), 0);
		pending_finish(pd);
		return;
	}
	for (i = 0; i < n; i++) {
		pd->watches[i].cb = pending_watch_cb;
		pd->watches[i].arg = pd;
		pd->watches[i].index = i;
		if (!job_is_finished(jobs[i]))
			job_watch_add(jobs[i], &pd->watches[i]);
	}
	/* Those already finished answer first, in the order asked. */
	for (i = 0; i < n && c->pending == pd; i++)
		if (jobs[i] != NULL && job_is_finished(jobs[i]))
			pending_job_done(pd, i, jobs[i]);
	if (c->pending != pd)
		return;
	if (has_timeout) {
		pd->timer = evtimer_new(ev_base, pending_timeout, pd);
		tv = util_timeval(timeout);
		evtimer_add(pd->timer, &tv);
	}
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int
has_duplicate(const int64_t *ids, size_t n)
{
	int64_t	*s;
	size_t	 i;
	int	 dup = 0;

	if (n < 2)
		return 0;
	s = xcalloc(n, sizeof *s);
	memcpy(s, ids, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_id);
	for (i = 1; i < n && !dup; i++)
		dup = s[i] == s[i - 1];
	free(s);
	return dup;
}

static void
method_wait(struct client *c, struct varlink_call *call)
{
	static const char *const known[] = { "ids", "timeout_sec", NULL };
	json_t		*a = json_object_get(call->params, "ids"), *v;
	struct job	**jobs;
	int64_t		*ids;
	uint64_t	 timeout = 0;
	size_t		 i, n;
	int		 has_timeout;

	if (control_check_params(c, call, known) != 0)
		return;
	if (!json_is_array(a)) {
		control_invalid_param(c, call, "ids");
		return;
	}
	n = json_array_size(a);
	json_array_foreach(a, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			control_invalid_param(c, call, "ids");
			return;
		}
	}
	if ((has_timeout = control_get_seconds(call->params, "timeout_sec",
	    &timeout)) == -1) {
		control_invalid_param(c, call, "timeout_sec");
		return;
	}
	jobs = xcalloc(n + 1, sizeof *jobs);
	ids = xcalloc(n + 1, sizeof *ids);
	for (i = 0; i < n; i++)
		ids[i] = json_integer_value(json_array_get(a, i));
	/* Each job once: a Wait costs memory per id. */
	if (has_duplicate(ids, n)) {
		control_invalid_param(c, call, "ids");
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((jobs[i] = control_get_job(c, call, ids[i])) == NULL)
			goto out;
	/* Nothing to answer: do not hold the connection's later calls. */
	if (call->flags & VARLINK_ONEWAY)
		goto out;
	pending_start(c, call, jobs, ids, n, 0, has_timeout == 1, timeout);
	ids = NULL;
out:
	free(ids);
	free(jobs);
}

static void
method_cancel(struct client *c, struct varlink_call *call)
{
	struct job	*j;
	struct log_ctx	 ctx;
	int64_t		*ids;

	if ((j = control_id_param(c, call)) == NULL)
		return;
	if (!job_is_finished(j)) {
		ctx = (struct log_ctx){ j->pool, NULL, j->id };
		clog_info(&ctx, "job cancelled" LOG_KV "was=%s" LOG_KV "uid=%u"
		    LOG_KV "client_pid=%d", job_state_name(j->state),
		    (unsigned)c->uid, (int)c->pid);
		job_kill(j, JOB_KILL_CANCEL);
	}
	if (call->flags & VARLINK_ONEWAY)
		return;
	/* A running job answers once its process group is gone. */
	ids = xcalloc(1, sizeof *ids);
	ids[0] = j->id;
	pending_start(c, call, &j, ids, 1, 1, 0, 0);
}

static void
method_reload(struct client *c, struct varlink_call *call)
{
	static const char *const known[] = { NULL };
	char		 reason[1024];
	json_t		*params;

	if (control_check_params(c, call, known) != 0)
		return;
	if (c->uid != 0 && c->uid != geteuid()) {
		control_error(c, call, "org.varlink.service.PermissionDenied",
		    NULL);
		return;
	}
	log_notice("reload requested" LOG_KV "uid=%u" LOG_KV "client_pid=%d",
	    (unsigned)c->uid, (int)c->pid);
	if (supervisor_reload(reason, sizeof reason) != 0) {
		if ((params = json_pack("{s:s}", "reason", reason)) == NULL)
			params = json_pack("{s:s}", "reason", "the configuration "
			    "is invalid (not UTF-8: see the log)");
		control_error(c, call, "io.mprocd.ReloadFailed", params);
		return;
	}
	control_reply(c, call, json_object());
}

static void
method_status(struct client *c, struct varlink_call *call)
{
	static const char *const known[] = { NULL };
	json_t		*jpools;
	struct pool	*p;

	if (control_check_params(c, call, known) != 0)
		return;
	jpools = json_array();
	TAILQ_FOREACH(p, &pools, entry)
		json_array_append_new(jpools, pool_status_json(p));
	control_reply(c, call, json_pack("{s:s, s:I, s:I, s:o}",
	    "version", PACKAGE_VERSION,
	    "pid", (json_int_t)getpid(),
	    "started_usec", (json_int_t)mprocd_started_usec,
	    "pools", jpools));
}

static void
method_getinfo(struct client *c, struct varlink_call *call)
{
	static const char *const known[] = { NULL };

	if (control_check_params(c, call, known) != 0)
		return;
	control_reply(c, call, json_pack("{s:s, s:s, s:s, s:s, s:[s, s]}",
	    "vendor", "mprocd",
	    "product", "mprocd",
	    "version", PACKAGE_VERSION,
	    "url", "https://github.com/mprocd/mprocd",
	    "interfaces", interfaces[0], interfaces[1]));
}

static void
method_getinterface(struct client *c, struct varlink_call *call)
{
	static const char *const known[] = { "interface", NULL };
	const char	*name = NULL, *text;

	if (control_check_params(c, call, known) != 0)
		return;
	if (varlink_get_string(call->params, "interface", &name) != 1) {
		control_invalid_param(c, call, "interface");
		return;
	}
	if (strcmp(name, "io.mprocd") == 0)
		text = interface_mprocd;
	else if (strcmp(name, "org.varlink.service") == 0)
		text = interface_service;
	else {
		control_error(c, call, VARLINK_ERR_INTERFACE,
		    json_pack("{s:s}", "interface", name));
		return;
	}
	control_reply(c, call, json_pack("{s:s}", "description", text));
}

static void
control_dispatch(struct client *c, struct varlink_call *call)
{
	size_t	 i, len;
	char	*iface;

	for (i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		if (strcmp(call->method, methods[i].name) == 0) {
			methods[i].fn(c, call);
			return;
		}
	}
	/* A method name is at most max_message long: no fixed buffer. */
	len = strlen(call->method) + 1;
	iface = xcalloc(1, len);
	if (varlink_method_interface(call->method, iface, len) == 0) {
		for (i = 0; i < sizeof interfaces / sizeof interfaces[0]; i++) {
			if (strcmp(iface, interfaces[i]) == 0) {
				control_error(c, call, VARLINK_ERR_METHOD,
				    json_pack("{s:s}", "method", call->method));
				goto out;
			}
		}
	}
	control_error(c, call, VARLINK_ERR_INTERFACE,
	    json_pack("{s:s}", "interface", iface));
out:
	free(iface);
}

/* A Wait or a List reply holds the client's later calls back. */
static int
client_busy(const struct client *c)
{
	return c->pending != NULL || c->listing != NULL;
}

/* Stops reading; closes once the replies already queued are written. */
static void
client_close(struct client *c)
{
	client_flush(c);
	c->closing = 1;
	evtimer_del(c->stall);
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
	    !client_busy(c))
		client_free(c);
}

/* Handles one complete message; returns -1 if the client was closed. */
static int
client_message(struct client *c, const char *msg, size_t len)
{
	struct varlink_call	 call;
	const char		*errstr;
	char			 what[160];

	if (varlink_call_parse(msg, len, &call, &errstr) != 0) {
		snprintf(what, sizeof what, "%s, closing the connection",
		    errstr);
		client_notice(c, what);
		client_close(c);
		return -1;
	}
	control_dispatch(c, &call);
	varlink_call_free(&call);
	return 0;
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct client		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_ptr	 pos;
	struct timeval		 tv;
	size_t			 len;
	char			 what[160];
	const char		*msg;

	if (batch == NULL && (batch = evbuffer_new()) == NULL)
		fatalx("evbuffer_new failed");
	batching = c;
	while (!c->closing) {
		/* Later calls wait for the pending one; do not hoard them. */
		if (client_busy(c)) {
			evtimer_del(c->stall);
			if (evbuffer_get_length(in) > cfg->max_message) {
				bufferevent_disable(bev, EV_READ);
				event_add(c->hup, NULL);
			}
			client_flush(c);
			return;
		}
		/*
		 * A client that does not read its replies is not read either
		 * (the write callback reads it again once they are written).
		 */
		if (client_unsent(c) > cfg->max_message) {
			client_flush(c);
			batching = c;
			if (evbuffer_get_length(bufferevent_get_output(bev)) >
			    cfg->max_message) {
				evtimer_del(c->stall);
				bufferevent_disable(bev, EV_READ);
				batching = NULL;
				return;
			}
		}
		len = evbuffer_get_length(in);
		if (len == 0) {
			evtimer_del(c->stall);
			goto drained;
		}
		evbuffer_ptr_set(in, &pos, c->scanned, EVBUFFER_PTR_SET);
		pos = evbuffer_search(in, "", 1, &pos);
		if (pos.pos == -1) {
			c->scanned = len;
			if (len > cfg->max_message)
				goto oversize;
			/* From its first byte, a message has message_timeout. */
			if (!c->eof && !evtimer_pending(c->stall, NULL)) {
				tv = util_timeval(cfg->message_timeout);
				evtimer_add(c->stall, &tv);
			}
			goto drained;
		}
		if ((size_t)pos.pos >= cfg->max_message)
			goto oversize;
		evtimer_del(c->stall);
		c->scanned = 0;
		msg = (const char *)evbuffer_pullup(in, pos.pos + 1);
		if (client_message(c, msg, (size_t)pos.pos) != 0)
			return;		/* closed: client_close() flushed */
		evbuffer_drain(in, (size_t)pos.pos + 1);
	}
	client_flush(c);
	return;

drained:
	client_flush(c);
	/* Every whole call of a client that half-closed has been answered. */
	if (c->eof)
		client_close(c);
	return;

oversize:
	snprintf(what, sizeof what, "message larger than max_message (%" PRIu64
	    " bytes), closing the connection", cfg->max_message);
	client_notice(c, what);
	evbuffer_drain(in, evbuffer_get_length(in));
	client_close(c);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct client	*c = arg;

	if (c->listing != NULL) {
		listing_continue(c);
		return;
	}
	if (c->closing) {
		if (c->pending == NULL)
			client_free(c);
		return;
	}
	/* Everything written: read (and answer) whatever was held back. */
	if (!(bufferevent_get_enabled(bev) & EV_READ) && c->pending == NULL) {
		if (!c->eof)
			bufferevent_enable(bev, EV_READ);
		client_read_cb(bev, c);
	}
}

/*
 * End of file: a client that only shut down its writing half still reads
 * our replies, one that closed the socket is gone. On Linux the second
 * shows as POLLHUP.
 */
static int
client_hung_up(struct client *c)
{
	struct pollfd	 pfd = { bufferevent_getfd(c->bev), POLLOUT, 0 };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct client	*c = arg;

	/*
	 * A client that only half-closed still gets the replies to every
	 * call it sent, pipelined ones behind a pending Wait included.
	 */
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		client_free(c);
	else if (what & BEV_EVENT_EOF) {
		/* Gone for good: nobody is left to wait for. */
		if (client_busy(c) && client_hung_up(c)) {
			client_free(c);
			return;
		}
		c->eof = 1;
		bufferevent_disable(bev, EV_READ);
		client_read_cb(bev, c);
	}
}

/* After a pending call: answer what was held back, or finish closing. */
static void
client_resume(evutil_socket_t fd, short events, void *arg)
{
	struct client	*c = arg;

	if (client_busy(c))
		return;
	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			client_free(c);
		return;
	}
	event_del(c->hup);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) <=
	    cfg->max_message && !c->eof)
		bufferevent_enable(c->bev, EV_READ);
	client_read_cb(c->bev, c);
}

/*
 * Calls held back behind a pending one are not read, so end of file is
 * not seen either: a client gone for good must not keep its slot until the
 * pending call ends, which may be never. One that only half-closed is
 * still answered.
 */
static void
client_closed_cb(evutil_socket_t fd, short events, void *arg)
{
	struct client	*c = arg;

	if (client_hung_up(c))
		client_free(c);
}

/* A message begun message_timeout ago is still not whole. */
static void
client_stalled(evutil_socket_t fd, short events, void *arg)
{
	struct client	*c = arg;
	char		 t[UTIL_FMTLEN], what[160];

	snprintf(what, sizeof what, "message not completed within "
	    "message_timeout (%s), closing the connection",
	    util_format_duration(cfg->message_timeout, t, sizeof t));
	client_notice(c, what);
	client_close(c);
}

static void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	TAILQ_REMOVE(&clients, c, entry);
	nclients--;
	log_debug("client gone" LOG_KV "uid=%u" LOG_KV "client_pid=%d"
	    LOG_KV "pending=%s", (unsigned)c->uid, (int)c->pid,
	    c->pending != NULL ? "yes" : "no");
	if (c == batching) {
		batching = NULL;
		evbuffer_drain(batch, evbuffer_get_length(batch));
	}
	pending_free(c->pending);
	listing_free(c->listing);
	event_free(c->resume);
	event_free(c->stall);
	event_free(c->hup);
	bufferevent_free(c->bev);
	free(c);
}

static void
control_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct client	*c;
	struct ucred	 cred;
	socklen_t	 len = sizeof cred;

	if (mprocd_shutting_down) {
		close(fd);
		log_debug("refused a client: shutting down");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		log_warn("SO_PEERCRED, closing the client");
		close(fd);
		return;
	}
	if (nclients >= cfg->max_clients + CLIENT_RESERVE ||
	    (nclients >= cfg->max_clients && cred.uid != 0 &&
	    cred.uid != geteuid())) {
		close(fd);
		if (log_ratelimit(&client_refusals, util_mono_usec()))
			log_notice("refused a client: max_clients reached"
			    LOG_KV "max_clients=%" PRIu64 LOG_KV "uid=%u"
			    LOG_KV "client_pid=%d", cfg->max_clients,
			    (unsigned)cred.uid, (int)cred.pid);
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->bev = bufferevent_socket_new(ev_base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
	    client_event_cb, c);
	c->resume = event_new(ev_base, -1, 0, client_resume, c);
	c->stall = evtimer_new(ev_base, client_stalled, c);
	c->hup = event_new(ev_base, fd, EV_CLOSED, client_closed_cb, c);
	bufferevent_enable(c->bev, EV_READ);
	TAILQ_INSERT_TAIL(&clients, c, entry);
	nclients++;
	log_debug("client connected" LOG_KV "uid=%u" LOG_KV "client_pid=%d"
	    LOG_KV "clients=%u", (unsigned)c->uid, (int)c->pid, nclients);
}

static void
control_accept_resume(evutil_socket_t fd, short events, void *arg)
{
	if (listener != NULL)
		evconnlistener_enable(listener);
}

/*
 * Out of descriptors (or memory): the pending connection stays queued and
 * the listener would fire again at once. Pause it for a second instead of
 * spinning, as tmux does.
 */
static void
control_accept_error(struct evconnlistener *l, void *arg)
{
	static const struct timeval	 pause = { 1, 0 };

	switch (EVUTIL_SOCKET_ERROR()) {
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		log_warn("accept, pausing new connections for 1s");
		evconnlistener_disable(l);
		if (accept_timer == NULL)
			accept_timer = evtimer_new(ev_base,
			    control_accept_resume, NULL);
		evtimer_add(accept_timer, &pause);
		break;
	default:
		log_warn("accept, ignoring");
		break;
	}
}

/*
 * Refuses to touch a path that is not a stale socket of ours: a symlink, a
 * file of another kind, or another user's socket; and refuses to take over
 * a socket on which an mprocd still answers.
 */
static int
control_check_path(const char *path, const char **cause)
{
	struct stat		 st;
	struct sockaddr_un	 sun;
	int			 fd, r;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		*cause = strerror(errno);
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		*cause = "it is a symbolic link; refusing to follow it";
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		*cause = "it exists and is not a socket";
		return -1;
	}
	if (st.st_uid != geteuid()) {
		*cause = "it belongs to another user";
		return -1;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		*cause = strerror(errno);
		return -1;
	}
	r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	close(fd);
	if (r == 0) {
		*cause = "another mprocd is listening on it";
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		*cause = strerror(errno);
		return -1;
	}
	return 0;
}

/* Binds path with exactly mode: the umask covers the bind, no chmod later. */
static int
control_bind(const char *path, unsigned int mode, const char **cause)
{
	struct sockaddr_un	 sun;
	char			*dir;
	mode_t			 old;
	int			 fd;

	dir = xstrdup(path);
	if (mkdir(dirname(dir), 0755) != 0 && errno != EEXIST) {
		free(dir);
		*cause = "cannot create its directory";
		return -1;
	}
	free(dir);
	if (control_check_path(path, cause) != 0)
		return -1;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		*cause = "path too long for a UNIX socket";
		return -1;
	}
	strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		*cause = strerror(errno);
		return -1;
	}
	old = umask(~(mode_t)mode & 0777);
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		*cause = strerror(errno);
		umask(old);
		close(fd);
		return -1;
	}
	umask(old);
	if (listen(fd, SOMAXCONN) != 0) {
		*cause = strerror(errno);
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/*
 * Listens on fd (from systemd) or, if fd is -1, on a socket of our own at
 * path. Returns 0, or -1 with a message logged.
 */
int
control_init(const char *path, unsigned int mode, int fd)
{
	const char	*cause;

	if (fd == -1) {
		if ((fd = control_bind(path, mode, &cause)) == -1) {
			log_warnx("socket %s: %s", path, cause);
			return -1;
		}
		socket_path = xstrdup(path);
		log_info("listening on %s", path);
	} else {
		util_set_nonblock(fd);
		util_set_cloexec(fd);
		log_info("listening on the socket systemd passed");
	}
	listener = evconnlistener_new(ev_base, control_accept, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (listener == NULL) {
		log_warnx("cannot listen: evconnlistener_new failed");
		return -1;
	}
	evconnlistener_set_error_cb(listener, control_accept_error);
	return 0;
}

/* Stops accepting; clients already connected are still answered. */
void
control_shutdown(void)
{
	if (listener != NULL) {
		evconnlistener_free(listener);
		listener = NULL;
	}
	if (accept_timer != NULL) {
		event_free(accept_timer);
		accept_timer = NULL;
	}
	if (socket_path != NULL) {
		unlink(socket_path);
		free(socket_path);
		socket_path = NULL;
	}
}

/* At exit: write what replies the clients' sockets will take, then close. */
void
control_close(void)
{
	struct client	*c;
	struct evbuffer	*out;

	control_shutdown();
	while ((c = TAILQ_FIRST(&clients)) != NULL) {
		out = bufferevent_get_output(c->bev);
		/*
		 * A bufferevent freezes the front of its output so that only
		 * its own write callback drains it; evbuffer_write() would fail.
		 */
		evbuffer_unfreeze(out, 1);
		while (evbuffer_get_length(out) > 0 &&
		    evbuffer_write(out, bufferevent_getfd(c->bev)) > 0)
			;
		client_free(c);
	}
	if (batch != NULL) {
		evbuffer_free(batch);
		batch = NULL;
	}
}

unsigned int
control_clients(void)
{
	return nclients;
}
