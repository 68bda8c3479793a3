/*
 * The configuration file: an ini file read with inih, every key checked
 * against one table that also drives --print-config and the defaults.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <ini.h>

#include "mprocd.h"
#include "util.h"
#include "xmalloc.h"

enum section {
	SEC_NONE,
	SEC_MAIN,
	SEC_POOL,
	SEC_BAD, /* an invalid header: its keys are skipped */
};

enum key_type {
	K_SOCKET,
	K_MODE,
	K_LOGTARGET,
	K_LOGLEVEL,
	K_UINT,
	K_DURATION,
	K_SIZE,
	K_WORKERS,
	K_PROGRAM,
	K_STATE,
	K_DURABILITY,
};

struct key {
	const char   *name;
	enum section  section;
	enum key_type type;
	size_t	      off;
	uint64_t      min;
	uint64_t      max;
	const char   *def;
};

#define MAIN(f) offsetof(struct config, f)
#define POOL(f) offsetof(struct pool_config, f)
#define HOUR	(3600 * USEC_PER_SEC)
#define DAY	(24 * HOUR)

static const struct key keys[] = {
	{ "socket", SEC_MAIN, K_SOCKET, MAIN(socket), 0, 0, NULL },
	{ "socket_mode", SEC_MAIN, K_MODE, MAIN(socket_mode), 0, 0777, "0660" },
	{ "log_target", SEC_MAIN, K_LOGTARGET, MAIN(log_target), 0, 0, "auto" },
	{ "log_level", SEC_MAIN, K_LOGLEVEL, MAIN(log_level), 0, 0, "info" },
	{ "max_clients", SEC_MAIN, K_UINT, MAIN(max_clients), 1, 65536, "256" },
	/* A Submit must fit in one frame to a worker (PROTO_MAX_PAYLOAD). */
	{ "max_message", SEC_MAIN, K_SIZE, MAIN(max_message), 4096, 32ULL << 20,
	    "4M" },
	{ "message_timeout", SEC_MAIN, K_DURATION, MAIN(message_timeout),
	    USEC_PER_SEC / 10, HOUR, "10s" },
	{ "keep_finished", SEC_MAIN, K_UINT, MAIN(keep_finished), 0, 10000000,
	    "10000" },
	{ "shutdown_timeout", SEC_MAIN, K_DURATION, MAIN(shutdown_timeout), 0,
	    DAY, "30s" },
	{ "state", SEC_MAIN, K_STATE, MAIN(state), 0, 0, "auto" },
	{ "durability", SEC_MAIN, K_DURABILITY, MAIN(durability_power), 0, 0,
	    "crash" },

	{ "workers", SEC_POOL, K_WORKERS, POOL(workers), 1, 4096, "4" },
	/* Each is a process that waits; a few cover a burst of deaths. */
	{ "spare_workers", SEC_POOL, K_UINT, POOL(spare_workers), 0, 64, "1" },
	{ "program", SEC_POOL, K_PROGRAM, POOL(program_text), 0, 0, NULL },
	{ "start_timeout", SEC_POOL, K_DURATION, POOL(start_timeout),
	    USEC_PER_MSEC, HOUR, "30s" },
	{ "max_memory", SEC_POOL, K_SIZE, POOL(max_memory), 0, 1ULL << 40,
	    "0" },
	{ "queue_limit", SEC_POOL, K_UINT, POOL(queue_limit), 1, 100000000,
	    "100000" },
	{ "job_timeout", SEC_POOL, K_DURATION, POOL(job_timeout), 0, 365 * DAY,
	    "0" },
	{ "kill_grace", SEC_POOL, K_DURATION, POOL(kill_grace), 0, HOUR, "5s" },
	{ "max_jobs_per_worker", SEC_POOL, K_UINT, POOL(max_jobs_per_worker), 0,
	    UINT32_MAX, "0" },
	{ "max_output", SEC_POOL, K_SIZE, POOL(max_output), 0, 1ULL << 30,
	    "1M" },
	{ "retries", SEC_POOL, K_UINT, POOL(retries), 0, 100, "0" },
	{ "restart_delay", SEC_POOL, K_DURATION, POOL(restart_delay), 0, HOUR,
	    "100ms" },
	/* Not 0: a degraded pool restarts at this pace and must not spin. */
	{ "restart_delay_max", SEC_POOL, K_DURATION, POOL(restart_delay_max),
	    10 * USEC_PER_MSEC, DAY, "30s" },
	{ "crash_limit", SEC_POOL, K_UINT, POOL(crash_limit), 0, 100000, "10" },
	{ "crash_interval", SEC_POOL, K_DURATION, POOL(crash_interval),
	    USEC_PER_MSEC, 30 * DAY, "60s" },
};
#define NKEYS (sizeof keys / sizeof keys[0])
_Static_assert(NKEYS <= sizeof(((struct config *)NULL)->keyline) / sizeof(int),
    "keyline[] is too small for keys[]");

