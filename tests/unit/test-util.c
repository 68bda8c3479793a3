/*
 * lib/util.c: the duration, size, number and mode parsers, the formatters
 * and util_closefrom().
 */
#include "config.h"

#include <sys/socket.h>
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

#include "util.h"

#define MS     USEC_PER_MSEC
#define SEC    USEC_PER_SEC
#define MINUTE (60 * SEC)
#define HOUR   (3600 * SEC)
#define DAY    (86400 * SEC)
#define KIB    (UINT64_C(1) << 10)
#define MIB    (UINT64_C(1) << 20)
#define GIB    (UINT64_C(1) << 30)
#define TIB    (UINT64_C(1) << 40)

/* A value no parser under test should produce by accident. */
#define SENTINEL UINT64_C(0xdeadbeefcafe)

typedef int (*parser)(const char *, uint64_t *, const char **);

/* Parses s into want. */
static void
parse_ok(parser fn, const char *what, const char *s, uint64_t want)
{
	const char *errstr = NULL;
	uint64_t    v = SENTINEL;
	int	    r;

	r = fn(s, &v, &errstr);
	if (r != 0 || v != want)
		print_message("%s \"%s\": r=%d v=%llu want=%llu (%s)\n", what,
		    s, r, (unsigned long long)v, (unsigned long long)want,
		    errstr != NULL ? errstr : "-");
	assert_int_equal(r, 0);
	assert_true(v == want);
}

/* Fails, with an error string that contains want. */
static void
parse_err(parser fn, const char *what, const char *s, const char *want)
{
	const char *errstr = NULL;
	uint64_t    v = SENTINEL;
	int	    r;

	r = fn(s, &v, &errstr);
	if (r != -1 || errstr == NULL || strstr(errstr, want) == NULL)
		print_message("%s \"%s\": r=%d v=%llu errstr=%s, "
			      "want error \"%s\"\n",
		    what, s, r, (unsigned long long)v,
		    errstr != NULL ? errstr : "(null)", want);
	assert_int_equal(r, -1);
	assert_non_null(errstr);
	assert_non_null(strstr(errstr, want));
}

#define dur_ok(s, want)	  parse_ok(util_parse_duration, "duration", s, want)
#define dur_err(s, want)  parse_err(util_parse_duration, "duration", s, want)
#define size_ok(s, want)  parse_ok(util_parse_size, "size", s, want)
#define size_err(s, want) parse_err(util_parse_size, "size", s, want)

static void
uint_ok(const char *s, uint64_t min, uint64_t max, uint64_t want)
{
	const char *errstr = NULL;
	uint64_t    v = SENTINEL;
	int	    r;

	r = util_parse_uint(s, min, max, &v, &errstr);
	if (r != 0 || v != want)
		print_message("uint \"%s\": r=%d v=%llu want=%llu (%s)\n", s, r,
		    (unsigned long long)v, (unsigned long long)want,
		    errstr != NULL ? errstr : "-");
	assert_int_equal(r, 0);
	assert_true(v == want);
}

/* Fails with want in the error, and leaves the output alone. */
static void
uint_err(const char *s, uint64_t min, uint64_t max, const char *want)
{
	const char *errstr = NULL;
	uint64_t    v = SENTINEL;
	int	    r;

	r = util_parse_uint(s, min, max, &v, &errstr);
	if (r != -1 || errstr == NULL || strstr(errstr, want) == NULL)
		print_message("uint \"%s\" [%llu, %llu]: r=%d errstr=%s, "
			      "want error \"%s\"\n",
		    s, (unsigned long long)min, (unsigned long long)max, r,
		    errstr != NULL ? errstr : "(null)", want);
	assert_int_equal(r, -1);
	assert_non_null(errstr);
	assert_non_null(strstr(errstr, want));
	assert_true(v == SENTINEL);
}

static void
mode_ok(const char *s, unsigned int want)
{
	const char  *errstr = NULL;
	unsigned int m = 0xffffu;
	int	     r;

	r = util_parse_mode(s, &m, &errstr);
	if (r != 0 || m != want)
		print_message("mode \"%s\": r=%d m=%o want=%o (%s)\n", s, r, m,
		    want, errstr != NULL ? errstr : "-");
	assert_int_equal(r, 0);
	assert_int_equal(m, want);
}

