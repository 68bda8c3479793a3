#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

enum log_target {
	LOG_TO_STDERR,
	LOG_TO_FILE,
	LOG_TO_JOURNAL,
};

static enum log_target	     log_target = LOG_TO_STDERR;
static int		     log_fd = STDERR_FILENO;
static char		    *log_path;
static int		     log_level = LOG_INFO;
static int		     log_prefix; /* "<N>" for journald's stream */
static volatile sig_atomic_t log_reopen_pending;
static int (*journal_sendv)(const struct iovec *, int);

/* This process's own name and the fields it implies. */
static char log_name[64] = "mprocd";
static char log_pool[64];
static char log_worker[64];

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
	int i;

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

/*
 * The journal is written with sd_journal_sendv(), which mprocd hands us. A
 * program that does not (mprocctl) never loads libsystemd and what it
 * pulls in (gcrypt, lzma, zstd, lz4, cap): 0.85 ms of every exec here.
 */
void
log_use_journal(int (*sendv)(const struct iovec *, int))
{
	journal_sendv = sendv;
}

/* Whether stderr is the journal stream systemd gave us. */
static int
log_stderr_is_journal(void)
{
	const char   *e = getenv("JOURNAL_STREAM");
	struct stat   st;
	unsigned long dev, ino;

	if (e == NULL || sscanf(e, "%lu:%lu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return st.st_dev == dev && st.st_ino == ino;
}

static int
log_open_file(const char *path)
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
	int fd;

	if (strcmp(target, "stderr") == 0 ||
	    (strcmp(target, "auto") == 0 &&
		(!log_stderr_is_journal() || journal_sendv == NULL ||
		    access(JOURNAL_SOCKET, W_OK) != 0))) {
		log_close();
		log_target = LOG_TO_STDERR;
		log_prefix = log_stderr_is_journal();
		return 0;
	}
	if (strcmp(target, "journal") == 0 || strcmp(target, "auto") == 0) {
		if (journal_sendv == NULL) {
			*errstr = "this program does not write to the journal; "
				  "use stderr or file:PATH";
			return -1;
		}
		/* sd_journal_send() drops records silently without it. */
		if (access(JOURNAL_SOCKET, W_OK) != 0) {
			*errstr =
			    "the journal is not running (no " JOURNAL_SOCKET
			    "); use stderr or file:PATH";
			return -1;
		}
		log_close();
		log_target = LOG_TO_JOURNAL;
		log_prefix = log_stderr_is_journal(); /* for the fallback */
		return 0;
	}
	if (strncmp(target, "file:", 5) == 0 && target[5] == '/') {
		if ((fd = log_open_file(target + 5)) == -1) {
			*errstr = strerror(errno);
			return -1;
		}
		log_close();
		log_target = LOG_TO_FILE;
		log_fd = fd;
		if ((log_path = strdup(target + 5)) == NULL) {
			log_close();
			*errstr = strerror(ENOMEM);
			return -1;
		}
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
	log_prefix = 0;
}

/*
 * Reopens a file target in place (after logrotate renamed it): the new file
 * is opened first and dup3()ed over the old descriptor, so no record is
 * written to nowhere. A failure is logged (records still go to the old
 * file) and returned; errno is kept.
 */
int
log_reopen(void)
{
	int fd, saved = errno;

	if (log_target != LOG_TO_FILE)
		return 0;
	if ((fd = log_open_file(log_path)) == -1 ||
	    dup3(fd, log_fd, O_CLOEXEC) == -1) {
		log_warnx("cannot reopen the log file; records still go to "
			  "the old one" LOG_KV "path=%s" LOG_KV "error=%s",
		    log_path, strerror(errno));
		if (fd != -1)
			close(fd);
		errno = saved;
		return -1;
	}
	close(fd);
	errno = saved;
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

/* Does a reopen log_request_reopen() asked for; every record does it first. */
int
log_reopen_if_requested(void)
{
	if (!log_reopen_pending)
		return 0;
	log_reopen_pending = 0;
	return log_reopen();
}

/* "supervisor" or "worker default/2": names every record this process logs. */
void
log_procinit(const char *name)
{
	const char *slash;

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
 * A record's pieces in the order they are written: the context fields, msg,
 * then the fields that followed LOG_KV in the message.
 */
struct piece {
	const char *key;
	size_t	    klen;
	const char *val;
	size_t	    len;    /* of val */
	size_t	    budget; /* the bytes it may take once cut, or 0 */
};

#define LOG_PIECES_MAX 24
#define LOG_KEY_MAX    32

static const char cut_mark[] = " [cut]\"";
#define CUT_LEN (sizeof cut_mark - 1)
#define CUT_MIN (1 + CUT_LEN) /* a quote, nothing kept, the mark */

/* If s starts "key=" with a field key, the key's length; else 0. */
static size_t
log_field_key(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || *s < 'a' || *s > 'z')
		return 0;
	for (i = 1; i < n && i <= LOG_KEY_MAX; i++) {
		if (s[i] == '=')
			return i;
		if ((s[i] < 'a' || s[i] > 'z') && (s[i] < '0' || s[i] > '9') &&
		    s[i] != '_')
			return 0;
	}
	return 0;
}

/* Whether one of the n pieces already has the key (k bytes at key). */
static int
log_has_key(const struct piece *pc, size_t n, const char *key, size_t k)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (pc[i].klen == k && memcmp(pc[i].key, key, k) == 0)
			return 1;
	return 0;
}

/*
 * Splits a formatted message at LOG_KV into msg and its "key=value" fields,
 * after the n pieces already in pc. A part that is not "key=value" with a
 * key of its own (a value that itself held the separator) stays in the
 * piece before it, so nothing is dropped and no field is overridden.
 * Returns the new number of pieces.
 */
static size_t
log_split_message(const char *msg, struct piece *pc, size_t n)
{
	const char *p = msg, *end = msg + strlen(msg), *sep;
	size_t	    k;

	pc[n] = (struct piece){ "msg", 3, msg, 0, 0 };
	while ((sep = memchr(p, LOG_KV[0], (size_t)(end - p))) != NULL) {
		p = sep + 1;
		if ((k = log_field_key(p, (size_t)(end - p))) == 0 ||
		    n + 1 == LOG_PIECES_MAX || log_has_key(pc, n + 1, p, k))
			continue; /* part of this piece's value */
		pc[n].len = (size_t)(sep - pc[n].val);
		pc[++n] = (struct piece){ p, k, p + k + 1, 0, 0 };
	}
	pc[n].len = (size_t)(end - pc[n].val);
	return n + 1;
}

static int
log_needs_quotes(const char *v, size_t n)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t		     i;

	if (n == 0)
		return 1;
	for (i = 0; i < n; i++)
		if (p[i] <= ' ' || p[i] == '"' || p[i] == '=' || p[i] == '\\' ||
		    p[i] == 0x7f)
			return 1;
	return 0;
}

/* How c is written inside quotes; returns the escape's length. */
static size_t
log_escape_char(unsigned char c, char esc[8])
{
	switch (c) {
	case '"':
	case '\\':
		esc[0] = '\\';
		esc[1] = (char)c;
		return 2;
	case '\n':
		memcpy(esc, "\\n", 2);
		return 2;
	case '\t':
		memcpy(esc, "\\t", 2);
		return 2;
	case '\r':
		memcpy(esc, "\\r", 2);
		return 2;
	}
	if (c < ' ' || c == 0x7f)
		return (size_t)snprintf(esc, 8, "\\x%02x", c);
	esc[0] = (char)c;
	return 1;
}

/* How many bytes the UTF-8 character that starts with c has. */
static size_t
log_utf8_len(unsigned char c)
{
	if ((c & 0xe0) == 0xc0)
		return 2;
	if ((c & 0xf0) == 0xe0)
		return 3;
	if ((c & 0xf8) == 0xf0)
		return 4;
	return 1;
}

/*
 * How much of s (len bytes) to keep in at most max bytes without splitting
 * a UTF-8 character.
 */
static size_t
log_utf8_cut(const char *s, size_t len, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t		     lead;

	if (len <= max)
		return len;
	if ((p[max] & 0xc0) != 0x80)
		return max;
	for (lead = max; lead > 0 && max - lead < 3 && (p[lead] & 0xc0) == 0x80;
	     lead--)
		;
	return max - lead < log_utf8_len(p[lead]) ? lead : max;
}

/*
 * Copies len bytes of src to dst, or if they take more than max, the whole
 * characters that fit in max with " [cut]" after them. Returns how many.
 */
static size_t
log_copy_cut(char *dst, const char *src, size_t len, size_t max)
{
	size_t keep;

	if (len <= max) {
		memcpy(dst, src, len);
		return len;
	}
	keep = log_utf8_cut(src, len, max - (CUT_LEN - 1));
	memcpy(dst, src, keep);
	memcpy(dst + keep, cut_mark, CUT_LEN - 1); /* no quote */
	return keep + CUT_LEN - 1;
}

/* The bytes a whole piece takes: " key=" and its value. */
static size_t
log_piece_len(const struct piece *pc)
{
	const unsigned char *p = (const unsigned char *)pc->val;
	char		     esc[8];
	size_t		     i, n;

	if (pc->budget != 0)
		return 2 + pc->klen + pc->budget;
	if (!log_needs_quotes(pc->val, pc->len))
		return 2 + pc->klen + pc->len;
	for (i = 0, n = 2; i < pc->len; i++)
		n += log_escape_char(p[i], esc);
	return 2 + pc->klen + n;
}

/* Writes n bytes of v escaped, as they go inside quotes. */
static size_t
log_put_escaped(char *buf, size_t off, const char *v, size_t n)
{
	char   esc[8];
	size_t i, k;

	for (i = 0; i < n; i++) {
		k = log_escape_char((unsigned char)v[i], esc);
		memcpy(buf + off, esc, k);
		off += k;
	}
	return off;
}

/*
 * Writes a piece at off. A cut piece keeps the whole characters whose
 * escapes fit in its budget with the mark: no escape or UTF-8 character is
 * ever split.
 */
static size_t
log_put_piece(char *buf, size_t off, const struct piece *pc)
{
	char   esc[8];
	size_t i, used, room;

	buf[off++] = ' ';
	memcpy(buf + off, pc->key, pc->klen);
	off += pc->klen;
	buf[off++] = '=';
	if (pc->budget == 0 && !log_needs_quotes(pc->val, pc->len)) {
		memcpy(buf + off, pc->val, pc->len);
		return off + pc->len;
	}
	buf[off++] = '"';
	if (pc->budget == 0) {
		off = log_put_escaped(buf, off, pc->val, pc->len);
		buf[off++] = '"';
		return off;
	}
	room = pc->budget - CUT_LEN - 1;
	for (i = 0, used = 0; i < pc->len; i++) {
		if ((used += log_escape_char((unsigned char)pc->val[i], esc)) >
		    room)
			break;
	}
	off = log_put_escaped(buf, off, pc->val,
	    log_utf8_cut(pc->val, pc->len, i));
	memcpy(buf + off, cut_mark, CUT_LEN);
	return off + CUT_LEN;
}

/* The bytes the pieces take if no value takes more than level. */
static size_t
log_total_at(const struct piece *pc, const size_t *full, size_t n, size_t level)
{
	size_t i, total = 0;

	for (i = 0; i < n; i++)
		total += 2 + pc[i].klen + MIN(full[i], level);
	return total;
}

/*
 * Makes the pieces fit in room bytes by cutting the longest values down to
 * one level, the highest that fits, so the room is shared rather than one
 * value emptied. Returns the number of pieces that fit: all of them unless
 * room is tiny.
 */
static size_t
log_fit_pieces(struct piece *pc, size_t n, size_t room)
{
	size_t full[LOG_PIECES_MAX], i, lo = CUT_MIN, hi = CUT_MIN, mid;
	size_t total;

	/* Most records fit even if every byte took its longest escape. */
	for (i = 0, total = 0; i < n; i++) {
		pc[i].budget = 0;
		total += 4 + pc[i].klen + 4 * pc[i].len;
	}
	if (total <= room)
		return n;

	for (i = 0; i < n; i++) {
		full[i] = log_piece_len(&pc[i]) - 2 - pc[i].klen;
		hi = MAX(hi, full[i]);
	}
	if (log_total_at(pc, full, n, hi) <= room)
		return n;
	if (log_total_at(pc, full, n, lo) <= room) {
		/* The highest level that fits is in [lo, hi). */
		while (hi - lo > 1) {
			mid = lo + (hi - lo) / 2;
			if (log_total_at(pc, full, n, mid) <= room)
				lo = mid;
			else
				hi = mid;
		}
	}
	for (i = 0; i < n; i++)
		if (full[i] > lo)
			pc[i].budget = lo;
	/* Even cut to nothing they may not fit: keep those that do. */
	for (i = 0, total = 0; i < n; i++)
		if ((total += log_piece_len(&pc[i])) > room)
			return i;
	return n;
}

/*
 * The context's fields, or this process's own: worker (which names the pool,
 * so pool only without one, unless both), job.
 */
static size_t
log_context_pieces(const struct log_ctx *ctx, struct piece *pc, char *num,
    size_t numlen, int both)
{
	const char *pool = log_pool, *worker = log_worker;
	size_t	    n = 0;

	if (ctx != NULL && ctx->pool != NULL)
		pool = ctx->pool;
	if (ctx != NULL && ctx->worker != NULL)
		worker = ctx->worker;
	if (*pool != '\0' && (both || *worker == '\0'))
		pc[n++] = (struct piece){ "pool", 4, pool, strlen(pool), 0 };
	if (*worker != '\0')
		pc[n++] = (struct piece){ "worker", 6, worker, strlen(worker),
			0 };
	if (ctx != NULL && ctx->job > 0) {
		snprintf(num, numlen, "%" PRId64, ctx->job);
		pc[n++] = (struct piece){ "job", 3, num, strlen(num), 0 };
	}
	return n;
}

/*
 * One line: "TIMESTAMP LEVEL [worker=|pool=] [job=] msg=... [key=value...]"
 * and a newline, at most size bytes. The message may carry fields after
 * LOG_KV. A record that does not fit has its longest values cut between
 * characters, each ending "... [cut]" inside its quotes.
 */
size_t
log_format(char *buf, size_t size, uint64_t usec, int level,
    const struct log_ctx *ctx, const char *msg)
{
	/* The date and time to the second, made once a second. */
	static char   ts[32];
	static size_t tslen;
	static time_t tssec = -1;
	struct piece  pc[LOG_PIECES_MAX];
	char	      num[32];
	struct tm     tm;
	time_t	      sec = (time_t)(usec / USEC_PER_SEC);
	unsigned      frac = (unsigned)(usec % USEC_PER_SEC);
	const char   *lv = log_level_name(level);
	size_t	      off, i, n, lvlen = strlen(lv);

	if (sec != tssec) {
		gmtime_r(&sec, &tm);
		tslen = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
		tssec = sec;
	}
	/* "2026-11-21T10:00:00.123456Z info": no printf on every record. */
	if (tslen + 9 + lvlen >= size)
		return 0;
	memcpy(buf, ts, tslen);
	off = tslen;
	buf[off++] = '.';
	for (i = 6; i-- > 0; frac /= 10)
		buf[off + i] = (char)('0' + frac % 10);
	off += 6;
	buf[off++] = 'Z';
	buf[off++] = ' ';
	memcpy(buf + off, lv, lvlen);
	off += lvlen;

	n = log_context_pieces(ctx, pc, num, sizeof num, 0);
	n = log_split_message(msg, pc, n);
	n = log_fit_pieces(pc, n, size - off - 1);
	for (i = 0; i < n; i++)
		off = log_put_piece(buf, off, &pc[i]);
	buf[off++] = '\n';
	return off;
}

static void
log_write_record(const char *rec, size_t n)
{
	ssize_t w;

	do
		w = write(log_fd, rec, n);
	while (w == -1 && errno == EINTR);
}

/*
 * A journal record's fields are built here; one record is sent before the
 * next is made. Each value may take JOURNAL_VALUE_MAX bytes, so every field
 * fits.
 */
#define JOURNAL_VALUE_MAX  LOG_RECORD_MAX
#define JOURNAL_FIELDS_MAX (LOG_PIECES_MAX + 6)
static char journal_store[JOURNAL_FIELDS_MAX * (JOURNAL_VALUE_MAX + 64)];

/*
 * Appends "KEY=value" as one iovec: the key in capitals after prefix, the
 * value cut with a mark if longer than JOURNAL_VALUE_MAX.
 */
static void
log_journal_field(struct iovec *iov, int *n, char **store, const char *prefix,
    const char *key, size_t klen, const char *val, size_t len)
{
	const char *end = journal_store + sizeof journal_store;
	char	   *p = *store;
	size_t	    i, plen = strlen(prefix), keep;

	if (*n == JOURNAL_FIELDS_MAX || klen > 64 - plen - 1 ||
	    (size_t)(end - p) < plen + klen + 1 + JOURNAL_VALUE_MAX)
		return; /* cannot happen: room is made for all */
	memcpy(p, prefix, plen);
	for (i = 0; i < klen; i++)
		p[plen + i] = (char)toupper((unsigned char)key[i]);
	p[plen + klen] = '=';
	p += plen + klen + 1;
	keep = log_copy_cut(p, val, len, JOURNAL_VALUE_MAX);
	iov[*n].iov_base = *store;
	iov[*n].iov_len = (size_t)(p + keep - *store);
	(*n)++;
	*store = p + keep;
}

/*
 * One sd_journal_sendv() (journal_sendv), returning its result: MESSAGE is the message
 * text with its fields in logfmt (what journalctl shows), and every field
 * is also MPROCD_KEY=value, whole unless longer than JOURNAL_VALUE_MAX.
 */
static int __attribute__((noinline))
log_journal_send(int level, const struct log_ctx *ctx, const char *file,
    int line, const char *func, const char *msg)
{
	struct piece pc[LOG_PIECES_MAX], shown[LOG_PIECES_MAX];
	struct iovec iov[JOURNAL_FIELDS_MAX];
	char	     text[LOG_RECORD_MAX], num[32], pri[4], lineno[16];
	char	    *s = journal_store;
	size_t	     i, n, nctx, nshown, off;
	int	     k = 0;

	nctx = log_context_pieces(ctx, pc, num, sizeof num, 1);
	n = log_split_message(msg, pc, nctx);

	/* MESSAGE: the text (half the room at most), then its fields. */
	off = log_copy_cut(text, pc[nctx].val, pc[nctx].len, sizeof text / 2);
	memcpy(shown, pc + nctx + 1, (n - nctx - 1) * sizeof *shown);
	nshown = log_fit_pieces(shown, n - nctx - 1,
	    sizeof text - CUT_LEN - off);
	for (i = 0; i < nshown; i++)
		off = log_put_piece(text, off, &shown[i]);
	log_journal_field(iov, &k, &s, "", "MESSAGE", 7, text, off);

	snprintf(pri, sizeof pri, "%d", level);
	log_journal_field(iov, &k, &s, "", "PRIORITY", 8, pri, strlen(pri));
	log_journal_field(iov, &k, &s, "", "SYSLOG_IDENTIFIER", 17, "mprocd",
	    6);
	log_journal_field(iov, &k, &s, "", "CODE_FILE", 9, file, strlen(file));
	snprintf(lineno, sizeof lineno, "%d", line);
	log_journal_field(iov, &k, &s, "", "CODE_LINE", 9, lineno,
	    strlen(lineno));
	log_journal_field(iov, &k, &s, "", "CODE_FUNC", 9, func, strlen(func));
	for (i = 0; i < n; i++)
		if (i != nctx)
			log_journal_field(iov, &k, &s, "MPROCD_", pc[i].key,
			    pc[i].klen, pc[i].val, pc[i].len);
	return journal_sendv(iov, k);
}

/* Puts ": strerror" at the end of the message text, before its fields. */
static void
log_add_strerror(char *msg, size_t size, int error)
{
	struct piece pc[LOG_PIECES_MAX];
	char	     err[128];
	size_t	     len = strlen(msg), at, n;

	n = (size_t)snprintf(err, sizeof err, ": %s", strerror(error));
	if (n >= sizeof err)
		n = sizeof err - 1;
	log_split_message(msg, pc, 0);
	at = pc[0].len;
	if (len + n >= size)
		return;
	memmove(msg + at + n, msg + at, len - at + 1);
	memcpy(msg + at, err, n);
}

static void __attribute__((format(printf, 7, 0)))
log_vemit(int level, const struct log_ctx *ctx, int with_errno,
    const char *file, int line, const char *func, const char *fmt, va_list ap)
{
	char   msg[4 * LOG_RECORD_MAX], rec[LOG_RECORD_MAX];
	int    saved = errno;
	size_t n = 0;

	if (level > log_level) {
		errno = saved;
		return;
	}
	log_reopen_if_requested();
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (with_errno)
		log_add_strerror(msg, sizeof msg, saved);

	/* A journal that fails to take it: stderr rather than nowhere. */
	if (log_target == LOG_TO_JOURNAL &&
	    log_journal_send(level, ctx, file, line, func, msg) >= 0) {
		errno = saved;
		return;
	}
	/* journald reads a "<N>" prefix on its stream as the priority. */
	if (log_prefix)
		n = (size_t)snprintf(rec, sizeof rec, "<%d>", level);
	n += log_format(rec + n, LOG_RECORD_MAX - n, util_now_usec(), level,
	    ctx, msg);
	log_write_record(rec, n);
	errno = saved;
}

const char *
log_safe(const char *s, char *buf, size_t len)
{
	size_t n = strlen(s);
	char  *p;

	if (n < len)
		memcpy(buf, s, n + 1);
	else if (len >= CUT_LEN)
		buf[log_copy_cut(buf, s, n, len - 1)] = '\0';
	else if (len > 0)
		buf[0] = '\0';
	for (p = buf; (p = strchr(p, LOG_KV[0])) != NULL; p++)
		*p = '?';
	return buf;
}

/*
 * Whether one more record from rl's source may be logged at monotonic time
 * now (microseconds).
 */
int
log_ratelimit(struct log_ratelimit *rl, uint64_t now)
{
	if (rl->count == 0 || now - rl->start >= rl->interval) {
		if (rl->count > rl->burst)
			log_notice("dropped %u %s records (at most %u per "
				   "%llus)" LOG_KV "dropped=%u",
			    rl->count - rl->burst, rl->what, rl->burst,
			    (unsigned long long)(rl->interval / USEC_PER_SEC),
			    rl->count - rl->burst);
		rl->start = now;
		rl->count = 0;
	}
	return rl->count++ < rl->burst;
}

void
log_emit(int level, const struct log_ctx *ctx, int with_errno, const char *file,
    int line, const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(level, ctx, with_errno, file, line, func, fmt, ap);
	va_end(ap);
}

void
log_fatal(int with_errno, const char *file, int line, const char *func,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_CRIT, NULL, with_errno, file, line, func, fmt, ap);
	va_end(ap);
	exit(1);
}

/*
 * A wait status as log fields: " status=1", " signal=9 core_dumped=yes",
 * each after LOG_KV, for a record about a process that ended.
 */
void
log_wait_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, LOG_KV "status=%d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, LOG_KV "signal=%d%s", WTERMSIG(status),
		    WCOREDUMP(status) ? LOG_KV "core_dumped=yes" : "");
	else
		snprintf(buf, len, LOG_KV "wait_status=0x%x", status);
}
