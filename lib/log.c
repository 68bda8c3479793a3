#include "config.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "log.h"
#include "util.h"

enum log_target {
	LOG_TO_STDERR,
	LOG_TO_FILE,
	LOG_TO_JOURNAL,
};

static enum log_target	 log_target = LOG_TO_STDERR;
static int		 log_fd = STDERR_FILENO;
static char		*log_path;
static int		 log_level = LOG_INFO;
static volatile sig_atomic_t log_reopen_pending;

/* This process's own name and the fields it implies. */
static char		 log_name[64] = "mprocd";
static char		 log_pool[64];
static char		 log_worker[64];

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg",
	[LOG_ALERT] = "alert",
	[LOG_CRIT] = "crit",
	[LOG_ERR] = "error",
	[LOG_WARNING] = "warning",
	[LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

int
log_parse_level(const char *s)
{
	int	 i;

	for (i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	if (strcmp(s, "warn") == 0)
		return LOG_WARNING;
	return -1;
}

const char *
log_level_name(int level)
{
	if (level < LOG_EMERG || level > LOG_DEBUG)
		return "unknown";
	return level_names[level];
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

/* Whether stderr is the journal stream systemd gave us. */
static int
stderr_is_journal(void)
{
	const char	*e = getenv("JOURNAL_STREAM");
	struct stat	 st;
	unsigned long	 dev, ino;

	if (e == NULL || sscanf(e, "%lu:%lu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return st.st_dev == dev && st.st_ino == ino;
}

static int
open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/*
 * Chooses where records go: "stderr", "journal", "file:PATH" or "auto" (the
 * journal when stderr is systemd's journal stream, else stderr).
 */
int
log_open(const char *target, const char **errstr)
{
	int	 fd;

	if (strcmp(target, "stderr") == 0 ||
	    (strcmp(target, "auto") == 0 && !stderr_is_journal())) {
		log_close();
		log_target = LOG_TO_STDERR;
		return 0;
	}
	if (strcmp(target, "journal") == 0 || strcmp(target, "auto") == 0) {
		log_close();
		log_target = LOG_TO_JOURNAL;
		return 0;
	}
	if (strncmp(target, "file:", 5) == 0 && target[5] == '/') {
		if ((fd = open_file(target + 5)) == -1) {
			*errstr = strerror(errno);
			return -1;
		}
		log_close();
		log_target = LOG_TO_FILE;
		log_fd = fd;
		log_path = strdup(target + 5);
		return 0;
	}
	*errstr = "unknown log target (use auto, journal, stderr or "
	    "file:/absolute/path)";
	return -1;
}

void
log_close(void)
{
	if (log_target == LOG_TO_FILE && log_fd != -1)
		close(log_fd);
	free(log_path);
	log_path = NULL;
	log_fd = STDERR_FILENO;
	log_target = LOG_TO_STDERR;
}

/*
 * Reopens a file target in place (after logrotate renamed it): the new file
 * is opened first and dup2()ed over the old descriptor, so no record is
 * written to nowhere.
 */
int
log_reopen(void)
{
	int	 fd;

	if (log_target != LOG_TO_FILE)
		return 0;
	if ((fd = open_file(log_path)) == -1)
		return -1;
	if (dup3(fd, log_fd, O_CLOEXEC) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * Safe in a signal handler: the file is reopened before the next record is
 * written, so no record goes to the old file after that.
 */
void
log_request_reopen(void)
{
	log_reopen_pending = 1;
}

/* "supervisor" or "worker default/2": names every record this process logs. */
void
log_procinit(const char *name)
{
	const char	*slash;

	snprintf(log_name, sizeof log_name, "%s", name);
	log_pool[0] = log_worker[0] = '\0';
	if (strncmp(name, "worker ", 7) == 0) {
		snprintf(log_worker, sizeof log_worker, "%s", name + 7);
		if ((slash = strrchr(log_worker, '/')) != NULL)
			snprintf(log_pool, sizeof log_pool, "%.*s",
			    (int)(slash - log_worker), log_worker);
	}
}

const char *
log_procname(void)
{
	return log_name;
}

/*
 * Appends n bytes at *off, all or nothing: returns -1 (and writes nothing)
 * if they would go past len.
 */
static int
put(char *buf, size_t len, size_t *off, const char *s, size_t n)
{
	if (n > len - *off)
		return -1;
	memcpy(buf + *off, s, n);
	*off += n;
	return 0;
}

static int
needs_quotes(const char *v)
{
	const unsigned char	*p;

	if (*v == '\0')
		return 1;
	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' ||
		    *p == 0x7f)
			return 1;
	return 0;
}

/*
 * A logfmt value: bare when simple, else quoted with escapes. Each escape
 * goes in whole or not at all; returns -1 if the value did not fit, leaving
 * *off after the last whole character (and with no closing quote).
 */
static int
put_value(char *buf, size_t len, size_t *off, const char *v, int quote)
{
	const unsigned char	*p;
	char			 esc[8];
	const char		*e;
	size_t			 n;

	if (!quote)
		return put(buf, len, off, v, strlen(v));
	if (put(buf, len, off, "\"", 1) != 0)
		return -1;
	for (p = (const unsigned char *)v; *p != '\0'; p++) {
		e = esc;
		switch (*p) {
		case '"':
			e = "\\\"";
			break;
		case '\\':
			e = "\\\\";
			break;
		case '\n':
			e = "\\n";
			break;
		case '\t':
			e = "\\t";
			break;
		case '\r':
			e = "\\r";
			break;
		default:
			if (*p < ' ' || *p == 0x7f)
				snprintf(esc, sizeof esc, "\\x%02x", *p);
			else {
				esc[0] = (char)*p;
				esc[1] = '\0';
			}
		}
		n = strlen(e);
		if (put(buf, len, off, e, n) != 0)
			return -1;
	}
	return put(buf, len, off, "\"", 1);
}

static void
put_field(char *buf, size_t len, size_t *off, const char *key, const char *v)
{
	size_t	 start = *off;

	if (put(buf, len, off, " ", 1) != 0 ||
	    put(buf, len, off, key, strlen(key)) != 0 ||
	    put(buf, len, off, "=", 1) != 0 ||
	    put_value(buf, len, off, v, needs_quotes(v)) != 0)
		*off = start;	/* context fields are short; drop, never tear */
}

/*
 * One line: "TIMESTAMP LEVEL [worker=|pool=] [job=] msg=..." and a newline,
 * at most size bytes. A message that does not fit is cut between characters
 * and ends "... [cut]" inside its quotes.
 */
size_t
log_format(char *buf, size_t size, uint64_t usec, int level,
    const struct log_ctx *ctx, const char *msg)
{
	static const char	 cut[] = " [cut]\"\n";
	char			 ts[40], num[32];
	struct tm		 tm;
	time_t			 sec = (time_t)(usec / USEC_PER_SEC);
	size_t			 off, start, len = size - 1;
	const char		*pool = log_pool, *worker = log_worker;

	if (ctx != NULL && ctx->pool != NULL)
		pool = ctx->pool;
	if (ctx != NULL && ctx->worker != NULL)
		worker = ctx->worker;
	gmtime_r(&sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	off = (size_t)snprintf(buf, size, "%s.%06uZ %s", ts,
	    (unsigned)(usec % USEC_PER_SEC), log_level_name(level));
	if (*worker != '\0')
		put_field(buf, len, &off, "worker", worker);
	else if (*pool != '\0')
		put_field(buf, len, &off, "pool", pool);
	if (ctx != NULL && ctx->job > 0) {
		snprintf(num, sizeof num, "%" PRId64, ctx->job);
		put_field(buf, len, &off, "job", num);
	}
	start = off;
	if (put(buf, len, &off, " msg=", 5) == 0 &&
	    put_value(buf, len, &off, msg, needs_quotes(msg)) == 0) {
		buf[off++] = '\n';
		return off;
	}
	/* Too long: again, quoted, leaving room for the marker. */
	off = start;
	put(buf, len, &off, " msg=", 5);
	put_value(buf, size - (sizeof cut - 1), &off, msg, 1);
	memcpy(buf + off, cut, sizeof cut - 1);
	return off + sizeof cut - 1;
}

static void
write_record(const char *rec, size_t n)
{
	ssize_t	 w;

	do
		w = write(log_fd, rec, n);
	while (w == -1 && errno == EINTR);
}

/* One sd_journal_sendv() with the fields that apply. */
static void
journal_send(int level, const struct log_ctx *ctx, const char *file,
    int line, const char *func, const char *msg)
{
	char		 f[9][LOG_RECORD_MAX + 16];
	struct iovec	 iov[9];
	int		 n = 0, i;
	const char	*pool = log_pool, *worker = log_worker;

	if (ctx != NULL && ctx->pool != NULL)
		pool = ctx->pool;
	if (ctx != NULL && ctx->worker != NULL)
		worker = ctx->worker;
	snprintf(f[n++], sizeof f[0], "MESSAGE=%s", msg);
	snprintf(f[n++], sizeof f[0], "PRIORITY=%d", level);
	snprintf(f[n++], sizeof f[0], "SYSLOG_IDENTIFIER=mprocd");
	snprintf(f[n++], sizeof f[0], "CODE_FILE=%s", file);
	snprintf(f[n++], sizeof f[0], "CODE_LINE=%d", line);
	snprintf(f[n++], sizeof f[0], "CODE_FUNC=%s", func);
	if (*pool != '\0')
		snprintf(f[n++], sizeof f[0], "MPROCD_POOL=%s", pool);
	if (*worker != '\0')
		snprintf(f[n++], sizeof f[0], "MPROCD_WORKER=%s", worker);
	if (ctx != NULL && ctx->job > 0)
		snprintf(f[n++], sizeof f[0], "MPROCD_JOB=%" PRId64, ctx->job);
	for (i = 0; i < n; i++) {
		iov[i].iov_base = f[i];
		iov[i].iov_len = strlen(f[i]);
	}
	sd_journal_sendv(iov, n);
}

static void
log_vemit(int level, const struct log_ctx *ctx, int with_errno,
    const char *file, int line, const char *func, const char *fmt, va_list ap)
{
	char		 msg[LOG_RECORD_MAX], rec[LOG_RECORD_MAX];
	int		 saved = errno;
	size_t		 n;

	if (level > log_level) {
		errno = saved;
		return;
	}
	if (log_reopen_pending) {
		log_reopen_pending = 0;
		log_reopen();
	}
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (with_errno) {
		n = strlen(msg);
		snprintf(msg + n, sizeof msg - n, ": %s", strerror(saved));
	}

	if (log_target == LOG_TO_JOURNAL) {
		journal_send(level, ctx, file, line, func, msg);
		errno = saved;
		return;
	}
	n = log_format(rec, sizeof rec, util_now_usec(), level, ctx, msg);
	write_record(rec, n);
	errno = saved;
}

void
log_emit(int level, const struct log_ctx *ctx, int with_errno,
    const char *file, int line, const char *func, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vemit(level, ctx, with_errno, file, line, func, fmt, ap);
	va_end(ap);
}

void
log_fatal(int with_errno, const char *file, int line, const char *func,
    const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vemit(LOG_CRIT, NULL, with_errno, file, line, func, fmt, ap);
	va_end(ap);
	exit(1);
}
