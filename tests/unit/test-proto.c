/* lib/proto.c: payload fields, frame headers, and frames over a socketpair. */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto.h"
#include "xmalloc.h"

#define MIB (1024 * 1024)

static void
pair(int *sv)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static uint8_t
pattern(size_t i)
{
	return (uint8_t)((i * 7 + i / 251) & 0xff);
}

/* Waits for a child that reports success with exit status 0. */
static void
reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_buf_round_trip(void **state)
{
	static const uint8_t bytes[] = { 'a', 'b', 'c', 0, 'd', 0xff, 'e' };
	struct proto_buf     b;
	struct proto_reader  r;
	const uint8_t	    *p;
	size_t		     n;
	char		    *s;

	proto_buf_init(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	proto_put_u32(&b, 0);
	proto_put_u32(&b, 1);
	proto_put_u32(&b, UINT32_MAX);
	proto_put_u64(&b, 0);
	proto_put_u64(&b, UINT64_MAX);
	proto_put_u64(&b, UINT64_C(0x0102030405060708));
	proto_put_bytes(&b, bytes, sizeof bytes);
	proto_put_bytes(&b, NULL, 0);
	proto_put_str(&b, "hello");
	proto_put_str(&b, "");
	/* Each field is exactly its size; bytes and strings add a u32. */
	assert_int_equal(b.len,
	    3 * 4 + 3 * 8 + (4 + sizeof bytes) + 4 + (4 + 5) + 4);
	assert_true(b.size >= b.len);

	proto_reader_init(&r, b.data, b.len);
	assert_int_equal(proto_get_u32(&r), 0);
	assert_int_equal(proto_get_u32(&r), 1);
	assert_int_equal(proto_get_u32(&r), UINT32_MAX);
	assert_true(proto_get_u64(&r) == 0);
	assert_true(proto_get_u64(&r) == UINT64_MAX);
	assert_true(proto_get_u64(&r) == UINT64_C(0x0102030405060708));
	p = proto_get_bytes(&r, &n);
	assert_non_null(p);
	assert_int_equal(n, sizeof bytes);
	assert_memory_equal(p, bytes, sizeof bytes);
	/* The bytes point into the payload, not a copy. */
	assert_true(p > b.data && p < b.data + b.len);
	n = 99;
	p = proto_get_bytes(&r, &n);
	assert_non_null(p);
	assert_int_equal(n, 0);
	s = proto_get_str(&r);
	assert_non_null(s);
	assert_string_equal(s, "hello");
	free(s);
	s = proto_get_str(&r);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	assert_int_equal(r.error, 0);
	assert_int_equal(r.off, r.len);

	proto_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.size, 0);
}

static void
test_buf_grows(void **state)
{
	struct proto_buf    b;
	struct proto_reader r;
	uint32_t	    i;
	char		   *big, *s;

	proto_buf_init(&b);
	for (i = 0; i < 10000; i++)
		proto_put_u32(&b, i * 2654435761U);
	big = malloc(100000);
	assert_non_null(big);
	memset(big, 'z', 99999);
	big[99999] = '\0';
	proto_put_str(&b, big);
	proto_put_u64(&b, UINT64_C(42));
	assert_int_equal(b.len, 10000 * 4 + 4 + 99999 + 8);
	assert_true(b.size >= b.len);

	proto_reader_init(&r, b.data, b.len);
	for (i = 0; i < 10000; i++)
		if (proto_get_u32(&r) != i * 2654435761U)
			fail_msg("u32 %u differs", i);
	s = proto_get_str(&r);
	assert_non_null(s);
	assert_string_equal(s, big);
	free(s);
	assert_true(proto_get_u64(&r) == 42);
	assert_int_equal(r.error, 0);
	free(big);
	proto_buf_free(&b);
}

