/* lib/log.c: the record format, levels, process names and log targets. */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
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

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "log.h"

/* 2023-11-14T22:13:20.123456Z */
#define TS     UINT64_C(1700000000123456)
#define TS_STR "2023-11-14T22:13:20.123456Z"

/* A temporary directory for the tests that write log files. */
struct logdir {
	char dir[64];
	char path[128];
	char moved[128];
};

static int
setup(void **state)
{
	struct logdir *d;

	log_close();
	log_use_journal(sd_journal_sendv);
	log_procinit("test");
	log_setlevel(LOG_INFO);
	unsetenv("JOURNAL_STREAM");
	d = calloc(1, sizeof *d);
	if (d == NULL)
		return -1;
	snprintf(d->dir, sizeof d->dir, "/tmp/test-log.XXXXXX");
	if (mkdtemp(d->dir) == NULL) {
		free(d);
		return -1;
	}
	snprintf(d->path, sizeof d->path, "%s/mprocd.log", d->dir);
	snprintf(d->moved, sizeof d->moved, "%s/mprocd.log.1", d->dir);
	*state = d;
	return 0;
}

static int
teardown(void **state)
{
	struct logdir *d = *state;

	log_close();
	log_procinit("test");
	log_setlevel(LOG_INFO);
	unsetenv("JOURNAL_STREAM");
	unlink(d->path);
	unlink(d->moved);
	rmdir(d->dir);
	free(d);
	return 0;
}

/* log_format() into a NUL-terminated string; the length must fit. */
static const char *
fmt(int level, const struct log_ctx *ctx, const char *msg)
{
	static char buf[LOG_RECORD_MAX + 1];
	size_t	    n;

	memset(buf, 0x55, sizeof buf);
	n = log_format(buf, LOG_RECORD_MAX, TS, level, ctx, msg);
	assert_true(n > 0);
	assert_true(n <= LOG_RECORD_MAX);
	buf[n] = '\0';
	return buf;
}

static void
fmt_is(const char *msg, const char *want)
{
	assert_string_equal(fmt(LOG_INFO, NULL, msg), want);
}

/* The whole file as a string (empty if it does not exist). */
static char *
slurp(const char *path)
{
	FILE  *f;
	char  *s;
	size_t n;

	s = calloc(1, 65536);
	assert_non_null(s);
	if ((f = fopen(path, "r")) == NULL)
		return s;
	n = fread(s, 1, 65535, f);
	s[n] = '\0';
	fclose(f);
	return s;
}

static size_t
count_char(const char *s, size_t n, char c)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (s[i] == c)
			k++;
	return k;
}

/* The descriptor open on path, or -1. */
static int
fd_of(const char *path)
{
	struct stat want, st;
	int	    fd;

	if (stat(path, &want) != 0)
		return -1;
	for (fd = 0; fd < 1024; fd++)
		if (fstat(fd, &st) == 0 && st.st_dev == want.st_dev &&
		    st.st_ino == want.st_ino)
			return fd;
	return -1;
}

static void
open_file_target(const struct logdir *d)
{
	char	    target[160];
	const char *errstr = NULL;

	snprintf(target, sizeof target, "file:%s", d->path);
	if (log_open(target, &errstr) != 0)
		fail_msg("log_open %s: %s", target, errstr);
}

/*
 * A logfmt parser for whole records, strict enough to catch anything a
 * consumer could misread: "TIMESTAMP LEVEL" then " key=value" pairs and one
 * final newline. Values are decoded back to the bytes that were logged, so
 * tests can compare them with what went in.
 */
#define KEY_MAX	  32 /* as lib/log.c allows */
#define PAIRS_MAX 32
#define CUT_TAIL  " [cut]"

struct pair {
	char	    key[KEY_MAX + 1];
	const char *val; /* decoded, NUL-terminated */
	size_t	    len;
	int	    quoted;
	int	    cut; /* ended " [cut]", left out of len */
};

struct record {
	char	    level[16];
	struct pair pairs[PAIRS_MAX];
	size_t	    npairs;
	char	    store[1 << 17];
};

/* Whether logfmt must quote these bytes. */
static int
must_quote(const char *v, size_t n)
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

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes a quoted value from *pp (just past the quote) into *outp. */
static const char *
parse_quoted(const unsigned char **pp, const unsigned char *end, char **outp)
{
	const unsigned char *p = *pp;
	char		    *out = *outp;
	unsigned char	     c;

	for (;;) {
		if (p >= end)
			return "no closing quote";
		if ((c = *p++) == '"')
			break;
		if (c < ' ' || c == 0x7f)
			return "raw control byte inside quotes";
		if (c != '\\') {
			*out++ = (char)c;
			continue;
		}
		if (p >= end)
			return "broken escape";
		switch (c = *p++) {
		case '"':
		case '\\':
			*out++ = (char)c;
			break;
		case 'n':
			*out++ = '\n';
			break;
		case 't':
			*out++ = '\t';
			break;
		case 'r':
			*out++ = '\r';
			break;
		case 'x':
			if (end - p < 2 || hexval(p[0]) == -1 ||
			    hexval(p[1]) == -1)
				return "broken \\x escape";
			c = (unsigned char)(hexval(p[0]) * 16 + hexval(p[1]));
			p += 2;
			/* \xNN only for control bytes without a short form */
			if ((c >= ' ' && c != 0x7f) || c == '\n' || c == '\t' ||
			    c == '\r')
				return "needless \\x escape";
			*out++ = (char)c;
			break;
		default:
			return "unknown escape";
		}
	}
	*pp = p;
	*outp = out;
	return NULL;
}

/* Parses buf[0..n) into r; returns NULL, or what is malformed. */
static const char *
record_parse(const char *buf, size_t n, struct record *r)
{
	static const char    ts[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	const unsigned char *p = (const unsigned char *)buf, *end = p + n;
	char		    *out = r->store;
	struct pair	    *pr;
	const char	    *why;
	size_t		     i, k;
	int		     lvl;

	memset(r, 0, offsetof(struct record, store));
	if (n == 0 || buf[n - 1] != '\n')
		return "does not end in a newline";
	if (n >= sizeof r->store)
		return "too long for the parser";
	if (n < sizeof ts)
		return "too short";
	for (i = 0; i < sizeof ts - 1; i++)
		if (ts[i] == 'd' ? p[i] < '0' || p[i] > '9' : p[i] != ts[i])
			return "bad timestamp";
	p += sizeof ts - 1;
	if (*p++ != ' ')
		return "no space after the timestamp";
	for (k = 0; *p >= 'a' && *p <= 'z'; p++) {
		if (k == sizeof r->level - 1)
			return "bad level";
		r->level[k++] = (char)*p;
	}
	for (lvl = LOG_EMERG; lvl <= LOG_DEBUG; lvl++)
		if (strcmp(r->level, log_level_name(lvl)) == 0)
			break;
	if (lvl > LOG_DEBUG)
		return "unknown level";

	while (*p != '\n') {
		if (*p++ != ' ')
			return "no space before a key";
		if (r->npairs == PAIRS_MAX)
			return "too many pairs";
		pr = &r->pairs[r->npairs++];
		if (*p < 'a' || *p > 'z')
			return "bad key";
		for (k = 0; (*p >= 'a' && *p <= 'z') ||
		     (*p >= '0' && *p <= '9') || *p == '_';
		     p++) {
			if (k == KEY_MAX)
				return "key too long";
			pr->key[k++] = (char)*p;
		}
		if (*p++ != '=')
			return "no '=' after the key";
		pr->val = out;
		if (*p == '"') {
			p++;
			pr->quoted = 1;
			if ((why = parse_quoted(&p, end, &out)) != NULL)
				return why;
			pr->len = (size_t)(out - pr->val);
			k = strlen(CUT_TAIL);
			if (pr->len >= k && memcmp(out - k, CUT_TAIL, k) == 0) {
				pr->cut = 1;
				pr->len -= k;
			} else if (!must_quote(pr->val, pr->len))
				return "quoted needlessly";
		} else {
			for (; *p != ' ' && *p != '\n'; p++) {
				if (*p < ' ' || *p == '"' || *p == '=' ||
				    *p == '\\' || *p == 0x7f)
					return "bad byte in a bare value";
				*out++ = (char)*p;
			}
			pr->len = (size_t)(out - pr->val);
			if (pr->len == 0)
				return "empty bare value";
		}
		*out++ = '\0';
		if (p >= end)
			return "record ends inside a value";
	}
	if (p != end - 1)
		return "newline inside the record";
	return NULL;
}

/* Parses a record that must be well formed and fit in size bytes. */
static void
record_check(const char *buf, size_t n, size_t size, struct record *r)
{
	const char *why;

	assert_true(n > 0);
	assert_true(n <= size);
	if ((why = record_parse(buf, n, r)) != NULL)
		fail_msg("malformed record (%s): %.*s", why,
		    (int)(n < 400 ? n : 400), buf);
	assert_int_equal(count_char(buf, n, '\n'), 1);
}

/*
 * The record has exactly these pairs, in this order, none cut: key, value,
 * key, value, ..., NULL.
 */
static void
expect_pairs(const struct record *r, ...)
{
	const struct pair *pr;
	const char	  *key, *val;
	va_list		   ap;
	size_t		   i = 0;

	va_start(ap, r);
	while ((key = va_arg(ap, const char *)) != NULL) {
		val = va_arg(ap, const char *);
		if (i == r->npairs)
			fail_msg("no pair %zu (%s)", i, key);
		pr = &r->pairs[i++];
		assert_string_equal(pr->key, key);
		assert_false(pr->cut);
		assert_int_equal(pr->len, strlen(val));
		assert_memory_equal(pr->val, val, pr->len);
	}
	va_end(ap);
	assert_int_equal(r->npairs, i);
}

/* Whether a cut pair kept the start of want, or an uncut one all of it. */
static int
pair_keeps(const struct pair *pr, const char *want, size_t len)
{
	if (pr->cut)
		return pr->len < len && memcmp(pr->val, want, pr->len) == 0;
	return pr->len == len && memcmp(pr->val, want, len) == 0;
}

/* Line i (from 0) of s, without its newline, or NULL. */
static const char *
nth_line(const char *s, size_t i, size_t *len)
{
	const char *nl;

	for (; i > 0; i--) {
		if ((nl = strchr(s, '\n')) == NULL)
			return NULL;
		s = nl + 1;
	}
	if (*s == '\0' || (nl = strchr(s, '\n')) == NULL)
		return NULL;
	*len = (size_t)(nl - s);
	return s;
}

/* Line i of a log file, parsed: prefix, then a record. */
static void
line_check(const char *s, size_t i, const char *prefix, struct record *r)
{
	const char *line;
	size_t	    len, plen = strlen(prefix);

	if ((line = nth_line(s, i, &len)) == NULL)
		fail_msg("no line %zu in: %s", i, s);
	if (len < plen || memcmp(line, prefix, plen) != 0)
		fail_msg("line %zu does not start with \"%s\": %.*s", i, prefix,
		    (int)len, line);
	record_check(line + plen, len - plen + 1, LOG_RECORD_MAX, r);
}

/*
 * Points fd 2 at path (created empty) and says the stream's dev:ino as
 * JOURNAL_STREAM would. Returns the saved fd 2 for stderr_restore(). Nothing
 * may assert between the two: a failure message would land in the file.
 */
static int
stderr_divert(const char *path, char *stream, size_t len)
{
	struct stat st;
	int	    fd, saved;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd != -1);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(stream, len, "%lu:%lu", (unsigned long)st.st_dev,
	    (unsigned long)st.st_ino);
	fflush(stderr);
	saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	assert_true(saved != -1);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	return saved;
}

