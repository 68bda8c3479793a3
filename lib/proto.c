#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto.h"
#include "xmalloc.h"

void
proto_buf_init(struct proto_buf *b)
{
	memset(b, 0, sizeof *b);
}

void
proto_buf_free(struct proto_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

static void
buf_put(struct proto_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (b->size - b->len < n) {
		while (b->size - b->len < n)
			b->size = b->size == 0 ? 256 : b->size * 2;
		b->data = xreallocarray(b->data, 1, b->size);
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void
proto_put_u32(struct proto_buf *b, uint32_t v)
{
	buf_put(b, &v, sizeof v);
}

void
proto_put_u64(struct proto_buf *b, uint64_t v)
{
	buf_put(b, &v, sizeof v);
}

/* A u32 length, then the bytes. */
void
proto_put_bytes(struct proto_buf *b, const void *p, size_t n)
{
	proto_put_u32(b, (uint32_t)n);
	buf_put(b, p, n);
}

void
proto_put_str(struct proto_buf *b, const char *s)
{
	proto_put_bytes(b, s, strlen(s));
}

void
proto_reader_init(struct proto_reader *r, const void *p, size_t n)
{
	r->data = p;
	r->len = n;
	r->off = 0;
	r->error = 0;
}

static int
reader_take(struct proto_reader *r, void *out, size_t n)
{
	if (r->error || r->len - r->off < n) {
		r->error = 1;
		memset(out, 0, n);
		return -1;
	}
	memcpy(out, r->data + r->off, n);
	r->off += n;
	return 0;
}

uint32_t
proto_get_u32(struct proto_reader *r)
{
	uint32_t	 v;

	reader_take(r, &v, sizeof v);
	return v;
}

uint64_t
proto_get_u64(struct proto_reader *r)
{
	uint64_t	 v;

	reader_take(r, &v, sizeof v);
	return v;
}

/* Points into the payload; NULL (and error set) if it runs past the end. */
const void *
proto_get_bytes(struct proto_reader *r, size_t *n)
{
	uint32_t	 len = proto_get_u32(r);
	const void	*p;

	if (r->error || r->len - r->off < len) {
		r->error = 1;
		*n = 0;
		return NULL;
	}
	p = r->data + r->off;
	r->off += len;
	*n = len;
	return p;
}

/* A copy, NUL-terminated; NULL on error or an embedded NUL. */
char *
proto_get_str(struct proto_reader *r)
{
	const char	*p;
	size_t		 n;

	if ((p = proto_get_bytes(r, &n)) == NULL)
		return NULL;
	if (memchr(p, '\0', n) != NULL) {
		r->error = 1;
		return NULL;
	}
	return xstrndup(p, n);
}

int
proto_hdr_parse(const uint8_t *p, struct proto_hdr *h)
{
	memcpy(&h->type, p, 4);
	memcpy(&h->len, p + 4, 4);
	return h->len > PROTO_MAX_PAYLOAD ? -1 : 0;
}

void
proto_hdr_pack(uint8_t *p, uint32_t type, uint32_t len)
{
	memcpy(p, &type, 4);
	memcpy(p + 4, &len, 4);
}

int
proto_send(int fd, uint32_t type, const void *payload, size_t len)
{
	uint8_t		 hdr[PROTO_HDRLEN];
	struct iovec	 iov[2];
	ssize_t		 n;
	int		 iovcnt = 2;

	if (len > PROTO_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	proto_hdr_pack(hdr, type, (uint32_t)len);
	iov[0].iov_base = hdr;
	iov[0].iov_len = sizeof hdr;
	iov[1].iov_base = (void *)(uintptr_t)payload;
	iov[1].iov_len = len;
	while (iovcnt > 0) {
		n = writev(fd, iov + 2 - iovcnt, iovcnt);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		while (n > 0 && iovcnt > 0) {
			struct iovec	*v = &iov[2 - iovcnt];

			if ((size_t)n >= v->iov_len) {
				n -= (ssize_t)v->iov_len;
				v->iov_len = 0;
				iovcnt--;
			} else {
				v->iov_base = (uint8_t *)v->iov_base + n;
				v->iov_len -= (size_t)n;
				n = 0;
			}
		}
		while (iovcnt > 0 && iov[2 - iovcnt].iov_len == 0)
			iovcnt--;
	}
	return 0;
}

static int
read_full(int fd, void *p, size_t n)
{
	ssize_t	 r;
	size_t	 off = 0;

	while (off < n) {
		r = read(fd, (uint8_t *)p + off, n - off);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0) {
			errno = off == 0 ? 0 : EPROTO;
			return -1;
		}
		off += (size_t)r;
	}
	return 0;
}

/* A whole frame; -1 with errno 0 at a clean end of stream. */
int
proto_recv(int fd, struct proto_hdr *h, uint8_t **payload)
{
	uint8_t	 hdr[PROTO_HDRLEN];

	*payload = NULL;
	if (read_full(fd, hdr, sizeof hdr) != 0)
		return -1;
	if (proto_hdr_parse(hdr, h) != 0) {
		errno = EMSGSIZE;
		return -1;
	}
	if (h->len == 0)
		return 0;
	*payload = xmalloc(h->len);
	if (read_full(fd, *payload, h->len) != 0) {
		free(*payload);
		*payload = NULL;
		if (errno == 0)
			errno = EPROTO;
		return -1;
	}
	return 0;
}
