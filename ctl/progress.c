/*
 * The progress line of map and wait on stderr: jobs done of the total,
 * failed, running, jobs a second, time elapsed and time left. It is drawn
 * at most every PROGRESS_INTERVAL however many jobs finish meanwhile,
 * erased before output that would land on it (and redrawn once due), and
 * erased at the end, so the terminal is left as it would be without it.
 *
 * How many of the jobs run, only mprocd knows: its Status names the job
 * of each worker. The line asks at most once a second, as it is drawn, on
 * a connection of its own, and never waits for the answer. The line is decoration: should that
 * connection fail, it goes on without the count, and mprocctl's work is
 * neither held up nor failed by it.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocctl.h"
#include "util.h"
#include "xmalloc.h"

#define PROGRESS_INTERVAL (250 * USEC_PER_MSEC) /* between draws, at least */
#define PROGRESS_ASK	  USEC_PER_SEC		/* between Status calls */
#define PROGRESS_SAMPLES  10 /* one a second: the rate of the last 10s */
#define PROGRESS_LINELEN  256
#define PROGRESS_MAXREPLY (16U << 20) /* a larger Status: count no more */
#define PROGRESS_ERASE	  "\r\033[K"

const struct option progress_options[] = {
	{ "progress", no_argument, NULL, PROGRESS_ON },
	{ "no-progress", no_argument, NULL, PROGRESS_OFF },
	{ NULL, 0, NULL, 0 },
};

struct progress {
	int	 fd;			 /* where the line goes */
	int	 out_tty;		 /* standard output is a terminal too */
	int	 shown;			 /* the line is there now */
	char	 line[PROGRESS_LINELEN]; /* as last drawn */
	uint64_t start;
	uint64_t drawn; /* util_mono_usec() of the last draw */

	size_t total;
	int    total_known; /* else more may come */
	size_t done;
	size_t failed;
	size_t running;
	int    running_known;

	/* done once a second, in a ring: sample k at k % PROGRESS_SAMPLES. */
	uint64_t sample_usec[PROGRESS_SAMPLES];
	size_t	 sample_done[PROGRESS_SAMPLES];
	size_t	 nsamples;

	/* Status, to count the running jobs that ours() claims. */
	int sfd; /* -1: no connection */
	int (*ours)(void *, json_int_t);
	void	*arg;
	uint64_t asked; /* when the last Status went out; 0: never */
	int	 waiting;
	char	*buf; /* its reply: buf[0, len) */
	size_t	 len;
	size_t	 size;
};

/* The line drawn, for mprocctl's own messages and exit to erase. */
static struct progress *progress_current;

/* Whether to draw the line, mode being the options' PROGRESS_*. */
int
progress_wanted(int mode, int json)
{
	const char *term = getenv("TERM");

	if (json || mode == PROGRESS_OFF)
		return 0;
	if (mode == PROGRESS_ON)
		return 1;
	/* A dumb terminal (Emacs' shell) would show the escapes. */
	return isatty(STDERR_FILENO) && (term == NULL || strcmp(term, "dumb"));
}

