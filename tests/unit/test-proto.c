/* lib/proto.c: payload fields, frame headers, and frames over a socketpair. */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto.h"

#define MIB	(1024 * 1024)

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
	int	 status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_buf_round_trip(void **state)
{
	static const uint8_t	 bytes[] = {
		'a', 'b', 'c', 0, 'd', 0xff, 'e'
	};
	struct proto_buf	 b;
	struct proto_reader	 r;
	const uint8_t		*p;
	size_t			 n;
	char			*s;

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
	assert_int_equal(b.len, 3 * 4 + 3 * 8 + (4 + sizeof bytes) + 4 +
	    (4 + 5) + 4);
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
	struct proto_buf	 b;
	struct proto_reader	 r;
	uint32_t		 i;
	char			*big, *s;

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
	uint8_t			 data[12];
	struct proto_reader	 r;
	size_t			 n;

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
	struct proto_buf	 b;
	struct proto_reader	 r;
	size_t			 n;

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
	struct proto_buf	 b;
	struct proto_reader	 r;
	size_t			 n;

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
	uint8_t			 p[PROTO_HDRLEN];
	struct proto_hdr	 h;

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
	struct proto_buf	 b;
	struct proto_reader	 r;
	struct proto_hdr	 h;
	uint8_t			*payload;
	int			 sv[2];

	pair(sv);
	proto_buf_init(&b);
	proto_put_u32(&b, PROTO_VERSION);
	proto_put_u32(&b, 1234);
	assert_int_equal(proto_send(sv[0], PROTO_HELLO, b.data, b.len), 0);
	assert_int_equal(proto_send(sv[0], PROTO_EXIT, NULL, 0), 0);
	assert_int_equal(proto_send(sv[0], PROTO_JOB_SIGNAL, "abcdefghijkl",
	    12), 0);

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
	struct proto_hdr	 h;
	uint8_t			*big, *payload;
	size_t			 i, bad;
	pid_t			 pid;
	int			 sv[2];

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
	uint8_t			 frame[PROTO_HDRLEN + 100];
	struct proto_hdr	 h;
	uint8_t			*payload;
	size_t			 i;
	pid_t			 pid;
	int			 sv[2];

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
	struct proto_hdr	 h;
	uint8_t			*payload;
	int			 sv[2];

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
	uint8_t			 frame[PROTO_HDRLEN + 10];
	struct proto_hdr	 h;
	uint8_t			*payload;
	int			 sv[2];

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
	uint8_t			 hdr[PROTO_HDRLEN];
	struct proto_hdr	 h;
	uint8_t			*payload;
	int			 sv[2];

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
	struct proto_hdr	 h;
	uint8_t			*payload;
	char			 c = 0;
	int			 sv[2];

	pair(sv);
	errno = 0;
	assert_int_equal(proto_send(sv[0], PROTO_JOB_OUTPUT, &c,
	    (size_t)PROTO_MAX_PAYLOAD + 1), -1);
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
	int	 sv[2];

	pair(sv);
	close(sv[0]);
	close(sv[1]);
	errno = 0;
	assert_int_equal(proto_send(sv[0], PROTO_EXIT, NULL, 0), -1);
	assert_int_equal(errno, EBADF);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
