/*
 * The channel between the supervisor and one worker process: a socketpair
 * carrying the length-prefixed frames of lib/proto.h. Frames out (a job, a
 * signal for it, a new log level, a slot for a spare) and frames in, each
 * checked against the worker's state before pool-worker.c hears of it.
 * Anything unexpected from a worker ends that worker; so does the end of
 * its channel, whose death is then handled when it is reaped.
 */
#include "config.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "mprocd.h"
#include "proto.h"
#include "util.h"

static void pool_channel_read_cb(struct bufferevent *, void *);
static void pool_channel_event_cb(struct bufferevent *, short, void *);

static struct log_ctx
pool_channel_ctx(const struct worker *w)
{
	struct log_ctx ctx = { w->pool->name, w->name,
		w->job != NULL ? w->job->id : 0 };

	return ctx;
}

/*
 * Reads w's frames from fd (non-blocking, ours to close); with fd -1, from
 * the channel w already holds (a spare's, given to a slot).
 */
void
pool_channel_open(struct worker *w, int fd)
{
	if (fd != -1) {
		util_set_nonblock(fd);
		w->bev = bufferevent_socket_new(ev_base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
		bufferevent_enable(w->bev, EV_READ);
	}
	bufferevent_setcb(w->bev, pool_channel_read_cb, NULL,
	    pool_channel_event_cb, w);
}

void
pool_channel_close(struct worker *w)
{
	if (w->bev != NULL) {
		bufferevent_free(w->bev);
		w->bev = NULL;
	}
}

/* A frame to the worker, if it still has its channel. */
void
pool_channel_send(struct worker *w, uint32_t type, const void *payload,
    size_t len)
{
	uint8_t	     hdr[PROTO_HDRLEN];
	struct iovec iov[2] = { { hdr, sizeof hdr },
		{ (void *)(uintptr_t)payload, len } };

	if (w->bev == NULL)
		return;
	proto_hdr_pack(hdr, type, (uint32_t)len);
	bev_send(w->bev, iov, 2);
}

/* A frame from a worker: 0, or -1 if it must end. */
static int
pool_channel_frame(struct worker *w, const struct proto_hdr *h,
    const uint8_t *payload)
{
	struct log_ctx		 ctx = pool_channel_ctx(w);
	struct job		*j = w->job;
	struct proto_hello	 hello;
	struct proto_job_started started;
	struct proto_job_output	 out;
	struct proto_job_done	 done;
	uint32_t		 s;

	switch (h->type) {
	case PROTO_JOB_STARTED:
		/*
		 * Its process group gets kill(-pid): never 0 (ours), 1 (-1 is
		 * every process), a negative pid_t, or a second pid.
		 */
		if (proto_unpack_job_started(payload, h->len, &started) != 0 ||
		    started.pid <= 1 || started.pid > INT32_MAX)
			break;
		/* Job 0: a program worker's program. */
		if (started.id == 0 && w->prog != NULL &&
		    pool_program_pid(w->prog) == 0) {
			pool_program_set_pid(w->prog, (pid_t)started.pid);
			return 0;
		}
		if (j == NULL || (int64_t)started.id != j->id || j->pid != 0)
			break;
		job_set_pid(j, (pid_t)started.pid);
		return 0;
	case PROTO_JOB_OUTPUT:
		if (proto_unpack_job_output(payload, h->len, &out) != 0 ||
		    j == NULL || (int64_t)out.id != j->id)
			break;
		s = out.stream & ~(uint32_t)PROTO_OUTPUT_AFTER_LOSS;
		if (s != 1 && s != 2)
			break;
		if (out.stream & PROTO_OUTPUT_AFTER_LOSS)
			job_output_gap(j);
		job_output_add(j, (int)s - 1, out.data, out.len,
		    j->live->max_output);
		return 0;
	case PROTO_JOB_DONE:
		if (proto_unpack_job_done(payload, h->len, &done) != 0 ||
		    j == NULL || (int64_t)done.id != j->id || w->prog != NULL)
			break;
		pool_worker_finish_job(w, j, (int)done.status,
		    done.flags & PROTO_DONE_TRUNCATED);
		return 0;
	case PROTO_HELLO:
		if (proto_unpack_hello(payload, h->len, &hello) != 0 ||
		    (pid_t)hello.pid != w->pid)
			break;
		if (hello.version != PROTO_VERSION) {
			clog_warnx(&ctx,
			    "worker speaks protocol %u, not %u "
			    "(was mprocd upgraded while running?)",
			    hello.version, PROTO_VERSION);
			return -1;
		}
		/* Read after its death: its start is moot. */
		if (w->state == WORKER_EXITED)
			return 0;
		if (w->state != WORKER_STARTING && w->state != WORKER_STOPPING)
			break;
		pool_worker_hello(w);
		return 0;
	default:
		break;
	}
	clog_warnx(&ctx,
	    "bad frame from worker (type %u, %u bytes), "
	    "killing it",
	    h->type, h->len);
	return -1;
}

static void
pool_channel_read_cb(struct bufferevent *bev, void *arg)
{
	struct worker	*w = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct log_ctx	 ctx = pool_channel_ctx(w);
	struct proto_hdr h;
	uint8_t		*p;

	while (evbuffer_get_length(in) >= PROTO_HDRLEN) {
		p = evbuffer_pullup(in, PROTO_HDRLEN);
		if (proto_hdr_parse(p, &h) != 0) {
			clog_warnx(&ctx,
			    "bad frame header from worker (type "
			    "%u, %u bytes), killing it",
			    h.type, h.len);
			goto bad;
		}
		if (evbuffer_get_length(in) < PROTO_HDRLEN + h.len)
			return;
		p = evbuffer_pullup(in, PROTO_HDRLEN + (ev_ssize_t)h.len);
		if (pool_channel_frame(w, &h, p + PROTO_HDRLEN) != 0)
			goto bad;
		evbuffer_drain(in, PROTO_HDRLEN + h.len);
	}
	return;

bad:
	pool_channel_close(w);
	pool_worker_kill(w);
}

static void
pool_channel_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct worker *w = arg;
	struct log_ctx ctx = pool_channel_ctx(w);

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/*
	 * A worker without its channel is useless: make sure it is dead. The
	 * death itself is handled when SIGCHLD reaps it. A program worker
	 * ends as its program does: that is no news.
	 */
	pool_channel_close(w);
	(void)bev;
	if (w->pid > 0 && w->state != WORKER_STOPPING) {
		if (w->prog != NULL)
			clog_debug(&ctx,
			    "worker ended its channel" LOG_KV "worker_pid=%d",
			    (int)w->pid);
		else
			clog_warnx(&ctx,
			    "lost the connection to the worker, "
			    "killing it" LOG_KV "worker_pid=%d",
			    (int)w->pid);
		pool_worker_kill(w);
	}
}

/*
 * Reads what a dead worker wrote before it died (a JOB_DONE may be there),
 * so SIGCHLD arriving before the data does not lose a result.
 */
void
pool_channel_drain(struct worker *w)
{
	if (w->bev == NULL)
		return;
	bev_read_all(w->bev);
	pool_channel_read_cb(w->bev, w);
}
