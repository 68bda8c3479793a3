/*
 * mprocctl map: one job per line of standard input, like Python's Pool.map.
 * Each job's output is written in input order, as soon as it and every job
 * before it have finished.
 *
 * Two connections. Submits go out pipelined on the first. On the second,
 * each submitted line gets a Wait for its job and then a Get, sent in input
 * order: mprocd answers a connection's calls one at a time and in order, so
 * the replies come in input order, a line's Wait once its job has finished
 * and its Get right behind it, with no round trip of ours in between.
 * One poll(2) loop reads input, sends what is queued and takes whatever
 * replies have come, never waiting on one connection while another has
 * work: calls and replies go many to a read(2) or write(2), on both sides,
 * and mprocd's queue never runs dry waiting for us. At most MAP_WINDOW lines
 * are between being read and being written out, so endless input runs in
 * bounded memory and finished jobs are fetched before mprocd forgets them.
 * A pool whose queue is full (QueueFull) is tried again once one of our
 * jobs finishes, or after a pause.
 *
 * A program pool gets calls instead of commands: CMD is the function, the
 * ARGs (as call reads them) its arguments, and each job's result follows
 * its output. Which kind the pool is, one Status asks before the first
 * Submit: the two kinds of Submit differ, and one sent to the wrong kind
 * of pool may well run (a function named like the command, given the
 * words as strings), so trying one and falling back is no way to tell.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocctl.h"
#include "util.h"
#include "xmalloc.h"

#define MAP_WINDOW    1024 /* lines read but not yet written out */
#define MAP_CHUNK     64   /* fewest Submits sent together while busy */
#define MAP_RETRY_MIN 50   /* ms after QueueFull, doubling... */
#define MAP_RETRY_MAX 1000 /* ...up to this */

/* A line's Wait and Get, written as text: no JSON encoder per line. */
#define CMD_MAP_WAIT \
	"{\"method\":\"io.mprocd.Wait\"," \
	"\"parameters\":{\"ids\":[%" JSON_INTEGER_FORMAT "]}}"
#define CMD_MAP_GET \
	"{\"method\":\"io.mprocd.Get\"," \
	"\"parameters\":{\"id\":%" JSON_INTEGER_FORMAT "}}"

/* A call's Submit (to a program pool), after the function's name. */
#define CMD_MAP_INPUT "\"],\"input\":{\"args\":"
#define CMD_MAP_END   ",\"kwargs\":{}}}}"

static int cmd_map_exec(struct ctl *, int, char **);

const struct ctl_cmd cmd_map_entry = {
	.name = "map",
	.usage = "[-p POOL] [-t SEC] [-a ID]... [-l LOCK] [--[no-]progress] "
		 "CMD [ARG]...",
	.help = "run CMD or call a function per line of stdin; output in order",
	.details =
	    "  -p POOL  run the jobs in POOL (default: mprocd's default pool)\n"
	    "  -t SEC   end each job after SEC (30, 1.5s, 2min; 0: never) instead of\n"
	    "           the pool's job_timeout\n"
	    "  -a ID    run the jobs only after job ID has succeeded, as for submit\n"
	    "  -l LOCK  every job holds the lock LOCK while it runs: they run one at\n"
	    "           a time, in input order (and apart from other jobs that hold\n"
	    "           it)\n"
	    "  --progress, --no-progress\n"
	    "           draw the progress line even if stderr is not a terminal;\n"
	    "           never draw it\n"
	    "\n"
	    "Every {} in CMD and its ARGs is replaced by the line (without its\n"
	    "newline); if none has {}, the line is added as the last ARG. Empty lines\n"
	    "are jobs too. Each job's stdout goes to stdout and its stderr to stderr,\n"
	    "in the order of the input lines, each as soon as it and all before it\n"
	    "are done. A signal to mprocctl cancels the jobs not yet done.\n"
	    "\n"
	    "In a program pool (one with program = ...), CMD is a function and each\n"
	    "line a call: each ARG, once {} is replaced, is JSON if it parses, else\n"
	    "a string, as for 'mprocctl call'. Each call's output is followed by its\n"
	    "result as JSON on a line of its own (null if none), so that every input\n"
	    "line gives one result line.\n"
	    "\n"
	    "When stderr is a terminal, a progress line there shows the jobs done\n"
	    "(their output written) of all (N+ while stdin is still read), how many\n"
	    "failed and run, jobs a second, the time elapsed and the time left; it is\n"
	    "redrawn a few times a second, erased before output and at the end.\n"
	    "Never with --json.\n"
	    "\n"
	    "Exit status: 0 if every job succeeded, else 1 (a line on stderr names the\n"
	    "first that did not); 125 if mprocctl failed. With --json, writes each\n"
	    "job's Get reply (the job, its output in base64) on a line of its own.\n",
	.minargs = 1,
	.maxargs = -1,
	.exec = cmd_map_exec,
};

