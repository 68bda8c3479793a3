/*
 * Writing to a bufferevent at once: what its socket takes now goes out in
 * this pass, not a loop pass later after an epoll_ctl, an epoll_wait and
 * another epoll_ctl. Client replies and worker frames both go this way.
 * And reading at once all that a dead peer left in its socket.
 */
#include "config.h"

#include <event2/buffer.h>

#include "mprocd.h"
#include "util.h"

/*
 * What bev's socket takes of iov[n] now, if nothing is queued before it.
 * Returns the bytes written; the caller queues the rest (an error too: the
 * bufferevent meets it again and reports it).
 */
size_t
bev_write_now(struct bufferevent *bev, const struct iovec *iov, int n)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return 0;
	return util_writev_some(bufferevent_getfd(bev), iov, n);
}

/* Sends iov[n] on bev: what the socket takes at once, the rest queued. */
void
bev_send(struct bufferevent *bev, const struct iovec *iov, int n)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	size_t		 off = bev_write_now(bev, iov, n);
	int		 i;

	for (i = 0; i < n; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		evbuffer_add(out, (const char *)iov[i].iov_base + off,
		    iov[i].iov_len - off);
		off = 0;
	}
}

/*
 * Reads into bev's input all its socket holds now: what a process wrote
 * before it died may be there when its death is seen first.
 */
void
bev_read_all(struct bufferevent *bev)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	int		 fd = bufferevent_getfd(bev);

	/*
	 * A bufferevent keeps the end of its input frozen (only it adds
	 * there): evbuffer_read() on it fails, and read nothing, until
	 * thawed.
	 */
	evbuffer_unfreeze(in, 0);
	while (evbuffer_read(in, fd, 65536) > 0)
		;
	evbuffer_freeze(in, 0);
}