static void
progress_write(struct progress *p, const char *s, size_t len)
{
	ssize_t n;

	/* A line that cannot be drawn is not worth failing for. */
	while (len > 0) {
		n = write(p->fd, s, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

static void
progress_disconnect(struct progress *p)
{
	if (p->sfd != -1)
		close(p->sfd);
	p->sfd = -1;
	p->waiting = 0;
	p->running_known = 0;
	free(p->buf);
	p->buf = NULL;
	p->len = p->size = 0;
}

static void
progress_connect(struct progress *p, const char *path)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (path == NULL || strlen(path) >= sizeof sun.sun_path)
		return;
	memcpy(sun.sun_path, path, strlen(path));
	p->sfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (p->sfd != -1 &&
	    connect(p->sfd, (struct sockaddr *)&sun, sizeof sun) != 0)
		progress_disconnect(p);
}

/* Sends a Status call if one is due and none is unanswered. */
static void
progress_ask(struct progress *p, uint64_t now)
{
	static const char call[] = "{\"method\":\"io.mprocd.Status\"}";

	if (p->sfd == -1 || p->waiting ||
	    (p->asked != 0 && now - p->asked < PROGRESS_ASK))
		return;
	/* With its NUL: a few bytes that a new socket always takes whole. */
	if (send(p->sfd, call, sizeof call, MSG_DONTWAIT | MSG_NOSIGNAL) !=
	    (ssize_t)sizeof call) {
		progress_disconnect(p);
		return;
	}
	p->asked = now;
	p->waiting = 1;
}

/* The workers of a Status reply whose job ours() claims. */
static size_t
progress_count_running(struct progress *p, json_t *status)
{
	json_t *pool, *worker, *job;
	size_t	i, j, n = 0;

	json_array_foreach(json_object_get(status, "pools"), i, pool) {
		json_array_foreach(json_object_get(pool, "workers"), j,
		    worker) {
			job = json_object_get(worker, "job");
			if (json_is_integer(job) &&
			    p->ours(p->arg, json_integer_value(job)))
				n++;
		}
	}
	return n;
}

/* Takes what has come of the Status reply; counts once it is whole. */
static void
progress_read(struct progress *p)
{
	struct varlink_reply reply;
	const char	    *errstr;
	char		    *nul;
	ssize_t		     n;

	if (p->size - p->len < 4096) {
		if (p->size >= PROGRESS_MAXREPLY) {
			progress_disconnect(p);
			return;
		}
		p->size = p->size == 0 ? 65536 : p->size * 2;
		p->buf = xreallocarray(p->buf, 1, p->size);
	}
	n = recv(p->sfd, p->buf + p->len, p->size - p->len, MSG_DONTWAIT);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		progress_disconnect(p);
		return;
	}
	p->len += (size_t)n;
	if ((nul = memchr(p->buf + p->len - n, '\0', (size_t)n)) == NULL)
		return;
	if (varlink_reply_parse(p->buf, (size_t)(nul - p->buf), &reply,
		&errstr) != 0 ||
	    reply.error != NULL) {
		varlink_reply_free(&reply);
		progress_disconnect(p);
		return;
	}
	p->running = progress_count_running(p, reply.params);
	p->running_known = 1;
	varlink_reply_free(&reply);
	p->len = 0;
	p->waiting = 0;
}

/* Notes done now, if the last sample is a second old. */
static void
progress_sample(struct progress *p, uint64_t now)
{
	size_t k = p->nsamples % PROGRESS_SAMPLES;

	if (p->nsamples > 0 &&
	    now - p->sample_usec[(p->nsamples - 1) % PROGRESS_SAMPLES] <
		USEC_PER_SEC)
		return;
	p->sample_usec[k] = now;
	p->sample_done[k] = p->done;
	p->nsamples++;
}

/* Jobs a second since the oldest sample: over the last ten seconds. */
static double
progress_rate(struct progress *p, uint64_t now)
{
	size_t oldest = 0;

	if (p->nsamples >= PROGRESS_SAMPLES)
		oldest = p->nsamples % PROGRESS_SAMPLES;
	if (now <= p->sample_usec[oldest])
		return 0;
	return (double)(p->done - p->sample_done[oldest]) *
	    (double)USEC_PER_SEC / (double)(now - p->sample_usec[oldest]);
}

/* M:SS, or H:MM:SS from an hour. */
static const char *
progress_time(uint64_t sec, char *buf, size_t len)
{
	if (sec >= 3600)
		snprintf(buf, len, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64,
		    sec / 3600, sec / 60 % 60, sec % 60);
	else
		snprintf(buf, len, "%" PRIu64 ":%02" PRIu64, sec / 60,
		    sec % 60);
	return buf;
}

/* The line's text at now, cut to fit width columns without wrapping. */
static void
progress_format(struct progress *p, uint64_t now, size_t width, char *buf,
    size_t len)
{
	char	 running[32] = "", left[48] = "", elapsed[32], t[32];
	double	 rate = progress_rate(p, now);
	uint64_t sec;

	if (p->running_known)
		snprintf(running, sizeof running, ", %zu running", p->running);
	if (p->total_known && (p->done >= p->total || rate > 0)) {
		sec = 0;
		if (p->done < p->total)
			sec = (uint64_t)((double)(p->total - p->done) / rate +
			    0.5);
		snprintf(left, sizeof left, ", %s left",
		    progress_time(sec, t, sizeof t));
	}
	snprintf(buf, len,
	    "%zu/%zu%s done, %zu failed%s, %.*f jobs/s, %s elapsed%s", p->done,
	    p->total, p->total_known ? "" : "+", p->failed, running,
	    rate < 9.95 ? 1 : 0, rate,
	    progress_time((now - p->start) / USEC_PER_SEC, elapsed,
		sizeof elapsed),
	    left);
	if (width > 1 && strlen(buf) > width - 1)
		buf[width - 1] = '\0';
}

static void
progress_draw(struct progress *p, uint64_t now)
{
	struct winsize ws;
	char	       text[PROGRESS_LINELEN], out[PROGRESS_LINELEN + 8];
	size_t	       width = 80;
	int	       n;

	if (ioctl(p->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		width = ws.ws_col;
	progress_format(p, now, width, text, sizeof text);
	p->drawn = now;
	if (p->shown && strcmp(text, p->line) == 0)
		return;
	/* Over the old line, then the rest of it cleared: no flicker. */
	n = snprintf(out, sizeof out, "\r%s\033[K", text);
	progress_write(p, out, (size_t)n);
	memcpy(p->line, text, sizeof p->line);
	p->shown = 1;
}

/*
 * A progress line on fd for jobs to come. With ours, the jobs running
 * are counted: those whose id ours(arg, id) claims, asked of mprocd at
 * socket.
 */
struct progress *
progress_new(int fd, const char *socket, int (*ours)(void *, json_int_t),
    void *arg)
{
	static int	 registered;
	struct progress *p;

	p = xcalloc(1, sizeof *p);
	p->fd = fd;
	p->out_tty = isatty(STDOUT_FILENO);
	/* The first draw one interval on: a quick run shows no line. */
	p->start = p->drawn = util_mono_usec();
	p->sfd = -1;
	p->ours = ours;
	p->arg = arg;
	progress_sample(p, p->start);
	if (ours != NULL)
		progress_connect(p, socket);
	progress_current = p;
	if (!registered) {
		/* An exit without a word (stdout closed) erases it too. */
		atexit(progress_hide_current);
		registered = 1;
	}
	return p;
}

/* Erases the line; the terminal is left as if there had been none. */
void
progress_free(struct progress *p)
{
	if (p == NULL)
		return;
	progress_hide(p);
	progress_disconnect(p);
	if (progress_current == p)
		progress_current = NULL;
	free(p);
}

/* How many jobs in all; known: no more will come. */
void
progress_total(struct progress *p, size_t total, int known)
{
	if (p == NULL)
		return;
	p->total = total;
	p->total_known = known;
}

/* One job more is done; failed: it did not succeed. */
void
progress_done(struct progress *p, int failed)
{
	if (p == NULL)
		return;
	p->done++;
	if (failed)
		p->failed++;
}

/* Erases the line until the next update that is due draws it again. */
void
progress_hide(struct progress *p)
{
	if (p == NULL || !p->shown)
		return;
	progress_write(p, PROGRESS_ERASE, strlen(PROGRESS_ERASE));
	p->shown = 0;
}

/* progress_hide() of the line there is, before mprocctl says something. */
void
progress_hide_current(void)
{
	progress_hide(progress_current);
}

/*
 * Output is about to be written: a Get reply's, or with reply NULL a line
 * on standard output. The line is erased if the output may land on it.
 */
void
progress_output(struct progress *p, json_t *reply)
{
	if (p == NULL || !p->shown)
		return;
	if (p->out_tty ||
	    json_string_length(json_object_get(reply, "stderr")) > 0)
		progress_hide(p);
}

/* What to poll(2) for: the Status reply while one is awaited. */
void
progress_pollfd(struct progress *p, struct pollfd *pfd)
{
	pfd->fd = p != NULL && p->waiting ? p->sfd : -1;
	pfd->events = POLLIN;
	pfd->revents = 0;
}

/* timeout (ms, -1: none), or less if the line is due to be drawn sooner. */
int
progress_timeout(struct progress *p, int timeout)
{
	uint64_t now, due;
	int	 ms;

	if (p == NULL)
		return timeout;
	now = util_mono_usec();
	due = p->drawn + PROGRESS_INTERVAL;
	ms = due <= now ? 0 : (int)((due - now + 999) / USEC_PER_MSEC);
	return timeout == -1 || ms < timeout ? ms : timeout;
}

/*
 * After a poll(2) with pfd as progress_pollfd() set it: takes the Status
 * reply, asks again when due, and draws the line when due.
 */
void
progress_update(struct progress *p, const struct pollfd *pfd)
{
	uint64_t now;

	if (p == NULL)
		return;
	if (pfd != NULL && pfd->fd != -1 && pfd->fd == p->sfd &&
	    (pfd->revents & (POLLIN | POLLHUP | POLLERR)))
		progress_read(p);
	now = util_mono_usec();
	progress_sample(p, now);
	if (now - p->drawn < PROGRESS_INTERVAL)
		return;
	/* Asked as it is drawn: the count shows from the next draw on. */
	progress_ask(p, now);
	progress_draw(p, now);
}
