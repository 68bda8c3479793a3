/*
 * One client's connection: Varlink messages, each ended by a NUL byte,
 * answered in the order of the calls. Calls read in one go (pipelined) are
 * answered together, in one write; a call that waits (Wait, Cancel, a long
 * List) holds the later ones back. A client that misbehaves (bad JSON, an
 * oversize message, a message not finished within message_timeout) is
 * closed, and one that does not read its replies is not read either, so
 * its buffers stay bounded.
 */
#include "config.h"

#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "mprocd.h"
#include "util.h"
#include "varlink.h"
#include "xmalloc.h"

TAILQ_HEAD(conns, conn);

static struct conns conn_list = TAILQ_HEAD_INITIALIZER(conn_list);
static unsigned int conn_n;

/*
 * The replies to the calls read in one go (pipelined) are gathered in
 * conn_batch and written together once the last is answered: one writev(),
 * not one a call.
 */
static struct conn     *conn_batching;
static struct evbuffer *conn_batch;

/*
 * Connections with replies held until the state database commits what
 * they report (store.c), in the order they were first held.
 */
static TAILQ_HEAD(, conn) conn_held = TAILQ_HEAD_INITIALIZER(conn_held);

/* Calls of one client answered in one pass of the loop, at most. */
#define CONN_PASS_CALLS 1024
/* Bytes read from a client at once. */
#define CONN_READ (256 * 1024)
static const struct timeval conn_next_pass = { 0, 0 };

/* Notices about misbehaving clients, at most this many a minute. */
static struct log_ratelimit conn_notices = LOG_RATELIMIT("client error", 20,
    60);

static void conn_read_cb(struct bufferevent *, void *);
static void conn_write_cb(struct bufferevent *, void *);
static void conn_event_cb(struct bufferevent *, short, void *);
static void conn_resume_cb(evutil_socket_t, short, void *);
static void conn_closed_cb(evutil_socket_t, short, void *);
static void conn_stalled(evutil_socket_t, short, void *);

/* A client that control.c accepted, with its peer's credentials. */
struct conn *
conn_new(int fd, uid_t uid, gid_t gid, pid_t pid)
{
	struct conn *c = xcalloc(1, sizeof *c);

	c->uid = uid;
	c->gid = gid;
	c->pid = pid;
	c->bev = bufferevent_socket_new(ev_base, fd, BEV_OPT_CLOSE_ON_FREE);
	/*
	 * libevent reads 4 KiB a callback unless told: pipelined calls came
	 * a few dozen a pass, each pass a commit of the state database.
	 */
	bufferevent_set_max_single_read(c->bev, CONN_READ);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
	    c);
	c->resume = event_new(ev_base, -1, 0, conn_resume_cb, c);
	c->stall = evtimer_new(ev_base, conn_stalled, c);
	c->hup = event_new(ev_base, fd, EV_CLOSED, conn_closed_cb, c);
	bufferevent_enable(c->bev, EV_READ);
	TAILQ_INSERT_TAIL(&conn_list, c, entry);
	conn_n++;
	log_debug("client connected" LOG_KV "uid=%u" LOG_KV
		  "client_pid=%d" LOG_KV "clients=%u",
	    (unsigned)c->uid, (int)c->pid, conn_n);
	return c;
}

unsigned int
conn_count(void)
{
	return conn_n;
}

/* After a call that held the later ones back: go on with them. */
void
conn_resume(struct conn *c)
{
	event_active(c->resume, 0, 0);
}

/*
 * A reply written in pieces (List's) rather than by conn_answer(): after
 * conn_flush(), conn_write() adds to what is queued, conn_queued() says
 * how much that is, and conn_watch_output(c, low) has the conn ask for more
 * (method_list_continue) once no more than low bytes are left; 0 stops it.
 */