static void
stderr_restore(int saved)
{
	dup2(saved, STDERR_FILENO);
	close(saved);
}

/* xorshift64*: the same sequence on every libc, unlike rand(). */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

static size_t
rnd_below(uint64_t *s, size_t n)
{
	return (size_t)(rnd(s) % n);
}

static void
test_format_shape(void **state)
{
	struct log_ctx ctx;

	fmt_is("started", TS_STR " info msg=started\n");
	assert_string_equal(fmt(LOG_ERR, NULL, "x"), TS_STR " error msg=x\n");
	assert_string_equal(fmt(LOG_WARNING, NULL, "x"),
	    TS_STR " warning msg=x\n");
	assert_string_equal(fmt(LOG_NOTICE, NULL, "x"),
	    TS_STR " notice msg=x\n");
	assert_string_equal(fmt(LOG_DEBUG, NULL, "x"), TS_STR " debug msg=x\n");
	assert_string_equal(fmt(LOG_CRIT, NULL, "x"), TS_STR " crit msg=x\n");

	memset(&ctx, 0, sizeof ctx);
	ctx.pool = "web";
	ctx.job = -1;
	assert_string_equal(fmt(LOG_INFO, &ctx, "spawned"),
	    TS_STR " info pool=web msg=spawned\n");

	/* A worker names its pool, so pool is left out. */
	ctx.worker = "web/3";
	ctx.job = 17;
	assert_string_equal(fmt(LOG_WARNING, &ctx, "job failed"),
	    TS_STR " warning worker=web/3 job=17 msg=\"job failed\"\n");

	ctx.pool = NULL;
	ctx.worker = NULL;
	ctx.job = 9007199254740993LL;
	assert_string_equal(fmt(LOG_INFO, &ctx, "done"),
	    TS_STR " info job=9007199254740993 msg=done\n");

	/* Empty context fields are left out. */
	ctx.pool = "";
	ctx.worker = "";
	ctx.job = 0;
	assert_string_equal(fmt(LOG_INFO, &ctx, "x"), TS_STR " info msg=x\n");
	ctx.job = -1;
	assert_string_equal(fmt(LOG_INFO, &ctx, "x"), TS_STR " info msg=x\n");

	/* Context values are quoted like msg. */
	ctx.worker = "a b";
	assert_string_equal(fmt(LOG_INFO, &ctx, "x"),
	    TS_STR " info worker=\"a b\" msg=x\n");
}

static void
test_format_timestamp(void **state)
{
	char   buf[LOG_RECORD_MAX + 1];
	size_t n;

	n = log_format(buf, LOG_RECORD_MAX, 0, LOG_INFO, NULL, "x");
	buf[n] = '\0';
	assert_string_equal(buf, "1970-01-01T00:00:00.000000Z info msg=x\n");
	n = log_format(buf, LOG_RECORD_MAX, UINT64_C(1700000000000042),
	    LOG_INFO, NULL, "x");
	buf[n] = '\0';
	assert_string_equal(buf, "2023-11-14T22:13:20.000042Z info msg=x\n");
	n = log_format(buf, LOG_RECORD_MAX, UINT64_C(951868799999999), LOG_INFO,
	    NULL, "x");
	buf[n] = '\0';
	assert_string_equal(buf, "2000-02-29T23:59:59.999999Z info msg=x\n");
}

static void
test_format_quoting(void **state)
{
	fmt_is("ok/fine:42,x-y_z.", TS_STR " info msg=ok/fine:42,x-y_z.\n");
	fmt_is("h\xc3\xa9llo", TS_STR " info msg=h\xc3\xa9llo\n");
	fmt_is("", TS_STR " info msg=\"\"\n");
	fmt_is("hello world", TS_STR " info msg=\"hello world\"\n");
	fmt_is(" lead", TS_STR " info msg=\" lead\"\n");
	fmt_is("say \"hi\"", TS_STR " info msg=\"say \\\"hi\\\"\"\n");
	fmt_is("\"", TS_STR " info msg=\"\\\"\"\n");
	fmt_is("a\\b", TS_STR " info msg=\"a\\\\b\"\n");
	fmt_is("a\nb", TS_STR " info msg=\"a\\nb\"\n");
	fmt_is("a\tb", TS_STR " info msg=\"a\\tb\"\n");
	fmt_is("a\rb", TS_STR " info msg=\"a\\rb\"\n");
	fmt_is("a\x01z", TS_STR " info msg=\"a\\x01z\"\n");
	fmt_is("\x1b[1m", TS_STR " info msg=\"\\x1b[1m\"\n");
	fmt_is("del\x7f", TS_STR " info msg=\"del\\x7f\"\n");
	fmt_is("a=b", TS_STR " info msg=\"a=b\"\n");
	fmt_is("k=v k2=\"v 2\"\n",
	    TS_STR " info msg=\"k=v k2=\\\"v 2\\\"\\n\"\n");
}

/* Checks the invariants of a cut record of n bytes. */
static void
check_cut(const char *rec, size_t n)
{
	static const char tail[] = "[cut]\"\n";

	assert_true(n <= LOG_RECORD_MAX);
	assert_true(n > sizeof tail);
	assert_memory_equal(rec + n - (sizeof tail - 1), tail, sizeof tail - 1);
	assert_int_equal(count_char(rec, n, '\n'), 1);
	assert_memory_equal(rec, TS_STR " info msg=", strlen(TS_STR) + 10);
}

static void
test_format_long_message_cut(void **state)
{
	char   msg[8001], rec[LOG_RECORD_MAX + 1];
	size_t i, n;

	for (i = 0; i < 8000; i++)
		msg[i] = i % 5 == 4 ? ' ' : 'a' + (char)(i % 5);
	msg[8000] = '\0';
	memset(rec, 0x55, sizeof rec);
	n = log_format(rec, LOG_RECORD_MAX, TS, LOG_INFO, NULL, msg);
	check_cut(rec, n);
	/* Nothing written past what was returned. */
	assert_int_equal((unsigned char)rec[LOG_RECORD_MAX], 0x55);
	/* What is kept is the start of the message, quoted. */
	assert_memory_equal(rec + strlen(TS_STR) + 10, "\"abcd abcd ", 11);

	/* Escapes that would each be a newline are cut the same way. */
	memset(msg, '\n', 8000);
	n = log_format(rec, LOG_RECORD_MAX, TS, LOG_INFO, NULL, msg);
	check_cut(rec, n);

	/* A smaller buffer is honoured too. */
	n = log_format(rec, 100, TS, LOG_INFO, NULL,
	    "a b c d e f g h i j k "
	    "l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r "
	    "s t u v w x y z");
	assert_true(n <= 100);
	assert_int_equal(count_char(rec, n, '\n'), 1);
	assert_int_equal(rec[n - 1], '\n');

	/* A message that just fits is not cut. */
	memset(msg, 'a', 8000);
	i = LOG_RECORD_MAX - 20 - (strlen(TS_STR) + 10 + 1);
	msg[i] = '\0';
	n = log_format(rec, LOG_RECORD_MAX, TS, LOG_INFO, NULL, msg);
	assert_int_equal(n, strlen(TS_STR) + 10 + i + 1);
	assert_int_equal(rec[n - 1], '\n');
	assert_int_equal(rec[n - 2], 'a');
}

/*
 * A cut record is still one logfmt line: the quote that "[cut]\"" closes
 * must have been opened, and no escape sequence may be left half written.
 * Returns NULL if rec is well formed, else what is wrong.
 */
static const char *
cut_problem(const char *rec, size_t n)
{
	const char *p = memchr(rec, '\0', n), *end = rec + n - 1;
	const char *v;

	if (p != NULL)
		return "NUL in record";
	v = NULL;
	for (p = rec; p + 4 < end; p++)
		if (memcmp(p, " msg=", 5) == 0) {
			v = p + 5;
			break;
		}
	if (v == NULL)
		return "no msg=";
	if (*v != '"')
		return "cut value was never quoted";
	for (p = v + 1; p < end; p++) {
		if (*p == '"')
			return p + 1 == end ? NULL : "text after closing quote";
		if (*p != '\\')
			continue;
		p++;
		if (*p == '"' || *p == '\\' || *p == 'n' || *p == 't' ||
		    *p == 'r')
			continue;
		if (*p == 'x' && p + 2 < end &&
		    strchr("0123456789abcdef", p[1]) != NULL &&
		    strchr("0123456789abcdef", p[2]) != NULL) {
			p += 2;
			continue;
		}
		return "broken escape sequence";
	}
	return "no closing quote";
}

