/*
 * mprocctl map: one job per line of standard input, like Python's Pool.map.
 * Each job's output is written in input order, as soon as it and every job
 * before it have finished.
 *
 * Three connections, since calls on one are answered in order: Submits go
 * out pipelined on the first; the second holds one Wait with "more" at a
 * time, telling which jobs have finished; the third fetches output with Get
 * in input order. At most MAP_WINDOW lines are between being read and being
 * written out, so endless input runs in bounded memory and finished jobs are
 * fetched before mprocd forgets them. A pool whose queue is full (QueueFull)
 * is tried again once one of our jobs finishes, or after a pause.
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

#define MAP_WINDOW	1024	/* lines read but not yet written out */
#define MAP_CHUNK	64	/* Submits pipelined at once */
#define MAP_RETRY_MIN	50	/* ms after QueueFull, doubling... */
#define MAP_RETRY_MAX	1000	/* ...up to this */

static int	cmd_map_exec(struct ctl *, int, char **);

const struct ctl_cmd cmd_map_entry = {
	.name = "map",
	.usage = "[-p POOL] [-t SEC] CMD [ARG]...",
	.help = "run CMD once per line of stdin; write the output in order",
	.details =
"  -p POOL  run the jobs in POOL (default: mprocd's default pool)\n"
"  -t SEC   end each job after SEC (30, 1.5s, 2min; 0: never) instead of\n"
"           the pool's job_timeout\n"
"\n"
"Every {} in CMD and its ARGs is replaced by the line (without its\n"
"newline); if none has {}, the line is added as the last ARG. Empty lines\n"
"are jobs too. Each job's stdout goes to stdout and its stderr to stderr,\n"
"in the order of the input lines, each as soon as it and all before it\n"
"are done. A signal to mprocctl cancels the jobs not yet done.\n"
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
	MAP_SUBMITTED,
	MAP_WAITING,	/* in the Wait under way */
	MAP_DONE,
};

struct map_line {
	char		*text;
	json_int_t	 id;
	enum map_state	 state;
};

/* A job of the Wait under way, sorted by id. */
struct map_wait {
	json_int_t	 id;
	size_t		 line;
};

struct map {
	struct ctl	*ctl;
	char		**argv;
	int		 argc;
	int		 braces;	/* some arg has {} */
	json_t		*tmpl;		/* Submit's parameters but argv */

	struct client	*submit;
	struct client	*wait;
	struct client	*get;

	/* Line k is lines[k % MAP_WINDOW], for nprinted <= k < nread. */
	struct map_line	 lines[MAP_WINDOW];
	size_t		 nread;
	size_t		 nprinted;
	size_t		 npending;

	char		*in;
	size_t		 inlen;
	size_t		 insize;
	int		 eof;

	/* The Submits of the chunk under way: sent, and answered so far. */
	size_t		 inflight[MAP_CHUNK];
	size_t		 nsent;
	size_t		 nrecvd;
	size_t		 chunk;
	uint64_t	 retry_at;	/* util_mono_usec() */
	unsigned int	 retry_ms;

	struct map_wait	 waiting[MAP_WINDOW];
	size_t		 nwaiting;
	size_t		 wait_left;
	int		 wait_busy;

	size_t		 nfailed;
	size_t		 failed_line;
	json_int_t	 failed_id;
	char		 failed_desc[JOB_DESCLEN];
};

static struct map_line *
map_line(struct map *m, size_t k)
{
	return &m->lines[k % MAP_WINDOW];
}

static void
map_count_cancelled(void *arg, size_t i, struct varlink_reply *reply)
{
	size_t	*n = arg;

	if (reply->error == NULL)
		(*n)++;
}

/*
 * Cancels every job submitted and not yet done, for when mprocctl stops
 * early: nobody would read their output. Returns how many it cancelled.
 */
static size_t
map_cancel_all(struct map *m)
{
	struct varlink_reply	 reply;
	struct map_line		*l;
	json_int_t		 ids[MAP_WINDOW];
	json_t			*id;
	size_t			 k, nids = 0, n = 0;

	/* Submits already sent create jobs too: learn their ids. */
	for (; m->nrecvd < m->nsent; m->nrecvd++) {
		client_recv(m->submit, &reply);
		id = json_object_get(reply.params, "id");
		if (reply.error == NULL && json_is_integer(id)) {
			l = map_line(m, m->inflight[m->nrecvd]);
			l->id = json_integer_value(id);
			l->state = MAP_SUBMITTED;
		}
		varlink_reply_free(&reply);
	}
	for (k = m->nprinted; k < m->nread; k++) {
		l = map_line(m, k);
		if (l->state == MAP_SUBMITTED || l->state == MAP_WAITING)
			ids[nids++] = l->id;
	}
	if (nids > 0)
		job_cancel(m->ctl->socket, ids, nids, map_count_cancelled, &n);
	return n;
}

