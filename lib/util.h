/* Small parsing and time helpers shared by mprocd and mprocctl. */
#ifndef MPROCD_UTIL_H
#define MPROCD_UTIL_H

#include <sys/time.h>
#include <sys/uio.h>

#include <stddef.h>
#include <stdint.h>

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC  UINT64_C(1000000)

/* Big enough for util_format_duration() and util_format_size(). */
#define UTIL_FMTLEN 32

/*
 * Each parser returns 0, or -1 with *errstr set to a short reason
 * ("not a number", "unknown unit 'x'", "too large", ...).
 */
int util_parse_duration(const char *, uint64_t *, const char **);
int util_parse_size(const char *, uint64_t *, const char **);
int util_parse_uint(const char *, uint64_t, uint64_t, uint64_t *,
    const char **);
int util_parse_mode(const char *, unsigned int *, const char **);

const char *util_format_duration(uint64_t, char *, size_t);
const char *util_format_size(uint64_t, char *, size_t);

/* For libevent timers. */
struct timeval util_timeval(uint64_t);
uint64_t       util_now_usec(void);
uint64_t       util_mono_usec(void);

int util_set_nonblock(int);
int util_set_cloexec(int);
/*
 * What a non-blocking descriptor takes of iov[n] now, in bytes: 0 when it
 * takes nothing or fails (the caller queues the rest and learns of an
 * error when it writes that).
 */
size_t util_writev_some(int, const struct iovec *, int);
/* Closes every descriptor from lowest up, except those in keep[]. */
void util_closefrom(int lowest, const int *keep, size_t nkeep);

void   util_strv_free(char **);
char **util_strv_dup(char *const *);
int    util_strv_equal(char *const *, char *const *);
size_t util_edit_distance(const char *, const char *);
char **util_split_words(const char *, const char **);
char  *util_find_program(const char *, const char *, const char **);

/* Base64 (RFC 4648, padded): malloc'd results; decode gives NULL on bad input. */
char  *util_base64_encode(const void *, size_t);
size_t util_base64_encode_to(char *, const void *, size_t);
void  *util_base64_decode(const char *, size_t, size_t *);

#endif