size_t
conn_queued(struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void
conn_write(struct conn *c, const void *data, size_t len)
{
	evbuffer_add(bufferevent_get_output(c->bev), data, len);
}

void
conn_watch_output(struct conn *c, size_t low)
{
	bufferevent_setwatermark(c->bev, EV_WRITE, low, 0);
}

/* Rate-limited, so a hostile client cannot flood the log. */
static void
conn_notice(struct conn *c, const char *what)
{
	if (log_ratelimit(&conn_notices, util_mono_usec()))
		log_notice("client error: %s" LOG_KV "uid=%u" LOG_KV
			   "client_pid=%d",
		    what, (unsigned)c->uid, (int)c->pid);
}

/*
 * Sends a message (freed): held while a transaction of the state database
 * is open, gathered in a batch, else as bev_send() does.
 */
static void
conn_send(struct conn *c, char *msg, size_t len, int continues)
{
	struct iovec iov = { msg, len };

	if (store_holding()) {
		if (!c->holding) {
			c->holding = 1;
			c->held_ends = 0;
			if (c->held == NULL)
				c->held = evbuffer_new();
			TAILQ_INSERT_TAIL(&conn_held, c, held_entry);
		}
		evbuffer_add(c->held, msg, len);
		c->held_ends += !continues;
		c->held_open = continues;
		free(msg);
		return;
	}
	if (c == conn_batching)
		evbuffer_add(conn_batch, msg, len);
	else
		bev_send(c->bev, &iov, 1);
	free(msg);
}

/*
 * A message many clients are sent (a piece of a followed job's output):
 * made once, text taken; each client's output holds a reference rather
 * than a copy, and it goes with the last.
 */
struct conn_msg *
conn_msg_new(char *text, size_t len, int continues)
{
	struct conn_msg *m = xcalloc(1, sizeof *m);

	m->text = text;
	m->len = len;
	m->continues = continues;
	m->refs = 1;
	return m;
}

void
conn_msg_unref(struct conn_msg *m)
{
	if (m == NULL || --m->refs > 0)
		return;
	free(m->text);
	free(m);
}

static void
conn_msg_cleanup(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	conn_msg_unref(arg);
}

/* Sends m to c: what the socket takes now, the rest by reference. */
void
conn_send_msg(struct conn *c, struct conn_msg *m)
{
	struct iovec iov = { m->text, m->len };
	size_t	     off;
	char	    *copy;

	/* Held or gathered with other replies: a copy, in its turn. */
	if (store_holding() || c == conn_batching) {
		copy = xmalloc(m->len);
		memcpy(copy, m->text, m->len);
		conn_send(c, copy, m->len, m->continues);
		return;
	}
	if ((off = bev_write_now(c->bev, &iov, 1)) >= m->len)
		return;
	m->refs++;
	if (evbuffer_add_reference(bufferevent_get_output(c->bev),
		m->text + off, m->len - off, conn_msg_cleanup, m) != 0)
		fatalx("evbuffer_add_reference failed");
}

/* Replies queued, gathered or held, not yet written. */
size_t
conn_unsent(struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) +
	    (c == conn_batching ? evbuffer_get_length(conn_batch) : 0) +
	    (c->holding ? evbuffer_get_length(c->held) : 0);
}