/* What a bad value of each type should look like. */
static void
config_key_accepts(const struct key *k, char *buf, size_t len)
{
	char lo[UTIL_FMTLEN], hi[UTIL_FMTLEN];

	switch (k->type) {
	case K_SOCKET:
		snprintf(buf, len, "an absolute path shorter than %zu bytes",
		    sizeof(((struct sockaddr_un *)NULL)->sun_path));
		break;
	case K_MODE:
		snprintf(buf, len, "an octal mode such as 0660");
		break;
	case K_LOGTARGET:
		snprintf(buf, len, "auto, journal, stderr or file:/PATH");
		break;
	case K_LOGLEVEL:
		snprintf(buf, len, "debug, info, notice, warning or error");
		break;
	case K_UINT:
		snprintf(buf, len,
		    "a whole number from %" PRIu64 " to %" PRIu64, k->min,
		    k->max);
		break;
	case K_PROGRAM:
		snprintf(buf, len,
		    "a command and its arguments, quoted as for a shell");
		break;
	case K_STATE:
		snprintf(buf, len, "auto, none or an absolute path");
		break;
	case K_DURABILITY:
		snprintf(buf, len, "crash or power");
		break;
	case K_WORKERS:
		snprintf(buf, len,
		    "a whole number from %" PRIu64 " to %" PRIu64
		    ", or auto (one per CPU)",
		    k->min, k->max);
		break;
	case K_DURATION:
		snprintf(buf, len,
		    "a duration from %s to %s, such as 100ms, "
		    "30s, 5min or 1h (a bare number is seconds)",
		    util_format_duration(k->min, lo, sizeof lo),
		    util_format_duration(k->max, hi, sizeof hi));
		break;
	case K_SIZE:
		snprintf(buf, len,
		    "a size from %s to %s, such as 512K, 4M or "
		    "1G (a bare number is bytes)",
		    util_format_size(k->min, lo, sizeof lo),
		    util_format_size(k->max, hi, sizeof hi));
		break;
	}
}