static void
mode_err(const char *s, const char *want)
{
	const char  *errstr = NULL;
	unsigned int m = 0xffffu;
	int	     r;

	r = util_parse_mode(s, &m, &errstr);
	if (r != -1 || errstr == NULL || strstr(errstr, want) == NULL)
		print_message("mode \"%s\": r=%d errstr=%s, want error "
			      "\"%s\"\n",
		    s, r, errstr != NULL ? errstr : "(null)", want);
	assert_int_equal(r, -1);
	assert_non_null(errstr);
	assert_non_null(strstr(errstr, want));
	assert_int_equal(m, 0xffffu);
}

static void
test_duration_bare_is_seconds(void **state)
{
	dur_ok("0", 0);
	dur_ok("1", SEC);
	dur_ok("30", 30 * SEC);
	dur_ok("1.5", 1500 * MS);
	dur_ok("0.001", MS);
	dur_ok("000007", 7 * SEC);
}

static void
test_duration_units(void **state)
{
	dur_ok("7us", 7);
	dur_ok("100ms", 100 * MS);
	dur_ok("2s", 2 * SEC);
	dur_ok("2sec", 2 * SEC);
	dur_ok("2m", 2 * MINUTE);
	dur_ok("2min", 2 * MINUTE);
	dur_ok("3h", 3 * HOUR);
	dur_ok("1d", DAY);
	dur_ok("0s", 0);
	dur_ok("0us", 0);
	dur_ok("0d", 0);
}

static void
test_duration_fractions(void **state)
{
	dur_ok("1.5s", 1500000);
	dur_ok("0.5ms", 500);
	dur_ok("1.5min", 90 * SEC);
	dur_ok("0.25h", 900 * SEC);
	dur_ok("0.5d", 12 * HOUR);
	dur_ok(".5s", 500 * MS);
	dur_ok("1.s", SEC);
	dur_ok("1.000001s", SEC + 1);
	/* Past microseconds the digits are dropped, not rounded. */
	dur_ok("1.0000019s", SEC + 1);
	dur_ok("2.5us", 2);
}

static void
test_duration_whitespace(void **state)
{
	dur_ok(" 5s", 5 * SEC);
	dur_ok("5s ", 5 * SEC);
	dur_ok("5 s", 5 * SEC);
	dur_ok("\t5\tmin\n", 5 * MINUTE);
	dur_ok("  42  ", 42 * SEC);
}

static void
test_duration_errors(void **state)
{
	dur_err("", "not a number");
	dur_err("   ", "not a number");
	dur_err("s", "not a number");
	dur_err(".", "not a number");
	dur_err(".s", "not a number");
	dur_err("-1s", "negative");
	dur_err(" -1", "negative");
	dur_err("-0", "negative");
	dur_err("5x", "unknown unit");
	dur_err("5 parsecs", "unknown unit");
	dur_err("5seconds", "unknown unit");
	dur_err("5 microseconds", "unknown unit");
	dur_err("5s5", "unknown unit");
	dur_err("5 s s", "unknown unit");
	dur_err("1e3", "unknown unit");
	dur_err("1.5.5s", "unknown unit");
}

static void
test_duration_overflow(void **state)
{
	dur_err("99999999999999999999", "too large");
	dur_err("18446744073709551615h", "too large");
	dur_err("18446744073709551615", "too large");
	dur_err("18446744073710", "too large");
	/* UINT64_MAX us is 5124095576.03 hours and 213503982.33 days. */
	dur_ok("5124095576h", UINT64_C(5124095576) * HOUR);
	dur_err("5124095577h", "too large");
	dur_ok("213503982d", UINT64_C(213503982) * DAY);
	dur_err("213503983d", "too large");
	dur_err("307445734561.9min", "too large");
	/* The largest whole number of seconds that fits. */
	dur_ok("18446744073709", UINT64_C(18446744073709) * SEC);
	dur_ok("18446744073709.551615", UINT64_MAX);
}

