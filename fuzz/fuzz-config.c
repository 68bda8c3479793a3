/*
 * libFuzzer target for daemon/config.c (and the duration, size and mode
 * parsers of lib/util.c under it). The input is a configuration file, or
 * two separated by a 0x1c byte (ASCII's file separator). The first is read
 * from a file, NUL bytes and all, and, if it has none, from a string too:
 * both must say the same. What is valid must print as a file that reads
 * back to the same configuration; reload_diff() from the second (or from a
 * fixed one) to it and back must name each pool once, rightly.
 */
#include "config.h"

#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocd.h"
#include "util.h"
#include "xmalloc.h"
#include "fuzz.h"

/* The other side of reload_diff() when the input has one file. */
static const char base_config[] = "[mprocd]\n"
				  "max_clients = 16\n"
				  "[pool default]\n"
				  "workers = 2\n"
				  "[pool web]\n"
				  "workers = 4\n"
				  "job_timeout = 30s\n";

#define FILE_SEPARATOR 0x1c

static int  memfd = -1;
static char path[64];

static int
same_string(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
same_pool(const struct pool_config *a, const struct pool_config *b)
{
	return strcmp(a->name, b->name) == 0 && a->workers == b->workers &&
	    a->workers_auto == b->workers_auto &&
	    a->queue_limit == b->queue_limit &&
	    a->job_timeout == b->job_timeout &&
	    a->kill_grace == b->kill_grace &&
	    a->max_jobs_per_worker == b->max_jobs_per_worker &&
	    a->max_output == b->max_output && a->retries == b->retries &&
	    a->restart_delay == b->restart_delay &&
	    a->restart_delay_max == b->restart_delay_max &&
	    a->crash_limit == b->crash_limit &&
	    a->crash_interval == b->crash_interval;
}

/* Equal settings; a socket left out may come back as the default one. */
static int
same_config(const struct config *a, const struct config *b)
{
	const struct pool_config *pa, *pb;

	if (!same_string(a->socket, b->socket) && a->socket != NULL)
		return 0;
	if (a->socket_mode != b->socket_mode ||
	    !same_string(a->log_target, b->log_target) ||
	    a->log_level != b->log_level || a->max_clients != b->max_clients ||
	    a->max_message != b->max_message ||
	    a->message_timeout != b->message_timeout ||
	    a->keep_finished != b->keep_finished ||
	    a->shutdown_timeout != b->shutdown_timeout)
		return 0;
	pb = TAILQ_FIRST(&b->pools);
	TAILQ_FOREACH(pa, &a->pools, entry) {
		if (pb == NULL || !same_pool(pa, pb))
			return 0;
		pb = TAILQ_NEXT(pb, entry);
	}
	return pb == NULL;
}

static int
same_errors(const struct config_errors *a, const struct config_errors *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return 0;
	return 1;
}

/* Every error names the file and a line: "FILE:LINE: ...". */
static void
check_errors(const struct config_errors *e, const char *name)
{
	size_t i, n = strlen(name);
	char  *end;

	for (i = 0; i < e->n; i++) {
		CHECK(strncmp(e->v[i], name, n) == 0 && e->v[i][n] == ':');
		CHECK(strtol(e->v[i] + n + 1, &end, 10) >= 0 && *end == ':');
	}
}

/* Reads text as a file, the way mprocd does. */
static struct config *
load_file(const char *text, size_t len, struct config_errors *e)
{
	CHECK(ftruncate(memfd, 0) == 0);
	CHECK(pwrite(memfd, text, len, 0) == (ssize_t)len);
	return config_load(path, e);
}

/* What --print-config writes is a valid file for the same configuration. */
static void
check_print(const struct config *c)
{
	struct config_errors e;
	struct config	    *again;
	char		    *buf = NULL;
	size_t		     len = 0;
	FILE		    *f;

	CHECK((f = open_memstream(&buf, &len)) != NULL);
	config_print(c, f);
	CHECK(fclose(f) == 0);
	again = config_load_string("printed", buf, &e);
	if (again == NULL) {
		fprintf(stderr, "printed:\n%s\nerror: %s\n", buf,
		    e.n > 0 ? e.v[0] : "?");
		CHECK(!"--print-config wrote a file that does not load");
	}
	CHECK(e.n == 0);
	CHECK(same_config(c, again));
	config_free(again);
	free(buf);
}

/* A reload from old to new: each pool once, with the right change. */
static void
check_diff(const struct config *old, const struct config *new)
{
	struct config_change	 *ch;
	const struct pool_config *a, *b;
	size_t			  n, i, k, want = 0;

	n = reload_diff(old, new, &ch);
	TAILQ_FOREACH(b, &new->pools, entry)
		want++;
	TAILQ_FOREACH(a, &old->pools, entry)
		if (config_find_pool(new, a->name) == NULL)
			want++;
	CHECK(n == want);
	for (i = 0; i < n; i++) {
		for (k = 0; k < i; k++)
			CHECK(strcmp(ch[i].pool, ch[k].pool) != 0);
		a = config_find_pool(old, ch[i].pool);
		b = config_find_pool(new, ch[i].pool);
		switch (ch[i].kind) {
		case POOL_ADDED:
			CHECK(a == NULL && b != NULL && ch[i].to == b->workers);
			break;
		case POOL_REMOVED:
			CHECK(
			    a != NULL && b == NULL && ch[i].from == a->workers);
			break;
		case POOL_GROWS:
		case POOL_SHRINKS:
		case POOL_KEPT:
			CHECK(a != NULL && b != NULL);
			CHECK(
			    ch[i].from == a->workers && ch[i].to == b->workers);
			CHECK((ch[i].kind == POOL_GROWS) ==
			    (b->workers > a->workers));
			CHECK((ch[i].kind == POOL_SHRINKS) ==
			    (b->workers < a->workers));
			CHECK(old != new ||
			    (ch[i].kind == POOL_KEPT && !ch[i].limits));
			break;
		}
	}
	free(ch);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_setlevel(LOG_CRIT);
	if ((memfd = memfd_create("fuzz-config", MFD_CLOEXEC)) == -1) {
		perror("memfd_create");
		exit(1);
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors e, es;
	struct config	    *c, *cs, *other;
	const char	    *sep;
	char		    *text, *second = NULL;
	size_t		     len;

	sep = memchr(data, FILE_SEPARATOR, size);
	len = sep != NULL ? (size_t)(sep - (const char *)data) : size;
	text = xstrndup((const char *)data, len);
	if (sep != NULL)
		second = xstrndup(sep + 1, size - len - 1);

	c = load_file((const char *)data, len, &e);
	check_errors(&e, path);
	CHECK((c == NULL) == (e.n > 0));
	/* A string ends at its first NUL; a file goes on. */
	cs = config_load_string(path, text, &es);
	if (strlen(text) == len) {
		CHECK((cs == NULL) == (c == NULL));
		CHECK(same_errors(&e, &es));
		CHECK(c == NULL || (same_config(c, cs) && same_config(cs, c)));
	}
	check_errors(&es, path);
	config_errors_free(&e);
	config_errors_free(&es);
	if (c != NULL) {
		CHECK(!TAILQ_EMPTY(&c->pools));
		check_print(c);
		check_diff(c, c);
		other = config_load_string("other",
		    second != NULL ? second : base_config, &e);
		check_errors(&e, "other");
		if (other != NULL) {
			check_diff(other, c);
			check_diff(c, other);
		}
		config_errors_free(&e);
		config_free(other);
	}
	config_free(c);
	config_free(cs);
	free(text);
	free(second);
	return 0;
}
