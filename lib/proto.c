#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"
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
proto_buf_put(struct proto_buf *b, const void *p, size_t n)
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
	proto_buf_put(b, &v, sizeof v);
}

void
proto_put_u64(struct proto_buf *b, uint64_t v)
{
	proto_buf_put(b, &v, sizeof v);
}

/* A u32 length, then the bytes. */
void
proto_put_bytes(struct proto_buf *b, const void *p, size_t n)
{
	proto_put_u32(b, (uint32_t)n);
	proto_buf_put(b, p, n);
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
proto_reader_take(struct proto_reader *r, void *out, size_t n)
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
	uint32_t v;

	proto_reader_take(r, &v, sizeof v);
	return v;
}

uint64_t
proto_get_u64(struct proto_reader *r)
{
	uint64_t v;

	proto_reader_take(r, &v, sizeof v);
	return v;
}

/* Points into the payload; NULL (and error set) if it runs past the end. */
const void *
proto_get_bytes(struct proto_reader *r, size_t *n)
{
	uint32_t    len = proto_get_u32(r);
	const void *p;

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
	const char *p;
	size_t	    n;

	if ((p = proto_get_bytes(r, &n)) == NULL)
		return NULL;
	if (memchr(p, '\0', n) != NULL) {
		r->error = 1;
		return NULL;
	}
	return xstrndup(p, n);
}

void
proto_pack_hello(struct proto_buf *b, uint32_t version, uint32_t pid)
{
	proto_buf_init(b);
	proto_put_u32(b, version);
	proto_put_u32(b, pid);
}

int
proto_unpack_hello(const void *p, size_t n, struct proto_hello *m)
{
	struct proto_reader r;

	proto_reader_init(&r, p, n);
	m->version = proto_get_u32(&r);
	m->pid = proto_get_u32(&r);
	return r.error ? -1 : 0;
}

void
proto_pack_job_started(struct proto_buf *b, uint64_t id, uint32_t pid)
{
	proto_buf_init(b);
	proto_put_u64(b, id);
	proto_put_u32(b, pid);
}

int
proto_unpack_job_started(const void *p, size_t n, struct proto_job_started *m)
{
	struct proto_reader r;

	proto_reader_init(&r, p, n);
	m->id = proto_get_u64(&r);
	m->pid = proto_get_u32(&r);
	return r.error ? -1 : 0;
}

void
proto_pack_job_output(struct proto_buf *b, uint64_t id, uint32_t stream,
    const void *data, size_t len)
{
	proto_buf_init(b);
	proto_put_u64(b, id);
	proto_put_u32(b, stream);
	proto_put_bytes(b, data, len);
}

int
proto_unpack_job_output(const void *p, size_t n, struct proto_job_output *m)
{
	struct proto_reader r;

	proto_reader_init(&r, p, n);
	m->id = proto_get_u64(&r);
	m->stream = proto_get_u32(&r);
	m->data = proto_get_bytes(&r, &m->len);
	return r.error ? -1 : 0;
}

void
proto_pack_job_done(struct proto_buf *b, uint64_t id, uint32_t status,
    uint32_t flags)
{
	proto_buf_init(b);
	proto_put_u64(b, id);
	proto_put_u32(b, status);
	proto_put_u32(b, flags);
}

int
proto_unpack_job_done(const void *p, size_t n, struct proto_job_done *m)
{
	struct proto_reader r;

	proto_reader_init(&r, p, n);
	m->id = proto_get_u64(&r);
	m->status = proto_get_u32(&r);
	m->flags = proto_get_u32(&r);
	return r.error ? -1 : 0;
}

/* A u32 count, then the strings of a NULL-terminated array (NULL: none). */
static void
proto_put_strv(struct proto_buf *b, char *const *v)
{
	uint32_t n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	proto_put_u32(b, n);
	for (; v != NULL && *v != NULL; v++)
		proto_put_str(b, *v);
}