static void
test_read_past_end(void **state)
{
	uint8_t		    data[12];
	struct proto_reader r;
	size_t		    n;

	memset(data, 0xab, sizeof data);
	proto_reader_init(&r, data, sizeof data);
	assert_true(proto_get_u64(&r) == UINT64_C(0xabababababababab));
	assert_int_equal(r.error, 0);
	/* 4 bytes left: a u64 fails and yields zero. */
	assert_true(proto_get_u64(&r) == 0);
	assert_int_equal(r.error, 1);
	/* The error sticks: even the u32 that would fit yields zero. */
	assert_int_equal(proto_get_u32(&r), 0);
	assert_int_equal(r.error, 1);
	n = 99;
	assert_null(proto_get_bytes(&r, &n));
	assert_int_equal(n, 0);
	assert_null(proto_get_str(&r));
	assert_int_equal(r.error, 1);

	/* An empty payload. */
	proto_reader_init(&r, NULL, 0);
	assert_int_equal(proto_get_u32(&r), 0);
	assert_int_equal(r.error, 1);
	proto_reader_init(&r, data, 3);
	assert_int_equal(proto_get_u32(&r), 0);
	assert_int_equal(r.error, 1);
	proto_reader_init(&r, data, 0);
	assert_null(proto_get_str(&r));
	assert_int_equal(r.error, 1);

	/* proto_reader_init() clears the error. */
	proto_reader_init(&r, data, 4);
	assert_int_equal(r.error, 0);
	assert_int_equal(proto_get_u32(&r), 0xababababU);
	assert_int_equal(r.error, 0);
}

static void
test_bytes_longer_than_payload(void **state)
{
	struct proto_buf    b;
	struct proto_reader r;
	size_t		    n;

	/* A length of 10 with only 9 bytes after it. */
	proto_buf_init(&b);
	proto_put_u32(&b, 10);
	proto_put_u64(&b, 0);
	proto_put_u32(&b, 0);
	proto_reader_init(&r, b.data, b.len - 3);
	n = 99;
	assert_null(proto_get_bytes(&r, &n));
	assert_int_equal(n, 0);
	assert_int_equal(r.error, 1);

	/* A huge length must not wrap the bounds check. */
	proto_reader_init(&r, b.data, b.len);
	b.data[0] = b.data[1] = b.data[2] = b.data[3] = 0xff;
	assert_null(proto_get_bytes(&r, &n));
	assert_int_equal(r.error, 1);
	proto_reader_init(&r, b.data, b.len);
	assert_null(proto_get_str(&r));
	assert_int_equal(r.error, 1);
	proto_buf_free(&b);
}

static void
test_str_rejects_nul(void **state)
{
	struct proto_buf    b;
	struct proto_reader r;
	size_t		    n;

	proto_buf_init(&b);
	proto_put_bytes(&b, "ab\0cd", 5);
	proto_put_bytes(&b, "ab\0", 3);
	proto_reader_init(&r, b.data, b.len);
	assert_null(proto_get_str(&r));
	assert_int_equal(r.error, 1);

	/* A trailing NUL is embedded too. */
	proto_reader_init(&r, b.data + 9, b.len - 9);
	assert_null(proto_get_str(&r));
	assert_int_equal(r.error, 1);

	/* The same field is fine as bytes. */
	proto_reader_init(&r, b.data, b.len);
	assert_non_null(proto_get_bytes(&r, &n));
	assert_int_equal(n, 5);
	assert_int_equal(r.error, 0);
	proto_buf_free(&b);
}

static void
test_hdr(void **state)
{
	uint8_t		 p[PROTO_HDRLEN];
	struct proto_hdr h;

	proto_hdr_pack(p, PROTO_JOB_OUTPUT, 100);
	memset(&h, 0, sizeof h);
	assert_int_equal(proto_hdr_parse(p, &h), 0);
	assert_int_equal(h.type, PROTO_JOB_OUTPUT);
	assert_int_equal(h.len, 100);

	proto_hdr_pack(p, PROTO_EXIT, 0);
	assert_int_equal(proto_hdr_parse(p, &h), 0);
	assert_int_equal(h.type, PROTO_EXIT);
	assert_int_equal(h.len, 0);

	proto_hdr_pack(p, PROTO_HELLO, PROTO_MAX_PAYLOAD);
	assert_int_equal(proto_hdr_parse(p, &h), 0);
	assert_int_equal(h.len, PROTO_MAX_PAYLOAD);

	proto_hdr_pack(p, PROTO_HELLO, PROTO_MAX_PAYLOAD + 1);
	assert_int_equal(proto_hdr_parse(p, &h), -1);
	proto_hdr_pack(p, PROTO_HELLO, UINT32_MAX);
	assert_int_equal(proto_hdr_parse(p, &h), -1);
}