static void config_errors_add(struct config_errors *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
config_errors_add(struct config_errors *e, const char *fmt, ...)
{
	va_list ap;
	char   *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	e->v = xreallocarray(e->v, e->n + 1, sizeof *e->v);
	e->v[e->n++] = s;
}

void
config_errors_free(struct config_errors *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	e->v = NULL;
	e->n = 0;
}

/* The closest key of the section, if it is close enough to be a typo. */
static const char *
config_suggest_key(enum section sec, const char *name)
{
	const char *best = NULL;
	size_t	    i, d, bestd = 3;

	for (i = 0; i < NKEYS; i++) {
		if (keys[i].section != sec)
			continue;
		d = util_edit_distance(name, keys[i].name);
		if (d < bestd) {
			bestd = d;
			best = keys[i].name;
		}
	}
	return best;
}

/* Frees what a pool's settings own (its program). */
void
config_pool_clear(struct pool_config *pc)
{
	util_strv_free(pc->program);
	free(pc->program_text);
	pc->program = NULL;
	pc->program_text = NULL;
}

/* dst becomes a copy of src that owns its own program; name is not set. */
void
config_pool_copy(struct pool_config *dst, const struct pool_config *src)
{
	char **program = util_strv_dup(src->program);
	char  *text = src->program_text != NULL ? xstrdup(src->program_text)
						: NULL;

	/* src may share dst's program (a copy of dst): copied first. */
	config_pool_clear(dst);
	*dst = *src;
	dst->program = program;
	dst->program_text = text;
}

static void *
config_key_field(const struct key *k, struct config *c, struct pool_config *pc)
{
	if (k->section == SEC_MAIN)
		return (char *)c + k->off;
	return (char *)pc + k->off;
}

static int *
config_key_line(const struct key *k, struct config *c, struct pool_config *pc)
{
	size_t i = (size_t)(k - keys);

	return k->section == SEC_MAIN ? &c->keyline[i] : &pc->keyline[i];
}

/* Parses value for key k into its field; -1 with *why set. */
static int
config_key_set(const struct key *k, struct config *c, struct pool_config *pc,
    const char *value, const char **why)
{
	void	    *field = config_key_field(k, c, pc);
	uint64_t     v;
	unsigned int mode;
	int	     level;
	long	     ncpu;
	char	   **words, *found;

	switch (k->type) {
	case K_SOCKET:
		if (value[0] != '/') {
			*why = "not an absolute path";
			return -1;
		}
		if (strlen(value) >=
		    sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
			*why = "too long for a UNIX socket path";
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case K_MODE:
		if (util_parse_mode(value, &mode, why) != 0)
			return -1;
		*(unsigned int *)field = mode;
		return 0;
	case K_LOGTARGET:
		if (strcmp(value, "auto") != 0 &&
		    strcmp(value, "journal") != 0 &&
		    strcmp(value, "stderr") != 0 &&
		    (strncmp(value, "file:", 5) != 0 || value[5] != '/')) {
			*why = "unknown log target";
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case K_STATE:
		if (strcmp(value, "auto") != 0 && strcmp(value, "none") != 0 &&
		    value[0] != '/') {
			*why = "neither auto, none nor an absolute path";
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case K_DURABILITY:
		if (strcmp(value, "crash") != 0 &&
		    strcmp(value, "power") != 0) {
			*why = "unknown durability";
			return -1;
		}
		*(int *)field = strcmp(value, "power") == 0;
		return 0;
	case K_LOGLEVEL:
		if ((level = log_parse_level(value)) == -1) {
			*why = "unknown log level";
			return -1;
		}
		*(int *)field = level;
		return 0;
	case K_PROGRAM:
		/* Empty: a command pool. */
		if ((words = util_split_words(value, why)) == NULL &&
		    *why != NULL)
			return -1;
		if (words != NULL &&
		    (found = util_find_program(words[0], getenv("PATH"),
			 why)) == NULL) {
			util_strv_free(words);
			return -1;
		}
		if (words != NULL)
			free(found);
		config_pool_clear(pc);
		pc->program = words;
		pc->program_text = words != NULL ? xstrdup(value) : NULL;
		return 0;
	case K_WORKERS:
		if (strcmp(value, "auto") == 0) {
			ncpu = sysconf(_SC_NPROCESSORS_ONLN);
			pc->workers = ncpu > 0 ? (unsigned int)ncpu : 1;
			pc->workers_auto = 1;
			return 0;
		}
		if (util_parse_uint(value, k->min, k->max, &v, why) != 0)
			return -1;
		pc->workers = (unsigned int)v;
		pc->workers_auto = 0;
		return 0;
	case K_UINT:
		if (util_parse_uint(value, k->min, k->max, &v, why) != 0)
			return -1;
		break;
	case K_DURATION:
		if (util_parse_duration(value, &v, why) != 0)
			return -1;
		break;
	case K_SIZE:
		if (util_parse_size(value, &v, why) != 0)
			return -1;
		break;
	}
	if (v < k->min) {
		*why = "too small";
		return -1;
	}
	if (v > k->max) {
		*why = "too large";
		return -1;
	}
	*(uint64_t *)field = v;
	return 0;
}

static void
config_pool_defaults(struct pool_config *pc)
{
	size_t	    i;
	const char *why;

	for (i = 0; i < NKEYS; i++)
		if (keys[i].section == SEC_POOL && keys[i].def != NULL &&
		    config_key_set(&keys[i], NULL, pc, keys[i].def, &why) != 0)
			fatalx("bad default for %s: %s", keys[i].name, why);
}

static struct pool_config *
config_pool_new(struct config *c, const char *name, int line)
{
	struct pool_config *pc = xcalloc(1, sizeof *pc);

	pc->name = xstrdup(name);
	pc->line = line;
	config_pool_defaults(pc);
	TAILQ_INSERT_TAIL(&c->pools, pc, entry);
	return pc;
}

struct config *
config_new(void)
{
	struct config *c = xcalloc(1, sizeof *c);
	size_t	       i;
	const char    *why;

	TAILQ_INIT(&c->pools);
	for (i = 0; i < NKEYS; i++)
		if (keys[i].section == SEC_MAIN && keys[i].def != NULL &&
		    config_key_set(&keys[i], c, NULL, keys[i].def, &why) != 0)
			fatalx("bad default for %s: %s", keys[i].name, why);
	return c;
}

void
config_free(struct config *c)
{
	struct pool_config *pc;

	if (c == NULL)
		return;
	while ((pc = TAILQ_FIRST(&c->pools)) != NULL) {
		TAILQ_REMOVE(&c->pools, pc, entry);
		config_pool_clear(pc);
		free(pc->name);
		free(pc);
	}
	free(c->path);
	free(c->socket);
	free(c->log_target);
	free(c->state);
	free(c);
}

struct pool_config *
config_find_pool(const struct config *c, const char *name)
{
	struct pool_config *pc;

	TAILQ_FOREACH(pc, &c->pools, entry)
		if (strcmp(pc->name, name) == 0)
			return pc;
	return NULL;
}

/* Pool names appear in worker names, logs and the journal: keep them plain. */
static int
config_valid_pool_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32)
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' &&
		    *s != '.')
			return 0;
	return 1;
}

/* Reading state shared by the line reader and the key handler. */
struct parse {
	const char	     *file;
	FILE		     *f;
	const char	     *string; /* or read from here */
	int		      lineno;
	struct config	     *c;
	struct config_errors *errors;
	enum section	      section;
	struct pool_config   *pool;
	int		      main_line;
};

static void
config_parse_section(struct parse *p, const char *header, size_t len)
{
	char		    buf[256], *name = buf, *s, *end;
	struct pool_config *pc;

	/* A copy: inih still has to parse the line we were handed. */
	snprintf(buf, sizeof buf, "%.*s", (int)len, header);
	while (isspace((unsigned char)*name))
		name++;
	end = name + strlen(name);
	while (end > name && isspace((unsigned char)end[-1]))
		*--end = '\0';

	p->pool = NULL;
	p->section = SEC_BAD;
	if (strcmp(name, "mprocd") == 0) {
		if (p->main_line != 0) {
			config_errors_add(p->errors,
			    "%s:%d: section [mprocd] given "
			    "twice (first at line %d)",
			    p->file, p->lineno, p->main_line);
			return;
		}
		p->main_line = p->lineno;
		p->section = SEC_MAIN;
		return;
	}
	if (strncmp(name, "pool", 4) == 0 &&
	    (name[4] == '\0' || isspace((unsigned char)name[4]))) {
		for (s = name + 4; isspace((unsigned char)*s); s++)
			;
		if (*s == '\0') {
			config_errors_add(p->errors,
			    "%s:%d: [pool] needs a name: "
			    "[pool NAME]",
			    p->file, p->lineno);
			return;
		}
		if (!config_valid_pool_name(s)) {
			config_errors_add(p->errors,
			    "%s:%d: bad pool name '%s' (use "
			    "up to 32 letters, digits, '_', '-' or '.')",
			    p->file, p->lineno, s);
			return;
		}
		if ((pc = config_find_pool(p->c, s)) != NULL) {
			config_errors_add(p->errors,
			    "%s:%d: pool '%s' defined twice "
			    "(first at line %d)",
			    p->file, p->lineno, s, pc->line);
			return;
		}
		p->pool = config_pool_new(p->c, s, p->lineno);
		p->section = SEC_POOL;
		return;
	}
	config_errors_add(p->errors,
	    "%s:%d: unknown section [%s] (sections are "
	    "[mprocd] and [pool NAME])%s",
	    p->file, p->lineno, name,
	    util_edit_distance(name, "mprocd") <= 2 ? "; did you mean [mprocd]?"
						    : "");
}

/*
 * inih's reader callback: hands it one line at a time, so we know each
 * line's number, see every section header (even one with no keys) and catch
 * lines too long for inih's buffer.
 */
static char *
config_parse_reader(char *str, int num, void *arg)
{
	struct parse *p = arg;
	char	     *s, *close;
	size_t	      n;
	int	      ch;

	if (p->f != NULL) {
		if (fgets(str, num, p->f) == NULL)
			return NULL;
	} else {
		if (*p->string == '\0')
			return NULL;
		n = strcspn(p->string, "\n");
		if (p->string[n] == '\n')
			n++;
		if (n > (size_t)num - 1)
			n = (size_t)num - 1;
		memcpy(str, p->string, n);
		str[n] = '\0';
		p->string += n;
	}
	p->lineno++;
	n = strlen(str);
	if (n == (size_t)num - 1 && str[n - 1] != '\n') {
		/* Swallow the rest of the line, report it, hand inih a blank. */
		if (p->f != NULL) {
			while ((ch = fgetc(p->f)) != EOF && ch != '\n')
				;
		} else {
			p->string += strcspn(p->string, "\n");
			if (*p->string == '\n')
				p->string++;
		}
		config_errors_add(p->errors,
		    "%s:%d: line too long (at most %d "
		    "characters)",
		    p->file, p->lineno, num - 2);
		str[0] = '\n';
		str[1] = '\0';
		return str;
	}
	for (s = str; isspace((unsigned char)*s); s++)
		;
	if (*s == '[' && (close = strchr(s, ']')) != NULL)
		config_parse_section(p, s + 1, (size_t)(close - s - 1));
	return str;
}

static int
config_parse_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct parse	 *p = arg;
	const struct key *k = NULL;
	const char	 *why, *hint;
	char		  accepts[160];
	int		 *line;
	size_t		  i;

	if (name == NULL) /* a new section, if inih was built to say so */
		return 1;
	switch (p->section) {
	case SEC_BAD:
		return 1; /* the header's error is enough */
	case SEC_NONE:
		config_errors_add(p->errors,
		    "%s:%d: '%s' is outside any section "
		    "(put it under [mprocd] or [pool NAME])",
		    p->file, p->lineno, name);
		return 1;
	default:
		break;
	}
	for (i = 0; i < NKEYS; i++)
		if (keys[i].section == p->section &&
		    strcmp(keys[i].name, name) == 0)
			k = &keys[i];
	if (k == NULL) {
		for (i = 0; i < NKEYS; i++) {
			if (strcmp(keys[i].name, name) != 0)
				continue;
			config_errors_add(p->errors,
			    "%s:%d: %s belongs in %s, not here", p->file,
			    p->lineno, name,
			    keys[i].section == SEC_MAIN
				? "[mprocd]"
				: "a [pool NAME] section");
			return 1;
		}
		hint = config_suggest_key(p->section, name);
		config_errors_add(p->errors,
		    "%s:%d: unknown key '%s' in [%s%s%s]%s%s%s", p->file,
		    p->lineno, name,
		    p->section == SEC_MAIN ? "mprocd" : "pool ",
		    p->section == SEC_POOL ? p->pool->name : "", "",
		    hint != NULL ? "; did you mean '" : "",
		    hint != NULL ? hint : "", hint != NULL ? "'?" : "");
		return 1;
	}
	line = config_key_line(k, p->c, p->pool);
	if (*line != 0) {
		config_errors_add(p->errors,
		    "%s:%d: %s given twice in this section "
		    "(first at line %d)",
		    p->file, p->lineno, name, *line);
		return 1;
	}
	*line = p->lineno;
	if (*value == '\0' && k->type != K_PROGRAM) {
		config_key_accepts(k, accepts, sizeof accepts);
		config_errors_add(p->errors,
		    "%s:%d: %s has no value (expected %s)", p->file, p->lineno,
		    name, accepts);
		return 1;
	}
	if (config_key_set(k, p->c, p->pool, value, &why) != 0) {
		config_key_accepts(k, accepts, sizeof accepts);
		config_errors_add(p->errors, "%s:%d: %s = %s: %s (expected %s)",
		    p->file, p->lineno, name, value, why, accepts);
	}
	(void)section;
	return 1;
}

