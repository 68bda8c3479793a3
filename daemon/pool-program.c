/*
 * The supervisor's side of a program pool's program (DESIGN §11): mprocd is
 * the Varlink client on the program's fd 3, Hello once and then one Run
 * per job, and the reader of the program's stdout and stderr pipes. The
 * program is started and kept by its worker process (worker-program.c),
 * but calls and output go between here and the program directly.
 *
 * Output that comes while a Run is in flight is that job's. When the reply
 * comes, what is already in the pipes is read into the job first: a
 * program writes its output before it answers. Output between calls is
 * logged as records of the worker, a line each.
 *
 * A reply that is not what was asked for (bad JSON, a reply to no call, a
 * bad exit_status, more than max_message + max_output bytes) ends the
 * worker: its job is then retried or lost as for any worker death.
 */
#include "config.h"

#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "mprocd.h"
#include "util.h"
#include "varlink.h"
#include "xmalloc.h"

#define POOL_PROGRAM_READ  65536
#define POOL_PROGRAM_LINE  1024 /* a longer line is logged in parts */
#define POOL_PROGRAM_DEPTH 16	/* of the tree searched for its memory */

enum pool_program_call {
	POOL_PROGRAM_NONE,
	POOL_PROGRAM_HELLO,
	POOL_PROGRAM_RUN,
};

struct pool_program {
	struct worker	      *w;
	pid_t		       pid;   /* 0 until its worker tells */
	struct bufferevent    *bev;   /* Varlink, on the program's fd 3 */
	int		       fd[2]; /* its stdout, stderr; -1: ended */
	struct event	      *ev[2];
	char		       line[2][POOL_PROGRAM_LINE];
	size_t		       linelen[2];
	enum pool_program_call call;	/* the one in flight */
	int		       ready;	/* Hello answered */
	size_t		       scanned; /* input searched for a NUL */
};

static void pool_program_read_cb(struct bufferevent *, void *);
static void pool_program_event_cb(struct bufferevent *, short, void *);
static void pool_program_output_cb(evutil_socket_t, short, void *);

static struct log_ctx
pool_program_ctx(const struct pool_program *pp)
{
	struct log_ctx ctx = { pp->w->pool->name, pp->w->name,
		pp->w->job != NULL ? pp->w->job->id : 0 };

	return ctx;
}

static void
pool_program_send(struct pool_program *pp, const char *method, json_t *params)
{
	struct iovec iov;
	size_t	     len;
	char	    *msg;

	if ((msg = varlink_call_encode(method, params, 0, &len)) == NULL)
		fatalx("cannot encode a call to a program");
	iov.iov_base = msg;
	iov.iov_len = len;
	if (pp->bev != NULL)
		bev_send(pp->bev, &iov, 1);
	free(msg);
}

/*
 * The program of worker w, whose worker process has just been started with
 * the other ends of vfd (its fd 3) and the pipes out and err: Hello goes
 * out at once, to be read when the program is ready to.
 */