enum map_state {
	MAP_PENDING,	/* not submitted yet, or the queue was full */
	MAP_SUBMITTING, /* its Submit not answered yet */
	MAP_SUBMITTED,	/* has its job; its Wait and Get not sent yet */
	MAP_ASKED,	/* its Wait and Get sent */
};

struct map_line {
	char	      *text;
	json_int_t     id;
	enum map_state state;
};

struct map {
	struct ctl *ctl;
	char	  **argv;
	int	    argc;
	int	    braces;  /* some arg has {} */
	int	    program; /* a program pool: calls, not commands */
	char	   *prefix;  /* a Submit up to argv's first string */
	size_t	    prefixlen;
	char	   *call; /* one being written out */
	size_t	    calllen;
	size_t	    callsize;

	struct client	*submit;
	struct client	*out; /* Wait and Get, in input order */
	struct progress *progress;

	/* Line k is lines[k % MAP_WINDOW], for nprinted <= k < nread. */
	struct map_line lines[MAP_WINDOW];
	size_t		nread;
	size_t		nprinted;
	size_t		nasked; /* lines before: Wait and Get sent */
	size_t		npending;
	int		waited; /* line nprinted's Wait is answered */

	char  *in; /* in[inoff, inlen) not taken yet */
	size_t inoff;
	size_t inlen;
	size_t insize;
	int    eof;

	/* Lines with a Submit unanswered, in the order sent. */
	size_t	     sent[MAP_WINDOW]; /* by count % MAP_WINDOW */
	size_t	     nsent;
	size_t	     nanswered;
	size_t	     maxsent;  /* unanswered at most */
	uint64_t     retry_at; /* util_mono_usec(); 0: none */
	unsigned int retry_ms;

	size_t	   nfailed;
	size_t	   failed_line;
	json_int_t failed_id;
	char	   failed_desc[FORMAT_DESCLEN];
};

static struct map_line *
cmd_map_line(struct map *m, size_t k)
{
	return &m->lines[k % MAP_WINDOW];
}

/* Whether job id is of a line not yet written out, for the progress line. */
static int
cmd_map_ours(void *arg, json_int_t id)
{
	struct map *m = arg;
	size_t	    k;

	/* Ids are positive; a line without its job yet has 0. */
	for (k = m->nprinted; k < m->nread; k++) {
		if (cmd_map_line(m, k)->id == id)
			return 1;
	}
	return 0;
}

static void
cmd_map_count_cancelled(void *arg, size_t i, struct varlink_reply *reply)
{
	size_t *n = arg;

	if (reply->error == NULL)
		(*n)++;
}

/*
 * Cancels every job submitted and not yet written out, for when mprocctl
 * stops early: nobody would read their output. Returns how many it
 * cancelled.
 */
static size_t
cmd_map_cancel_all(struct map *m)
{
	struct varlink_reply reply;
	struct map_line	    *l;
	json_int_t	     ids[MAP_WINDOW];
	json_t		    *id;
	size_t		     k, nids = 0, n = 0;

	/* Submits already queued create jobs too: learn their ids. */
	while (m->nanswered < m->nsent) {
		client_recv(m->submit, &reply);
		l = cmd_map_line(m, m->sent[m->nanswered++ % MAP_WINDOW]);
		id = json_object_get(reply.params, "id");
		if (reply.error == NULL && json_is_integer(id)) {
			l->id = json_integer_value(id);
			l->state = MAP_SUBMITTED;
		}
		varlink_reply_free(&reply);
	}
	for (k = m->nprinted; k < m->nread; k++) {
		l = cmd_map_line(m, k);
		if (l->state == MAP_SUBMITTED || l->state == MAP_ASKED)
			ids[nids++] = l->id;
	}
	if (nids > 0)
		cmd_cancel_jobs(m->ctl->socket, ids, nids,
		    cmd_map_count_cancelled, &n);
	return n;
}