/*
 * 18446744073709.6 s is 18446744073709600000 us, just over UINT64_MAX:
 * the integer part alone fits, the fraction tips it over.
 */
static void
test_duration_fraction_overflow(void **state)
{
	dur_err("18446744073709.6", "too large");
	dur_err("18446744073709.9s", "too large");
	dur_err("18446744073709.551616s", "too large");
}

/* Values that fit in 64 bits in the unit given must parse. */
static void
test_large_values_in_small_units(void **state)
{
	char buf[UTIL_FMTLEN];

	dur_ok("20000000000001us", UINT64_C(20000000000001));
	dur_ok("18446744073709551615us", UINT64_MAX);
	dur_ok("20000000000000ms", UINT64_C(20000000000000) * MS);
	/* What util_format_duration() writes must parse back. */
	dur_ok(util_format_duration(UINT64_C(20000000000001), buf, sizeof buf),
	    UINT64_C(20000000000001));
	dur_ok(util_format_duration(UINT64_MAX, buf, sizeof buf), UINT64_MAX);

	/* 20 TB as bytes, where "18T" and "20000000000000" must agree. */
	size_ok("20000000000000", UINT64_C(20000000000000));
	size_ok("18446744073709551615", UINT64_MAX);
	size_ok(util_format_size(UINT64_C(20000000000001), buf, sizeof buf),
	    UINT64_C(20000000000001));
}

static void
test_size_bare_is_bytes(void **state)
{
	size_ok("0", 0);
	size_ok("1", 1);
	size_ok("100", 100);
	size_ok("4096", 4096);
	size_ok("100B", 100);
	size_ok("100b", 100);
	size_ok("1.0", 1);
}

static void
test_size_units(void **state)
{
	size_ok("1K", KIB);
	size_ok("1k", KIB);
	size_ok("512K", 512 * KIB);
	size_ok("4M", 4 * MIB);
	size_ok("1G", GIB);
	size_ok("2T", 2 * TIB);
	size_ok("4KB", 4 * KIB);
	size_ok("4KiB", 4 * KIB);
	size_ok("4kib", 4 * KIB);
	size_ok("4MB", 4 * MIB);
	size_ok("4MiB", 4 * MIB);
	size_ok("4mb", 4 * MIB);
	size_ok("3GB", 3 * GIB);
	size_ok("3GiB", 3 * GIB);
	size_ok("1TB", TIB);
	size_ok("1TiB", TIB);
	size_ok("0K", 0);
}

static void
test_size_fractions_and_whitespace(void **state)
{
	size_ok("1.5K", 1536);
	size_ok("0.5M", 512 * KIB);
	size_ok("1.5G", GIB + GIB / 2);
	size_ok("0.25T", TIB / 4);
	size_ok(".5K", 512);
	size_ok(" 4M", 4 * MIB);
	size_ok("4M ", 4 * MIB);
	size_ok("4 M", 4 * MIB);
	size_ok("\t4 MiB\n", 4 * MIB);
}

static void
test_size_errors(void **state)
{
	size_err("", "not a number");
	size_err("   ", "not a number");
	size_err("K", "not a number");
	size_err("-1K", "negative");
	size_err("-1", "negative");
	size_err("5x", "unknown unit");
	size_err("5 parsecs", "unknown unit");
	size_err("4KK", "unknown unit");
	size_err("4Ki", "unknown unit");
	size_err("4KiBs", "unknown unit");
	size_err("4BB", "unknown unit");
	size_err("4BiB", "unknown unit");
	size_err("4iB", "unknown unit");
	size_err("4 K B", "unknown unit");
	size_err("1.5", "not a whole number");
	size_err("1.5B", "not a whole number");
}

static void
test_size_overflow(void **state)
{
	size_err("99999999999999999999", "too large");
	size_err("99999999999999999999K", "too large");
	size_err("18446744073709551615T", "too large");
	/* 2^24 T is 2^64 bytes. */
	size_ok("16777215T", UINT64_C(16777215) * TIB);
	size_err("16777216T", "too large");
	size_ok("17179869183G", UINT64_C(17179869183) * GIB);
	size_err("17179869184G", "too large");
}