struct pool_program *
pool_program_new(struct worker *w, int vfd, int out, int err)
{
	struct pool_program *pp = xcalloc(1, sizeof *pp);
	int		     s;

	pp->w = w;
	pp->fd[0] = out;
	pp->fd[1] = err;
	for (s = 0; s < 2; s++) {
		util_set_nonblock(pp->fd[s]);
		pp->ev[s] = event_new(ev_base, pp->fd[s], EV_READ | EV_PERSIST,
		    pool_program_output_cb, pp);
		event_add(pp->ev[s], NULL);
	}
	util_set_nonblock(vfd);
	pp->bev = bufferevent_socket_new(ev_base, vfd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(pp->bev, pool_program_read_cb, NULL,
	    pool_program_event_cb, pp);
	bufferevent_enable(pp->bev, EV_READ);
	pool_program_send(pp, "io.mprocd.Worker.Hello",
	    json_pack("{s:s, s:s}", "pool", w->pool->name, "worker", w->name));
	pp->call = POOL_PROGRAM_HELLO;
	return pp;
}

static void
pool_program_close(struct pool_program *pp)
{
	if (pp->bev != NULL) {
		bufferevent_free(pp->bev);
		pp->bev = NULL;
	}
}

static void
pool_program_close_stream(struct pool_program *pp, int s)
{
	if (pp->fd[s] == -1)
		return;
	event_free(pp->ev[s]);
	pp->ev[s] = NULL;
	close(pp->fd[s]);
	pp->fd[s] = -1;
}

void
pool_program_free(struct pool_program *pp)
{
	if (pp == NULL)
		return;
	pool_program_close(pp);
	pool_program_close_stream(pp, 0);
	pool_program_close_stream(pp, 1);
	free(pp);
}

/* A spare's program moves to the slot that took it. */
void
pool_program_set_worker(struct pool_program *pp, struct worker *w)
{
	pp->w = w;
}

/* Its worker says the program's pid (JOB_STARTED for job 0). */
void
pool_program_set_pid(struct pool_program *pp, pid_t pid)
{
	pp->pid = pid;
}

int
pool_program_is_ready(const struct pool_program *pp)
{
	return pp->ready;
}

/* Signals the program's process group, if its pid is known yet. */
void
pool_program_kill(const struct pool_program *pp, int sig)
{
	if (pp != NULL && pp->pid > 0)
		kill(-pp->pid, sig);
}

/* A line of output between calls, as a record of the worker. */
static void
pool_program_log_line(struct pool_program *pp, int s)
{
	struct log_ctx ctx = pool_program_ctx(pp);
	char	       safe[POOL_PROGRAM_LINE + 64];

	pp->line[s][pp->linelen[s]] = '\0';
	pp->linelen[s] = 0;
	log_safe(pp->line[s], safe, sizeof safe);
	if (s == 1)
		clog_notice(&ctx,
		    "program output" LOG_KV "stream=stderr" LOG_KV "text=%s",
		    safe);
	else
		clog_info(&ctx,
		    "program output" LOG_KV "stream=stdout" LOG_KV "text=%s",
		    safe);
}

static void
pool_program_log(struct pool_program *pp, int s, const char *data, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (data[i] == '\n') {
			pool_program_log_line(pp, s);
			continue;
		}
		pp->line[s][pp->linelen[s]++] = data[i];
		if (pp->linelen[s] == POOL_PROGRAM_LINE - 1)
			pool_program_log_line(pp, s);
	}
}

/* What is left of a line between calls is logged as it is. */
static void
pool_program_log_rest(struct pool_program *pp)
{
	int s;

	for (s = 0; s < 2; s++)
		if (pp->linelen[s] > 0)
			pool_program_log_line(pp, s);
}

/*
 * Reads stream s: once, or (drain) until the pipe is empty. Output goes to
 * the job whose call is in flight, else to the log.
 */
static void
pool_program_pump(struct pool_program *pp, int s, int drain)
{
	char	    buf[POOL_PROGRAM_READ];
	struct job *j;
	ssize_t	    n;

	while (pp->fd[s] != -1) {
		n = read(pp->fd[s], buf, sizeof buf);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			pool_program_close_stream(pp, s);
			return;
		}
		j = pp->w->job;
		if (pp->call == POOL_PROGRAM_RUN && j != NULL)
			job_output_add(j, s, buf, (size_t)n,
			    j->live->max_output);
		else
			pool_program_log(pp, s, buf, (size_t)n);
		if (!drain)
			return;
	}
}

static void
pool_program_output_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pool_program *pp = arg;

	pool_program_pump(pp, fd == pp->fd[0] ? 0 : 1, 0);
	(void)what;
}