static void
cmd_map_interrupted(void *arg)
{
	size_t n;

	n = cmd_map_cancel_all(arg);
	mprocctl_warn("interrupted: cancelled %zu job%s", n, n == 1 ? "" : "s");
}

/* Fails like mprocctl_fail(), having cancelled the jobs first. */
static void __attribute__((format(printf, 2, 3), noreturn))
cmd_map_fail(struct map *m, const char *fmt, ...)
{
	va_list ap;
	char	msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	cmd_map_cancel_all(m);
	mprocctl_fail("%s", msg);
}

static void __attribute__((noreturn)) cmd_map_fail_reply(struct map *m,
    const char *method, struct varlink_reply *reply)
{
	char msg[512];

	cmd_map_fail(m, "%s",
	    client_error_message(method, reply, msg, sizeof msg));
}

/* Standard output is closed: nobody reads on, so stop as SIGPIPE would. */
static void __attribute__((noreturn)) cmd_map_stdout_closed(struct map *m)
{
	cmd_map_cancel_all(m);
	exit(CTL_EXIT_SIGNAL + SIGPIPE);
}

/* Moves whole lines from the input buffer into the window. */
static void
cmd_map_take_lines(struct map *m)
{
	struct map_line *l;
	json_t		*check;
	char		*p, *nl;
	size_t		 left, len;

	while (m->nread - m->nprinted < MAP_WINDOW && m->inoff < m->inlen) {
		p = m->in + m->inoff;
		left = m->inlen - m->inoff;
		if ((nl = memchr(p, '\n', left)) != NULL)
			len = (size_t)(nl - p);
		else if (m->eof)
			len = left;
		else
			break;
		if (memchr(p, '\0', len) != NULL)
			cmd_map_fail(m,
			    "line %zu of the input holds a NUL "
			    "byte, which no argument can",
			    m->nread + 1);
		l = cmd_map_line(m, m->nread);
		l->text = xstrndup(p, len);
		if ((check = json_string(l->text)) == NULL)
			cmd_map_fail(m,
			    "line %zu of the input is not valid "
			    "UTF-8 (mprocd carries text only)",
			    m->nread + 1);
		json_decref(check);
		l->id = 0;
		l->state = MAP_PENDING;
		m->nread++;
		m->npending++;
		m->inoff += len + (nl != NULL);
	}
}

static void
cmd_map_read_input(struct map *m)
{
	ssize_t n;

	/* Lines are taken from the front: move what is left there first. */
	if (m->inoff > 0) {
		memmove(m->in, m->in + m->inoff, m->inlen - m->inoff);
		m->inlen -= m->inoff;
		m->inoff = 0;
	}
	if (m->insize - m->inlen < 4096) {
		m->insize = m->insize == 0 ? 65536 : m->insize * 2;
		m->in = xreallocarray(m->in, 1, m->insize);
	}
	n = read(STDIN_FILENO, m->in + m->inlen, m->insize - m->inlen);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n == -1)
		cmd_map_fail(m, "reading standard input: %s", strerror(errno));
	if (n == 0)
		m->eof = 1;
	else
		m->inlen += (size_t)n;
	cmd_map_take_lines(m);
}

/* Appends len bytes to the call being written out. */
static void
cmd_map_put(struct map *m, const char *s, size_t len)
{
	if (m->callsize - m->calllen < len) {
		while (m->callsize - m->calllen < len)
			m->callsize = m->callsize == 0 ? 1024 : m->callsize * 2;
		m->call = xreallocarray(m->call, 1, m->callsize);
	}
	memcpy(m->call + m->calllen, s, len);
	m->calllen += len;
}