/* Checks that hold between keys, after the whole file is read. */
static void
config_check(struct config *c, struct config_errors *e, const char *file)
{
	struct pool_config *pc;
	char		    a[UTIL_FMTLEN], b[UTIL_FMTLEN];
	int		    line;
	size_t		    imax = 0;

	for (imax = 0; imax < NKEYS; imax++)
		if (strcmp(keys[imax].name, "restart_delay_max") == 0)
			break;
	TAILQ_FOREACH(pc, &c->pools, entry) {
		if (pc->restart_delay_max >= pc->restart_delay)
			continue;
		line = pc->keyline[imax] != 0 ? pc->keyline[imax] : pc->line;
		config_errors_add(e,
		    "%s:%d: restart_delay_max (%s) is smaller than "
		    "restart_delay (%s) in [pool %s]",
		    file, line,
		    util_format_duration(pc->restart_delay_max, a, sizeof a),
		    util_format_duration(pc->restart_delay, b, sizeof b),
		    pc->name);
	}
}

static struct config *
config_parse(struct parse *p)
{
	int r;

	r = ini_parse_stream(config_parse_reader, p, config_parse_handler, p);
	if (r > 0)
		config_errors_add(p->errors,
		    "%s:%d: syntax error (expected "
		    "'key = value', '[section]' or a comment)",
		    p->file, r);
	else if (r == -2)
		fatalx("%s: out of memory", p->file);
	config_check(p->c, p->errors, p->file);
	if (TAILQ_EMPTY(&p->c->pools))
		config_pool_new(p->c, "default", 0);
	if (p->errors->n != 0) {
		config_free(p->c);
		return NULL;
	}
	return p->c;
}