/* The program broke the protocol: log why, end its worker. */
static void
pool_program_bad(struct pool_program *pp, const char *why, const char *detail)
{
	struct log_ctx ctx = pool_program_ctx(pp);
	char	       safe[256];

	clog_warnx(&ctx,
	    "%s, killing the program" LOG_KV "detail=%s" LOG_KV "pid=%d", why,
	    log_safe(detail, safe, sizeof safe), (int)pp->pid);
	pool_program_close(pp);
	pool_worker_kill(pp->w);
}

/* Hello answered: the program is ready once its worker is too. */
static void
pool_program_hello(struct pool_program *pp, const struct varlink_reply *r)
{
	struct worker *w = pp->w;

	/* A plain Varlink service has no Hello, and is ready. */
	if (r->error != NULL && strcmp(r->error, VARLINK_ERR_METHOD) != 0 &&
	    strcmp(r->error, VARLINK_ERR_INTERFACE) != 0) {
		pool_program_bad(pp, "the program refused Hello", r->error);
		return;
	}
	pp->call = POOL_PROGRAM_NONE;
	pp->ready = 1;
	if (w->said_hello && w->state == WORKER_STARTING)
		pool_worker_ready(w);
}

/*
 * A result larger than max_output fails the job with why, in place of the
 * result. Returns the result to keep (a new reference).
 */
static json_t *
pool_program_result(struct pool_program *pp, json_t *result, int *status)
{
	struct log_ctx ctx = pool_program_ctx(pp);
	uint64_t       max = pp->w->pool->cfg.max_output;
	char	       a[UTIL_FMTLEN], b[UTIL_FMTLEN], msg[160];
	size_t	       n;

	if (result == NULL || json_is_null(result))
		return NULL;
	n = json_dumpb(result, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	if (n <= max)
		return json_incref(result);
	snprintf(msg, sizeof msg,
	    "the result is %s encoded, more than max_output (%s)",
	    util_format_size(n, a, sizeof a),
	    util_format_size(max, b, sizeof b));
	clog_warnx(&ctx, "job failed: %s", msg);
	*status = 1;
	return json_pack("{s:s, s:s}", "error", "ResultTooLarge", "message",
	    msg);
}

/* Run answered: the job ends with what the program says. */
static void
pool_program_answer(struct pool_program *pp, const struct varlink_reply *r)
{
	struct worker *w = pp->w;
	struct job    *j = w->job;
	json_t	      *result;
	int64_t	       es;
	int	       status;

	if (j == NULL) {
		pool_program_bad(pp, "the program answered no call",
		    "a Run reply after its job ended");
		return;
	}
	if (r->error != NULL) {
		status = 1;
		result = json_pack("{s:s, s:O}", "error", r->error,
		    "parameters", r->params);
	} else {
		if (varlink_get_int(r->params, "exit_status", 0, 255, &es) !=
		    1) {
			pool_program_bad(pp,
			    "bad reply to Run from the program",
			    "exit_status is not a whole number from 0 to 255");
			return;
		}
		status = (int)es;
		result = json_incref(json_object_get(r->params, "result"));
	}
	/* What it wrote before it answered is the job's. */
	pool_program_pump(pp, 0, 1);
	pool_program_pump(pp, 1, 1);
	pp->call = POOL_PROGRAM_NONE;
	job_set_result(j, pool_program_result(pp, result, &status));
	json_decref(result);
	pool_worker_finish_job(w, j, status << 8, 0);
}

static void
pool_program_message(struct pool_program *pp, const char *msg, size_t len)
{
	struct varlink_reply r;
	const char	    *why;

	if (varlink_reply_parse(msg, len, &r, &why) != 0) {
		pool_program_bad(pp, "bad message from the program", why);
		return;
	}
	if (r.continues)
		pool_program_bad(pp, "bad reply from the program",
		    "\"continues\" to a call without \"more\"");
	else if (pp->call == POOL_PROGRAM_HELLO)
		pool_program_hello(pp, &r);
	else if (pp->call == POOL_PROGRAM_RUN)
		pool_program_answer(pp, &r);
	else
		pool_program_bad(pp, "the program answered no call",
		    r.error != NULL ? r.error : "a reply");
	varlink_reply_free(&r);
}

static void
pool_program_read_cb(struct bufferevent *bev, void *arg)
{
	struct pool_program *pp = arg;
	struct evbuffer	    *in = bufferevent_get_input(bev);
	struct evbuffer_ptr  pos;
	uint64_t	     limit;
	size_t		     len;
	char		     what[64];

	limit = cfg->max_message + pp->w->pool->cfg.max_output;
	while (pp->bev == bev && (len = evbuffer_get_length(in)) > 0) {
		evbuffer_ptr_set(in, &pos, pp->scanned, EVBUFFER_PTR_SET);
		pos = evbuffer_search(in, "", 1, &pos);
		if (pos.pos == -1) {
			pp->scanned = len;
			if (len <= limit)
				return;
			snprintf(what, sizeof what, "over %" PRIu64 " bytes",
			    limit);
			pool_program_bad(pp,
			    "a reply from the program is too "
			    "large",
			    what);
			return;
		}
		pp->scanned = 0;
		pool_program_message(pp,
		    (const char *)evbuffer_pullup(in, pos.pos + 1),
		    (size_t)pos.pos);
		/* The message may have ended the connection, and freed in. */
		if (pp->bev != bev)
			return;
		evbuffer_drain(in, (size_t)pos.pos + 1);
	}
}

static void
pool_program_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct pool_program *pp = arg;
	struct worker	    *w = pp->w;
	struct log_ctx	     ctx = pool_program_ctx(pp);

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	pool_program_close(pp);
	(void)bev;
	if (w->state == WORKER_STOPPING || w->state == WORKER_EXITED ||
	    w->stop != STOP_NONE)
		return;
	/*
	 * Without its socket the program is of no use: end it. Its worker
	 * then exits as it did, and its death is handled then.
	 */
	clog_warnx(&ctx,
	    "the program closed its connection (fd 3), killing it" LOG_KV
	    "pid=%d",
	    (int)pp->pid);
	if (pp->pid > 0)
		pool_program_kill(pp, SIGKILL);
	else
		pool_worker_kill(w);
}