/* Appends text (valid UTF-8, checked already) as inside a JSON string. */
static void
cmd_map_put_escaped(struct map *m, const char *s, size_t len)
{
	char   esc[8];
	size_t i, done = 0;

	for (i = 0; i < len; i++) {
		if (s[i] != '"' && s[i] != '\\' && (unsigned char)s[i] >= 0x20)
			continue;
		cmd_map_put(m, s + done, i - done);
		if (s[i] == '"' || s[i] == '\\') {
			esc[0] = '\\';
			esc[1] = s[i];
			cmd_map_put(m, esc, 2);
		} else {
			snprintf(esc, sizeof esc, "\\u%04x",
			    (unsigned char)s[i]);
			cmd_map_put(m, esc, 6);
		}
		done = i + 1;
	}
	cmd_map_put(m, s + done, len - done);
}

/* arg with every {} replaced by line. */
static char *
cmd_map_replace(const char *arg, const char *line)
{
	const char *a, *b;
	char	   *s;
	size_t	    len = 0, n, linelen = strlen(line);

	for (a = arg; (b = strstr(a, "{}")) != NULL; a = b + 2)
		len += (size_t)(b - a) + linelen;
	s = xmalloc(len + strlen(a) + 1);
	len = 0;
	for (a = arg; (b = strstr(a, "{}")) != NULL; a = b + 2) {
		n = (size_t)(b - a);
		memcpy(s + len, a, n);
		memcpy(s + len + n, line, linelen);
		len += n + linelen;
	}
	memcpy(s + len, a, strlen(a) + 1);
	return s;
}

/* An argument of a call, {} replaced, read as call reads its ARGs. */
static json_t *
cmd_map_call_arg(const char *arg, const char *line)
{
	char   *s = cmd_map_replace(arg, line);
	json_t *v;

	/* Both are valid UTF-8, checked already. */
	v = cmd_call_arg(s);
	free(s);
	return v;
}

/*
 * Queues the Submit of a line to a program pool: the function, then its
 * arguments as input.args. Each argument may parse as JSON, so these are
 * built of jansson objects: a call costs more than its parsing anyway.
 */
static void
cmd_map_queue_call(struct map *m, const char *line)
{
	json_t *args = json_array();
	char   *s;
	int	i;

	m->calllen = 0;
	cmd_map_put(m, m->prefix, m->prefixlen);
	cmd_map_put(m, "\"", 1);
	s = cmd_map_replace(m->argv[0], line);
	cmd_map_put_escaped(m, s, strlen(s));
	free(s);
	cmd_map_put(m, CMD_MAP_INPUT, strlen(CMD_MAP_INPUT));
	for (i = 1; i < m->argc; i++)
		json_array_append_new(args, cmd_map_call_arg(m->argv[i], line));
	if (!m->braces)
		json_array_append_new(args, cmd_map_call_arg("{}", line));
	if ((s = json_dumps(args, JSON_COMPACT)) == NULL)
		cmd_map_fail(m, "cannot encode the arguments of a call");
	json_decref(args);
	cmd_map_put(m, s, strlen(s));
	free(s);
	cmd_map_put(m, CMD_MAP_END, strlen(CMD_MAP_END));
	client_queue_text(m->submit, m->call, m->calllen);
}

/*
 * Queues the Submit of a line: CMD and ARGs with {} replaced by the line,
 * or the line appended. The text is written here, not built of jansson
 * objects and dumped: that cost mprocctl more CPU per job than all its
 * system calls.
 */
static void
cmd_map_queue_submit(struct map *m, const char *line)
{
	const char *a, *b;
	size_t	    len = strlen(line);
	int	    i;

	if (m->program) {
		cmd_map_queue_call(m, line);
		return;
	}
	m->calllen = 0;
	cmd_map_put(m, m->prefix, m->prefixlen);
	for (i = 0; i < m->argc; i++) {
		cmd_map_put(m, i == 0 ? "\"" : ",\"", i == 0 ? 1 : 2);
		for (a = m->argv[i]; (b = strstr(a, "{}")) != NULL; a = b + 2) {
			cmd_map_put_escaped(m, a, (size_t)(b - a));
			cmd_map_put_escaped(m, line, len);
		}
		cmd_map_put_escaped(m, a, strlen(a));
		cmd_map_put(m, "\"", 1);
	}
	if (!m->braces) {
		cmd_map_put(m, ",\"", 2);
		cmd_map_put_escaped(m, line, len);
		cmd_map_put(m, "\"", 1);
	}
	cmd_map_put(m, "]}}", 3);
	client_queue_text(m->submit, m->call, m->calllen);
}