/* Reads FILE; NULL with every problem found in *errors. */
struct config *
config_load(const char *file, struct config_errors *errors)
{
	struct parse   p;
	struct config *c;

	memset(&p, 0, sizeof p);
	memset(errors, 0, sizeof *errors);
	if ((p.f = fopen(file, "r")) == NULL) {
		config_errors_add(errors, "%s: %s", file, strerror(errno));
		return NULL;
	}
	p.file = file;
	p.errors = errors;
	p.c = config_new();
	p.c->path = xstrdup(file);
	c = config_parse(&p);
	fclose(p.f);
	return c;
}

/* The same from a string, with name standing in for the file name. */
struct config *
config_load_string(const char *name, const char *text,
    struct config_errors *errors)
{
	struct parse p;

	memset(&p, 0, sizeof p);
	memset(errors, 0, sizeof *errors);
	p.file = name;
	p.string = text;
	p.errors = errors;
	p.c = config_new();
	p.c->path = xstrdup(name);
	return config_parse(&p);
}

/*
 * Where the socket goes when the file does not say: the system path for
 * root, else $XDG_RUNTIME_DIR/mprocd.sock (the same rule as mprocctl's).
 */
char *
config_default_socket(const char **errstr)
{
	const char *dir;
	char	   *path;

	if (geteuid() == 0)
		return xstrdup(MPROCD_SYSTEM_SOCKET);
	dir = getenv("XDG_RUNTIME_DIR");
	if (dir == NULL || *dir != '/') {
		*errstr = "XDG_RUNTIME_DIR is not set: set socket= in the "
			  "configuration file or use -s PATH";
		return NULL;
	}
	xasprintf(&path, "%s/mprocd.sock", dir);
	if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
		free(path);
		*errstr = "$XDG_RUNTIME_DIR/mprocd.sock is too long for a "
			  "UNIX socket path";
		return NULL;
	}
	return path;
}