/* A NULL-terminated array; NULL (error set) if the count is impossible. */
static char **
proto_get_strv(struct proto_reader *r)
{
	uint32_t n = proto_get_u32(r), i;
	char   **v;

	/* Each string takes at least its length: no huge bogus count. */
	if (r->error || n > (r->len - r->off) / sizeof n) {
		r->error = 1;
		return NULL;
	}
	v = xcalloc((size_t)n + 1, sizeof *v);
	for (i = 0; i < n && !r->error; i++)
		v[i] = proto_get_str(r);
	return v;
}

void
proto_pack_job_start(struct proto_buf *b, const struct proto_job_start *m)
{
	proto_buf_init(b);
	proto_put_u64(b, m->id);
	proto_put_u64(b, m->max_output);
	proto_put_str(b, m->cwd);
	proto_put_strv(b, m->argv);
	proto_put_strv(b, m->env);
	proto_put_u32(b, m->stdin_data != NULL);
	proto_put_bytes(b, m->stdin_data, m->stdin_len);
}

int
proto_unpack_job_start(const void *p, size_t n, struct proto_job_start *m)
{
	struct proto_reader r;

	memset(m, 0, sizeof *m);
	proto_reader_init(&r, p, n);
	m->id = proto_get_u64(&r);
	m->max_output = proto_get_u64(&r);
	m->cwd = proto_get_str(&r);
	m->argv = proto_get_strv(&r);
	if (!r.error && m->argv[0] == NULL)
		r.error = 1; /* a job runs something */
	m->env = proto_get_strv(&r);
	m->has_stdin = proto_get_u32(&r) != 0;
	m->stdin_data = proto_get_bytes(&r, &m->stdin_len);
	if (r.error) {
		proto_job_start_free(m);
		return -1;
	}
	return 0;
}

void
proto_job_start_free(struct proto_job_start *m)
{
	free(m->cwd);
	util_strv_free(m->argv);
	util_strv_free(m->env);
	memset(m, 0, sizeof *m);
}

void
proto_pack_job_signal(struct proto_buf *b, uint64_t id, uint32_t sig)
{
	proto_buf_init(b);
	proto_put_u64(b, id);
	proto_put_u32(b, sig);
}

int
proto_unpack_job_signal(const void *p, size_t n, struct proto_job_signal *m)
{
	struct proto_reader r;

	proto_reader_init(&r, p, n);
	m->id = proto_get_u64(&r);
	m->signal = proto_get_u32(&r);
	return r.error ? -1 : 0;
}

void
proto_pack_log_level(struct proto_buf *b, uint32_t level)
{
	proto_buf_init(b);
	proto_put_u32(b, level);
}

int
proto_unpack_log_level(const void *p, size_t n, uint32_t *level)
{
	struct proto_reader r;

	proto_reader_init(&r, p, n);
	*level = proto_get_u32(&r);
	return r.error ? -1 : 0;
}

void
proto_pack_assign(struct proto_buf *b, uint32_t slot)
{
	proto_buf_init(b);
	proto_put_u32(b, slot);
}

/* Exactly one u32: the slot. */
int
proto_unpack_assign(const void *p, size_t n, uint32_t *slot)
{
	struct proto_reader r;

	proto_reader_init(&r, p, n);
	*slot = proto_get_u32(&r);
	return r.error || r.off != r.len ? -1 : 0;
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
	uint8_t	     hdr[PROTO_HDRLEN];
	struct iovec iov[2];
	ssize_t	     n;
	int	     iovcnt = 2;

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
			struct iovec *v = &iov[2 - iovcnt];

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
proto_read_full(int fd, void *p, size_t n)
{
	ssize_t r;
	size_t	off = 0;

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
	uint8_t hdr[PROTO_HDRLEN];

	*payload = NULL;
	if (proto_read_full(fd, hdr, sizeof hdr) != 0)
		return -1;
	if (proto_hdr_parse(hdr, h) != 0) {
		errno = EMSGSIZE;
		return -1;
	}
	if (h->len == 0)
		return 0;
	*payload = xmalloc(h->len);
	if (proto_read_full(fd, *payload, h->len) != 0) {
		free(*payload);
		*payload = NULL;
		if (errno == 0)
			errno = EPROTO;
		return -1;
	}
	return 0;
}
