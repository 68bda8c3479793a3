#include "config.h"

#include <sys/stat.h>
#include <sys/uio.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "xmalloc.h"

/*
 * Reads a non-negative decimal number with an optional fraction: the whole
 * part and the fraction in millionths (digits past the sixth are accepted
 * and dropped). *end is left at the first character after it.
 */
static int
util_parse_decimal(const char *s, uint64_t *whole, uint64_t *frac,
    const char **end, const char **errstr)
{
	uint64_t scale = USEC_PER_SEC;
	int	 digits = 0;

	*whole = *frac = 0;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '-') {
		*errstr = "negative";
		return -1;
	}
	if (*s == '+')
		s++;
	for (; isdigit((unsigned char)*s); s++, digits++) {
		if (*whole > UINT64_MAX / 10 ||
		    (*whole == UINT64_MAX / 10 &&
			(uint64_t)(*s - '0') > UINT64_MAX % 10)) {
			*errstr = "too large";
			return -1;
		}
		*whole = *whole * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.') {
		s++;
		for (; isdigit((unsigned char)*s); s++, digits++) {
			if (scale > 1) {
				scale /= 10;
				*frac += (uint64_t)(*s - '0') * scale;
			}
		}
	}
	if (digits == 0) {
		*errstr = "not a number";
		return -1;
	}
	*end = s;
	return 0;
}

/* whole.frac (frac in millionths) times unit, checking for overflow. */
static int
util_scale_decimal(uint64_t whole, uint64_t frac, uint64_t unit, uint64_t *out,
    const char **errstr)
{
	uint64_t add;

	if (whole != 0 && unit > UINT64_MAX / whole) {
		*errstr = "too large";
		return -1;
	}
	/* frac < 10^6 and unit < 2^41, so this cannot overflow. */
	add = frac * unit / USEC_PER_SEC;
	if (whole * unit > UINT64_MAX - add) {
		*errstr = "too large";
		return -1;
	}
	*out = whole * unit + add;
	return 0;
}

/* "100ms", "1.5s", "2min", "1h", "30" (seconds) into microseconds. */
int
util_parse_duration(const char *s, uint64_t *usec, const char **errstr)
{
	static const struct {
		const char *name;
		uint64_t    usec;
	} units[] = {
		{ "us", 1 },
		{ "ms", USEC_PER_MSEC },
		{ "s", USEC_PER_SEC },
		{ "sec", USEC_PER_SEC },
		{ "m", 60 * USEC_PER_SEC },
		{ "min", 60 * USEC_PER_SEC },
		{ "h", 3600 * USEC_PER_SEC },
		{ "d", 86400 * USEC_PER_SEC },
	};
	const char *end;
	char	    unit[8];
	size_t	    i, n;
	uint64_t    whole, frac;

	if (util_parse_decimal(s, &whole, &frac, &end, errstr) != 0)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	n = strlen(end);
	while (n > 0 && isspace((unsigned char)end[n - 1]))
		n--;
	if (n == 0)
		return util_scale_decimal(whole, frac, USEC_PER_SEC, usec,
		    errstr);
	if (n >= sizeof unit) {
		*errstr = "unknown unit (use ms, s, min or h)";
		return -1;
	}
	memcpy(unit, end, n);
	unit[n] = '\0';
	for (i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(unit, units[i].name) == 0)
			return util_scale_decimal(whole, frac, units[i].usec,
			    usec, errstr);
	}
	*errstr = "unknown unit (use ms, s, min or h)";
	return -1;
}