static void
map_interrupted(void *arg)
{
	size_t	 n;

	n = map_cancel_all(arg);
	ctl_warn("interrupted: cancelled %zu job%s", n, n == 1 ? "" : "s");
}

/* Fails like ctl_fail(), having cancelled the jobs first. */
static void __attribute__((format(printf, 2, 3), noreturn))
map_fail(struct map *m, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	map_cancel_all(m);
	ctl_fail("%s", msg);
}

static void __attribute__((noreturn))
map_fail_reply(struct map *m, const char *method, struct varlink_reply *reply)
{
	char	 msg[512];

	map_fail(m, "%s", client_error_message(method, reply, msg,
	    sizeof msg));
}

/* Moves whole lines from the input buffer into the window. */
static void
map_take_lines(struct map *m)
{
	struct map_line	*l;
	json_t		*check;
	char		*p = m->in, *nl;
	size_t		 left = m->inlen, len;

	while (m->nread - m->nprinted < MAP_WINDOW && left > 0) {
		if ((nl = memchr(p, '\n', left)) != NULL)
			len = (size_t)(nl - p);
		else if (m->eof)
			len = left;
		else
			break;
		if (memchr(p, '\0', len) != NULL)
			map_fail(m, "line %zu of the input holds a NUL byte, "
			    "which no argument can", m->nread + 1);
		l = map_line(m, m->nread);
		l->text = xstrndup(p, len);
		if ((check = json_string(l->text)) == NULL)
			map_fail(m, "line %zu of the input is not valid UTF-8 "
			    "(mprocd carries text only)", m->nread + 1);
		json_decref(check);
		l->id = 0;
		l->state = MAP_PENDING;
		m->nread++;
		m->npending++;
		len += nl != NULL;
		p += len;
		left -= len;
	}
	if (p != m->in && left > 0)
		memmove(m->in, p, left);
	m->inlen = left;
}

static void
map_read_input(struct map *m)
{
	ssize_t	 n;

	if (m->insize - m->inlen < 4096) {
		m->insize = m->insize == 0 ? 65536 : m->insize * 2;
		m->in = xreallocarray(m->in, 1, m->insize);
	}
	n = read(STDIN_FILENO, m->in + m->inlen, m->insize - m->inlen);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n == -1)
		map_fail(m, "reading standard input: %s", strerror(errno));
	if (n == 0)
		m->eof = 1;
	else
		m->inlen += (size_t)n;
	map_take_lines(m);
}

/* CMD and ARGs with {} replaced by the line, or the line appended. */
static json_t *
map_argv(struct map *m, const char *line)
{
	json_t		*argv = json_array();
	const char	*a, *b;
	char		*s;
	size_t		 len, n;
	int		 i;

	for (i = 0; i < m->argc; i++) {
		a = m->argv[i];
		len = strlen(a) + 1;
		for (b = a; (b = strstr(b, "{}")) != NULL; b += 2)
			len += strlen(line);
		s = xmalloc(len);
		for (n = 0; (b = strstr(a, "{}")) != NULL; a = b + 2) {
			memcpy(s + n, a, (size_t)(b - a));
			n += (size_t)(b - a);
			memcpy(s + n, line, strlen(line));
			n += strlen(line);
		}
		memcpy(s + n, a, strlen(a) + 1);
		json_array_append_new(argv, json_string(s));
		free(s);
	}
	if (!m->braces)
		json_array_append_new(argv, json_string(line));
	return argv;
}

/*
 * Submits pending lines, MAP_CHUNK calls at a time, until none is left or
 * the pool's queue is full; then the rest waits for a retry.
 */