/* Writes what buf holds to c, as bev_send() does; buf is emptied. */
static void
conn_write_buffer(struct conn *c, struct evbuffer *buf)
{
	struct evbuffer_iovec v[16];
	struct iovec	      iov[16];
	int		      i, n;

	if (evbuffer_get_length(buf) == 0)
		return;
	n = evbuffer_peek(buf, -1, NULL, v, 16);
	for (i = 0; i < n && i < 16; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	evbuffer_drain(buf, bev_write_now(c->bev, iov, i));
	evbuffer_add_buffer(bufferevent_get_output(c->bev), buf);
}

/* Ends c's batch: what was gathered is sent, as bev_send() does. */
void
conn_flush(struct conn *c)
{
	if (c != conn_batching)
		return;
	conn_batching = NULL;
	conn_write_buffer(c, conn_batch);
	/*
	 * A Follow that stopped at its backlog, all of it gathered here and
	 * now taken by the socket: no write callback will wake it.
	 */
	if (c->following != NULL && !c->holding &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		method_follow_continue(c);
}

/*
 * Answers a call: a reply, or the error if error is set. flags: ONEWAY
 * (say nothing), CONTINUES (more replies follow). params (stolen) may be
 * NULL.
 */
void
conn_answer(struct conn *c, int flags, const char *error, json_t *params)
{
	char  *msg;
	size_t len;

	if (flags & VARLINK_ONEWAY) {
		json_decref(params);
		return;
	}
	if (error != NULL)
		msg = varlink_error_encode(error, params, &len);
	else
		msg = varlink_reply_encode(params, flags & VARLINK_CONTINUES,
		    &len);
	conn_send(c, msg, len, error == NULL && (flags & VARLINK_CONTINUES));
}

/*
 * A reply whose parameters were written by hand: b holds the parameters
 * object's text, and is emptied.
 */
void
conn_answer_text(struct conn *c, int flags, struct varlink_buf *b)
{
	struct varlink_buf msg;
	char		  *text;
	size_t		   len;

	if (flags & VARLINK_ONEWAY) {
		free(b->data);
		memset(b, 0, sizeof *b);
		return;
	}
	varlink_buf_init(&msg);
	varlink_buf_raw(&msg, "{\"parameters\":");
	varlink_buf_add(&msg, b->data, b->len);
	free(b->data);
	memset(b, 0, sizeof *b);
	if (flags & VARLINK_CONTINUES)
		varlink_buf_raw(&msg, ",\"continues\":true");
	varlink_buf_raw(&msg, "}");
	text = varlink_buf_finish(&msg, &len);
	conn_send(c, text, len, flags & VARLINK_CONTINUES);
}

/* Whether a closing c can go: nothing left to write, wait for or hold. */
static int
conn_done(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
	    !c->holding && c->pending == NULL && c->listing == NULL &&
	    c->following == NULL;
}

/*
 * A call answered in several replies (Wait, Run or Follow with "more")
 * whose held replies failed: its error was its last reply, so it ends.
 */
static void
conn_end_stream(struct conn *c)
{
	if (c->pending != NULL) {
		method_wait_free(c->pending);
		c->pending = NULL;
	}
	if (c->following != NULL) {
		method_follow_free(c->following);
		c->following = NULL;
	}
	conn_resume(c);
}

/*
 * The state database committed (why NULL) or failed to: the held replies
 * go out, or each becomes StorageFailed, why being the reason.
 */
void
conn_release_held(const char *why)
{
	struct conn *c;
	char	    *msg;
	size_t	     n, len;

	while ((c = TAILQ_FIRST(&conn_held)) != NULL) {
		TAILQ_REMOVE(&conn_held, c, held_entry);
		c->holding = 0;
		if (why != NULL) {
			/*
			 * One error in place of each call's last reply: the
			 * replies that continue go, and a call that goes on
			 * past them is ended by its error.
			 */
			n = c->held_ends;
			if (c->held_open) {
				n++;
				conn_end_stream(c);
			}
			evbuffer_drain(c->held, evbuffer_get_length(c->held));
			while (n-- > 0) {
				msg = varlink_error_encode(
				    "io.mprocd.StorageFailed",
				    json_pack("{s:s}", "reason", why), &len);
				evbuffer_add(c->held, msg, len);
				free(msg);
			}
		}
		conn_write_buffer(c, c->held);
		c->held_open = 0;
		/* A List written behind them goes on (no write may wake it). */
		if (c->listing != NULL)
			method_list_continue(c);
		else if (c->following != NULL)
			method_follow_continue(c);
		else if (c->closing && conn_done(c))
			conn_free(c);
	}
}

/* A Wait or a List reply holds the client's later calls back. */
static int
conn_busy(const struct conn *c)
{
	return c->pending != NULL || c->listing != NULL || c->following != NULL;
}

/* Stops reading; closes once the replies already queued are written. */
static void
conn_close(struct conn *c)
{
	conn_flush(c);
	c->closing = 1;
	evtimer_del(c->stall);
	bufferevent_disable(c->bev, EV_READ);
	if (conn_done(c))
		conn_free(c);
}

/* Handles one complete message; returns -1 if the client was closed. */
static int
conn_message(struct conn *c, const char *msg, size_t len)
{
	struct varlink_call call;
	const char	   *errstr;
	char		    what[160];

	if (varlink_call_parse(msg, len, &call, &errstr) != 0) {
		snprintf(what, sizeof what, "%s, closing the connection",
		    errstr);
		conn_notice(c, what);
		conn_close(c);
		return -1;
	}
	method_dispatch(c, &call);
	varlink_call_free(&call);
	return 0;
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	   *c = arg;
	struct evbuffer	   *in = bufferevent_get_input(bev);
	struct evbuffer_ptr pos;
	struct timeval	    tv;
	size_t		    len;
	char		    what[160];
	const char	   *msg;
	int		    handled = 0;

	if (conn_batch == NULL && (conn_batch = evbuffer_new()) == NULL)
		fatalx("evbuffer_new failed");
	conn_batching = c;
	while (!c->closing) {
		/* Later calls wait for the pending one; do not hoard them. */
		if (conn_busy(c)) {
			evtimer_del(c->stall);
			if (evbuffer_get_length(in) > cfg->max_message) {
				bufferevent_disable(bev, EV_READ);
				event_add(c->hup, NULL);
			}
			conn_flush(c);
			return;
		}
		/*
		 * A client that does not read its replies is not read either
		 * (the write callback reads it again once they are written).
		 */
		if (conn_unsent(c) > cfg->max_message) {
			conn_flush(c);
			conn_batching = c;
			if (evbuffer_get_length(bufferevent_get_output(bev)) >
			    cfg->max_message) {
				evtimer_del(c->stall);
				bufferevent_disable(bev, EV_READ);
				conn_batching = NULL;
				return;
			}
			/*
			 * Held for this pass's commit, which comes after this
			 * callback: the rest at the next pass, once they went.
			 */
			if (c->holding &&
			    evbuffer_get_length(c->held) > cfg->max_message) {
				conn_flush(c);
				event_add(c->resume, &conn_next_pass);
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
		if (conn_message(c, msg, (size_t)pos.pos) != 0)
			return; /* closed: conn_close() flushed */
		evbuffer_drain(in, (size_t)pos.pos + 1);
		/*
		 * Enough for one pass: the rest after the others' events and
		 * the pass's commit, so that a client pipelining thousands of
		 * calls holds nobody up, its replies included.
		 */
		if (++handled == CONN_PASS_CALLS) {
			conn_flush(c);
			/*
			 * A timer, not event_active(): libevent runs what a
			 * callback activates in the same go, before it polls
			 * again, and this client would have the loop to itself.
			 */
			event_add(c->resume, &conn_next_pass);
			return;
		}
	}
	conn_flush(c);
	return;

drained:
	conn_flush(c);
	/* Every whole call of a client that half-closed has been answered. */
	if (c->eof)
		conn_close(c);
	return;

oversize:
	snprintf(what, sizeof what,
	    "message larger than max_message (%" PRIu64
	    " bytes), closing the connection",
	    cfg->max_message);
	conn_notice(c, what);
	evbuffer_drain(in, evbuffer_get_length(in));
	conn_close(c);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->listing != NULL) {
		method_list_continue(c);
		return;
	}
	if (c->following != NULL) {
		method_follow_continue(c);
		return;
	}
	if (c->closing) {
		if (c->pending == NULL && !c->holding)
			conn_free(c);
		return;
	}
	/* Everything written: read (and answer) whatever was held back. */
	if (!(bufferevent_get_enabled(bev) & EV_READ) && c->pending == NULL) {
		if (!c->eof)
			bufferevent_enable(bev, EV_READ);
		conn_read_cb(bev, c);
	}
}

/*
 * End of file: a client that only shut down its writing half still reads
 * our replies, one that closed the socket is gone. On Linux the second
 * shows as POLLHUP.
 */
static int
conn_hung_up(struct conn *c)
{
	struct pollfd pfd = { bufferevent_getfd(c->bev), POLLOUT, 0 };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	/*
	 * A client that only half-closed still gets the replies to every
	 * call it sent, pipelined ones behind a pending Wait included.
	 */
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		conn_free(c);
	else if (what & BEV_EVENT_EOF) {
		/* Gone for good: nobody is left to wait for. */
		if (conn_busy(c) && conn_hung_up(c)) {
			conn_free(c);
			return;
		}
		c->eof = 1;
		bufferevent_disable(bev, EV_READ);
		conn_read_cb(bev, c);
	}
}

/* After a pending call: answer what was held back, or finish closing. */
static void
conn_resume_cb(evutil_socket_t fd, short events, void *arg)
{
	struct conn *c = arg;

	if (conn_busy(c))
		return;
	if (c->closing) {
		if (conn_done(c))
			conn_free(c);
		return;
	}
	event_del(c->hup);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) <=
		cfg->max_message &&
	    !c->eof)
		bufferevent_enable(c->bev, EV_READ);
	conn_read_cb(c->bev, c);
}

/*
 * Calls held back behind a pending one are not read, so end of file is
 * not seen either: a client gone for good must not keep its slot until the
 * pending call ends, which may be never. One that only half-closed is
 * still answered.
 */
static void
conn_closed_cb(evutil_socket_t fd, short events, void *arg)
{
	struct conn *c = arg;

	if (conn_hung_up(c))
		conn_free(c);
}

/* A message begun message_timeout ago is still not whole. */
static void
conn_stalled(evutil_socket_t fd, short events, void *arg)
{
	struct conn *c = arg;
	char	     t[UTIL_FMTLEN], what[160];

	snprintf(what, sizeof what,
	    "message not completed within "
	    "message_timeout (%s), closing the connection",
	    util_format_duration(cfg->message_timeout, t, sizeof t));
	conn_notice(c, what);
	conn_close(c);
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	TAILQ_REMOVE(&conn_list, c, entry);
	conn_n--;
	log_debug("client gone" LOG_KV "uid=%u" LOG_KV "client_pid=%d" LOG_KV
		  "pending=%s",
	    (unsigned)c->uid, (int)c->pid, c->pending != NULL ? "yes" : "no");
	if (c == conn_batching) {
		conn_batching = NULL;
		evbuffer_drain(conn_batch, evbuffer_get_length(conn_batch));
	}
	if (c->holding)
		TAILQ_REMOVE(&conn_held, c, held_entry);
	if (c->held != NULL)
		evbuffer_free(c->held);
	method_wait_free(c->pending);
	method_list_free(c->listing);
	method_follow_free(c->following);
	event_free(c->resume);
	event_free(c->stall);
	event_free(c->hup);
	bufferevent_free(c->bev);
	free(c);
}

/* At exit: write what replies the clients' sockets will take, then close. */
void
conn_free_all(void)
{
	struct conn	*c;
	struct evbuffer *out;

	while ((c = TAILQ_FIRST(&conn_list)) != NULL) {
		out = bufferevent_get_output(c->bev);
		/*
		 * A bufferevent freezes the front of its output so that only
		 * its own write callback drains it; evbuffer_write() would fail.
		 */
		evbuffer_unfreeze(out, 1);
		while (evbuffer_get_length(out) > 0 &&
		    evbuffer_write(out, bufferevent_getfd(c->bev)) > 0)
			;
		conn_free(c);
	}
	if (conn_batch != NULL) {
		evbuffer_free(conn_batch);
		conn_batch = NULL;
	}
}