/* "NAMEvalue" as a JSON string. */
static void
pool_program_env(struct varlink_buf *b, const char *name, const char *value)
{
	char *s;

	xasprintf(&s, "%s%s", name, value);
	varlink_buf_string(b, s);
	free(s);
}

/*
 * Hands job j to the program: one Run call, written by hand (with jansson
 * it took as much as the rest of the supervisor's work on a call).
 */
void
pool_program_run(struct pool_program *pp, struct job *j)
{
	struct varlink_buf b;
	struct iovec	   iov;
	char		 **p, *data, id[32];

	pool_program_log_rest(pp);
	varlink_buf_init(&b);
	varlink_buf_raw(&b,
	    "{\"method\":\"io.mprocd.Worker.Run\","
	    "\"parameters\":{\"id\":");
	varlink_buf_int(&b, j->id);
	varlink_buf_raw(&b, ",\"argv\":[");
	for (p = j->argv; *p != NULL; p++) {
		if (p != j->argv)
			varlink_buf_raw(&b, ",");
		varlink_buf_string(&b, *p);
	}
	varlink_buf_raw(&b, "],\"input\":");
	varlink_buf_json(&b, j->input);
	varlink_buf_raw(&b, ",\"env\":[");
	for (p = j->env; p != NULL && *p != NULL; p++) {
		varlink_buf_string(&b, *p);
		varlink_buf_raw(&b, ",");
	}
	snprintf(id, sizeof id, "%" PRId64, j->id);
	pool_program_env(&b, "MPROCD_JOB_ID=", id);
	varlink_buf_raw(&b, ",");
	pool_program_env(&b, "MPROCD_POOL=", pp->w->pool->name);
	varlink_buf_raw(&b, ",");
	pool_program_env(&b, "MPROCD_WORKER=", pp->w->name);
	varlink_buf_raw(&b, "],\"cwd\":");
	varlink_buf_string(&b, j->cwd);
	varlink_buf_raw(&b, ",\"stdin\":");
	if (j->stdin_data != NULL) {
		if ((data = util_base64_encode(j->stdin_data, j->stdin_len)) ==
		    NULL)
			fatal("base64");
		varlink_buf_string(&b, data);
		free(data);
	} else
		varlink_buf_raw(&b, "null");
	varlink_buf_raw(&b, "}}");
	iov.iov_base = varlink_buf_finish(&b, &iov.iov_len);
	if (pp->bev != NULL)
		bev_send(pp->bev, &iov, 1);
	free(iov.iov_base);
	pp->call = POOL_PROGRAM_RUN;
	if (pp->pid > 0)
		job_set_pid(j, pp->pid);
}