static void
test_send_recv(void **state)
{
	struct proto_buf    b;
	struct proto_reader r;
	struct proto_hdr    h;
	uint8_t		   *payload;
	int		    sv[2];

	pair(sv);
	proto_buf_init(&b);
	proto_put_u32(&b, PROTO_VERSION);
	proto_put_u32(&b, 1234);
	assert_int_equal(proto_send(sv[0], PROTO_HELLO, b.data, b.len), 0);
	assert_int_equal(proto_send(sv[0], PROTO_EXIT, NULL, 0), 0);
	assert_int_equal(proto_send(sv[0], PROTO_JOB_SIGNAL, "abcdefghijkl",
			     12),
	    0);

	assert_int_equal(proto_recv(sv[1], &h, &payload), 0);
	assert_int_equal(h.type, PROTO_HELLO);
	assert_int_equal(h.len, b.len);
	assert_non_null(payload);
	proto_reader_init(&r, payload, h.len);
	assert_int_equal(proto_get_u32(&r), PROTO_VERSION);
	assert_int_equal(proto_get_u32(&r), 1234);
	assert_int_equal(r.error, 0);
	free(payload);

	/* An empty payload: no allocation. */
	payload = (uint8_t *)&h;
	assert_int_equal(proto_recv(sv[1], &h, &payload), 0);
	assert_int_equal(h.type, PROTO_EXIT);
	assert_int_equal(h.len, 0);
	assert_null(payload);

	assert_int_equal(proto_recv(sv[1], &h, &payload), 0);
	assert_int_equal(h.type, PROTO_JOB_SIGNAL);
	assert_int_equal(h.len, 12);
	assert_memory_equal(payload, "abcdefghijkl", 12);
	free(payload);

	proto_buf_free(&b);
	close(sv[0]);
	close(sv[1]);
}

static void
test_send_recv_1mib(void **state)
{
	struct proto_hdr h;
	uint8_t		*big, *payload;
	size_t		 i, bad;
	pid_t		 pid;
	int		 sv[2];

	big = malloc(MIB);
	assert_non_null(big);
	for (i = 0; i < MIB; i++)
		big[i] = pattern(i);
	pair(sv);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(sv[1]);
		if (proto_send(sv[0], PROTO_JOB_OUTPUT, big, MIB) != 0)
			_exit(1);
		if (proto_send(sv[0], PROTO_JOB_DONE, "x", 1) != 0)
			_exit(2);
		_exit(0);
	}
	close(sv[0]);
	free(big);

	assert_int_equal(proto_recv(sv[1], &h, &payload), 0);
	assert_int_equal(h.type, PROTO_JOB_OUTPUT);
	assert_int_equal(h.len, MIB);
	assert_non_null(payload);
	for (i = 0, bad = 0; i < MIB; i++)
		if (payload[i] != pattern(i))
			bad++;
	assert_int_equal(bad, 0);
	free(payload);

	assert_int_equal(proto_recv(sv[1], &h, &payload), 0);
	assert_int_equal(h.type, PROTO_JOB_DONE);
	assert_int_equal(h.len, 1);
	assert_int_equal(payload[0], 'x');
	free(payload);

	/* Then the child's end closes: a clean end of stream. */
	errno = EINVAL;
	assert_int_equal(proto_recv(sv[1], &h, &payload), -1);
	assert_int_equal(errno, 0);
	assert_null(payload);
	reap(pid);
	close(sv[1]);
}

/* A frame that arrives a byte at a time is still read whole. */
static void
test_recv_in_pieces(void **state)
{
	uint8_t		 frame[PROTO_HDRLEN + 100];
	struct proto_hdr h;
	uint8_t		*payload;
	size_t		 i;
	pid_t		 pid;
	int		 sv[2];

	proto_hdr_pack(frame, PROTO_JOB_STARTED, 100);
	for (i = 0; i < 100; i++)
		frame[PROTO_HDRLEN + i] = pattern(i);
	pair(sv);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(sv[1]);
		for (i = 0; i < sizeof frame; i++) {
			if (write(sv[0], frame + i, 1) != 1)
				_exit(1);
			if (i % 10 == 0)
				usleep(200);
		}
		_exit(0);
	}
	close(sv[0]);
	assert_int_equal(proto_recv(sv[1], &h, &payload), 0);
	assert_int_equal(h.type, PROTO_JOB_STARTED);
	assert_int_equal(h.len, 100);
	assert_memory_equal(payload, frame + PROTO_HDRLEN, 100);
	free(payload);
	reap(pid);
	close(sv[1]);
}