/*
 * The state database's path: NULL with *errstr NULL for state = none (memory
 * only), NULL with *errstr set if auto finds none.
 */
char *
config_state_path(const struct config *c, const char **errstr)
{
	*errstr = NULL;
	if (strcmp(c->state, "none") == 0)
		return NULL;
	if (strcmp(c->state, "auto") == 0)
		return store_default_path(errstr);
	return xstrdup(c->state);
}

static void
config_print_key(const struct key *k, const void *base, FILE *f)
{
	const void *field = (const char *)base + k->off;
	char	    buf[UTIL_FMTLEN];

	switch (k->type) {
	case K_SOCKET:
	case K_LOGTARGET:
	case K_STATE:
		fprintf(f, "%s = %s\n", k->name, *(char *const *)field);
		break;
	case K_DURABILITY:
		fprintf(f, "%s = %s\n", k->name,
		    *(const int *)field ? "power" : "crash");
		break;
	case K_PROGRAM:
		if (*(char *const *)field != NULL)
			fprintf(f, "%s = %s\n", k->name, *(char *const *)field);
		else
			fprintf(f, "%s =\n", k->name);
		break;
	case K_MODE:
		fprintf(f, "%s = %04o\n", k->name,
		    *(const unsigned int *)field);
		break;
	case K_LOGLEVEL:
		fprintf(f, "%s = %s\n", k->name,
		    log_level_name(*(const int *)field));
		break;
	case K_WORKERS:
		if (((const struct pool_config *)base)->workers_auto)
			fprintf(f, "%s = auto\n", k->name);
		else
			fprintf(f, "%s = %u\n", k->name,
			    ((const struct pool_config *)base)->workers);
		break;
	case K_UINT:
		fprintf(f, "%s = %" PRIu64 "\n", k->name,
		    *(const uint64_t *)field);
		break;
	case K_DURATION:
		fprintf(f, "%s = %s\n", k->name,
		    util_format_duration(*(const uint64_t *)field, buf,
			sizeof buf));
		break;
	case K_SIZE:
		fprintf(f, "%s = %s\n", k->name,
		    util_format_size(*(const uint64_t *)field, buf,
			sizeof buf));
		break;
	}
}

/* The effective configuration, defaults included, as a valid file. */
void
config_print(const struct config *c, FILE *f)
{
	const struct pool_config *pc;
	const char		 *why;
	char			 *sock = NULL;
	size_t			  i;

	fprintf(f, "[mprocd]\n");
	for (i = 0; i < NKEYS; i++) {
		if (keys[i].section != SEC_MAIN)
			continue;
		if (keys[i].type == K_SOCKET && c->socket == NULL) {
			if ((sock = config_default_socket(&why)) != NULL)
				fprintf(f, "socket = %s\n", sock);
			else
				fprintf(f, "; socket: %s\n", why);
			free(sock);
			continue;
		}
		config_print_key(&keys[i], c, f);
	}
	TAILQ_FOREACH(pc, &c->pools, entry) {
		fprintf(f, "\n[pool %s]\n", pc->name);
		for (i = 0; i < NKEYS; i++)
			if (keys[i].section == SEC_POOL)
				config_print_key(&keys[i], pc, f);
	}
}