/*
 * Queues Submits for pending lines. While the window is full, lines free
 * up one at a time as output is written; they are sent MAP_CHUNK or more
 * together, so that mprocd reads them with one read(2) and answers with
 * one write(2), rather than once per job. The jobs already asked for keep
 * the pool busy meanwhile.
 */
static void
cmd_map_submit(struct map *m)
{
	struct map_line *l;
	size_t		 k;

	if (m->npending == 0)
		return;
	if (m->retry_at != 0) {
		if (util_mono_usec() < m->retry_at)
			return;
		m->retry_at = 0;
	}
	if (m->nread - m->nprinted == MAP_WINDOW &&
	    !(m->eof && m->inoff == m->inlen) && m->npending < MAP_CHUNK &&
	    m->nasked - m->nprinted >= MAP_CHUNK)
		return;
	for (k = m->nasked; k < m->nread && m->npending > 0 &&
	     m->nsent - m->nanswered < m->maxsent;
	     k++) {
		l = cmd_map_line(m, k);
		if (l->state != MAP_PENDING)
			continue;
		cmd_map_queue_submit(m, l->text);
		l->state = MAP_SUBMITTING;
		m->sent[m->nsent++ % MAP_WINDOW] = k;
		m->npending--;
	}
}

/*
 * Takes the Submit replies read so far. A line that met QueueFull is
 * pending again; then one Submit at a time probes until the queue has
 * room, doubling as they succeed.
 */
static void
cmd_map_submit_reply(struct map *m)
{
	struct varlink_reply reply;
	struct map_line	    *l;
	json_t		    *id;
	int		     full = 0, ok = 0;

	while (m->nanswered < m->nsent && client_buffered(m->submit)) {
		client_recv(m->submit, &reply);
		l = cmd_map_line(m, m->sent[m->nanswered++ % MAP_WINDOW]);
		id = json_object_get(reply.params, "id");
		if (reply.error != NULL &&
		    strcmp(reply.error, "io.mprocd.QueueFull") == 0) {
			l->state = MAP_PENDING;
			m->npending++;
			full = 1;
		} else if (reply.error != NULL)
			cmd_map_fail_reply(m, "io.mprocd.Submit", &reply);
		else if (!json_is_integer(id) || json_integer_value(id) <= 0)
			cmd_map_fail(m,
			    "bad reply from mprocd: Submit gave no "
			    "job id");
		else {
			l->id = json_integer_value(id);
			l->state = MAP_SUBMITTED;
			if (m->maxsent < MAP_WINDOW)
				m->maxsent *= 2;
			ok = 1;
		}
		varlink_reply_free(&reply);
	}
	if (full) {
		m->maxsent = 1;
		m->retry_ms = m->retry_ms == 0 ? MAP_RETRY_MIN
					       : m->retry_ms * 2;
		if (m->retry_ms > MAP_RETRY_MAX)
			m->retry_ms = MAP_RETRY_MAX;
		m->retry_at = util_mono_usec() + m->retry_ms * USEC_PER_MSEC;
	} else if (ok)
		m->retry_ms = 0;
}

/*
 * Queues a Wait and then a Get for each submitted line, in input order,
 * up to the first line without a job yet.
 */
static void
cmd_map_ask(struct map *m)
{
	struct map_line *l;
	char		 call[128];
	int		 len;

	while (m->nasked < m->nread &&
	    (l = cmd_map_line(m, m->nasked))->state == MAP_SUBMITTED) {
		len = snprintf(call, sizeof call, CMD_MAP_WAIT, l->id);
		client_queue_text(m->out, call, (size_t)len);
		len = snprintf(call, sizeof call, CMD_MAP_GET, l->id);
		client_queue_text(m->out, call, (size_t)len);
		l->state = MAP_ASKED;
		m->nasked++;
	}
}