/* 18446744073709.6K fits nowhere; it must not wrap to a small number. */
static void
test_size_fraction_overflow(void **state)
{
	/* UINT64_MAX is 17592186044415.99...M: the fraction decides. */
	size_err("17592186044416M", "too large");
	size_ok("17592186044415.5M",
	    UINT64_C(17592186044415) * (1 << 20) + (1 << 19));
	size_err("18014398509481984K", "too large");
	/* Largest whole KiB count with the largest fraction still fits. */
	size_ok("18014398509481983.999999K", UINT64_MAX);
}

static void
test_format_duration(void **state)
{
	char	    buf[UTIL_FMTLEN];
	const char *s;

	s = util_format_duration(0, buf, sizeof buf);
	assert_ptr_equal(s, buf);
	assert_string_equal(s, "0");
	assert_string_equal(util_format_duration(1, buf, sizeof buf), "1us");
	assert_string_equal(util_format_duration(1500, buf, sizeof buf),
	    "1500us");
	assert_string_equal(util_format_duration(MS, buf, sizeof buf), "1ms");
	assert_string_equal(util_format_duration(1500 * MS, buf, sizeof buf),
	    "1500ms");
	assert_string_equal(util_format_duration(SEC, buf, sizeof buf), "1s");
	assert_string_equal(util_format_duration(90 * SEC, buf, sizeof buf),
	    "90s");
	assert_string_equal(util_format_duration(MINUTE, buf, sizeof buf),
	    "1min");
	assert_string_equal(util_format_duration(90 * MINUTE, buf, sizeof buf),
	    "90min");
	assert_string_equal(util_format_duration(HOUR, buf, sizeof buf), "1h");
	assert_string_equal(util_format_duration(DAY, buf, sizeof buf), "24h");
	assert_string_equal(util_format_duration(UINT64_MAX, buf, sizeof buf),
	    "18446744073709551615us");
}

static void
test_format_size(void **state)
{
	char	    buf[UTIL_FMTLEN];
	const char *s;

	s = util_format_size(0, buf, sizeof buf);
	assert_ptr_equal(s, buf);
	assert_string_equal(s, "0");
	assert_string_equal(util_format_size(1, buf, sizeof buf), "1");
	assert_string_equal(util_format_size(1023, buf, sizeof buf), "1023");
	assert_string_equal(util_format_size(KIB, buf, sizeof buf), "1K");
	assert_string_equal(util_format_size(1536, buf, sizeof buf), "1536");
	assert_string_equal(util_format_size(1536 * KIB, buf, sizeof buf),
	    "1536K");
	assert_string_equal(util_format_size(MIB, buf, sizeof buf), "1M");
	assert_string_equal(util_format_size(GIB, buf, sizeof buf), "1G");
	assert_string_equal(util_format_size(TIB, buf, sizeof buf), "1024G");
	assert_string_equal(util_format_size(UINT64_MAX, buf, sizeof buf),
	    "18446744073709551615");
}

static void
test_format_parse_round_trip(void **state)
{
	static const uint64_t durs[] = {
		0,
		1,
		999,
		MS,
		1500,
		1500 * MS,
		SEC,
		61 * SEC,
		MINUTE,
		90 * MINUTE,
		HOUR,
		DAY,
		7 * DAY,
		UINT64_C(123456789),
		UINT64_C(5124095576) * HOUR,
	};
	static const uint64_t sizes[] = {
		0,
		1,
		1023,
		KIB,
		1536,
		4 * MIB,
		GIB,
		3 * GIB + 1,
		TIB,
		16777215 * TIB,
	};
	char   buf[UTIL_FMTLEN];
	size_t i;

	for (i = 0; i < sizeof durs / sizeof durs[0]; i++)
		dur_ok(util_format_duration(durs[i], buf, sizeof buf), durs[i]);
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		size_ok(util_format_size(sizes[i], buf, sizeof buf), sizes[i]);
}

