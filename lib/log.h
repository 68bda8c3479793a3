/*
 * One logging API for every mprocd process. A record is formatted whole and
 * written in one call (one write() of at most LOG_RECORD_MAX bytes, or one
 * sd_journal_send()), so records from many processes never tear or
 * interleave.
 */
#ifndef MPROCD_LOG_H
#define MPROCD_LOG_H

#include <stdint.h>
#include <syslog.h>

#define LOG_RECORD_MAX 4096

/*
 * Fields after the message, formatted with it and checked like it:
 *	clog_info(&ctx, "job finished" LOG_KV "state=%s" LOG_KV "ms=%llu", ...)
 * Files and stderr get them as logfmt after msg= (msg="job finished"
 * state=failed ms=12), the journal as MPROCD_STATE=failed, MPROCD_MS=12 and
 * in MESSAGE. Keys are [a-z][a-z0-9_]*. Put long user data last: a record
 * that does not fit has its longest values cut.
 */
#define LOG_KV "\x1f"

/* Who a record is about; pool and worker may be NULL, job 0 for none. */
struct log_ctx {
	const char *pool;
	const char *worker;
	int64_t	    job;
};

struct iovec;
void	    log_use_journal(int (*)(const struct iovec *, int));
int	    log_open(const char *, const char **);
void	    log_close(void);
int	    log_reopen(void);
void	    log_request_reopen(void);
int	    log_reopen_if_requested(void);
void	    log_setlevel(int);
int	    log_getlevel(void);
int	    log_parse_level(const char *);
const char *log_level_name(int);
void	    log_procinit(const char *);
const char *log_procname(void);

void log_emit(int, const struct log_ctx *, int, const char *, int, const char *,
    const char *, ...) __attribute__((format(printf, 7, 8)));
void log_fatal(int, const char *, int, const char *, const char *, ...)
    __attribute__((format(printf, 5, 6), noreturn));

/* CODE_FILE: the file's name, not the build's path to it. */
#ifdef __FILE_NAME__
#define LOG_AT __FILE_NAME__, __LINE__, __func__
#else
#define LOG_AT __FILE__, __LINE__, __func__
#endif

/* log_warn and fatal append ": strerror(errno)"; the x forms do not. */
#define log_debug(...)	log_emit(LOG_DEBUG, NULL, 0, LOG_AT, __VA_ARGS__)
#define log_info(...)	log_emit(LOG_INFO, NULL, 0, LOG_AT, __VA_ARGS__)
#define log_notice(...) log_emit(LOG_NOTICE, NULL, 0, LOG_AT, __VA_ARGS__)
#define log_warn(...)	log_emit(LOG_WARNING, NULL, 1, LOG_AT, __VA_ARGS__)
#define log_warnx(...)	log_emit(LOG_WARNING, NULL, 0, LOG_AT, __VA_ARGS__)
#define fatal(...)	log_fatal(1, LOG_AT, __VA_ARGS__)
#define fatalx(...)	log_fatal(0, LOG_AT, __VA_ARGS__)

/* The same, about a pool, worker or job. */
#define clog_debug(c, ...)  log_emit(LOG_DEBUG, c, 0, LOG_AT, __VA_ARGS__)
#define clog_info(c, ...)   log_emit(LOG_INFO, c, 0, LOG_AT, __VA_ARGS__)
#define clog_notice(c, ...) log_emit(LOG_NOTICE, c, 0, LOG_AT, __VA_ARGS__)
#define clog_warn(c, ...)   log_emit(LOG_WARNING, c, 1, LOG_AT, __VA_ARGS__)
#define clog_warnx(c, ...)  log_emit(LOG_WARNING, c, 0, LOG_AT, __VA_ARGS__)

/*
 * Text from outside (a job's command, say) for a record: a copy in buf,
 * cut to fit with " [cut]", any LOG_KV byte made '?' so it cannot add
 * fields.
 * Returns buf.
 */
const char *log_safe(const char *, char *, size_t);
void	    log_wait_status(int, char *, size_t);

/*
 * At most burst records per interval for one source a hostile peer could
 * drive: if (log_ratelimit(&rl, now)) log_notice(...). When a new interval
 * starts, how many were dropped in the last one is logged.
 */
struct log_ratelimit {
	const char  *what; /* names them in the "dropped" record */
	unsigned int burst;
	uint64_t     interval; /* microseconds */
	uint64_t     start;
	unsigned int count;
};
#define LOG_RATELIMIT(what, burst, seconds) \
	{ \
		(what), (burst), (uint64_t)(seconds)*1000000, 0, 0 \
	}

int log_ratelimit(struct log_ratelimit *, uint64_t);

/* Formats a record the way the stderr and file targets write it. */
size_t log_format(char *, size_t, uint64_t, int, const struct log_ctx *,
    const char *);

#endif