/* "4M", "512K", "1G", "100" (bytes) into bytes; K = 1024. */
int
util_parse_size(const char *s, uint64_t *bytes, const char **errstr)
{
	const char *end;
	uint64_t    whole, frac, mul;
	size_t	    n;

	if (util_parse_decimal(s, &whole, &frac, &end, errstr) != 0)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	n = strlen(end);
	while (n > 0 && isspace((unsigned char)end[n - 1]))
		n--;
	switch (n == 0 ? '\0' : toupper((unsigned char)end[0])) {
	case '\0':
		mul = 1;
		break;
	case 'B':
		mul = 1;
		break;
	case 'K':
		mul = 1ULL << 10;
		break;
	case 'M':
		mul = 1ULL << 20;
		break;
	case 'G':
		mul = 1ULL << 30;
		break;
	case 'T':
		mul = 1ULL << 40;
		break;
	default:
		*errstr = "unknown unit (use K, M or G)";
		return -1;
	}
	/* Allow "4M", "4MB", "4MiB", "100B". */
	if (n > 1 &&
	    !((n == 2 && toupper((unsigned char)end[1]) == 'B' && mul != 1) ||
		(n == 3 && end[1] == 'i' &&
		    toupper((unsigned char)end[2]) == 'B' && mul != 1))) {
		*errstr = "unknown unit (use K, M or G)";
		return -1;
	}
	if (mul == 1 && frac != 0) {
		*errstr = "not a whole number of bytes";
		return -1;
	}
	return util_scale_decimal(whole, frac, mul, bytes, errstr);
}

/* A whole decimal number within [min, max]. */
int
util_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    const char **errstr)
{
	const char *end;
	uint64_t    whole, frac;

	if (util_parse_decimal(s, &whole, &frac, &end, errstr) != 0)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	if (*end != '\0' || strchr(s, '.') != NULL) {
		*errstr = "not a whole number";
		return -1;
	}
	if (whole > max) {
		*errstr = "too large";
		return -1;
	}
	if (whole < min) {
		*errstr = "too small";
		return -1;
	}
	*out = whole;
	return 0;
}

/* An octal file mode such as "0660". */
int
util_parse_mode(const char *s, unsigned int *mode, const char **errstr)
{
	char	     *end;
	unsigned long v;

	while (isspace((unsigned char)*s))
		s++;
	if (*s < '0' || *s > '7') {
		*errstr = "not an octal mode";
		return -1;
	}
	errno = 0;
	v = strtoul(s, &end, 8);
	while (isspace((unsigned char)*end))
		end++;
	if (*end != '\0' || errno == ERANGE) {
		*errstr = "not an octal mode";
		return -1;
	}
	if (v > 0777) {
		*errstr = "not a permission mode (0000 to 0777)";
		return -1;
	}
	*mode = (unsigned int)v;
	return 0;
}

/* The largest unit that divides the value exactly: 100ms, 30s, 2min. */
const char *
util_format_duration(uint64_t usec, char *buf, size_t len)
{
	if (usec == 0)
		snprintf(buf, len, "0");
	else if (usec % (3600 * USEC_PER_SEC) == 0)
		snprintf(buf, len, "%" PRIu64 "h",
		    usec / (3600 * USEC_PER_SEC));
	else if (usec % (60 * USEC_PER_SEC) == 0)
		snprintf(buf, len, "%" PRIu64 "min",
		    usec / (60 * USEC_PER_SEC));
	else if (usec % USEC_PER_SEC == 0)
		snprintf(buf, len, "%" PRIu64 "s", usec / USEC_PER_SEC);
	else if (usec % USEC_PER_MSEC == 0)
		snprintf(buf, len, "%" PRIu64 "ms", usec / USEC_PER_MSEC);
	else
		snprintf(buf, len, "%" PRIu64 "us", usec);
	return buf;
}