static void
map_submit(struct map *m)
{
	struct varlink_reply	 reply;
	struct map_line		*l;
	json_t			*params, *id;
	size_t			 k = m->nprinted, i;
	int			 full = 0;

	if (m->npending == 0 || util_mono_usec() < m->retry_at)
		return;
	while (m->npending > 0 && !full) {
		for (m->nsent = m->nrecvd = 0; m->nsent < m->chunk &&
		    m->nsent < m->npending; k++) {
			if (map_line(m, k)->state != MAP_PENDING)
				continue;
			params = json_copy(m->tmpl);
			json_object_set_new(params, "argv", map_argv(m,
			    map_line(m, k)->text));
			client_send(m->submit, "io.mprocd.Submit", params, 0);
			m->inflight[m->nsent++] = k;
		}
		while (m->nrecvd < m->nsent) {
			client_recv(m->submit, &reply);
			i = m->inflight[m->nrecvd++];
			l = map_line(m, i);
			id = json_object_get(reply.params, "id");
			if (reply.error != NULL && strcmp(reply.error,
			    "io.mprocd.QueueFull") == 0)
				full = 1;
			else if (reply.error != NULL)
				map_fail_reply(m, "io.mprocd.Submit", &reply);
			else if (!json_is_integer(id) ||
			    json_integer_value(id) <= 0)
				map_fail(m, "bad reply from mprocd: Submit "
				    "gave no job id");
			else {
				l->id = json_integer_value(id);
				l->state = MAP_SUBMITTED;
				m->npending--;
			}
			varlink_reply_free(&reply);
		}
		m->nsent = m->nrecvd = 0;
		if (full) {
			/* Probe with one call until the queue has room. */
			m->chunk = 1;
			m->retry_ms = m->retry_ms == 0 ? MAP_RETRY_MIN :
			    m->retry_ms * 2;
			if (m->retry_ms > MAP_RETRY_MAX)
				m->retry_ms = MAP_RETRY_MAX;
			m->retry_at = util_mono_usec() +
			    m->retry_ms * USEC_PER_MSEC;
		} else {
			m->chunk = m->chunk * 2 > MAP_CHUNK ? MAP_CHUNK :
			    m->chunk * 2;
			m->retry_ms = 0;
		}
		k = m->nprinted;
	}
}

static int
map_wait_cmp(const void *a, const void *b)
{
	json_int_t	 x = ((const struct map_wait *)a)->id;
	json_int_t	 y = ((const struct map_wait *)b)->id;

	return x < y ? -1 : x > y;
}

/* Starts a Wait with "more" for the jobs submitted since the last one. */
static void
map_wait_start(struct map *m)
{
	struct map_line	*l;
	json_t		*ids;
	size_t		 k;

	if (m->wait_busy)
		return;
	ids = json_array();
	m->nwaiting = 0;
	for (k = m->nprinted; k < m->nread; k++) {
		l = map_line(m, k);
		if (l->state != MAP_SUBMITTED)
			continue;
		l->state = MAP_WAITING;
		m->waiting[m->nwaiting].id = l->id;
		m->waiting[m->nwaiting++].line = k;
		json_array_append_new(ids, json_integer(l->id));
	}
	if (m->nwaiting == 0) {
		json_decref(ids);
		return;
	}
	qsort(m->waiting, m->nwaiting, sizeof m->waiting[0], map_wait_cmp);
	client_send(m->wait, "io.mprocd.Wait", json_pack("{s:o}", "ids", ids),
	    VARLINK_MORE);
	m->wait_left = m->nwaiting;
	m->wait_busy = 1;
}

/* Reads the replies of the Wait that have come: those jobs are done. */
static void
map_wait_reply(struct map *m)
{
	struct varlink_reply	 reply;
	struct map_wait		 key = { 0, 0 }, *w;
	struct map_line		*l;
	json_t			*jobs, *job;
	size_t			 i;

	do {
		client_recv(m->wait, &reply);
		if (reply.error != NULL)
			map_fail_reply(m, "io.mprocd.Wait", &reply);
		jobs = job_check_jobs(reply.params, "io.mprocd.Wait");
		json_array_foreach(jobs, i, job) {
			key.id = job_id(job);
			w = bsearch(&key, m->waiting, m->nwaiting,
			    sizeof m->waiting[0], map_wait_cmp);
			l = w != NULL ? map_line(m, w->line) : NULL;
			if (l == NULL || l->state != MAP_WAITING ||
			    !job_finished(job))
				map_fail(m, "bad reply from mprocd: Wait gave "
				    "job %" JSON_INTEGER_FORMAT " unasked, "
				    "twice or unfinished", key.id);
			l->state = MAP_DONE;
			m->wait_left--;
		}
		/* One of ours is done, so its pool may have room again. */
		m->retry_at = 0;
		if (!reply.continues) {
			if (m->wait_left != 0)
				map_fail(m, "bad reply from mprocd: Wait ended "
				    "with %zu jobs unfinished", m->wait_left);
			m->wait_busy = 0;
		}
		varlink_reply_free(&reply);
	} while (m->wait_busy && client_buffered(m->wait));
}