/* Writes out a line's Get reply; notes the first job that failed. */
static void
cmd_map_print(struct map *m, struct map_line *l, struct varlink_reply *reply)
{
	json_t *job;
	int	failed;

	if (reply->error != NULL)
		cmd_map_fail_reply(m, "io.mprocd.Get", reply);
	job = json_object_get(reply->params, "job");
	if (!json_is_object(job) || format_job_id(job) != l->id)
		cmd_map_fail(m,
		    "bad reply from mprocd: Get of job %" JSON_INTEGER_FORMAT
		    " has no such job",
		    l->id);
	if (!format_job_finished(job))
		cmd_map_fail(m,
		    "bad reply from mprocd: job %" JSON_INTEGER_FORMAT
		    " is unfinished after its Wait",
		    l->id);
	failed = format_exit_status(job) != 0;
	progress_done(m->progress, failed);
	progress_output(m->progress, reply->params);
	if (m->ctl->json) {
		/* Flushed before mprocctl next waits: see cmd_map_run(). */
		if (json_dumpf(reply->params, stdout, JSON_COMPACT) != 0 ||
		    fputc('\n', stdout) == EOF) {
			m->nprinted++;
			cmd_map_stdout_closed(m);
		}
	} else if (format_write_output(reply->params, 0) != 0 ||
	    (m->program && cmd_call_write_result(reply->params, 1) != 0)) {
		m->nprinted++;
		cmd_map_stdout_closed(m);
	}
	if (failed && m->nfailed++ == 0) {
		m->failed_line = m->nprinted + 1;
		m->failed_id = l->id;
		format_describe(job, m->failed_desc, sizeof m->failed_desc);
	}
	free(l->text);
	l->text = NULL;
	m->nprinted++;
}

/*
 * Takes the Wait and Get replies read so far: they come in input order,
 * a line's Wait once its job has finished and its Get right behind it.
 * The Wait's reply is passed over unparsed: the Get's tells again that the
 * job has finished, and why not if the Wait failed (NoSuchJob,
 * PermissionDenied), with the output besides.
 */
static void
cmd_map_out_reply(struct map *m)
{
	struct varlink_reply reply;

	while (m->nprinted < m->nasked && client_buffered(m->out)) {
		if (!m->waited) {
			client_skip(m->out);
			m->waited = 1;
			/* One of ours is done: its pool may have room again. */
			m->retry_at = 0;
			continue;
		}
		client_recv(m->out, &reply);
		cmd_map_print(m, cmd_map_line(m, m->nprinted), &reply);
		m->waited = 0;
		varlink_reply_free(&reply);
	}
}

/* What to poll a connection for: replies expected, calls not yet sent. */
static void
cmd_map_poll_client(struct pollfd *pfd, struct client *c, int replies)
{
	pfd->fd = client_fd(c);
	pfd->events = (replies ? POLLIN : 0) |
	    (client_unsent(c) > 0 ? POLLOUT : 0);
	if (pfd->events == 0)
		pfd->fd = -1;
}

/* Until every line is read, run and written out. */
static void
cmd_map_run(struct map *m)
{
	struct pollfd pfd[4];
	uint64_t      now;
	int	      timeout, allread;

	for (;;) {
		cmd_map_take_lines(m);
		cmd_map_submit(m);
		cmd_map_ask(m);
		client_write(m->submit);
		client_write(m->out);
		if (m->ctl->json && fflush(stdout) != 0)
			cmd_map_stdout_closed(m);
		allread = m->eof && m->inoff == m->inlen;
		if (allread && m->nprinted == m->nread)
			return;
		progress_total(m->progress, m->nread, allread);

		pfd[0].fd = -1;
		pfd[0].events = POLLIN;
		if (!m->eof && m->nread - m->nprinted < MAP_WINDOW)
			pfd[0].fd = STDIN_FILENO;
		cmd_map_poll_client(&pfd[1], m->submit,
		    m->nanswered < m->nsent);
		cmd_map_poll_client(&pfd[2], m->out, m->nprinted < m->nasked);
		timeout = -1;
		if (m->retry_at != 0) {
			now = util_mono_usec();
			timeout = m->retry_at <= now
			    ? 0
			    : (int)((m->retry_at - now) / USEC_PER_MSEC) + 1;
		}
		if (pfd[0].fd == -1 && pfd[1].fd == -1 && pfd[2].fd == -1 &&
		    timeout == -1)
			cmd_map_fail(m, "internal error: nothing to wait for");
		progress_pollfd(m->progress, &pfd[3]);
		timeout = progress_timeout(m->progress, timeout);
		if (mprocctl_poll(pfd, 4, timeout) == -1) {
			if (errno != EINTR)
				cmd_map_fail(m, "poll: %s", strerror(errno));
			continue;
		}
		if (pfd[0].revents != 0)
			cmd_map_read_input(m);
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			client_read(m->submit);
			cmd_map_submit_reply(m);
		}
		if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			client_read(m->out);
			cmd_map_out_reply(m);
		}
		progress_update(m->progress, &pfd[3]);
	}
}