const char *
util_format_size(uint64_t bytes, char *buf, size_t len)
{
	if (bytes != 0 && bytes % (1ULL << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "G", bytes >> 30);
	else if (bytes != 0 && bytes % (1ULL << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "M", bytes >> 20);
	else if (bytes != 0 && bytes % (1ULL << 10) == 0)
		snprintf(buf, len, "%" PRIu64 "K", bytes >> 10);
	else
		snprintf(buf, len, "%" PRIu64, bytes);
	return buf;
}

struct timeval
util_timeval(uint64_t usec)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(usec / USEC_PER_SEC);
	tv.tv_usec = (suseconds_t)(usec % USEC_PER_SEC);
	return tv;
}

uint64_t
util_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
util_mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

int
util_set_nonblock(int fd)
{
	int flags;

	if ((flags = fcntl(fd, F_GETFL)) == -1)
		return -1;
	return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int
util_set_cloexec(int fd)
{
	int flags;

	if ((flags = fcntl(fd, F_GETFD)) == -1)
		return -1;
	return fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

size_t
util_writev_some(int fd, const struct iovec *iov, int n)
{
	ssize_t w;

	do
		w = writev(fd, iov, n);
	while (w == -1 && errno == EINTR);
	return w > 0 ? (size_t)w : 0;
}

static int
util_fd_is_kept(int fd, const int *keep, size_t nkeep)
{
	size_t i;

	for (i = 0; i < nkeep; i++)
		if (keep[i] == fd)
			return 1;
	return 0;
}

/*
 * close_range() where the kernel has it, else a walk of /proc/self/fd.
 * Runs between fork and exec, so it allocates nothing it keeps.
 */
void
util_closefrom(int lowest, const int *keep, size_t nkeep)
{
	DIR	      *d;
	struct dirent *de;
	int	       fd, next, maxkeep = -1;
	size_t	       i;

	for (i = 0; i < nkeep; i++)
		if (keep[i] > maxkeep)
			maxkeep = keep[i];
#ifdef HAVE_CLOSE_RANGE
	for (fd = lowest; fd <= maxkeep; fd = next + 1) {
		for (next = fd;
		     next <= maxkeep && !util_fd_is_kept(next, keep, nkeep);
		     next++)
			;
		if (next > fd &&
		    close_range((unsigned)fd, (unsigned)(next - 1), 0) != 0)
			goto fallback;
	}
	if (close_range((unsigned)(maxkeep >= lowest ? maxkeep + 1 : lowest),
		~0U, 0) == 0)
		return;
fallback:
#endif
	if ((d = opendir("/proc/self/fd")) == NULL) {
		for (fd = lowest; fd < 1024; fd++)
			if (!util_fd_is_kept(fd, keep, nkeep))
				close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		fd = atoi(de->d_name);
		if (fd >= lowest && fd != dirfd(d) &&
		    !util_fd_is_kept(fd, keep, nkeep))
			close(fd);
	}
	closedir(d);
	(void)next;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding; a malloc'd, NUL-terminated string. */
char *
util_base64_encode(const void *data, size_t len)
{
	char *out = xmalloc((len + 2) / 3 * 4 + 1);

	out[util_base64_encode_to(out, data, len)] = '\0';
	return out;
}

/*
 * Writes the base64 of data into out, which has room for (len + 2) / 3 * 4
 * characters; returns how many it wrote (no NUL).
 */
size_t
util_base64_encode_to(char *out, const void *data, size_t len)
{
	const uint8_t *p = data;
	char	      *o = out;
	uint32_t       v;
	size_t	       i;

	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = b64[v >> 6 & 63];
		*o++ = b64[v & 63];
	}
	if (i < len) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
		*o++ = '=';
	}
	return (size_t)(o - out);
}

static int
util_base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decodes standard base64 (padding required, no whitespace). Returns a
 * malloc'd buffer (NUL-terminated, for convenience) and its length in *outlen,
 * or NULL with errno EINVAL if s is not valid base64.
 */
void *
util_base64_decode(const char *s, size_t len, size_t *outlen)
{
	uint8_t *out, *o;
	uint32_t v;
	size_t	 i, pad = 0;
	int	 d, k;

	if (len % 4 != 0)
		goto bad;
	if (len > 0 && s[len - 1] == '=')
		pad++;
	if (len > 1 && s[len - 2] == '=')
		pad++;
	out = xmalloc(len / 4 * 3 + 1);
	o = out;
	for (i = 0; i < len; i += 4) {
		v = 0;
		for (k = 0; k < 4; k++) {
			if (i + 4 == len && k >= 4 - (int)pad) {
				if (s[i + k] != '=')
					goto bad_free;
				d = 0;
			} else if ((d = util_base64_value(s[i + k])) == -1)
				goto bad_free;
			v = v << 6 | (uint32_t)d;
		}
		*o++ = (uint8_t)(v >> 16);
		if (i + 4 < len || pad < 2)
			*o++ = (uint8_t)(v >> 8);
		if (i + 4 < len || pad < 1)
			*o++ = (uint8_t)v;
	}
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;

bad_free:
	free(out);
bad:
	errno = EINVAL;
	return NULL;
}

/* Frees a NULL-terminated array of strings and the strings. */
void
util_strv_free(char **v)
{
	char **p;

	if (v == NULL)
		return;
	for (p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

/* A copy of a NULL-terminated array of strings; NULL for NULL. */
char **
util_strv_dup(char *const *v)
{
	char **copy;
	size_t n = 0, i;

	if (v == NULL)
		return NULL;
	while (v[n] != NULL)
		n++;
	copy = xcalloc(n + 1, sizeof *copy);
	for (i = 0; i < n; i++)
		copy[i] = xstrdup(v[i]);
	return copy;
}

/* Whether two arrays of strings (either may be NULL) hold the same. */
int
util_strv_equal(char *const *a, char *const *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	for (; *a != NULL && *b != NULL; a++, b++)
		if (strcmp(*a, *b) != 0)
			return 0;
	return *a == NULL && *b == NULL;
}

/* Levenshtein distance, for "did you mean". Short strings only. */
size_t
util_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, prev, tmp;
	size_t row[64];

	if (la >= 64 || lb >= 64)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = row[j];
			row[j] = prev + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (tmp + 1 < row[j])
				row[j] = tmp + 1;
			prev = tmp;
		}
	}
	return row[lb];
}

/*
 * Splits s into words as a shell would, without expanding anything: blanks
 * separate words; '...' keeps everything literally; "..." keeps everything
 * but a backslash before ", \, $ or `; a backslash elsewhere quotes the next
 * character. Returns a NULL-terminated array (NULL for no word, with
 * *errstr NULL), or NULL with *errstr set for an unterminated quote or a
 * trailing backslash.
 */
char **
util_split_words(const char *s, const char **errstr)
{
	char **v = NULL, *w;
	size_t n = 0, len = 0;
	int    inword = 0;

	*errstr = NULL;
	w = xmalloc(strlen(s) + 1);
	for (;;) {
		if (*s == '\0' || *s == ' ' || *s == '\t' || *s == '\n') {
			if (inword) {
				w[len] = '\0';
				v = xreallocarray(v, n + 2, sizeof *v);
				v[n++] = xstrdup(w);
				v[n] = NULL;
				len = 0;
				inword = 0;
			}
			if (*s++ == '\0')
				break;
			continue;
		}
		inword = 1;
		if (*s == '\'') {
			for (s++; *s != '\'' && *s != '\0'; s++)
				w[len++] = *s;
			if (*s == '\0')
				goto unterminated;
			s++;
		} else if (*s == '"') {
			for (s++; *s != '"' && *s != '\0'; s++) {
				if (*s == '\\' && s[1] != '\0' &&
				    strchr("\"\\$`", s[1]) != NULL)
					s++;
				w[len++] = *s;
			}
			if (*s == '\0')
				goto unterminated;
			s++;
		} else if (*s == '\\') {
			if (s[1] == '\0') {
				*errstr = "a backslash at the end";
				goto fail;
			}
			w[len++] = s[1];
			s += 2;
		} else
			w[len++] = *s++;
	}
	free(w);
	return v;

unterminated:
	*errstr = "a quote is not closed";
fail:
	free(w);
	util_strv_free(v);
	return NULL;
}

/*
 * Where PATH (NULL: "/bin:/usr/bin") finds the executable file name, as
 * execvp() would; a name with a slash is taken as it is. Returns a
 * malloc'd path, or NULL with *errstr set.
 */
char *
util_find_program(const char *name, const char *path, const char **errstr)
{
	struct stat st;
	const char *p, *end;
	char	   *full;
	int	    found = 0;

	if (name[0] == '\0') {
		*errstr = "an empty program name";
		return NULL;
	}
	if (strchr(name, '/') != NULL) {
		if (stat(name, &st) != 0 || !S_ISREG(st.st_mode)) {
			*errstr = "no such file";
			return NULL;
		}
		if (access(name, X_OK) != 0) {
			*errstr = "not executable";
			return NULL;
		}
		return xstrdup(name);
	}
	if (path == NULL)
		path = "/bin:/usr/bin";
	for (p = path;; p = end + 1) {
		if ((end = strchr(p, ':')) == NULL)
			end = p + strlen(p);
		xasprintf(&full, "%.*s/%s", end == p ? 1 : (int)(end - p),
		    end == p ? "." : p, name);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(full, X_OK) == 0)
				return full;
			found = 1;
		}
		free(full);
		if (*end == '\0')
			break;
	}
	*errstr = found ? "not executable" : "not found in PATH";
	return NULL;
}