static void
test_cut_bare_message_stays_well_formed(void **state)
{
	char	    msg[8001], rec[LOG_RECORD_MAX];
	const char *why;
	size_t	    n;

	/* A long message with nothing to quote. */
	memset(msg, 'x', 8000);
	msg[8000] = '\0';
	n = log_format(rec, sizeof rec, TS, LOG_INFO, NULL, msg);
	assert_true(n <= LOG_RECORD_MAX);
	assert_int_equal(rec[n - 1], '\n');
	assert_int_equal(count_char(rec, n, '\n'), 1);
	if ((why = cut_problem(rec, n)) != NULL)
		print_message("bare cut record: %s; it ends: %.*s", why, 24,
		    rec + n - 24);
	assert_null(why);
}

static void
test_cut_never_splits_escape(void **state)
{
	static const char chars[] = "\"\\\n\x01";
	char		  msg[8001], rec[LOG_RECORD_MAX];
	const char	 *why;
	size_t		  i, n, shift;

	/*
	 * Messages of escaped characters, shifted so the cut falls at every
	 * offset inside an escape.
	 */
	for (i = 0; i < sizeof chars - 1; i++) {
		for (shift = 0; shift < 4; shift++) {
			memset(msg, chars[i], 8000);
			memset(msg, 'a', shift);
			msg[8000] = '\0';
			n = log_format(rec, sizeof rec, TS, LOG_INFO, NULL,
			    msg);
			assert_true(n <= LOG_RECORD_MAX);
			assert_int_equal(count_char(rec, n, '\n'), 1);
			if ((why = cut_problem(rec, n)) != NULL)
				fail_msg("char 0x%02x, shift %zu: %s; it ends: "
					 "%.*s",
				    (unsigned char)chars[i], shift, why,
				    (int)n > 24 ? 23 : 0, rec + n - 24);
		}
	}
}

static void
test_procinit_fields(void **state)
{
	struct log_ctx ctx;

	log_procinit("worker default/2");
	assert_string_equal(log_procname(), "worker default/2");
	assert_string_equal(fmt(LOG_INFO, NULL, "hi"),
	    TS_STR " info worker=default/2 msg=hi\n");

	/* A context's worker wins over the process's own. */
	memset(&ctx, 0, sizeof ctx);
	ctx.worker = "other/1";
	ctx.job = 5;
	assert_string_equal(fmt(LOG_INFO, &ctx, "hi"),
	    TS_STR " info worker=other/1 job=5 msg=hi\n");

	log_procinit("supervisor");
	assert_string_equal(log_procname(), "supervisor");
	assert_string_equal(fmt(LOG_INFO, NULL, "hi"), TS_STR " info msg=hi\n");

	log_procinit("worker solo");
	assert_string_equal(fmt(LOG_INFO, NULL, "hi"),
	    TS_STR " info worker=solo msg=hi\n");
}

static void
test_procinit_in_file(void **state)
{
	struct logdir *d = *state;
	char	      *s;

	open_file_target(d);
	log_procinit("worker default/2");
	log_info("job %d started", 7);
	s = slurp(d->path);
	assert_non_null(strstr(s,
	    " info worker=default/2 msg=\"job 7 "
	    "started\"\n"));
	assert_int_equal(count_char(s, strlen(s), '\n'), 1);
	free(s);
}

static void
test_levels(void **state)
{
	static const char *bad[] = {
		"",
		"verbose",
		"info ",
		" info",
		"inf",
		"unknown",
		"3",
		"trace",
		"informational",
	};
	int    i;
	size_t j;

	assert_int_equal(log_parse_level("error"), LOG_ERR);
	assert_int_equal(log_parse_level("warning"), LOG_WARNING);
	assert_int_equal(log_parse_level("warn"), LOG_WARNING);
	assert_int_equal(log_parse_level("notice"), LOG_NOTICE);
	assert_int_equal(log_parse_level("info"), LOG_INFO);
	assert_int_equal(log_parse_level("debug"), LOG_DEBUG);
	for (i = LOG_ERR; i <= LOG_DEBUG; i++)
		assert_int_equal(log_parse_level(log_level_name(i)), i);
	assert_string_equal(log_level_name(LOG_WARNING), "warning");
	assert_string_equal(log_level_name(LOG_EMERG), "emerg");
	for (j = 0; j < sizeof bad / sizeof bad[0]; j++) {
		if (log_parse_level(bad[j]) != -1)
			print_message("accepted level \"%s\"\n", bad[j]);
		assert_int_equal(log_parse_level(bad[j]), -1);
	}
	assert_string_equal(log_level_name(-1), "unknown");
	assert_string_equal(log_level_name(LOG_DEBUG + 1), "unknown");

	log_setlevel(LOG_DEBUG);
	assert_int_equal(log_getlevel(), LOG_DEBUG);
	log_setlevel(LOG_WARNING);
	assert_int_equal(log_getlevel(), LOG_WARNING);
}

static void
test_file_target(void **state)
{
	struct logdir *d = *state;
	char	      *s, ts[32];
	struct stat    st;
	int	       y, mo, da, h, mi, se, us;
	mode_t	       mask;

	/* The file is created 0640, so keep the umask out of the way. */
	mask = umask(022);
	open_file_target(d);
	umask(mask);
	log_info("hello %d", 42);
	s = slurp(d->path);
	assert_int_equal(count_char(s, strlen(s), '\n'), 1);
	assert_int_equal(sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &y, &mo, &da, &h,
			     &mi, &se, &us),
	    7);
	assert_true(y >= 2024);
	snprintf(ts, sizeof ts, "%.27s", s);
	assert_int_equal(strlen(ts), 27);
	assert_int_equal(ts[26], 'Z');
	assert_string_equal(s + 27, " info msg=\"hello 42\"\n");
	free(s);
	assert_int_equal(stat(d->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);

	/* Appends. */
	log_notice("second");
	s = slurp(d->path);
	assert_int_equal(count_char(s, strlen(s), '\n'), 2);
	assert_non_null(strstr(s, " notice msg=second\n"));
	free(s);
}

static void
test_open_bad_targets(void **state)
{
	struct logdir *d = *state;
	const char    *errstr;
	char	       target[160], *s;

	open_file_target(d);

	errstr = NULL;
	assert_int_equal(log_open("bogus", &errstr), -1);
	assert_non_null(errstr);
	assert_non_null(strstr(errstr, "unknown log target"));

	errstr = NULL;
	assert_int_equal(log_open("file:relative/path.log", &errstr), -1);
	assert_non_null(errstr);
	assert_non_null(strstr(errstr, "file:/absolute/path"));

	errstr = NULL;
	assert_int_equal(log_open("file:", &errstr), -1);
	assert_non_null(errstr);

	errstr = NULL;
	assert_int_equal(log_open("", &errstr), -1);
	assert_non_null(errstr);

	errstr = NULL;
	snprintf(target, sizeof target, "file:%s/no/such/dir.log", d->dir);
	assert_int_equal(log_open(target, &errstr), -1);
	assert_non_null(errstr);
	assert_string_equal(errstr, strerror(ENOENT));

	/* The failures left the file target in place. */
	log_info("still here");
	s = slurp(d->path);
	assert_non_null(strstr(s, "msg=\"still here\"\n"));
	free(s);

	/* Going back to stderr stops writing to the file. */
	unsetenv("JOURNAL_STREAM");
	assert_int_equal(log_open("auto", &errstr), 0);
	log_info("not in the file");
	s = slurp(d->path);
	assert_null(strstr(s, "not in the file"));
	free(s);
	assert_int_equal(fd_of(d->path), -1);
	assert_int_equal(log_open("stderr", &errstr), 0);
}

static void
test_reopen(void **state)
{
	struct logdir *d = *state;
	char	      *s;

	/* Not a file: nothing to do. */
	assert_int_equal(log_reopen(), 0);

	open_file_target(d);
	log_info("one");
	assert_int_equal(rename(d->path, d->moved), 0);
	/* Until reopened, records follow the renamed file. */
	log_info("two");
	assert_int_equal(log_reopen(), 0);
	log_info("three");
	log_info("four");

	s = slurp(d->moved);
	assert_non_null(strstr(s, "msg=one\n"));
	assert_non_null(strstr(s, "msg=two\n"));
	assert_null(strstr(s, "three"));
	assert_null(strstr(s, "four"));
	assert_int_equal(count_char(s, strlen(s), '\n'), 2);
	free(s);

	s = slurp(d->path);
	assert_null(strstr(s, "one"));
	assert_null(strstr(s, "two"));
	assert_non_null(strstr(s, "msg=three\n"));
	assert_non_null(strstr(s, "msg=four\n"));
	assert_int_equal(count_char(s, strlen(s), '\n'), 2);
	free(s);

	/* A reopen with nothing renamed keeps appending to the same file. */
	assert_int_equal(log_reopen(), 0);
	log_info("five");
	s = slurp(d->path);
	assert_int_equal(count_char(s, strlen(s), '\n'), 3);
	free(s);
}

/* As from a SIGHUP handler: the next record written reopens the file. */
static void
test_request_reopen(void **state)
{
	struct logdir *d = *state;
	char	      *s;

	open_file_target(d);
	log_info("before");
	assert_int_equal(rename(d->path, d->moved), 0);
	log_request_reopen();
	/* A record below the level writes nothing, so nothing moves yet. */
	log_debug("dropped");
	log_info("after");
	log_info("again");

	s = slurp(d->moved);
	assert_non_null(strstr(s, "msg=before\n"));
	assert_int_equal(count_char(s, strlen(s), '\n'), 1);
	free(s);
	s = slurp(d->path);
	assert_non_null(strstr(s, "msg=after\n"));
	assert_non_null(strstr(s, "msg=again\n"));
	assert_null(strstr(s, "dropped"));
	assert_int_equal(count_char(s, strlen(s), '\n'), 2);
	free(s);
}