static void
test_recv_clean_eof(void **state)
{
	struct proto_hdr h;
	uint8_t		*payload;
	int		 sv[2];

	pair(sv);
	close(sv[0]);
	errno = EBADF;
	payload = (uint8_t *)&h;
	assert_int_equal(proto_recv(sv[1], &h, &payload), -1);
	assert_int_equal(errno, 0);
	assert_null(payload);
	close(sv[1]);
}

static void
test_recv_truncated(void **state)
{
	uint8_t		 frame[PROTO_HDRLEN + 10];
	struct proto_hdr h;
	uint8_t		*payload;
	int		 sv[2];

	/* A header promising 100 bytes, then 10 and the end. */
	proto_hdr_pack(frame, PROTO_JOB_OUTPUT, 100);
	memset(frame + PROTO_HDRLEN, 'q', 10);
	pair(sv);
	assert_int_equal(write(sv[0], frame, sizeof frame), sizeof frame);
	close(sv[0]);
	errno = 0;
	assert_int_equal(proto_recv(sv[1], &h, &payload), -1);
	assert_int_equal(errno, EPROTO);
	assert_null(payload);
	close(sv[1]);

	/* A header promising bytes, and nothing after it. */
	pair(sv);
	assert_int_equal(write(sv[0], frame, PROTO_HDRLEN), PROTO_HDRLEN);
	close(sv[0]);
	errno = 0;
	assert_int_equal(proto_recv(sv[1], &h, &payload), -1);
	assert_int_equal(errno, EPROTO);
	assert_null(payload);
	close(sv[1]);

	/* Half a header. */
	pair(sv);
	assert_int_equal(write(sv[0], frame, 3), 3);
	close(sv[0]);
	errno = 0;
	assert_int_equal(proto_recv(sv[1], &h, &payload), -1);
	assert_int_equal(errno, EPROTO);
	assert_null(payload);
	close(sv[1]);
}