static void
test_parse_uint(void **state)
{
	uint_ok("0", 0, 10, 0);
	uint_ok("42", 1, 100, 42);
	uint_ok("1", 1, 100, 1);
	uint_ok("100", 1, 100, 100);
	uint_ok(" 7 ", 0, 10, 7);
	uint_ok("007", 0, 10, 7);
	uint_ok("18446744073709551615", 0, UINT64_MAX, UINT64_MAX);

	uint_err("0", 1, 100, "too small");
	uint_err("101", 1, 100, "too large");
	uint_err("18446744073709551616", 0, UINT64_MAX, "too large");
	uint_err("99999999999999999999999", 0, UINT64_MAX, "too large");
	uint_err("-1", 0, 100, "negative");
	uint_err(" -5", 0, 100, "negative");
	uint_err("", 0, 100, "not a number");
	uint_err("   ", 0, 100, "not a number");
	uint_err("abc", 0, 100, "not a number");
	uint_err("7x", 0, 100, "not a whole number");
	uint_err("7 8", 0, 100, "not a whole number");
	uint_err("1.5", 0, 100, "not a whole number");
	uint_err("0x10", 0, 100, "not a whole number");
}

static void
test_parse_mode(void **state)
{
	mode_ok("0660", 0660);
	mode_ok("777", 0777);
	mode_ok("0777", 0777);
	mode_ok("0", 0);
	mode_ok("0000", 0);
	mode_ok("600", 0600);
	mode_ok(" 0644 ", 0644);

	mode_err("0800", "not an octal mode");
	mode_err("8", "not an octal mode");
	mode_err("01777", "not a permission mode");
	mode_err("06600", "not a permission mode");
	mode_err("abc", "not an octal mode");
	mode_err("", "not an octal mode");
	mode_err("-1", "not an octal mode");
	mode_err("0644x", "not an octal mode");
	mode_err("0x1ff", "not an octal mode");
	mode_err("7777777777777777777777777777", "not");
}

/*
 * Runs util_closefrom(lowest, keep, nkeep) in a child and returns a mask of
 * which of fds[] stayed open, with bit 6 set when 0, 1 and 2 all did.
 */