/* The log file must not leak into exec'd jobs, before or after a reopen. */
static void
test_file_is_cloexec(void **state)
{
	struct logdir *d = *state;
	int	       fd;

	open_file_target(d);
	fd = fd_of(d->path);
	assert_true(fd > 2);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

	assert_int_equal(rename(d->path, d->moved), 0);
	assert_int_equal(log_reopen(), 0);
	fd = fd_of(d->path);
	assert_true(fd > 2);
	if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
		print_message("fd %d lost FD_CLOEXEC in log_reopen\n", fd);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static void
test_level_filter(void **state)
{
	struct logdir *d = *state;
	char	      *s;

	open_file_target(d);
	log_setlevel(LOG_INFO);
	log_debug("hidden one");
	log_info("shown one");
	log_setlevel(LOG_WARNING);
	log_info("hidden two");
	log_notice("hidden three");
	log_warnx("shown two");
	log_setlevel(LOG_DEBUG);
	log_debug("shown three");

	s = slurp(d->path);
	assert_null(strstr(s, "hidden"));
	assert_non_null(strstr(s, " info msg=\"shown one\"\n"));
	assert_non_null(strstr(s, " warning msg=\"shown two\"\n"));
	assert_non_null(strstr(s, " debug msg=\"shown three\"\n"));
	assert_int_equal(count_char(s, strlen(s), '\n'), 3);
	free(s);
}

static void
test_errno_preserved(void **state)
{
	struct logdir *d = *state;
	char	      *s;
	int	       fd, full;

	open_file_target(d);

	errno = ENOENT;
	log_info("plain");
	assert_int_equal(errno, ENOENT);

	errno = EACCES;
	log_debug("filtered out");
	assert_int_equal(errno, EACCES);

	/* log_warn appends the errno it was called with, and keeps it. */
	errno = ENOENT;
	log_warn("open %s", "/x");
	assert_int_equal(errno, ENOENT);

	errno = EPIPE;
	log_warnx("no errno here");
	assert_int_equal(errno, EPIPE);

	s = slurp(d->path);
	assert_non_null(strstr(s,
	    " warning msg=\"open /x: No such file or "
	    "directory\"\n"));
	assert_non_null(strstr(s, " warning msg=\"no errno here\"\n"));
	assert_null(strstr(s, "Broken pipe"));
	free(s);

	/* Even when the write itself fails (ENOSPC on /dev/full). */
	fd = fd_of(d->path);
	assert_true(fd > 2);
	full = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(full != -1);
	assert_int_equal(dup2(full, fd), fd);
	close(full);
	errno = ERANGE;
	log_info("lost");
	assert_int_equal(errno, ERANGE);
}

/* The parser the tests below rely on must itself refuse bad records. */
static void
test_parser_rejects_malformed(void **state)
{
	static const char *bad[] = {
		TS_STR " info msg=x",
		TS_STR " info msg=x\n\n",
		TS_STR " info msg=x\nmsg=y\n",
		TS_STR " info msg=\"abc\n",
		TS_STR " info msg=\"a\\qb\"\n",
		TS_STR " info msg=\"a\\x1\"\n",
		TS_STR " info msg=\"a\\x0A\"\n",
		TS_STR " info msg=\"a\\x0a\"\n",
		TS_STR " info msg=\"a\\x41\"\n",
		TS_STR " info msg=\"a\x01"
		       "b\"\n",
		TS_STR " info msg=a\"b\n",
		TS_STR " info msg=a=b\n",
		TS_STR " info msg=\"abc\"\n",
		TS_STR " info msg=\"a b\"c\n",
		TS_STR " info msg=\n",
		TS_STR " info msg=x  k=v\n",
		TS_STR " info Msg=x\n",
		TS_STR " info 1k=x\n",
		TS_STR " info msg x\n",
		TS_STR " info aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=x\n",
		TS_STR " loud msg=x\n",
		"2023-11-14 22:13:20.123456Z info msg=x\n",
	};
	static struct record r;
	const char	    *good;
	size_t		     i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (record_parse(bad[i], strlen(bad[i]), &r) == NULL)
			fail_msg("parsed a malformed record: %s", bad[i]);

	good = TS_STR " info msg=x k=\"a b\\n\\x01\" e=\"\"\n";
	record_check(good, strlen(good), LOG_RECORD_MAX, &r);
	assert_string_equal(r.level, "info");
	expect_pairs(&r, "msg", "x", "k", "a b\n\x01", "e", "", NULL);

	good = TS_STR " info msg=\"abc [cut]\"\n";
	record_check(good, strlen(good), LOG_RECORD_MAX, &r);
	assert_int_equal(r.npairs, 1);
	assert_true(r.pairs[0].cut);
	assert_int_equal(r.pairs[0].len, 3);
	assert_memory_equal(r.pairs[0].val, "abc", 3);
}

static void
test_fields_simple(void **state)
{
	fmt_is("job finished" LOG_KV "state=succeeded" LOG_KV "ms=12",
	    TS_STR " info msg=\"job finished\" state=succeeded ms=12\n");
	fmt_is("x" LOG_KV "k_2=v", TS_STR " info msg=x k_2=v\n");

	/* Field values are quoted exactly like msg. */
	fmt_is("x" LOG_KV "path=/a b" LOG_KV "q=say \"hi\"" LOG_KV
	       "eq=a=b" LOG_KV "nl=1\n2" LOG_KV "bs=a\\b",
	    TS_STR " info msg=x path=\"/a b\" q=\"say \\\"hi\\\"\" eq=\"a=b\" "
		   "nl=\"1\\n2\" bs=\"a\\\\b\"\n");

	/* Empty values are written, quoted, wherever they are. */
	fmt_is("x" LOG_KV "k=", TS_STR " info msg=x k=\"\"\n");
	fmt_is("x" LOG_KV "k=" LOG_KV "j=1", TS_STR " info msg=x k=\"\" j=1\n");
	fmt_is("" LOG_KV "k=v", TS_STR " info msg=\"\" k=v\n");
}

/* A separator that does not start "key=" belongs to the value before it. */
static void
test_fields_separator_in_value(void **state)
{
	fmt_is("x" LOG_KV "k=a" LOG_KV " b",
	    TS_STR " info msg=x k=\"a\\x1f b\"\n");
	fmt_is("x" LOG_KV "k=a" LOG_KV "=b" LOG_KV "j=2",
	    TS_STR " info msg=x k=\"a\\x1f=b\" j=2\n");
	/* Trailing and doubled separators. */
	fmt_is("x" LOG_KV "k=a" LOG_KV, TS_STR " info msg=x k=\"a\\x1f\"\n");
	fmt_is("x" LOG_KV LOG_KV "k=v", TS_STR " info msg=\"x\\x1f\" k=v\n");
	fmt_is(LOG_KV, TS_STR " info msg=\"\\x1f\"\n");
}

static void
test_fields_bad_keys(void **state)
{
	static const char *keys[] = {
		"Key=v",
		"kEy=v",
		"1k=v",
		"_k=v",
		"k-1=v",
		"k.v=1",
		"k v=1",
		"novalue",
		"=v",
		"k\xc3\xa9=v",
		"",
	};
	char   msg[128], want[256], key[40];
	size_t i;

	/* Each stays in msg, separator and all (none needs escaping). */
	for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		snprintf(msg, sizeof msg, "x" LOG_KV "%s", keys[i]);
		snprintf(want, sizeof want, TS_STR " info msg=\"x\\x1f%s\"\n",
		    keys[i]);
		assert_string_equal(fmt(LOG_INFO, NULL, msg), want);
	}

	/* After a good field, a bad one stays in that field's value. */
	fmt_is("x" LOG_KV "k=v" LOG_KV "Bad=1",
	    TS_STR " info msg=x k=\"v\\x1fBad=1\"\n");

	/* Keys may be 32 characters long, not 33. */
	memset(key, 'k', 32);
	key[32] = '\0';
	snprintf(msg, sizeof msg, "x" LOG_KV "%s=v", key);
	snprintf(want, sizeof want, TS_STR " info msg=x %s=v\n", key);
	fmt_is(msg, want);
	snprintf(msg, sizeof msg, "x" LOG_KV "%sk=v", key);
	snprintf(want, sizeof want, TS_STR " info msg=\"x\\x1f%sk=v\"\n", key);
	fmt_is(msg, want);
}

/*
 * "x" then fields f0=0, f1=1, ..., fN-1=N-1; the record keeps 24 pieces, so
 * the last one holds the rest, separators escaped.
 */
static void
check_many_fields(const struct log_ctx *ctx, size_t nctx, size_t nfields)
{
	static struct record r;
	const struct pair   *pr;
	char		     msg[1024], want[1024], *p, *q;
	const char	    *rec;
	size_t		     i, last;

	p = msg + snprintf(msg, sizeof msg, "x");
	for (i = 0; i < nfields; i++)
		p += snprintf(p, sizeof msg - (size_t)(p - msg),
		    LOG_KV "f%zu=%zu", i, i);
	rec = fmt(LOG_INFO, ctx, msg);
	record_check(rec, strlen(rec), LOG_RECORD_MAX, &r);
	assert_int_equal(r.npairs, 24);
	assert_string_equal(r.pairs[nctx].key, "msg");
	last = 24 - nctx - 2; /* the field that takes the rest */
	for (i = 0; i < last; i++) {
		pr = &r.pairs[nctx + 1 + i];
		snprintf(want, sizeof want, "f%zu", i);
		assert_string_equal(pr->key, want);
		snprintf(want, sizeof want, "%zu", i);
		assert_string_equal(pr->val, want);
	}
	pr = &r.pairs[23];
	snprintf(want, sizeof want, "f%zu", last);
	assert_string_equal(pr->key, want);
	q = want + snprintf(want, sizeof want, "%zu", last);
	for (i = last + 1; i < nfields; i++)
		q += snprintf(q, sizeof want - (size_t)(q - want),
		    LOG_KV "f%zu=%zu", i, i);
	assert_string_equal(pr->val, want);
	assert_true(pr->quoted);
}

