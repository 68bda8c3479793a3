/* bench-util.c: what the bench's C programs share. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <jansson.h>

/* A connection with calls pipelined on it: bench_util_call() queues one,
 * bench_util_io() sends and reads what it can, bench_util_reply() is the
 * next reply's parameters (an error reply ends the program). */
struct bench_conn {
	int    fd;
	char  *in; /* received, not yet parsed */
	size_t inlen, insize;
	size_t scanned; /* of in, known to hold no NUL */
	char  *out;	/* to send */
	size_t outlen, outoff, outsize;
};

int	bench_util_connect(const char *);
double	bench_util_now(void);
void   *bench_util_grow(void *, size_t *, size_t);
void	bench_util_open(struct bench_conn *, const char *);
void	bench_util_call(struct bench_conn *, const char *, json_t *);
void	bench_util_io(struct bench_conn *);
json_t *bench_util_reply(struct bench_conn *);
json_t *bench_util_wait(struct bench_conn *);
void	bench_util_die(const char *, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

#endif