/*
 * Its worker is dead: read what the program sent before it died (its
 * answer may be there) and what is left in its pipes.
 */
void
pool_program_drain(struct pool_program *pp)
{
	if (pp->bev != NULL) {
		bev_read_all(pp->bev);
		pool_program_read_cb(pp->bev, pp);
	}
	pool_program_pump(pp, 0, 1);
	pool_program_pump(pp, 1, 1);
	pool_program_log_rest(pp);
}

/* The process group of pid, from /proc; -1 if it is gone. */
static pid_t
pool_program_pgrp(pid_t pid)
{
	char  path[64], buf[512], *p;
	FILE *f;
	int   pgrp;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	p = fgets(buf, sizeof buf, f);
	fclose(f);
	/* "pid (comm) state ppid pgrp ...": comm may hold anything. */
	if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %d", &pgrp) != 1)
		return -1;
	return (pid_t)pgrp;
}

/*
 * Resident bytes of pid and of its descendants in process group pgrp (what
 * it started and did not move away), from /proc.
 */
static uint64_t
pool_program_rss(pid_t pid, pid_t pgrp, int depth)
{
	char	       path[96];
	FILE	      *f;
	DIR	      *d;
	struct dirent *de;
	uint64_t       sum = 0;
	unsigned long  pages;
	int	       child;

	snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	if (fscanf(f, "%*u %lu", &pages) == 1)
		sum = (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
	fclose(f);
	if (depth >= POOL_PROGRAM_DEPTH)
		return sum;
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		return sum;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%.20s/children",
		    (int)pid, de->d_name);
		if ((f = fopen(path, "re")) == NULL)
			continue;
		while (fscanf(f, "%d", &child) == 1)
			if (pool_program_pgrp(child) == pgrp)
				sum += pool_program_rss(child, pgrp, depth + 1);
		fclose(f);
	}
	closedir(d);
	return sum;
}

/* Whether the program's group holds more than max_memory (0: no limit). */
int
pool_program_over_memory(const struct pool_program *pp)
{
	struct log_ctx ctx;
	uint64_t       max, rss;
	char	       a[UTIL_FMTLEN], b[UTIL_FMTLEN];

	if (pp == NULL || pp->pid <= 0 ||
	    (max = pp->w->pool->cfg.max_memory) == 0)
		return 0;
	if ((rss = pool_program_rss(pp->pid, pp->pid, 0)) <= max)
		return 0;
	ctx = pool_program_ctx(pp);
	clog_notice(&ctx,
	    "the program uses more memory than max_memory, replacing it" LOG_KV
	    "rss=%s" LOG_KV "max_memory=%s",
	    util_format_size(rss, a, sizeof a),
	    util_format_size(max, b, sizeof b));
	return 1;
}

pid_t
pool_program_pid(const struct pool_program *pp)
{
	return pp != NULL ? pp->pid : 0;
}

/*
 * Whether the program still has its connection: once it closed it, the
 * worker is as good as dead (its death comes with SIGCHLD, a moment later)
 * and must not be given a job.
 */
int
pool_program_usable(const struct pool_program *pp)
{
	return pp->bev != NULL;
}