static void
test_fields_many(void **state)
{
	struct log_ctx ctx = { NULL, NULL, -1 };

	/* 23 fields fit beside msg exactly; nothing is merged. */
	fmt_is("x" LOG_KV "a=1" LOG_KV "b=2" LOG_KV "c=3" LOG_KV "d=4" LOG_KV
	       "e=5" LOG_KV "f=6" LOG_KV "g=7" LOG_KV "h=8" LOG_KV "i=9" LOG_KV
	       "j=10" LOG_KV "k=11" LOG_KV "l=12" LOG_KV "m=13" LOG_KV
	       "n=14" LOG_KV "o=15" LOG_KV "p=16" LOG_KV "q=17" LOG_KV
	       "r=18" LOG_KV "s=19" LOG_KV "t=20" LOG_KV "u=21" LOG_KV
	       "v=22" LOG_KV "w=23",
	    TS_STR
	    " info msg=x a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9 j=10 "
	    "k=11 l=12 m=13 n=14 o=15 p=16 q=17 r=18 s=19 t=20 u=21 v=22 "
	    "w=23\n");
	/* One more and it joins the last value. */
	fmt_is("x" LOG_KV "a=1" LOG_KV "b=2" LOG_KV "c=3" LOG_KV "d=4" LOG_KV
	       "e=5" LOG_KV "f=6" LOG_KV "g=7" LOG_KV "h=8" LOG_KV "i=9" LOG_KV
	       "j=10" LOG_KV "k=11" LOG_KV "l=12" LOG_KV "m=13" LOG_KV
	       "n=14" LOG_KV "o=15" LOG_KV "p=16" LOG_KV "q=17" LOG_KV
	       "r=18" LOG_KV "s=19" LOG_KV "t=20" LOG_KV "u=21" LOG_KV
	       "v=22" LOG_KV "w=23" LOG_KV "z=24",
	    TS_STR
	    " info msg=x a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9 j=10 "
	    "k=11 l=12 m=13 n=14 o=15 p=16 q=17 r=18 s=19 t=20 u=21 v=22 "
	    "w=\"23\\x1fz=24\"\n");

	check_many_fields(NULL, 0, 40);
	/* Context fields count among the 24. */
	ctx.pool = "web";
	check_many_fields(&ctx, 1, 40);
	ctx.worker = "web/1";
	ctx.job = 5;
	check_many_fields(&ctx, 2, 40);
}

/* Order: pool or worker, job, msg, then the message's own fields. */
static void
test_fields_with_context(void **state)
{
	struct log_ctx ctx = { "web", NULL, 7 };

	assert_string_equal(fmt(LOG_INFO, &ctx, "started" LOG_KV "pid=42"),
	    TS_STR " info pool=web job=7 msg=started pid=42\n");
	ctx.worker = "web/3";
	assert_string_equal(fmt(LOG_NOTICE, &ctx,
				"job finished" LOG_KV "state=failed" LOG_KV
				"ms=12"),
	    TS_STR " notice worker=web/3 job=7 msg=\"job finished\" "
		   "state=failed ms=12\n");

	/* A separator in a context value is just a byte of it. */
	ctx.worker = "a" LOG_KV "b=c";
	ctx.job = -1;
	assert_string_equal(fmt(LOG_INFO, &ctx, "x" LOG_KV "k=v"),
	    TS_STR " info worker=\"a\\x1fb=c\" msg=x k=v\n");

	/* Job ids start at 1. */
	ctx.job = 1;
	assert_string_equal(fmt(LOG_INFO, &ctx, "x"),
	    TS_STR " info worker=\"a\\x1fb=c\" job=1 msg=x\n");

	log_procinit("worker default/2");
	assert_string_equal(fmt(LOG_INFO, NULL, "hi" LOG_KV "k=v"),
	    TS_STR " info worker=default/2 msg=hi k=v\n");
}

/* Every control byte, in msg and in a field value. */
static void
test_quoting_control_bytes(void **state)
{
	char	     msg[16], esc[8], want[128];
	unsigned int c;

	for (c = 0x01; c <= 0x7f; c++) {
		if (c >= 0x20 && c < 0x7f)
			continue;
		if (c == '\n')
			snprintf(esc, sizeof esc, "\\n");
		else if (c == '\t')
			snprintf(esc, sizeof esc, "\\t");
		else if (c == '\r')
			snprintf(esc, sizeof esc, "\\r");
		else
			snprintf(esc, sizeof esc, "\\x%02x", c);
		snprintf(msg, sizeof msg, "a%cb", c);
		snprintf(want, sizeof want, TS_STR " info msg=\"a%sb\"\n", esc);
		assert_string_equal(fmt(LOG_INFO, NULL, msg), want);
		snprintf(msg, sizeof msg, "x" LOG_KV "k=a%cb", c);
		snprintf(want, sizeof want, TS_STR " info msg=x k=\"a%sb\"\n",
		    esc);
		assert_string_equal(fmt(LOG_INFO, NULL, msg), want);
	}
}

static void
test_quoting_utf8(void **state)
{
	/* Valid UTF-8 is written as is, quoted only for the spaces. */
	fmt_is("h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93",
	    TS_STR " info msg=\"h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93\"\n");
	fmt_is("\xf0\x9f\x98\x80", TS_STR " info msg=\xf0\x9f\x98\x80\n");
	fmt_is("smile \xf0\x9f\x98\x80",
	    TS_STR " info msg=\"smile \xf0\x9f\x98\x80\"\n");
	fmt_is("x" LOG_KV "name=J\xc3\xbcrgen M\xc3\xbcller",
	    TS_STR " info msg=x name=\"J\xc3\xbcrgen M\xc3\xbcller\"\n");

	/*
	 * Invalid UTF-8 (stray continuation, lone lead byte, overlong,
	 * surrogate, 0xfe/0xff) is passed through unchanged too.
	 */
	fmt_is("\xff\xfe", TS_STR " info msg=\xff\xfe\n");
	fmt_is("\x80\xbf", TS_STR " info msg=\x80\xbf\n");
	fmt_is("bad \xc3 lead", TS_STR " info msg=\"bad \xc3 lead\"\n");
	fmt_is("\xc0\xaf \xed\xa0\x80",
	    TS_STR " info msg=\"\xc0\xaf \xed\xa0\x80\"\n");
	fmt_is("x" LOG_KV "k=\xe2\x9c", TS_STR " info msg=x k=\xe2\x9c\n");
}

/* A piece a record should hold: its key and the bytes that went in. */
struct want {
	const char *key;
	const char *val;
	size_t	    len;
};

/*
 * Formats msg into exactly size bytes (so ASan sees any overrun) and checks
 * the record: well formed, every piece present in order, each whole or cut
 * to a start of itself. Returns how many were cut; *lenp gets the length.
 */
static size_t
check_fit(const struct log_ctx *ctx, const char *msg, const struct want *w,
    size_t nw, size_t size, struct record *r, size_t *lenp)
{
	const struct pair *pr;
	char		  *buf;
	size_t		   i, n, cuts = 0;

	buf = malloc(size);
	assert_non_null(buf);
	n = log_format(buf, size, TS, LOG_INFO, ctx, msg);
	record_check(buf, n, size, r);
	free(buf);
	if (r->npairs != nw)
		fail_msg("%zu pairs, want %zu (size %zu)", r->npairs, nw, size);
	for (i = 0; i < nw; i++) {
		pr = &r->pairs[i];
		assert_string_equal(pr->key, w[i].key);
		if (!pair_keeps(pr, w[i].val, w[i].len))
			fail_msg("%s: %zu bytes%s, not the %zu that went in "
				 "(size %zu)",
			    pr->key, pr->len, pr->cut ? " cut" : "", w[i].len,
			    size);
		cuts += pr->cut != 0;
	}
	/*
	 * A cut leaves no room unused but, per cut value, part of an escape or
	 * of a UTF-8 character, and a byte where the values cut to one level
	 * could not all take one more.
	 */
	if (cuts > 0 && n + 4 * cuts < size)
		fail_msg("cut to %zu bytes of %zu", n, size);
	if (lenp != NULL)
		*lenp = n;
	return cuts;
}

/* Fills s with len bytes of a pattern full of things to escape. */
static void
fill_tricky(char *s, size_t len)
{
	static const char pat[] = "ab \"q\" \\ \t\x01"
				  "c\xc3\xa9\n";
	size_t		  i;

	for (i = 0; i < len; i++)
		s[i] = pat[i % (sizeof pat - 1)];
	s[len] = '\0';
}

/* A long msg is cut; the short fields after it stay whole. */
static void
test_cut_long_msg_keeps_fields(void **state)
{
	static struct record r;
	static char	     text[8001], msg[9000];
	struct want	     w[4];
	size_t		     i, size;

	for (i = 0; i < 8000; i++)
		text[i] = i % 7 == 6 ? ' ' : 'a' + (char)(i % 7);
	text[8000] = '\0';
	snprintf(msg, sizeof msg,
	    "%s" LOG_KV "state=ok" LOG_KV "ms=12" LOG_KV "path=/a b", text);
	w[0] = (struct want){ "msg", text, 8000 };
	w[1] = (struct want){ "state", "ok", 2 };
	w[2] = (struct want){ "ms", "12", 2 };
	w[3] = (struct want){ "path", "/a b", 4 };
	assert_int_equal(check_fit(NULL, msg, w, 4, LOG_RECORD_MAX, &r, NULL),
	    1);
	assert_true(r.pairs[0].cut);
	assert_true(r.pairs[3].quoted);

	/* The same for escapes in msg, and in smaller buffers. */
	fill_tricky(text, 8000);
	snprintf(msg, sizeof msg,
	    "%s" LOG_KV "state=ok" LOG_KV "ms=12" LOG_KV "path=/a b", text);
	for (size = 1100; size <= LOG_RECORD_MAX; size += 61) {
		assert_int_equal(check_fit(NULL, msg, w, 4, size, &r, NULL), 1);
		assert_true(r.pairs[0].cut);
	}
}