/*
 * The text of a Submit with params (an object, stolen), up to where argv's
 * first string goes: cmd_map_queue_submit() writes the rest.
 */
static char *
cmd_map_prefix(json_t *params)
{
	char  *p, *s;
	size_t len;

	if ((p = json_dumps(params, JSON_COMPACT)) == NULL)
		mprocctl_fail("cannot encode the Submit call");
	json_decref(params);
	len = strlen(p);
	if (len < 2 || p[len - 1] != '}')
		mprocctl_fail("internal error: Submit's parameters are %s", p);
	p[len - 1] = '\0';
	xasprintf(&s,
	    "{\"method\":\"io.mprocd.Submit\",\"parameters\":"
	    "%s%s\"argv\":[",
	    p, len > 2 ? "," : "");
	free(p);
	return s;
}

/*
 * Whether the jobs go to a program pool, as Status tells. A pool it does
 * not show is left to the Submits to refuse, as for a command pool.
 */
static int
cmd_map_is_program(struct client *c, const char *pool)
{
	json_t *st, *program;
	int	yes;

	st = client_call(c, "io.mprocd.Status", NULL);
	program = json_object_get(cmd_call_pool(st, pool), "program");
	yes = json_is_string(program);
	json_decref(st);
	return yes;
}

static int
cmd_map_exec(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd *cmd = &cmd_map_entry;
	struct map	     *m;
	json_t		     *tmpl, *check;
	const char	     *pool = NULL;
	int		      ch, i, status, mode = PROGRESS_AUTO;

	tmpl = json_object();
	while ((ch = mprocctl_getopt_long(cmd, argc, argv,
		    "p:t:a:l:", progress_options)) != -1) {
		switch (ch) {
		case 'p':
			json_object_set_new(tmpl, "pool",
			    mprocctl_string(cmd, "-p", optarg));
			pool = optarg;
			break;
		case 't':
			json_object_set_new(tmpl, "timeout_sec",
			    json_real(mprocctl_parse_seconds(cmd, ch, optarg)));
			break;
		case 'a':
		case 'l':
			mprocctl_dep_option(cmd, ch, optarg, tmpl);
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
	check = mprocctl_string_array(cmd, argv, argc, "argument");
	json_decref(check);
	json_object_set_new(tmpl, "cwd", mprocctl_cwd());

	m = xcalloc(1, sizeof *m);
	m->ctl = ctl;
	m->argv = argv;
	m->argc = argc;
	for (i = 0; i < argc; i++) {
		if (strstr(argv[i], "{}") != NULL)
			m->braces = 1;
	}
	m->prefix = cmd_map_prefix(tmpl);
	m->prefixlen = strlen(m->prefix);
	m->maxsent = MAP_WINDOW;
	m->submit = client_connect(ctl->socket);
	m->out = client_connect(ctl->socket);
	m->program = cmd_map_is_program(m->submit, pool);
	mprocctl_catch_signals(cmd_map_interrupted, m);
	if (progress_wanted(mode, ctl->json))
		m->progress = progress_new(STDERR_FILENO, ctl->socket,
		    cmd_map_ours, m);

	cmd_map_run(m);
	progress_free(m->progress);

	status = 0;
	if (m->nfailed > 0) {
		mprocctl_warn("%zu of %zu jobs did not succeed; the first, "
			      "line %zu (job %" JSON_INTEGER_FORMAT "), %s",
		    m->nfailed, m->nread, m->failed_line, m->failed_id,
		    m->failed_desc);
		status = CTL_EXIT_SOME_FAILED;
	}
	client_free(m->submit);
	client_free(m->out);
	free(m->prefix);
	free(m->call);
	free(m->in);
	free(m);
	return status;
}