/* Writes the output of the done jobs that are next in input order. */
static void
map_flush(struct map *m)
{
	struct varlink_reply	 reply;
	struct map_line		*l;
	json_t			*job;
	int			 rv;

	while (m->nprinted < m->nread &&
	    (l = map_line(m, m->nprinted))->state == MAP_DONE) {
		client_send(m->get, "io.mprocd.Get", json_pack("{s:I}", "id",
		    l->id), 0);
		client_recv(m->get, &reply);
		if (reply.error != NULL)
			map_fail_reply(m, "io.mprocd.Get", &reply);
		job = json_object_get(reply.params, "job");
		if (!json_is_object(job) || job_id(job) != l->id)
			map_fail(m, "bad reply from mprocd: Get of job %"
			    JSON_INTEGER_FORMAT " has no such job", l->id);
		if (m->ctl->json) {
			json_dumpf(reply.params, stdout, JSON_COMPACT);
			rv = fputc('\n', stdout) == EOF || fflush(stdout) != 0 ?
			    -1 : 0;
		} else
			rv = job_write_output(reply.params, 0);
		if (rv != 0) {
			/* Nobody reads on: stop, as SIGPIPE would. */
			m->nprinted++;
			map_cancel_all(m);
			exit(CTL_EXIT_SIGNAL + SIGPIPE);
		}
		if (job_exit_status(job) != 0 && m->nfailed++ == 0) {
			m->failed_line = m->nprinted + 1;
			m->failed_id = l->id;
			job_describe(job, m->failed_desc,
			    sizeof m->failed_desc);
		}
		varlink_reply_free(&reply);
		free(l->text);
		l->text = NULL;
		m->nprinted++;
	}
}

/* Until every line is read, run and written out. */
static void
map_run(struct map *m)
{
	struct pollfd	 pfd[2];
	nfds_t		 n;
	uint64_t	 now;
	int		 timeout, in, w;

	for (;;) {
		map_take_lines(m);
		map_submit(m);
		map_wait_start(m);
		map_flush(m);
		if (m->eof && m->inlen == 0 && m->nprinted == m->nread)
			return;

		n = 0;
		in = w = -1;
		timeout = -1;
		if (!m->eof && m->nread - m->nprinted < MAP_WINDOW) {
			in = (int)n;
			pfd[n].fd = STDIN_FILENO;
			pfd[n++].events = POLLIN;
		}
		if (m->wait_busy) {
			w = (int)n;
			pfd[n].fd = client_fd(m->wait);
			pfd[n++].events = POLLIN;
			if (client_buffered(m->wait))
				timeout = 0;
		}
		if (m->npending > 0 && timeout != 0) {
			now = util_mono_usec();
			timeout = m->retry_at <= now ? 0 :
			    (int)((m->retry_at - now) / USEC_PER_MSEC) + 1;
		}
		if (n == 0 && timeout == -1)
			map_fail(m, "internal error: nothing to wait for");
		for (; n < 2; n++)
			pfd[n].fd = -1;
		if (ctl_poll(pfd, 2, timeout) == -1) {
			if (errno != EINTR)
				map_fail(m, "poll: %s", strerror(errno));
			continue;
		}
		if (in != -1 && pfd[in].revents != 0)
			map_read_input(m);
		if (w != -1 && m->wait_busy && (pfd[w].revents != 0 ||
		    client_buffered(m->wait)))
			map_wait_reply(m);
	}
}

static int
cmd_map_exec(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd	*cmd = &cmd_map_entry;
	struct map		*m;
	json_t			*tmpl, *check;
	int			 ch, i, status;

	tmpl = json_object();
	while ((ch = ctl_getopt(cmd, argc, argv, "p:t:")) != -1) {
		switch (ch) {
		case 'p':
			json_object_set_new(tmpl, "pool",
			    job_string(cmd, "-p", optarg));
			break;
		case 't':
			json_object_set_new(tmpl, "timeout_sec",
			    json_real(ctl_parse_seconds(cmd, ch, optarg)));
			break;
		}
	}
	argc -= optind;
	argv += optind;
	ctl_check_nargs(cmd, argc, 1, -1);
	check = job_string_array(cmd, argv, argc, "argument");
	json_decref(check);
	json_object_set_new(tmpl, "cwd", job_cwd());

	m = xcalloc(1, sizeof *m);
	m->ctl = ctl;
	m->argv = argv;
	m->argc = argc;
	for (i = 0; i < argc; i++) {
		if (strstr(argv[i], "{}") != NULL)
			m->braces = 1;
	}
	m->tmpl = tmpl;
	m->chunk = MAP_CHUNK;
	m->submit = client_connect(ctl->socket);
	m->wait = client_connect(ctl->socket);
	m->get = client_connect(ctl->socket);
	ctl_catch_signals(map_interrupted, m);

	map_run(m);

	status = 0;
	if (m->nfailed > 0) {
		ctl_warn("%zu of %zu jobs did not succeed; the first, line %zu "
		    "(job %" JSON_INTEGER_FORMAT "), %s", m->nfailed, m->nread,
		    m->failed_line, m->failed_id, m->failed_desc);
		status = CTL_EXIT_SOME_FAILED;
	}
	client_free(m->submit);
	client_free(m->wait);
	client_free(m->get);
	json_decref(m->tmpl);
	free(m->in);
	free(m);
	return status;
}