/* A long field is cut; msg and the fields around it stay whole. */
static void
test_cut_long_field(void **state)
{
	static struct record r;
	static char	     body[6001], msg[7000];
	struct log_ctx	     ctx = { "web", "web/2", 31 };
	struct want	     w[6];
	size_t		     size;

	fill_tricky(body, 6000);
	snprintf(msg, sizeof msg,
	    "upload failed" LOG_KV "user=alice" LOG_KV "body=%s" LOG_KV
	    "code=413",
	    body);
	w[0] = (struct want){ "worker", "web/2", 5 };
	w[1] = (struct want){ "job", "31", 2 };
	w[2] = (struct want){ "msg", "upload failed", 13 };
	w[3] = (struct want){ "user", "alice", 5 };
	w[4] = (struct want){ "body", body, 6000 };
	w[5] = (struct want){ "code", "413", 3 };
	for (size = 1100; size <= LOG_RECORD_MAX; size += 59) {
		assert_int_equal(check_fit(&ctx, msg, w, 6, size, &r, NULL), 1);
		assert_true(r.pairs[4].cut);
	}
	assert_int_equal(check_fit(&ctx, msg, w, 6, LOG_RECORD_MAX, &r, NULL),
	    1);
}

/* Two values that each would fill the record are both cut. */
static void
test_cut_two_long_values(void **state)
{
	static struct record r;
	static char	     a[5001], b[6001], msg[12000];
	struct want	     w[5];
	size_t		     i, size;

	for (i = 0; i < 5000; i++)
		a[i] = i % 10 == 9 ? ' ' : '0' + (char)(i % 10);
	a[5000] = '\0';
	fill_tricky(b, 6000);
	snprintf(msg, sizeof msg,
	    "two" LOG_KV "a=%s" LOG_KV "c=short" LOG_KV "b=%s" LOG_KV "d=", a,
	    b);
	w[0] = (struct want){ "msg", "two", 3 };
	w[1] = (struct want){ "a", a, 5000 };
	w[2] = (struct want){ "c", "short", 5 };
	w[3] = (struct want){ "b", b, 6000 };
	w[4] = (struct want){ "d", "", 0 };
	for (size = 1100; size <= LOG_RECORD_MAX; size += 67) {
		assert_int_equal(check_fit(NULL, msg, w, 5, size, &r, NULL), 2);
		assert_true(r.pairs[1].cut);
		assert_true(r.pairs[3].cut);
	}
	assert_int_equal(check_fit(NULL, msg, w, 5, LOG_RECORD_MAX, &r, NULL),
	    2);
}

/* Right at the edge: a record that fits is whole, one byte more is cut. */
static void
test_cut_only_when_needed(void **state)
{
	static struct record r;
	static char	     msg[3000], val[2001];
	struct want	     w[3];
	size_t		     full, n, size, i;

	for (i = 0; i < 2; i++) {
		/* A bare value, then one with escapes in it. */
		if (i == 0) {
			memset(val, 'v', 2000);
			val[2000] = '\0';
		} else
			fill_tricky(val, 2000);
		snprintf(msg, sizeof msg, "edge" LOG_KV "v=%s" LOG_KV "k=1",
		    val);
		w[0] = (struct want){ "msg", "edge", 4 };
		w[1] = (struct want){ "v", val, 2000 };
		w[2] = (struct want){ "k", "1", 1 };
		assert_int_equal(check_fit(NULL, msg, w, 3, 1 << 16, &r, &full),
		    0);
		for (size = full - 8; size <= full + 2; size++) {
			assert_int_equal(check_fit(NULL, msg, w, 3, size, &r,
					     &n),
			    size < full);
			if (size >= full)
				assert_int_equal(n, full);
		}
	}
}

/* One pseudo-random record: a context, a message, and what should come out. */
struct rcase {
	char	       msg[8192];
	char	       pool[48], worker[48], job[24];
	char	       keys[30][KEY_MAX + 1];
	struct log_ctx ctx;
	struct want    w[24];
	size_t	       nw;
};

/* Mostly bytes that need care, else any byte but NUL. */
static char
rnd_byte(uint64_t *s)
{
	static const char tricky[] = "\x1f\"\\\n\t\r =\x7f\x01\xc3\xa9\xff";

	if (rnd_below(s, 4) == 0)
		return tricky[rnd_below(s, sizeof tricky - 1)];
	return (char)(1 + rnd_below(s, 255));
}

/*
 * len random bytes. A separator in them is never followed by a lower-case
 * letter, so it never starts a field and stays in this value.
 */
static void
rnd_bytes(uint64_t *s, char *out, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		out[i] = rnd_byte(s);
		if (i > 0 && out[i - 1] == LOG_KV[0] && out[i] >= 'a' &&
		    out[i] <= 'z')
			out[i] = (char)(out[i] - 'a' + 'A');
	}
}

/* Mostly short, sometimes long, never more than *left in all. */
static size_t
rnd_len(uint64_t *s, size_t *left)
{
	size_t n;

	switch (rnd_below(s, 10)) {
	case 0:
		n = rnd_below(s, 6001);
		break;
	case 1:
	case 2:
	case 3:
		n = rnd_below(s, 300);
		break;
	default:
		n = rnd_below(s, 17);
		break;
	}
	n = n < *left ? n : *left;
	*left -= n;
	return n;
}

/* A context name: 1 to size - 1 random bytes. */
static char *
rnd_name(uint64_t *s, char *buf, size_t size)
{
	size_t len = 1 + rnd_below(s, size - 1);

	rnd_bytes(s, buf, len);
	buf[len] = '\0';
	return buf;
}

static int
want_has_key(const struct want *w, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(w[i].key, key) == 0)
			return 1;
	return 0;
}

