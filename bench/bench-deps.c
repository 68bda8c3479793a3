/*
 * bench-deps: pipelined Submits with after and lock, for bench.py's "deps"
 * section; prints the seconds from the first byte sent until every id was
 * back, then the first and the last id, on one line.
 *
 *	bench-deps SOCK N [-a] [-l LOCK] [-p POOL] ARGV...
 *					N Submits of ARGV on one connection,
 *					no more than 4,096 unanswered. -a:
 *					a chain, each after the one before
 *					(the first after none); -l: each
 *					holding LOCK
 *
 * A chain's ids are foretold: the first Submit is answered before the rest
 * are sent, and each after it names the id before its own (mprocd's ids
 * grow by one a job); a reply with another id ends it, as does an error
 * reply (status 1, the error on stderr). It ends itself after
 * $BENCH_DEPS_TIMEOUT seconds (default 300).
 */
#include "config.h"

#include "bench-util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define WINDOW 4096

/* The next Submit reply's id if one has come whole, else 0. */
static long long
reply_id(struct bench_conn *c)
{
	json_t	 *params;
	long long id;

	if ((params = bench_util_reply(c)) == NULL)
		return 0;
	id = (long long)json_integer_value(json_object_get(params, "id"));
	json_decref(params);
	if (id <= 0)
		bench_util_die("a Submit's reply without an id");
	return id;
}

static long long
wait_id(struct bench_conn *c)
{
	long long id;

	while ((id = reply_id(c)) == 0)
		bench_util_io(c);
	return id;
}

static json_t *
submit_params(json_t *argv, const char *lock, const char *pool, long long after)
{
	json_t *p;

	p = json_pack("{s:O}", "argv", argv);
	if (lock != NULL)
		json_object_set_new(p, "lock", json_string(lock));
	if (pool != NULL)
		json_object_set_new(p, "pool", json_string(pool));
	if (after > 0)
		json_object_set_new(p, "after",
		    json_pack("[I]", (json_int_t)after));
	return p;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bench-deps SOCK N [-a] [-l LOCK] [-p POOL] ARGV...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct bench_conn c;
	const char	 *lock = NULL, *pool = NULL, *e;
	json_t		 *jargv;
	double		  t0;
	char		 *end;
	long long	  first, last = 0, id;
	long		  n, sent, got;
	int		  ch, chain = 0, i;

	if (argc < 4)
		usage();
	n = strtol(argv[2], &end, 10);
	if (*argv[2] == '\0' || *end != '\0' || n <= 0)
		bench_util_die("not a positive number: %s", argv[2]);
	optind = 3;
	while ((ch = getopt(argc, argv, "+al:p:")) != -1) {
		switch (ch) {
		case 'a':
			chain = 1;
			break;
		case 'l':
			lock = optarg;
			break;
		case 'p':
			pool = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	jargv = json_array();
	for (i = optind; i < argc; i++)
		json_array_append_new(jargv, json_string(argv[i]));
	alarm((e = getenv("BENCH_DEPS_TIMEOUT")) != NULL ? atoi(e) : 300);

	bench_util_open(&c, argv[1]);
	t0 = bench_util_now();
	bench_util_call(&c, "io.mprocd.Submit",
	    submit_params(jargv, lock, pool, 0));
	first = wait_id(&c);
	sent = got = 1;
	while (got < n) {
		while (sent < n && sent - got < WINDOW) {
			bench_util_call(&c, "io.mprocd.Submit",
			    submit_params(jargv, lock, pool,
				chain ? first + sent - 1 : 0));
			sent++;
		}
		bench_util_io(&c);
		while ((id = reply_id(&c)) != 0) {
			if (chain && id != first + got)
				bench_util_die("job %lld where %lld was "
					       "foretold: another client "
					       "submits",
				    id, first + got);
			last = id;
			got++;
		}
	}
	if (n == 1)
		last = first;
	printf("%.6f %lld %lld\n", bench_util_now() - t0, first, last);
	json_decref(jargv);
	return 0;
}