static int
closefrom_in_child(int lowest, const int *keep, size_t nkeep, const int *fds,
    size_t nfds)
{
	pid_t  pid;
	int    status, mask;
	size_t i;

	assert_true(nfds <= 6);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		util_closefrom(lowest, keep, nkeep);
		mask = 0;
		for (i = 0; i < nfds; i++)
			if (fcntl(fds[i], F_GETFD) != -1)
				mask |= 1 << i;
		if (fcntl(0, F_GETFD) != -1 && fcntl(1, F_GETFD) != -1 &&
		    fcntl(2, F_GETFD) != -1)
			mask |= 1 << 6;
		_exit(mask);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
open_pipes(int *fds)
{
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(pipe(fds + 2), 0);
	assert_int_equal(pipe(fds + 4), 0);
}

static void
close_all(const int *fds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		close(fds[i]);
}

static int
lowest_of(const int *fds, size_t n)
{
	int    lo = fds[0];
	size_t i;

	for (i = 1; i < n; i++)
		if (fds[i] < lo)
			lo = fds[i];
	return lo;
}

static void
test_closefrom_keeps_listed(void **state)
{
	int fds[6], keep[2];

	open_pipes(fds);
	keep[0] = fds[2];
	keep[1] = fds[5];
	assert_int_equal(closefrom_in_child(lowest_of(fds, 6), keep, 2, fds, 6),
	    (1 << 6) | (1 << 2) | (1 << 5));
	/* The parent is untouched. */
	assert_true(fcntl(fds[0], F_GETFD) != -1);
	assert_true(fcntl(fds[4], F_GETFD) != -1);
	close_all(fds, 6);
}

static void
test_closefrom_no_keep(void **state)
{
	int fds[6];

	open_pipes(fds);
	assert_int_equal(closefrom_in_child(lowest_of(fds, 6), NULL, 0, fds, 6),
	    1 << 6);
	close_all(fds, 6);
}

static void
test_closefrom_above_lowest(void **state)
{
	int fds[6], i, mask = 0, lo, keep[1];

	open_pipes(fds);
	/* Start half way: descriptors below lowest survive. */
	lo = fds[3];
	for (i = 0; i < 6; i++)
		if (fds[i] < lo)
			mask |= 1 << i;
	assert_int_equal(closefrom_in_child(lo, NULL, 0, fds, 6),
	    (1 << 6) | mask);
	/* A kept descriptor below lowest changes nothing. */
	keep[0] = fds[0];
	assert_int_equal(closefrom_in_child(lo, keep, 1, fds, 6),
	    (1 << 6) | mask);
	close_all(fds, 6);
}

static void
test_closefrom_keep_high_and_gaps(void **state)
{
	int fds[6], keep[3];

	open_pipes(fds);
	/* Kept descriptors far apart, with closed ranges between. */
	assert_int_equal(dup2(fds[1], 200), 200);
	close(fds[1]);
	fds[1] = 200;
	assert_int_equal(dup2(fds[3], 150), 150);
	close(fds[3]);
	fds[3] = 150;
	keep[0] = 200;
	keep[1] = fds[0];
	keep[2] = 200;
	assert_int_equal(closefrom_in_child(lowest_of(fds, 6), keep, 3, fds, 6),
	    (1 << 6) | (1 << 0) | (1 << 1));
	keep[0] = 150;
	assert_int_equal(closefrom_in_child(lowest_of(fds, 6), keep, 1, fds, 6),
	    (1 << 6) | (1 << 3));
	close_all(fds, 6);
}

static void
test_base64(void **state)
{
	static const struct {
		const char *plain;
		const char *enc;
	} v[] = {
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
		{ "\xff\xfe\x00", "//4A" },
	};
	static const char *const bad[] = { "Z", "Zg=", "Zg",
		"Z===", "====", "Zg==Zg==", "Zm9v\n", "Zm 9", "Zm-_", "=Zm9" };
	char			*e;
	uint8_t			*d;
	size_t			 i, n, len;

	for (i = 0; i < sizeof v / sizeof v[0]; i++) {
		len = i == 7 ? 3 : strlen(v[i].plain);
		e = util_base64_encode(v[i].plain, len);
		assert_string_equal(e, v[i].enc);
		free(e);
		d = util_base64_decode(v[i].enc, strlen(v[i].enc), &n);
		assert_non_null(d);
		assert_int_equal(n, len);
		assert_memory_equal(d, v[i].plain, len);
		free(d);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		d = util_base64_decode(bad[i], strlen(bad[i]), &n);
		if (d != NULL)
			fail_msg("'%s' decoded", bad[i]);
	}
}

/*
 * util_writev_some(): what a non-blocking socket takes now, in order across
 * the iovecs; 0 (never -1) once it takes nothing, or the peer is gone.
 */
static void
test_writev_some(void **state)
{
	static char  big[65536];
	char	     got[16], a[] = "abc", b[] = "defg";
	struct iovec iov[2] = { { a, 3 }, { b, 4 } };
	size_t	     n, total = 0;
	int	     sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(util_set_nonblock(sv[0]), 0);
	assert_int_equal(util_writev_some(sv[0], iov, 2), 7);
	assert_int_equal(read(sv[1], got, sizeof got), 7);
	assert_memory_equal(got, "abcdefg", 7);

	/* Filled up: a partial count, then 0 with EAGAIN, nothing lost. */
	memset(big, 'x', sizeof big);
	iov[0].iov_base = big;
	iov[0].iov_len = sizeof big;
	while ((n = util_writev_some(sv[0], iov, 1)) > 0) {
		assert_true(n <= sizeof big);
		total += n;
		assert_true(total < 64 * sizeof big); /* it does fill up */
	}
	assert_int_equal(errno, EAGAIN);
	assert_true(total > 0);

	/* The peer gone: 0, not a signal or -1 (SIGPIPE ignored, as ours). */
	signal(SIGPIPE, SIG_IGN);
	close(sv[1]);
	assert_int_equal(util_writev_some(sv[0], iov, 1), 0);
	assert_true(errno == EPIPE || errno == ECONNRESET);
	close(sv[0]);
}

/* The words of s, joined by '|', or "ERR: why". */
static char *
split(const char *s)
{
	static char buf[512];
	const char *why;
	char	  **v, **p;

	if ((v = util_split_words(s, &why)) == NULL) {
		snprintf(buf, sizeof buf, why != NULL ? "ERR: %s" : "(none)",
		    why);
		return buf;
	}
	buf[0] = '\0';
	for (p = v; *p != NULL; p++)
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s",
		    p == v ? "" : "|", *p);
	util_strv_free(v);
	return buf;
}