static void
rnd_case(uint64_t *s, struct rcase *c)
{
	static const char keychars[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
	size_t		  left = rnd_below(s, 6001), off, len, i, k, nf;
	char		 *key;
	struct want	 *last;

	c->ctx = (struct log_ctx){ NULL, NULL, -1 };
	c->nw = 0;
	k = rnd_below(s, 4); /* bit 0: a pool, bit 1: a worker */
	if (k & 1)
		c->ctx.pool = rnd_name(s, c->pool, sizeof c->pool);
	if (k & 2)
		c->ctx.worker = rnd_name(s, c->worker, sizeof c->worker);
	/* A worker names its pool, so the pool only shows alone. */
	if (c->ctx.worker != NULL)
		c->w[c->nw++] = (struct want){ "worker", c->worker,
			strlen(c->worker) };
	else if (c->ctx.pool != NULL)
		c->w[c->nw++] = (struct want){ "pool", c->pool,
			strlen(c->pool) };
	if (rnd_below(s, 2)) {
		c->ctx.job = 1 + (int64_t)rnd_below(s, 1000000000);
		len = (size_t)snprintf(c->job, sizeof c->job, "%lld",
		    (long long)c->ctx.job);
		c->w[c->nw++] = (struct want){ "job", c->job, len };
	}

	len = rnd_len(s, &left);
	rnd_bytes(s, c->msg, len);
	c->w[c->nw++] = (struct want){ "msg", c->msg, len };
	off = len;

	nf = rnd_below(s, 4) == 0 ? rnd_below(s, 31) : rnd_below(s, 6);
	for (i = 0; i < nf; i++) {
		/* A key given twice is not a field: keep them unique. */
		key = c->keys[i];
		do {
			key[0] = (char)('a' + rnd_below(s, 26));
			for (k = 1 + rnd_below(s, KEY_MAX), len = 1; len < k;
			     len++)
				key[len] =
				    keychars[rnd_below(s, sizeof keychars - 1)];
			key[len] = '\0';
		} while (want_has_key(c->w, c->nw, key));
		off += (size_t)snprintf(c->msg + off, sizeof c->msg - off,
		    LOG_KV "%s=", key);
		len = rnd_len(s, &left);
		rnd_bytes(s, c->msg + off, len);
		if (c->nw < 24)
			c->w[c->nw++] = (struct want){ key, c->msg + off, len };
		off += len;
		/* 24 pieces at most: the last one takes the rest. */
		last = &c->w[c->nw - 1];
		last->len = (size_t)(c->msg + off - last->val);
	}
	c->msg[off] = '\0';
}

/*
 * Thousands of random records: each parses, fits, ends in one newline, and
 * gives back exactly what went in unless it had to be cut.
 */
static void
test_round_trip_random(void **state)
{
	static struct rcase  c;
	static struct record r;
	uint64_t	     seed = UINT64_C(0x6d70726f6364);
	size_t		     i, full, n, size, cuts, ncut = 0;

	for (i = 0; i < 3000; i++) {
		rnd_case(&seed, &c);
		/* With room to spare nothing is cut... */
		if (check_fit(&c.ctx, c.msg, c.w, c.nw, 1 << 16, &r, &full) !=
		    0)
			fail_msg("case %zu: cut with room to spare", i);
		/* ...and in a record's room, only what does not fit. */
		size = rnd_below(&seed, 2)
		    ? LOG_RECORD_MAX
		    : 1100 + rnd_below(&seed, LOG_RECORD_MAX - 1100 + 1);
		cuts = check_fit(&c.ctx, c.msg, c.w, c.nw, size, &r, &n);
		if ((cuts == 0) != (full <= size))
			fail_msg("case %zu: %zu bytes in %zu, %zu cut", i, full,
			    size, cuts);
		if (cuts == 0)
			assert_int_equal(n, full);
		ncut += cuts > 0;
	}
	/* The seed gives both kinds. */
	assert_true(ncut > 100);
	assert_true(ncut < 2900);
}

/* log_warn puts ": strerror" at the end of the text, before the fields. */
static void
test_warn_with_fields(void **state)
{
	static struct record r;
	struct logdir	    *d = *state;
	struct log_ctx	     ctx = { "web", "web/1", 3 };
	char		    *s;

	open_file_target(d);
	errno = ENOENT;
	log_warn("open" LOG_KV "path=%s", "/x");
	assert_int_equal(errno, ENOENT);
	errno = EACCES;
	clog_warn(&ctx, "bind %s" LOG_KV "port=%d" LOG_KV "addr=%s", "sock", 80,
	    "::1");
	assert_int_equal(errno, EACCES);
	errno = EPIPE;
	clog_warnx(&ctx, "peer gone" LOG_KV "fd=%d", 9);
	assert_int_equal(errno, EPIPE);
	/* No fields: the error still ends the text. */
	errno = EIO;
	log_warn("read");
	assert_int_equal(errno, EIO);

	s = slurp(d->path);
	assert_non_null(strstr(s,
	    " warning msg=\"open: No such file or "
	    "directory\" path=/x\n"));
	line_check(s, 0, "", &r);
	assert_string_equal(r.level, "warning");
	expect_pairs(&r, "msg", "open: No such file or directory", "path", "/x",
	    NULL);
	line_check(s, 1, "", &r);
	expect_pairs(&r, "worker", "web/1", "job", "3", "msg",
	    "bind sock: Permission denied", "port", "80", "addr", "::1", NULL);
	line_check(s, 2, "", &r);
	expect_pairs(&r, "worker", "web/1", "job", "3", "msg", "peer gone",
	    "fd", "9", NULL);
	line_check(s, 3, "", &r);
	expect_pairs(&r, "msg", "read: Input/output error", NULL);
	assert_int_equal(count_char(s, strlen(s), '\n'), 4);
	free(s);
}

/*
 * Logs through log_open(target) with stderr diverted to path and
 * JOURNAL_STREAM set to stream ("same": path's own dev:ino; NULL: unset).
 * Returns log_open's result; the file holds what was written.
 */
static int
log_via_stderr(const char *path, const char *target, const char *stream)
{
	const char *errstr = NULL;
	char	    own[64];
	int	    saved, rc;

	saved = stderr_divert(path, own, sizeof own);
	if (stream == NULL)
		unsetenv("JOURNAL_STREAM");
	else
		setenv("JOURNAL_STREAM",
		    strcmp(stream, "same") == 0 ? own : stream, 1);
	if ((rc = log_open(target, &errstr)) == 0) {
		errno = EIO;
		log_warn("disk" LOG_KV "dev=%s", "sda");
		log_info("fine");
	}
	log_close();
	stderr_restore(saved);
	unsetenv("JOURNAL_STREAM");
	return rc;
}

static int journald_listening(void);

/* On journald's stream each record starts with its priority, "<N>". */
static void
test_journal_prefix(void **state)
{
	static struct record r;
	struct logdir	    *d = *state;
	char		    *s;

	assert_int_equal(log_via_stderr(d->path, "stderr", "same"), 0);
	s = slurp(d->path);
	assert_memory_equal(s, "<4>2", 4);
	line_check(s, 0, "<4>", &r);
	assert_string_equal(r.level, "warning");
	expect_pairs(&r, "msg", "disk: Input/output error", "dev", "sda", NULL);
	line_check(s, 1, "<6>", &r);
	assert_string_equal(r.level, "info");
	expect_pairs(&r, "msg", "fine", NULL);
	assert_int_equal(count_char(s, strlen(s), '\n'), 2);
	free(s);

	/*
	 * "auto" sends them to the journal itself: nothing on stderr. With no
	 * journald to take them, they stay on the stream, prefixed.
	 */
	assert_int_equal(log_via_stderr(d->path, "auto", "same"), 0);
	s = slurp(d->path);
	if (journald_listening())
		assert_string_equal(s, "");
	else
		line_check(s, 0, "<4>", &r);
	free(s);
}

/* Anything but stderr's own dev:ino means a plain stderr: no prefix. */
static void
test_journal_prefix_absent(void **state)
{
	static struct record r;
	struct logdir	    *d = *state;
	struct stat	     st;
	const char *streams[] = { NULL, "", "garbage", "0:0", "1:2:3x", NULL };
	char	   *s, other[64];
	size_t	    i, n = sizeof streams / sizeof streams[0];

	/* Last, the dev:ino of another file. */
	assert_int_equal(stat(d->dir, &st), 0);
	snprintf(other, sizeof other, "%lu:%lu", (unsigned long)st.st_dev,
	    (unsigned long)st.st_ino);
	streams[n - 1] = other;
	for (i = 0; i < n; i++) {
		assert_int_equal(log_via_stderr(d->path, "stderr", streams[i]),
		    0);
		s = slurp(d->path);
		line_check(s, 0, "", &r);
		expect_pairs(&r, "msg", "disk: Input/output error", "dev",
		    "sda", NULL);
		line_check(s, 1, "", &r);
		assert_int_equal(count_char(s, strlen(s), '\n'), 2);
		free(s);
	}

	/* "auto" without the journal is stderr, unprefixed too. */
	assert_int_equal(log_via_stderr(d->path, "auto", other), 0);
	s = slurp(d->path);
	line_check(s, 0, "", &r);
	assert_int_equal(count_char(s, strlen(s), '\n'), 2);
	free(s);
}

#define SEC UINT64_C(1000000)

static void
test_ratelimit(void **state)
{
	static struct record r;
	struct logdir	    *d = *state;
	struct log_ratelimit rl = LOG_RATELIMIT("bad client", 3, 10);
	const uint64_t	     t0 = 5 * SEC, t1 = t0 + 10 * SEC;
	const uint64_t	     t2 = t1 + 25 * SEC, t3 = t2 + 10 * SEC;
	char		    *s;

	open_file_target(d);

	/* A burst of 3 passes; the rest of the interval is dropped. */
	assert_int_equal(log_ratelimit(&rl, t0), 1);
	assert_int_equal(log_ratelimit(&rl, t0 + 1), 1);
	assert_int_equal(log_ratelimit(&rl, t0 + 2), 1);
	assert_int_equal(log_ratelimit(&rl, t0 + 3), 0);
	assert_int_equal(log_ratelimit(&rl, t1 - 1), 0);
	s = slurp(d->path);
	assert_string_equal(s, "");
	free(s);

	/* The next interval's first call says how many were dropped. */
	assert_int_equal(log_ratelimit(&rl, t1), 1);
	s = slurp(d->path);
	line_check(s, 0, "", &r);
	assert_string_equal(r.level, "notice");
	expect_pairs(&r, "msg",
	    "dropped 2 bad client records (at most 3 per 10s)", "dropped", "2",
	    NULL);
	assert_int_equal(count_char(s, strlen(s), '\n'), 1);
	free(s);

	/* Counting starts again. */
	assert_int_equal(log_ratelimit(&rl, t1 + 1), 1);
	assert_int_equal(log_ratelimit(&rl, t1 + 2), 1);
	assert_int_equal(log_ratelimit(&rl, t1 + 3), 0);
	assert_int_equal(log_ratelimit(&rl, t1 + 4), 0);
	assert_int_equal(log_ratelimit(&rl, t1 + 5), 0);
	assert_int_equal(log_ratelimit(&rl, t1 + 10 * SEC - 1), 0);

	/*
	 * An interval starts at the call that opens it, not on a grid:
	 * t2 + 9s is past t1 + 30s but still in t2's interval.
	 */
	assert_int_equal(log_ratelimit(&rl, t2), 1);
	assert_int_equal(log_ratelimit(&rl, t2 + 1), 1);
	assert_int_equal(log_ratelimit(&rl, t2 + 2), 1);
	assert_int_equal(log_ratelimit(&rl, t2 + 9 * SEC), 0);
	/* An interval with nothing dropped says nothing. */
	assert_int_equal(log_ratelimit(&rl, t3), 1);
	assert_int_equal(log_ratelimit(&rl, t3 + 10 * SEC), 1);

	s = slurp(d->path);
	line_check(s, 1, "", &r);
	expect_pairs(&r, "msg",
	    "dropped 4 bad client records (at most 3 per 10s)", "dropped", "4",
	    NULL);
	line_check(s, 2, "", &r);
	expect_pairs(&r, "msg",
	    "dropped 1 bad client records (at most 3 per 10s)", "dropped", "1",
	    NULL);
	assert_int_equal(count_char(s, strlen(s), '\n'), 3);
	free(s);
}

static void
test_reopen_if_requested(void **state)
{
	struct logdir *d = *state;
	struct stat    st;
	char	      *s;

	open_file_target(d);
	log_info("one");
	assert_int_equal(rename(d->path, d->moved), 0);

	/* No request: nothing is reopened, so nothing is created. */
	log_reopen_if_requested();
	assert_int_equal(access(d->path, F_OK), -1);
	log_info("two");
	assert_int_equal(access(d->path, F_OK), -1);

	/* A request is done at once, before any record, keeping errno. */
	log_request_reopen();
	errno = EPERM;
	log_reopen_if_requested();
	assert_int_equal(errno, EPERM);
	assert_int_equal(stat(d->path, &st), 0);
	assert_int_equal(st.st_size, 0);
	log_info("three");

	s = slurp(d->moved);
	assert_non_null(strstr(s, " info msg=one\n"));
	assert_non_null(strstr(s, " info msg=two\n"));
	assert_int_equal(count_char(s, strlen(s), '\n'), 2);
	free(s);
	s = slurp(d->path);
	assert_non_null(strstr(s, " info msg=three\n"));
	assert_int_equal(count_char(s, strlen(s), '\n'), 1);
	free(s);

	/* The request was used up: a second call reopens nothing. */
	assert_int_equal(unlink(d->path), 0);
	log_reopen_if_requested();
	assert_int_equal(access(d->path, F_OK), -1);
}

/* A failed reopen says so in the file it still writes to. */
static void
test_reopen_if_requested_fails(void **state)
{
	static struct record r;
	struct logdir	    *d = *state;
	char		     gone[80], *s;
	int		     saved;

	snprintf(gone, sizeof gone, "%s.gone", d->dir);
	open_file_target(d);
	log_info("before");
	log_request_reopen();
	/* Without its directory the path cannot be opened. */
	assert_int_equal(rename(d->dir, gone), 0);
	errno = EINTR;
	assert_int_equal(log_reopen_if_requested(), -1);
	saved = errno;
	assert_int_equal(rename(gone, d->dir), 0);
	assert_int_equal(saved, EINTR);
	log_info("after");

	s = slurp(d->path);
	line_check(s, 0, "", &r);
	expect_pairs(&r, "msg", "before", NULL);
	line_check(s, 1, "", &r);
	assert_string_equal(r.level, "warning");
	expect_pairs(&r, "msg",
	    "cannot reopen the log file; records still go "
	    "to the old one",
	    "path", d->path, "error", strerror(ENOENT), NULL);
	line_check(s, 2, "", &r);
	expect_pairs(&r, "msg", "after", NULL);
	assert_int_equal(count_char(s, strlen(s), '\n'), 3);
	free(s);
}

/* Whether s holds only whole UTF-8 sequences (lead and continuations). */
static int
utf8_whole(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t		     i, k, need;

	for (i = 0; i < n; i += need) {
		if (p[i] < 0x80)
			need = 1;
		else if ((p[i] & 0xe0) == 0xc0)
			need = 2;
		else if ((p[i] & 0xf0) == 0xe0)
			need = 3;
		else if ((p[i] & 0xf8) == 0xf0)
			need = 4;
		else
			return 0;
		if (i + need > n)
			return 0;
		for (k = 1; k < need; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

/* A cut keeps whole UTF-8 characters, as it keeps whole escapes. */
static void
test_cut_keeps_utf8_whole(void **state)
{
	static const char   *chars[] = { "\xc3\xa9", "\xe2\x9c\x93",
		  "\xf0\x9f\x98\x80" };
	static struct record r;
	static char	     msg[8010];
	const char	    *rec;
	size_t		     i, shift, off, len;

	for (i = 0; i < sizeof chars / sizeof chars[0]; i++) {
		len = strlen(chars[i]);
		for (shift = 0; shift < len; shift++) {
			memset(msg, 'a', shift);
			for (off = shift; off + len <= 8000; off += len)
				memcpy(msg + off, chars[i], len);
			msg[off] = '\0';
			rec = fmt(LOG_INFO, NULL, msg);
			record_check(rec, strlen(rec), LOG_RECORD_MAX, &r);
			assert_true(r.pairs[0].cut);
			if (!utf8_whole(r.pairs[0].val, r.pairs[0].len))
				fail_msg("%zu-byte characters after %zu 'a': "
					 "cut inside a character",
				    len, shift);
		}
	}
}

/*
 * ": strerror" goes after the message text even when that text holds a
 * separator that starts no field.
 */
static void
test_warn_error_after_text_with_separator(void **state)
{
	static struct record r;
	struct logdir	    *d = *state;
	char		    *s;

	open_file_target(d);
	errno = ENOENT;
	log_warn("read %s" LOG_KV "fd=%d", "a" LOG_KV "b", 3);
	s = slurp(d->path);
	line_check(s, 0, "", &r);
	expect_pairs(&r, "msg", "read a" LOG_KV "b: No such file or directory",
	    "fd", "3", NULL);
	free(s);
}

/* With the "<N>" prefix, a record is still at most LOG_RECORD_MAX. */
static void
test_journal_prefix_record_max(void **state)
{
	struct logdir *d = *state;
	const char    *errstr = NULL;
	static char    big[8001];
	char	       stream[64], *s;
	int	       saved, rc;

	memset(big, 'x', 8000);
	saved = stderr_divert(d->path, stream, sizeof stream);
	setenv("JOURNAL_STREAM", stream, 1);
	if ((rc = log_open("stderr", &errstr)) == 0)
		log_info("%s", big);
	log_close();
	stderr_restore(saved);
	assert_int_equal(rc, 0);
	s = slurp(d->path);
	assert_memory_equal(s, "<6>", 3);
	if (strlen(s) > LOG_RECORD_MAX)
		fail_msg("wrote %zu bytes, more than LOG_RECORD_MAX",
		    strlen(s));
	free(s);
}

/* Values too long share the room: none is emptied while another is kept. */
static void
test_cut_shares_room(void **state)
{
	static char	     msg[12000];
	static struct record r;
	const char	    *rec;
	size_t		     a, b;

	snprintf(msg, sizeof msg, "two" LOG_KV "a=%s" LOG_KV "b=%s", "", "");
	memset(msg, 0, sizeof msg);
	strcpy(msg, "two" LOG_KV "a=");
	memset(msg + strlen(msg), 'a', 5000);
	strcat(msg, LOG_KV "b=");
	memset(msg + strlen(msg), 'b', 6000);
	rec = fmt(LOG_INFO, NULL, msg);
	record_check(rec, strlen(rec), LOG_RECORD_MAX, &r);
	assert_int_equal(r.npairs, 3);
	assert_true(r.pairs[1].cut && r.pairs[2].cut);
	a = r.pairs[1].len;
	b = r.pairs[2].len;
	/* Cut to one level: within a byte of each other, both substantial. */
	assert_true(a + 1 >= b && b + 1 >= a);
	assert_true(a > 1900);
}

/* A field cannot be given twice, so client data cannot override one. */
static void
test_fields_no_override(void **state)
{
	struct log_ctx ctx = { NULL, NULL, 7 };

	fmt_is("x" LOG_KV "msg=spoof",
	    TS_STR " info msg=\"x\\x1fmsg=spoof\"\n");
	fmt_is("x" LOG_KV "k=1" LOG_KV "k=2",
	    TS_STR " info msg=x k=\"1\\x1fk=2\"\n");
	assert_string_equal(fmt(LOG_INFO, &ctx, "x" LOG_KV "job=1"),
	    TS_STR " info job=7 msg=\"x\\x1fjob=1\"\n");
}

/* Whether a journald listens here (then the fallback cannot be seen). */
static int
journald_listening(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int		   fd, ok;

	snprintf(sun.sun_path, sizeof sun.sun_path,
	    "/run/systemd/journal/socket");
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	ok = connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0;
	close(fd);
	return ok;
}

/*
 * sd_journal_send() drops records silently when no journald listens, so
 * the journal target is refused then, saying why.
 */
static void
test_journal_unreachable_refused(void **state)
{
	static struct record r;
	struct logdir	    *d = *state;
	const char	    *errstr = NULL;
	char		    *s;

	if (journald_listening()) {
		print_message("SKIPPED: a journald listens on this machine\n");
		skip();
	}
	open_file_target(d);
	assert_int_equal(log_open("journal", &errstr), -1);
	assert_non_null(errstr);
	assert_non_null(strstr(errstr, "the journal is not running"));
	/* The target in place stays. */
	log_info("still here");
	s = slurp(d->path);
	line_check(s, 0, "", &r);
	expect_pairs(&r, "msg", "still here", NULL);
	free(s);
}

/*
 * A program that did not hand log.c sd_journal_sendv() (mprocctl, which so
 * never loads libsystemd) refuses "journal" saying so, and takes "auto" on
 * journald's stream as stderr, prefixed.
 */
static void
test_journal_without_sendv(void **state)
{
	static struct record r;
	struct logdir	    *d = *state;
	const char	    *errstr = NULL;
	char		    *s;

	log_use_journal(NULL);
	open_file_target(d);
	assert_int_equal(log_open("journal", &errstr), -1);
	assert_non_null(errstr);
	assert_non_null(strstr(errstr, "does not write to the journal"));
	log_info("still here");
	s = slurp(d->path);
	line_check(s, 0, "", &r);
	expect_pairs(&r, "msg", "still here", NULL);
	free(s);

	assert_int_equal(log_via_stderr(d->path, "auto", "same"), 0);
	s = slurp(d->path);
	line_check(s, 0, "<4>", &r);
	expect_pairs(&r, "msg", "disk: Input/output error", "dev", "sda", NULL);
	free(s);
	log_use_journal(sd_journal_sendv);
}

/* log_safe: outside text cannot add fields, and is cut with a mark. */
static void
test_log_safe(void **state)
{
	char buf[16], big[64];

	assert_string_equal(log_safe("ls", buf, sizeof buf), "ls");
	assert_string_equal(log_safe("a" LOG_KV "state=ok", buf, sizeof buf),
	    "a?state=ok");
	assert_string_equal(log_safe("0123456789abcdefgh", buf, sizeof buf),
	    "012345678 [cut]");
	/* The cut keeps whole UTF-8 characters: é is two bytes. */
	assert_string_equal(log_safe("01234567\xc3\xa9xxxxxxxx", buf,
				sizeof buf),
	    "01234567 [cut]");
	assert_string_equal(log_safe("x", buf, 1), "");
	/* As a field it stays one value. */
	fmt_is("x" LOG_KV "cmd="
	       "a?b=c",
	    TS_STR " info msg=x cmd=\"a?b=c\"\n");
	snprintf(big, sizeof big, "x" LOG_KV "cmd=%s",
	    log_safe("a" LOG_KV "b=c", buf, sizeof buf));
	fmt_is(big, TS_STR " info msg=x cmd=\"a?b=c\"\n");
}

/* A worker's wait status as log fields. */
static void
test_wait_status(void **state)
{
	char buf[128];

	log_wait_status(W_EXITCODE(3, 0), buf, sizeof buf);
	assert_string_equal(buf, LOG_KV "status=3");
	log_wait_status(SIGKILL, buf, sizeof buf);
	assert_string_equal(buf, LOG_KV "signal=9");
	log_wait_status(SIGSEGV | 0x80, buf, sizeof buf);
	assert_string_equal(buf, LOG_KV "signal=11" LOG_KV "core_dumped=yes");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_format_shape, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_journal_without_sendv,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_timestamp, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_format_quoting, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_format_long_message_cut,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cut_bare_message_stays_well_formed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_never_splits_escape,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_procinit_fields, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_procinit_in_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_target, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_bad_targets, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_reopen, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_is_cloexec, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_level_filter, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_errno_preserved, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_parser_rejects_malformed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_fields_simple, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fields_separator_in_value,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_fields_bad_keys, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fields_many, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fields_with_context, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_quoting_control_bytes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_quoting_utf8, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cut_long_msg_keeps_fields,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_long_field, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cut_two_long_values, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cut_only_when_needed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_random, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_warn_with_fields, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_journal_prefix, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_journal_prefix_absent,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ratelimit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_if_requested, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen_if_requested_fails,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_keeps_utf8_whole,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_warn_error_after_text_with_separator, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_prefix_record_max,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_shares_room, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fields_no_override, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_journal_unreachable_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_safe, setup, teardown),
		cmocka_unit_test(test_wait_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
