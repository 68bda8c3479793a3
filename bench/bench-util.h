/* bench-util.c: what the bench's C programs share. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

int  bench_util_connect(const char *);
void bench_util_die(const char *, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

#endif