static void
test_split_words(void **state)
{
	(void)state;
	assert_string_equal(split("python3 -m mprocd.worker calc"),
	    "python3|-m|mprocd.worker|calc");
	assert_string_equal(split("  a\t b  "), "a|b");
	assert_string_equal(split("sh -c 'echo $HOME; exit 1'"),
	    "sh|-c|echo $HOME; exit 1");
	assert_string_equal(split("a\"b c\"d"), "ab cd");
	assert_string_equal(split("\"a \\\" \\\\ \\$ \\x\""), "a \" \\ $ \\x");
	assert_string_equal(split("a\\ b c"), "a b|c");
	assert_string_equal(split("''"), "");
	assert_string_equal(split("x '' y"), "x||y");
	assert_string_equal(split("it's"), "ERR: a quote is not closed");
	assert_string_equal(split("\"open"), "ERR: a quote is not closed");
	assert_string_equal(split("end\\"), "ERR: a backslash at the end");
	assert_string_equal(split(""), "(none)");
	assert_string_equal(split("   "), "(none)");
}

static void
test_find_program(void **state)
{
	const char *why;
	char	   *p;

	(void)state;
	p = util_find_program("sh", "/nonexistent:/bin:/usr/bin", &why);
	assert_non_null(p);
	assert_string_equal(p, "/bin/sh");
	free(p);
	assert_null(util_find_program("no-such-program-x", "/bin", &why));
	assert_string_equal(why, "not found in PATH");
	assert_null(util_find_program("/etc/passwd", NULL, &why));
	assert_string_equal(why, "not executable");
	assert_null(util_find_program("/no/such/file", NULL, &why));
	assert_string_equal(why, "no such file");
	assert_null(util_find_program("passwd", "/etc", &why));
	assert_string_equal(why, "not executable");
	assert_null(util_find_program("", NULL, &why));
	p = util_find_program("/bin/sh", NULL, &why);
	assert_string_equal(p, "/bin/sh");
	free(p);
}

static void
test_strv(void **state)
{
	char  x[] = "x", y[] = "y";
	char *a[] = { x, y, NULL }, *b[] = { x, NULL }, **c;

	(void)state;
	c = util_strv_dup(a);
	assert_true(util_strv_equal(a, c));
	assert_false(util_strv_equal(a, b));
	assert_false(util_strv_equal(b, a));
	assert_false(util_strv_equal(a, NULL));
	assert_true(util_strv_equal(NULL, NULL));
	assert_null(util_strv_dup(NULL));
	util_strv_free(c);
	assert_int_equal(util_edit_distance("max_jobs", "max_job"), 1);
	assert_int_equal(util_edit_distance("program", "porgram"), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writev_some),
		cmocka_unit_test(test_duration_bare_is_seconds),
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_fractions),
		cmocka_unit_test(test_duration_whitespace),
		cmocka_unit_test(test_duration_errors),
		cmocka_unit_test(test_duration_overflow),
		cmocka_unit_test(test_duration_fraction_overflow),
		cmocka_unit_test(test_large_values_in_small_units),
		cmocka_unit_test(test_size_bare_is_bytes),
		cmocka_unit_test(test_size_units),
		cmocka_unit_test(test_size_fractions_and_whitespace),
		cmocka_unit_test(test_size_errors),
		cmocka_unit_test(test_size_overflow),
		cmocka_unit_test(test_size_fraction_overflow),
		cmocka_unit_test(test_format_duration),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_format_parse_round_trip),
		cmocka_unit_test(test_parse_uint),
		cmocka_unit_test(test_parse_mode),
		cmocka_unit_test(test_closefrom_keeps_listed),
		cmocka_unit_test(test_closefrom_no_keep),
		cmocka_unit_test(test_closefrom_above_lowest),
		cmocka_unit_test(test_closefrom_keep_high_and_gaps),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_split_words),
		cmocka_unit_test(test_find_program),
		cmocka_unit_test(test_strv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
