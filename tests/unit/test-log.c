/* lib/log.c: the record format, levels, process names and log targets. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"

/* 2023-11-14T22:13:20.123456Z */
#define TS		UINT64_C(1700000000123456)
#define TS_STR		"2023-11-14T22:13:20.123456Z"

/* A temporary directory for the tests that write log files. */
struct logdir {
	char	 dir[64];
	char	 path[128];
	char	 moved[128];
};

static int
setup(void **state)
{
	struct logdir	*d;

	log_close();
	log_procinit("test");
	log_setlevel(LOG_INFO);
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
	struct logdir	*d = *state;

	log_close();
	log_procinit("test");
	log_setlevel(LOG_INFO);
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
	static char	 buf[LOG_RECORD_MAX + 1];
	size_t		 n;

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
	FILE	*f;
	char	*s;
	size_t	 n;

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
	size_t	 i, k = 0;

	for (i = 0; i < n; i++)
		if (s[i] == c)
			k++;
	return k;
}

/* The descriptor open on path, or -1. */
static int
fd_of(const char *path)
{
	struct stat	 want, st;
	int		 fd;

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
	char		 target[160];
	const char	*errstr = NULL;

	snprintf(target, sizeof target, "file:%s", d->path);
	if (log_open(target, &errstr) != 0)
		fail_msg("log_open %s: %s", target, errstr);
}

static void
test_format_shape(void **state)
{
	struct log_ctx	 ctx;

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
	char	 buf[LOG_RECORD_MAX + 1];
	size_t	 n;

	n = log_format(buf, LOG_RECORD_MAX, 0, LOG_INFO, NULL, "x");
	buf[n] = '\0';
	assert_string_equal(buf, "1970-01-01T00:00:00.000000Z info msg=x\n");
	n = log_format(buf, LOG_RECORD_MAX, UINT64_C(1700000000000042),
	    LOG_INFO, NULL, "x");
	buf[n] = '\0';
	assert_string_equal(buf, "2023-11-14T22:13:20.000042Z info msg=x\n");
	n = log_format(buf, LOG_RECORD_MAX, UINT64_C(951868799999999),
	    LOG_INFO, NULL, "x");
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
	static const char	 tail[] = "[cut]\"\n";

	assert_true(n <= LOG_RECORD_MAX);
	assert_true(n > sizeof tail);
	assert_memory_equal(rec + n - (sizeof tail - 1), tail,
	    sizeof tail - 1);
	assert_int_equal(count_char(rec, n, '\n'), 1);
	assert_memory_equal(rec, TS_STR " info msg=", strlen(TS_STR) + 10);
}

static void
test_format_long_message_cut(void **state)
{
	char	 msg[8001], rec[LOG_RECORD_MAX + 1];
	size_t	 i, n;

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
	n = log_format(rec, 100, TS, LOG_INFO, NULL, "a b c d e f g h i j k "
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
	const char	*p = memchr(rec, '\0', n), *end = rec + n - 1;
	const char	*v;

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
	char		 msg[8001], rec[LOG_RECORD_MAX];
	const char	*why;
	size_t		 n;

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
	static const char	 chars[] = "\"\\\n\x01";
	char			 msg[8001], rec[LOG_RECORD_MAX];
	const char		*why;
	size_t			 i, n, shift;

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
				    "%.*s", (unsigned char)chars[i], shift, why,
				    (int)n > 24 ? 23 : 0, rec + n - 24);
		}
	}
}

static void
test_procinit_fields(void **state)
{
	struct log_ctx	 ctx;

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
	assert_string_equal(fmt(LOG_INFO, NULL, "hi"),
	    TS_STR " info msg=hi\n");

	log_procinit("worker solo");
	assert_string_equal(fmt(LOG_INFO, NULL, "hi"),
	    TS_STR " info worker=solo msg=hi\n");
}

static void
test_procinit_in_file(void **state)
{
	struct logdir	*d = *state;
	char		*s;

	open_file_target(d);
	log_procinit("worker default/2");
	log_info("job %d started", 7);
	s = slurp(d->path);
	assert_non_null(strstr(s, " info worker=default/2 msg=\"job 7 "
	    "started\"\n"));
	assert_int_equal(count_char(s, strlen(s), '\n'), 1);
	free(s);
}

static void
test_levels(void **state)
{
	static const char	*bad[] = {
		"", "verbose", "info ", " info", "inf", "unknown", "3", "trace",
		"informational",
	};
	int			 i;
	size_t			 j;

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
	struct logdir	*d = *state;
	char		*s, ts[32];
	struct stat	 st;
	int		 y, mo, da, h, mi, se, us;
	mode_t		 mask;

	/* The file is created 0640, so keep the umask out of the way. */
	mask = umask(022);
	open_file_target(d);
	umask(mask);
	log_info("hello %d", 42);
	s = slurp(d->path);
	assert_int_equal(count_char(s, strlen(s), '\n'), 1);
	assert_int_equal(sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &y, &mo, &da, &h,
	    &mi, &se, &us), 7);
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
	struct logdir	*d = *state;
	const char	*errstr;
	char		 target[160], *s;

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
	struct logdir	*d = *state;
	char		*s;

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
	struct logdir	*d = *state;
	char		*s;

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
	struct logdir	*d = *state;
	int		 fd;

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
	struct logdir	*d = *state;
	char		*s;

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
	struct logdir	*d = *state;
	char		*s;
	int		 fd, full;

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
	assert_non_null(strstr(s, " warning msg=\"open /x: No such file or "
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_format_shape, setup,
		    teardown),
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