static void
test_recv_oversized(void **state)
{
	uint8_t		 hdr[PROTO_HDRLEN];
	struct proto_hdr h;
	uint8_t		*payload;
	int		 sv[2];

	pair(sv);
	proto_hdr_pack(hdr, PROTO_JOB_OUTPUT, PROTO_MAX_PAYLOAD + 1);
	assert_int_equal(write(sv[0], hdr, sizeof hdr), sizeof hdr);
	errno = 0;
	assert_int_equal(proto_recv(sv[1], &h, &payload), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_null(payload);
	close(sv[0]);
	close(sv[1]);
}

static void
test_send_oversized(void **state)
{
	struct proto_hdr h;
	uint8_t		*payload;
	char		 c = 0;
	int		 sv[2];

	pair(sv);
	errno = 0;
	assert_int_equal(proto_send(sv[0], PROTO_JOB_OUTPUT, &c,
			     (size_t)PROTO_MAX_PAYLOAD + 1),
	    -1);
	assert_int_equal(errno, EMSGSIZE);
	/* Nothing was written. */
	close(sv[0]);
	errno = EINVAL;
	assert_int_equal(proto_recv(sv[1], &h, &payload), -1);
	assert_int_equal(errno, 0);
	close(sv[1]);
}

static void
test_send_bad_fd(void **state)
{
	int sv[2];

	pair(sv);
	close(sv[0]);
	close(sv[1]);
	errno = 0;
	assert_int_equal(proto_send(sv[0], PROTO_EXIT, NULL, 0), -1);
	assert_int_equal(errno, EBADF);
}

/*
 * The largest xcalloc() since xcalloc_reset(): test-proto is linked with
 * -Wl,--wrap=xcalloc (Makefile.am), so that a test can tell that a bogus
 * count was refused before anything was allocated for it.
 */
static size_t xcalloc_largest;

void *__real_xcalloc(size_t, size_t);
void *__wrap_xcalloc(size_t, size_t);

void *
__wrap_xcalloc(size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		xcalloc_largest = SIZE_MAX;
	else if (nmemb * size > xcalloc_largest)
		xcalloc_largest = nmemb * size;
	/* Rather a failure than xcalloc()'s fatal, or gigabytes of zeros. */
	if (xcalloc_largest > (size_t)1 << 30)
		fail_msg("xcalloc(%zu, %zu)", nmemb, size);
	return __real_xcalloc(nmemb, size);
}

/* A string literal where the frame structs want a char *. */
#define S(s) ((char *)(uintptr_t)(s))

/* A copy of the first n bytes, alone in its allocation (for ASan). */
static uint8_t *
cut(const struct proto_buf *b, size_t n)
{
	uint8_t *c = malloc(n > 0 ? n : 1);

	assert_non_null(c);
	if (n > 0)
		memcpy(c, b->data, n);
	return c;
}

/* Every payload shorter than b's, the empty one too, is refused. */
#define ASSERT_SHORT_REFUSED(b, unpack, m) \
	do { \
		size_t	 n_; \
		uint8_t *c_; \
\
		for (n_ = 0; n_ < (b)->len; n_++) { \
			c_ = cut((b), n_); \
			if (unpack(c_, n_, (m)) != -1) \
				fail_msg(#unpack " took %zu of %zu bytes", n_, \
				    (b)->len); \
			free(c_); \
		} \
	} while (0)

static void
test_hello(void **state)
{
	struct proto_buf   b;
	struct proto_hello m;

	proto_pack_hello(&b, PROTO_VERSION, 0x7e001234);
	assert_int_equal(b.len, 8);
	memset(&m, 0xff, sizeof m);
	assert_int_equal(proto_unpack_hello(b.data, b.len, &m), 0);
	assert_int_equal(m.version, PROTO_VERSION);
	assert_int_equal(m.pid, 0x7e001234);
	ASSERT_SHORT_REFUSED(&b, proto_unpack_hello, &m);
	proto_buf_free(&b);

	proto_pack_hello(&b, UINT32_MAX, 0);
	assert_int_equal(proto_unpack_hello(b.data, b.len, &m), 0);
	assert_int_equal(m.version, UINT32_MAX);
	assert_int_equal(m.pid, 0);
	proto_buf_free(&b);
}

static void
test_job_started(void **state)
{
	struct proto_buf	 b;
	struct proto_job_started m;

	proto_pack_job_started(&b, UINT64_C(0x0102030405060708), 4242);
	assert_int_equal(b.len, 12);
	memset(&m, 0xff, sizeof m);
	assert_int_equal(proto_unpack_job_started(b.data, b.len, &m), 0);
	assert_true(m.id == UINT64_C(0x0102030405060708));
	assert_int_equal(m.pid, 4242);
	ASSERT_SHORT_REFUSED(&b, proto_unpack_job_started, &m);
	proto_buf_free(&b);

	proto_pack_job_started(&b, UINT64_MAX, UINT32_MAX);
	assert_int_equal(proto_unpack_job_started(b.data, b.len, &m), 0);
	assert_true(m.id == UINT64_MAX);
	assert_int_equal(m.pid, UINT32_MAX);
	proto_buf_free(&b);
}

static void
test_job_output(void **state)
{
	static const uint8_t	data[] = { 'o', 'u', 't', 0, '\n', 0xff };
	struct proto_buf	b;
	struct proto_job_output m;

	proto_pack_job_output(&b, 77, 2, data, sizeof data);
	memset(&m, 0xff, sizeof m);
	assert_int_equal(proto_unpack_job_output(b.data, b.len, &m), 0);
	assert_true(m.id == 77);
	assert_int_equal(m.stream, 2);
	assert_int_equal(m.len, sizeof data);
	assert_memory_equal(m.data, data, sizeof data);
	/* The bytes point into the payload. */
	assert_ptr_equal(m.data, b.data + b.len - sizeof data);
	ASSERT_SHORT_REFUSED(&b, proto_unpack_job_output, &m);
	proto_buf_free(&b);

	/* No bytes at all is still a frame. */
	proto_pack_job_output(&b, 78, 1, NULL, 0);
	assert_int_equal(proto_unpack_job_output(b.data, b.len, &m), 0);
	assert_true(m.id == 78);
	assert_int_equal(m.stream, 1);
	assert_int_equal(m.len, 0);
	ASSERT_SHORT_REFUSED(&b, proto_unpack_job_output, &m);
	proto_buf_free(&b);
}

static void
test_job_done(void **state)
{
	struct proto_buf      b;
	struct proto_job_done m;

	proto_pack_job_done(&b, 99, W_EXITCODE(3, 0), PROTO_DONE_TRUNCATED);
	assert_int_equal(b.len, 16);
	memset(&m, 0xff, sizeof m);
	assert_int_equal(proto_unpack_job_done(b.data, b.len, &m), 0);
	assert_true(m.id == 99);
	assert_int_equal(m.status, W_EXITCODE(3, 0));
	assert_int_equal(m.flags, PROTO_DONE_TRUNCATED);
	ASSERT_SHORT_REFUSED(&b, proto_unpack_job_done, &m);
	proto_buf_free(&b);

	proto_pack_job_done(&b, UINT64_MAX, SIGKILL, 0);
	assert_int_equal(proto_unpack_job_done(b.data, b.len, &m), 0);
	assert_true(m.id == UINT64_MAX);
	assert_int_equal(m.status, SIGKILL);
	assert_int_equal(m.flags, 0);
	proto_buf_free(&b);
}

static size_t
strv_len(char *const *v)
{
	size_t n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

/* m unpacked is what was packed: every field, every string. */
static void
assert_job_start_equal(const struct proto_job_start *m,
    const struct proto_job_start		    *want)
{
	size_t i;

	assert_true(m->id == want->id);
	assert_true(m->max_output == want->max_output);
	assert_string_equal(m->cwd, want->cwd);
	assert_int_equal(strv_len(m->argv), strv_len(want->argv));
	assert_true(strv_len(m->argv) >= 1);
	for (i = 0; want->argv[i] != NULL; i++)
		assert_string_equal(m->argv[i], want->argv[i]);
	/* No environment comes back as an empty one. */
	assert_non_null(m->env);
	assert_int_equal(strv_len(m->env), strv_len(want->env));
	for (i = 0; want->env != NULL && want->env[i] != NULL; i++)
		assert_string_equal(m->env[i], want->env[i]);
	assert_int_equal(m->has_stdin, want->stdin_data != NULL);
	assert_int_equal(m->stdin_len, want->stdin_len);
	if (want->stdin_len > 0)
		assert_memory_equal(m->stdin_data, want->stdin_data,
		    want->stdin_len);
}

/* Packs want, unpacks it, and refuses every shorter payload. */
static void
job_start_round_trip(const struct proto_job_start *want)
{
	static const struct proto_job_start zero;
	struct proto_buf		    b;
	struct proto_job_start		    m;

	proto_pack_job_start(&b, want);
	memset(&m, 0xff, sizeof m);
	assert_int_equal(proto_unpack_job_start(b.data, b.len, &m), 0);
	assert_job_start_equal(&m, want);
	if (want->stdin_len > 0) /* pointing into the payload */
		assert_ptr_equal(m.stdin_data,
		    b.data + b.len - want->stdin_len);
	proto_job_start_free(&m);
	assert_memory_equal(&m, &zero, sizeof m);

	/* A refused payload leaves nothing allocated (ASan checks). */
	ASSERT_SHORT_REFUSED(&b, proto_unpack_job_start, &m);
	assert_memory_equal(&m, &zero, sizeof m);
	proto_buf_free(&b);
}

static void
test_job_start(void **state)
{
	char *argv1[] = { S("true"), NULL };
	char *argv3[] = { S("/bin/sh"), S("-c"), S("echo \"$X\""), NULL };
	char *argv_empty_strings[] = { S(""), S(""), NULL };
	char *env2[] = { S("X=1"), S("EMPTY="), NULL };
	static const uint8_t   in[] = { 'i', 0, 'n', 0xff, '\n' };
	struct proto_job_start js;
	char		      *many[101], name[100][8];
	size_t		       i;

	/* With stdin and an environment, several arguments. */
	memset(&js, 0, sizeof js);
	js.id = 1;
	js.max_output = UINT64_C(1) << 40;
	js.cwd = S("/tmp/some dir");
	js.argv = argv3;
	js.env = env2;
	js.stdin_data = in;
	js.stdin_len = sizeof in;
	job_start_round_trip(&js);

	/* Without stdin (/dev/null) nor environment, one argument. */
	memset(&js, 0, sizeof js);
	js.id = UINT64_MAX;
	js.cwd = S("/");
	js.argv = argv1;
	job_start_round_trip(&js);

	/* An empty stdin is not /dev/null; empty strings are strings. */
	js.stdin_data = in;
	js.stdin_len = 0;
	js.cwd = S("");
	js.argv = argv_empty_strings;
	js.env = env2;
	job_start_round_trip(&js);

	/* Many arguments. */
	for (i = 0; i < 100; i++) {
		snprintf(name[i], sizeof name[i], "a%zu", i);
		many[i] = name[i];
	}
	many[100] = NULL;
	js.argv = many;
	js.env = NULL;
	js.stdin_data = NULL;
	job_start_round_trip(&js);
}

/*
 * A JOB_START payload by hand: the fields before argv, then what the test
 * writes, then an empty environment and no stdin.
 */
static void
job_start_head(struct proto_buf *b)
{
	proto_buf_init(b);
	proto_put_u64(b, 5);
	proto_put_u64(b, 1024);
	proto_put_str(b, "/");
}

static void
job_start_tail(struct proto_buf *b)
{
	proto_put_u32(b, 0); /* envc */
	proto_put_u32(b, 0); /* has_stdin */
	proto_put_bytes(b, NULL, 0);
}

static void
assert_job_start_refused(const struct proto_buf *b)
{
	static const struct proto_job_start zero;
	struct proto_job_start		    m;

	memset(&m, 0xff, sizeof m);
	assert_int_equal(proto_unpack_job_start(b->data, b->len, &m), -1);
	assert_memory_equal(&m, &zero, sizeof m);
}

static void
test_job_start_refused(void **state)
{
	static char	      *argv0[] = { NULL };
	struct proto_job_start js, m;
	struct proto_buf       b;
	uint32_t	       room;

	/* A job runs something: no argv is refused. */
	memset(&js, 0, sizeof js);
	js.cwd = S("/");
	js.argv = argv0;
	proto_pack_job_start(&b, &js);
	assert_job_start_refused(&b);
	proto_buf_free(&b);

	/* The hand-made payload is good as it is... */
	job_start_head(&b);
	proto_put_u32(&b, 1);
	proto_put_str(&b, "ls");
	job_start_tail(&b);
	xcalloc_largest = 0;
	assert_int_equal(proto_unpack_job_start(b.data, b.len, &m), 0);
	/* The arrays come from xcalloc(), which this test sees. */
	assert_int_equal(xcalloc_largest, 2 * sizeof(char *));
	assert_string_equal(m.argv[0], "ls");
	assert_null(m.argv[1]);
	proto_job_start_free(&m);
	proto_buf_free(&b);

	/* ...but not with a NUL inside an argument... */
	job_start_head(&b);
	proto_put_u32(&b, 2);
	proto_put_str(&b, "ls");
	proto_put_bytes(&b, "-l\0rm", 5);
	job_start_tail(&b);
	assert_job_start_refused(&b);
	proto_buf_free(&b);

	/* ...nor inside cwd... */
	proto_buf_init(&b);
	proto_put_u64(&b, 5);
	proto_put_u64(&b, 1024);
	proto_put_bytes(&b, "/\0x", 3);
	proto_put_u32(&b, 1);
	proto_put_str(&b, "ls");
	job_start_tail(&b);
	assert_job_start_refused(&b);
	proto_buf_free(&b);

	/* ...nor inside the environment. */
	job_start_head(&b);
	proto_put_u32(&b, 1);
	proto_put_str(&b, "ls");
	proto_put_u32(&b, 1);
	proto_put_bytes(&b, "A=\0B=1", 6);
	proto_put_u32(&b, 0);
	proto_put_bytes(&b, NULL, 0);
	assert_job_start_refused(&b);
	proto_buf_free(&b);

	/* A huge count is refused before anything is allocated for it. */
	job_start_head(&b);
	proto_put_u32(&b, UINT32_MAX);
	proto_put_str(&b, "ls");
	job_start_tail(&b);
	xcalloc_largest = 0;
	assert_job_start_refused(&b);
	assert_int_equal(xcalloc_largest, 0);
	proto_buf_free(&b);

	/* The same for the environment. */
	job_start_head(&b);
	proto_put_u32(&b, 1);
	proto_put_str(&b, "ls");
	proto_put_u32(&b, 0x40000000);
	proto_put_u32(&b, 0);
	proto_put_bytes(&b, NULL, 0);
	xcalloc_largest = 0;
	assert_job_start_refused(&b);
	/* Only argv's array, of one. */
	assert_int_equal(xcalloc_largest, 2 * sizeof(char *));
	proto_buf_free(&b);

	/*
	 * A count just one more than the rest could hold (each string takes
	 * at least its u32 length) is refused without an array for it.
	 */
	job_start_head(&b);
	room = 2 * 4 + 4 + 4 + 4; /* the strings and the tail */
	proto_put_u32(&b, room / 4 + 1);
	proto_put_str(&b, "");
	proto_put_str(&b, "");
	job_start_tail(&b);
	xcalloc_largest = 0;
	assert_job_start_refused(&b);
	assert_int_equal(xcalloc_largest, 0);
	proto_buf_free(&b);
}

static void
test_job_signal(void **state)
{
	struct proto_buf	b;
	struct proto_job_signal m;

	proto_pack_job_signal(&b, 123456789012345ULL, SIGTERM);
	assert_int_equal(b.len, 12);
	memset(&m, 0xff, sizeof m);
	assert_int_equal(proto_unpack_job_signal(b.data, b.len, &m), 0);
	assert_true(m.id == 123456789012345ULL);
	assert_int_equal(m.signal, SIGTERM);
	ASSERT_SHORT_REFUSED(&b, proto_unpack_job_signal, &m);
	proto_buf_free(&b);

	proto_pack_job_signal(&b, 0, SIGKILL);
	assert_int_equal(proto_unpack_job_signal(b.data, b.len, &m), 0);
	assert_true(m.id == 0);
	assert_int_equal(m.signal, SIGKILL);
	proto_buf_free(&b);
}

static void
test_log_level(void **state)
{
	struct proto_buf b;
	uint32_t	 level;
	int		 l;

	for (l = 0; l <= 7; l++) {
		proto_pack_log_level(&b, (uint32_t)l);
		assert_int_equal(b.len, 4);
		level = 99;
		assert_int_equal(proto_unpack_log_level(b.data, b.len, &level),
		    0);
		assert_int_equal(level, l);
		ASSERT_SHORT_REFUSED(&b, proto_unpack_log_level, &level);
		proto_buf_free(&b);
	}
}

static void
test_assign(void **state)
{
	struct proto_buf b;
	uint32_t	 slot;

	proto_pack_assign(&b, 4095);
	assert_int_equal(b.len, 4);
	slot = 0;
	assert_int_equal(proto_unpack_assign(b.data, b.len, &slot), 0);
	assert_int_equal(slot, 4095);
	ASSERT_SHORT_REFUSED(&b, proto_unpack_assign, &slot);

	/* Exactly one u32: a byte more is refused. */
	proto_put_bytes(&b, NULL, 0);
	assert_int_equal(b.len, 8);
	assert_int_equal(proto_unpack_assign(b.data, 5, &slot), -1);
	assert_int_equal(proto_unpack_assign(b.data, b.len, &slot), -1);
	proto_buf_free(&b);

	proto_pack_assign(&b, 0);
	assert_int_equal(proto_unpack_assign(b.data, b.len, &slot), 0);
	assert_int_equal(slot, 0);
	proto_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_round_trip),
		cmocka_unit_test(test_buf_grows),
		cmocka_unit_test(test_read_past_end),
		cmocka_unit_test(test_bytes_longer_than_payload),
		cmocka_unit_test(test_str_rejects_nul),
		cmocka_unit_test(test_hdr),
		cmocka_unit_test(test_send_recv),
		cmocka_unit_test(test_send_recv_1mib),
		cmocka_unit_test(test_recv_in_pieces),
		cmocka_unit_test(test_recv_clean_eof),
		cmocka_unit_test(test_recv_truncated),
		cmocka_unit_test(test_recv_oversized),
		cmocka_unit_test(test_send_oversized),
		cmocka_unit_test(test_send_bad_fd),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_job_started),
		cmocka_unit_test(test_job_output),
		cmocka_unit_test(test_job_done),
		cmocka_unit_test(test_job_start),
		cmocka_unit_test(test_job_start_refused),
		cmocka_unit_test(test_job_signal),
		cmocka_unit_test(test_log_level),
		cmocka_unit_test(test_assign),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
