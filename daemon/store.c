/*
 * The state database (DESIGN §12): every job in SQLite, so that a job
 * mprocd has acknowledged survives its restart, a crash or kill -9.
 *
 * One connection, the supervisor's, never across a fork (workers are
 * exec'd before they could use it). WAL; synchronous NORMAL (durability
 * crash) or FULL (power). STRICT tables; PRAGMA user_version is the schema,
 * and a newer one than ours is refused, as is a file that is not a
 * database or fails quick_check: mprocd then stops with the path and
 * SQLite's message, and never starts empty over it.
 *
 * Group commit: the first write of a loop pass begins a transaction, and an
 * event made active then commits it after the rest of the pass (a client
 * pipelining calls yields after a few hundred, conn.c). Until then every
 * reply is held (conn.c); after it, they go out in order. A commit that
 * fails is rolled back: the held replies become StorageFailed, jobs
 * submitted in that pass are forgotten (none has run: dispatch waits for
 * the commit), and the other jobs it held are written again a second
 * later.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "mprocd.h"
#include "util.h"
#include "xmalloc.h"

/*
 * The WAL is checkpointed past this many pages (4 MiB), as SQLite does by
 * default; a larger WAL made no difference to intake, measured.
 */
#define STORE_CHECKPOINT_PAGES 1000

enum store_stmt {
	STORE_BEGIN,
	STORE_COMMIT,
	STORE_ROLLBACK,
	STORE_INSERT,
	STORE_UPDATE,
	STORE_DELETE,
	STORE_GET,
	STORE_LIVE,
	STORE_NEXT_ID,
	STORE_SET_NEXT_ID,
	STORE_COUNT_FINISHED,
	STORE_OLDEST_FINISHED,
	STORE_IDS,
	STORE_NSTMT,
};

#define STORE_COLUMNS \
	"id, pool, name, argv, cwd, env, stdin, input, uid, timeout, " \
	"retries, state, exit_status, signal, worker, pid, attempts, " \
	"submitted_usec, started_usec, finished_usec, stdout, stderr, " \
	"truncated, result, seq, after_ids, lock, reason, runs"

static const char *const store_sql[STORE_NSTMT] = {
	[STORE_BEGIN] = "BEGIN",
	[STORE_COMMIT] = "COMMIT",
	[STORE_ROLLBACK] = "ROLLBACK",
	[STORE_INSERT] = "INSERT INTO jobs (" STORE_COLUMNS
			 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
			 "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "
			 "?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)",
	/* What changes after a job's submission; the same parameters. */
	[STORE_UPDATE] = "UPDATE jobs SET state = ?12, exit_status = ?13, "
			 "signal = ?14, worker = ?15, pid = ?16, "
			 "attempts = ?17, started_usec = ?19, "
			 "finished_usec = ?20, stdout = ?21, stderr = ?22, "
			 "truncated = ?23, result = ?24, seq = ?25, "
			 "reason = ?28, runs = ?29 "
			 "WHERE id = ?1",
	[STORE_DELETE] = "DELETE FROM jobs WHERE id = ?",
	[STORE_GET] = "SELECT " STORE_COLUMNS " FROM jobs WHERE id = ?",
	[STORE_LIVE] = "SELECT " STORE_COLUMNS
		       " FROM jobs WHERE state < 2 ORDER BY seq",
	[STORE_NEXT_ID] = "SELECT value FROM meta WHERE key = 'next_id'",
	[STORE_SET_NEXT_ID] = "UPDATE meta SET value = ? WHERE key = "
			      "'next_id' AND value < ?",
	[STORE_COUNT_FINISHED] = "SELECT count(*) FROM jobs WHERE state >= 2",
	[STORE_OLDEST_FINISHED] = "SELECT id FROM jobs WHERE state >= 2 "
				  "ORDER BY finished_usec, id LIMIT ?",
	[STORE_IDS] = "SELECT id FROM jobs WHERE state >= 2 AND "
		      "(?1 IS NULL OR pool = ?1) AND (?2 < 0 OR state = ?2) "
		      "ORDER BY id",
};

static sqlite3	    *store_db;
static sqlite3_stmt *store_stmts[STORE_NSTMT];
static char	    *store_path;
static struct event *store_commit_ev;
static int	     store_in_txn;
static int64_t	     store_next_id;	/* the next id, as stored */
static int64_t	     store_txn_next_id; /* the next id, once committed */
static uint64_t	     store_nfinished;	/* finished jobs in the file */
static int	     store_failing;	/* the last commit failed */
static int	     store_txn_failed;	/* a write of this pass failed */

/* Jobs this transaction wrote, by id: what a failure must undo or redo. */
static int64_t *store_txn_ids;
static int     *store_txn_new; /* submitted in this pass: never stored */
static size_t	store_txn_n, store_txn_size;

static struct event *store_prune_ev;

/* After a failed commit, the jobs to write again, a second later. */
static int64_t	    *store_retry_ids;
static size_t	     store_retry_n;
static struct event *store_retry_ev;

/*
 * A test's crash point: with MPROCD_TEST_CRASH=POINT:N in the environment,
 * mprocd aborts the Nth time it reaches POINT (store_crash()), so that the
 * tests can stop it at the worst moments: before-commit, after-commit,
 * finish (a job's end written, not committed), checkpoint.
 */
static char *store_crash_point;
static long  store_crash_left;

static void store_commit_cb(evutil_socket_t, short, void *);
static void store_retry_cb(evutil_socket_t, short, void *);
static void store_prune_cb(evutil_socket_t, short, void *);

void
store_crash(const char *point)
{
	if (store_crash_point == NULL ||
	    strcmp(point, store_crash_point) != 0 || --store_crash_left > 0)
		return;
	log_warnx("MPROCD_TEST_CRASH: crash point %s reached, aborting", point);
	abort();
}

static void
store_crash_init(void)
{
	const char *env = getenv("MPROCD_TEST_CRASH");
	char	   *colon;

	if (env == NULL || (colon = strchr(env, ':')) == NULL)
		return;
	store_crash_point = xstrndup(env, (size_t)(colon - env));
	store_crash_left = strtol(colon + 1, NULL, 10);
	log_warnx("MPROCD_TEST_CRASH: will abort at crash point %s, time %ld",
	    store_crash_point, store_crash_left);
}

/*
 * After each commit: the WAL's size in pages. Past STORE_CHECKPOINT_PAGES
 * it is checkpointed (what SQLite's own hook does past 1,000), passively:
 * never waiting for a reader.
 */
static int
store_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)arg;
	if (pages < STORE_CHECKPOINT_PAGES)
		return SQLITE_OK;
	store_crash("checkpoint");
	sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL,
	    NULL);
	return SQLITE_OK;
}

int
store_is_open(void)
{
	return store_db != NULL;
}

const char *
store_file(void)
{
	return store_path;
}

/* SQLite's message for the last error, for a log record or a reply. */
const char *
store_error(void)
{
	return store_db != NULL ? sqlite3_errmsg(store_db) : "not open";
}

/*
 * The path state = auto means: $STATE_DIRECTORY/mprocd.db under systemd,
 * /var/lib/mprocd/mprocd.db for root, else $XDG_STATE_HOME/mprocd/mprocd.db
 * (~/.local/state/mprocd/mprocd.db). NULL with *errstr if there is none.
 */
char *
store_default_path(const char **errstr)
{
	const char *dir, *home;
	char	   *path;

	if ((dir = getenv("STATE_DIRECTORY")) != NULL && dir[0] == '/') {
		/* Several directories: the first is ours. */
		xasprintf(&path, "%.*s/mprocd.db", (int)strcspn(dir, ":"), dir);
		return path;
	}
	if (geteuid() == 0)
		return xstrdup("/var/lib/mprocd/mprocd.db");
	if ((dir = getenv("XDG_STATE_HOME")) != NULL && dir[0] == '/') {
		xasprintf(&path, "%s/mprocd/mprocd.db", dir);
		return path;
	}
	if ((home = getenv("HOME")) != NULL && home[0] == '/') {
		xasprintf(&path, "%s/.local/state/mprocd/mprocd.db", home);
		return path;
	}
	*errstr = "state = auto, but neither $STATE_DIRECTORY, "
		  "$XDG_STATE_HOME nor $HOME is set (set state to a path, or "
		  "none)";
	return NULL;
}

/* Makes the directory of path (and its parents) for our own files. */
static int
store_mkdir_for(const char *path)
{
	char  *dir = xstrdup(path), *p;
	int    r = 0;
	size_t i;

	if ((p = strrchr(dir, '/')) != NULL)
		*p = '\0';
	for (i = 1; dir[i] != '\0' && r == 0; i++) {
		if (dir[i] != '/')
			continue;
		dir[i] = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			r = -1;
		dir[i] = '/';
	}
	if (r == 0 && dir[0] != '\0' && mkdir(dir, 0700) != 0 &&
	    errno != EEXIST)
		r = -1;
	free(dir);
	return r;
}

/* Runs sql (no result rows wanted); -1 with the message in *why. */
int
store_exec(const char *sql, char **why)
{
	char *msg = NULL;

	if (sqlite3_exec(store_db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	xasprintf(why, "%s", msg != NULL ? msg : sqlite3_errmsg(store_db));
	sqlite3_free(msg);
	return -1;
}

/* One integer that sql answers, or -1 (*why set). */
int64_t
store_query_int(const char *sql, char **why)
{
	sqlite3_stmt *st;
	int64_t	      v = -1;

	if (sqlite3_prepare_v2(store_db, sql, -1, &st, NULL) != SQLITE_OK) {
		xasprintf(why, "%s", sqlite3_errmsg(store_db));
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		xasprintf(why, "%s", sqlite3_errmsg(store_db));
	sqlite3_finalize(st);
	return v;
}

/*
 * Opens (or makes) the database at path; power: synchronous FULL. Returns
 * 0, or -1 with *why (the path and SQLite's message) for the caller to
 * stop on.
 */
int
store_open(const char *path, int power, char **why)
{
	char *msg = NULL;
	int   i, new;

	if (store_mkdir_for(path) != 0) {
		xasprintf(why, "%s: cannot make its directory: %s", path,
		    strerror(errno));
		return -1;
	}
	if (sqlite3_open_v2(path, &store_db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
		NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(store_db, 1000);
	/* The WAL is checkpointed as it grows; a truncated one stays small. */
	/*
	 * Exclusive: the file is ours alone while we run (a second mprocd on
	 * it is refused: "database is locked"), and no file lock is taken
	 * and dropped at every transaction. Set before WAL, so that the WAL
	 * index lives in memory.
	 */
	if (store_exec("PRAGMA locking_mode = EXCLUSIVE", &msg) != 0 ||
	    (new = store_schema_check(store_db, &msg)) == -1 ||
	    store_exec("PRAGMA journal_mode = WAL", &msg) != 0 ||
	    store_exec("PRAGMA journal_size_limit = 67108864", &msg) != 0 ||
	    /* No temporary files (a large row's statement journal). */
	    store_exec("PRAGMA temp_store = MEMORY", &msg) != 0 ||
	    store_exec("PRAGMA cache_size = -16384", &msg) != 0 ||
	    store_exec(power ? "PRAGMA synchronous = FULL"
			     : "PRAGMA synchronous = NORMAL",
		&msg) != 0 ||
	    (new == 1 && store_schema_create(&msg) != 0) ||
	    (new == 2 && store_schema_migrate(&msg) != 0))
		goto fail;
	for (i = 0; i < STORE_NSTMT; i++)
		if (sqlite3_prepare_v3(store_db, store_sql[i], -1,
			SQLITE_PREPARE_PERSISTENT, &store_stmts[i],
			NULL) != SQLITE_OK)
			goto fail;
	if ((store_next_id = store_query_int(
		 "SELECT value FROM meta WHERE key = 'next_id'", &msg)) < 1 ||
	    (store_nfinished = (uint64_t)store_query_int(
		 "SELECT count(*) FROM jobs WHERE state >= 2", &msg)) ==
		(uint64_t)-1)
		goto fail;
	store_txn_next_id = store_next_id;
	store_path = xstrdup(path);
	sqlite3_wal_hook(store_db, store_wal_hook, NULL);
	store_crash_init();
	if (ev_base != NULL) {
		/*
		 * Made active at the first write of a pass, it runs after the
		 * events active before it: the rest of the pass. (Not a lower
		 * priority: libevent runs a lower one only when no higher one
		 * is active, and a busy client would starve the commit.)
		 */
		store_commit_ev = event_new(ev_base, -1, 0, store_commit_cb,
		    NULL);
		store_retry_ev = evtimer_new(ev_base, store_retry_cb, NULL);
		store_prune_ev = evtimer_new(ev_base, store_prune_cb, NULL);
	}
	return 0;

fail:
	xasprintf(why, "%s: %s", path,
	    msg != NULL ? msg
			: (store_db != NULL ? sqlite3_errmsg(store_db)
					    : "cannot open"));
	free(msg);
	store_close();
	return -1;
}

/* Commits this pass's transaction now (at exit), and lets its replies go. */
void
store_flush(void)
{
	if (store_in_txn)
		store_commit_cb(-1, 0, NULL);
}

void
store_close(void)
{
	int i;

	store_flush();
	if (store_in_txn)
		sqlite3_step(store_stmts[STORE_ROLLBACK]);
	store_in_txn = 0;
	for (i = 0; i < STORE_NSTMT; i++) {
		sqlite3_finalize(store_stmts[i]);
		store_stmts[i] = NULL;
	}
	if (store_db != NULL)
		sqlite3_close(store_db);
	store_db = NULL;
	if (store_commit_ev != NULL)
		event_free(store_commit_ev);
	store_commit_ev = NULL;
	if (store_retry_ev != NULL)
		event_free(store_retry_ev);
	store_retry_ev = NULL;
	if (store_prune_ev != NULL)
		event_free(store_prune_ev);
	store_prune_ev = NULL;
	free(store_retry_ids);
	store_retry_ids = NULL;
	store_retry_n = 0;
	free(store_path);
	store_path = NULL;
	free(store_crash_point);
	store_crash_point = NULL;
	free(store_txn_ids);
	free(store_txn_new);
	store_txn_ids = NULL;
	store_txn_new = NULL;
	store_txn_n = store_txn_size = 0;
}

uint64_t
store_count_finished(void)
{
	return store_nfinished;
}

/* The id the next job gets: after the largest ever given. */
int64_t
store_first_id(void)
{
	return store_next_id;
}

static int
store_run(sqlite3_stmt *st)
{
	int r = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r == SQLITE_DONE || r == SQLITE_ROW ? 0 : -1;
}

/* The transaction of this pass, begun at its first write. */
static int
store_begin(void)
{
	if (store_in_txn)
		return 0;
	if (store_run(store_stmts[STORE_BEGIN]) != 0)
		return -1;
	store_in_txn = 1;
	if (store_commit_ev != NULL)
		event_active(store_commit_ev, EV_TIMEOUT, 0);
	return 0;
}

/* Whether replies must wait: a transaction holds what they report. */
int
store_holding(void)
{
	return store_in_txn || store_txn_failed;
}

/*
 * Notes that this transaction holds job id (new: its submission). A job
 * may be noted twice (submitted, then cancelled in the same pass): what
 * the outcome does to it is the same each time, and looking for it first
 * cost as much as the write with a thousand Submits in a pass.
 */
static void
store_note(int64_t id, int new)
{
	if (store_txn_n == store_txn_size) {
		store_txn_size = store_txn_size == 0 ? 64 : store_txn_size * 2;
		store_txn_ids = xreallocarray(store_txn_ids, store_txn_size,
		    sizeof *store_txn_ids);
		store_txn_new = xreallocarray(store_txn_new, store_txn_size,
		    sizeof *store_txn_new);
	}
	store_txn_ids[store_txn_n] = id;
	store_txn_new[store_txn_n] = new;
	store_txn_n++;
}

int
store_put(const struct job *j, int new)
{
	sqlite3_stmt *st = store_stmts[new ? STORE_INSERT : STORE_UPDATE];
	int	      r;

	if (store_db == NULL)
		return 0;
	store_note(j->id, new);
	/*
	 * A write that fails fails its pass: the commit event rolls it back
	 * and answers its calls StorageFailed, never a commit without it.
	 */
	if (store_begin() != 0) {
		store_txn_failed = 1;
		if (store_commit_ev != NULL)
			event_active(store_commit_ev, EV_TIMEOUT, 0);
		return -1;
	}
	store_row_bind(st, j);
	if ((r = store_run(st)) != 0)
		store_txn_failed = 1;
	if (new && j->id >= store_txn_next_id)
		store_txn_next_id = j->id + 1;
	if (r == 0 && job_is_finished(j) && new == 0 && j->finished_usec != 0)
		store_nfinished++; /* counted again, should it roll back */
	return r;
}
/* Forgets job id (pruning): part of this pass's transaction. */
static int
store_delete(int64_t id)
{
	sqlite3_stmt *st = store_stmts[STORE_DELETE];

	sqlite3_bind_int64(st, 1, id);
	return store_run(st);
}

/*
 * The oldest finished jobs past keep_finished go, at most a slice a pass:
 * a million to prune never stalls the loop.
 */
#define STORE_PRUNE_SLICE 500

static void
store_prune(void)
{
	sqlite3_stmt *st = store_stmts[STORE_OLDEST_FINISHED];
	int64_t	     *ids;
	uint64_t      over;
	size_t	      n = 0, i;

	if (store_nfinished <= cfg->keep_finished)
		return;
	over = store_nfinished - cfg->keep_finished;
	if (over > STORE_PRUNE_SLICE)
		over = STORE_PRUNE_SLICE;
	ids = xcalloc((size_t)over, sizeof *ids);
	sqlite3_bind_int64(st, 1, (int64_t)over);
	while (n < over && sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	for (i = 0; i < n; i++) {
		/* One still in memory (a watcher's) stays. */
		if (job_find_live(ids[i]) != NULL)
			continue;
		if (store_delete(ids[i]) != 0)
			break;
		store_nfinished--;
	}
	free(ids);
	/* More at the next pass: a timer, so that the loop polls between. */
	if (store_nfinished > cfg->keep_finished && store_prune_ev != NULL) {
		struct timeval now = { 0, 0 };

		evtimer_add(store_prune_ev, &now);
	}
}

static void
store_prune_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	store_begin(); /* its commit prunes the next slice */
}

/* Records the next id if this transaction gave out higher ones. */
static int
store_save_next_id(void)
{
	sqlite3_stmt *st = store_stmts[STORE_SET_NEXT_ID];

	if (store_txn_next_id <= store_next_id)
		return 0;
	sqlite3_bind_int64(st, 1, store_txn_next_id);
	sqlite3_bind_int64(st, 2, store_txn_next_id);
	return store_run(st);
}

/* The finished jobs in the file, counted again after a rollback. */
static void
store_recount(void)
{
	sqlite3_stmt *st = store_stmts[STORE_COUNT_FINISHED];

	if (sqlite3_step(st) == SQLITE_ROW)
		store_nfinished = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
}

/*
 * The end of a pass: commit. On success the held replies go and the jobs
 * submitted in it may run; on failure the transaction is rolled back, the
 * held replies become StorageFailed, the new jobs are forgotten, and the
 * others are written again with the next transaction.
 */
static void
store_commit_cb(evutil_socket_t fd, short what, void *arg)
{
	char	 why[512];
	size_t	 i, n = store_txn_n;
	int64_t *ids;
	int *new, ok = 0;

	(void)fd;
	(void)what;
	(void)arg;
	if (!store_in_txn && !store_txn_failed)
		return;
	if (!store_txn_failed) {
		store_prune();
		store_crash("before-commit");
		ok = store_save_next_id() == 0 &&
		    store_run(store_stmts[STORE_COMMIT]) == 0;
	}
	/* What this pass held, apart: handling it may begin the next. */
	ids = xcalloc(n + 1, sizeof *ids);
	new = xcalloc(n + 1, sizeof *new);
	memcpy(ids, store_txn_ids, n * sizeof *ids);
	memcpy(new, store_txn_new, n * sizeof *new);
	store_txn_n = 0;
	if (ok) {
		store_crash("after-commit");
		store_in_txn = 0;
		store_next_id = store_txn_next_id;
		if (store_failing)
			log_notice("state database: writes work again" LOG_KV
				   "path=%s",
			    store_path);
		store_failing = 0;
		conn_release_held(NULL);
		for (i = 0; i < n; i++)
			job_store_saved(ids[i]);
		supervisor_changed(SUPERVISOR_DISPATCH);
		goto out;
	}
	snprintf(why, sizeof why, "%s: %s", store_path,
	    sqlite3_errmsg(store_db));
	if (!store_failing)
		log_warnx("state database: cannot commit; the calls of this "
			  "pass are answered StorageFailed" LOG_KV "error=%s",
		    why);
	store_failing = 1;
	if (store_in_txn) {
		sqlite3_step(store_stmts[STORE_ROLLBACK]);
		sqlite3_reset(store_stmts[STORE_ROLLBACK]);
	}
	store_in_txn = 0;
	store_txn_next_id = store_next_id;
	store_recount();
	/*
	 * The new ones never were: forgotten, a watcher's reply (a Run's)
	 * still held, so that it too becomes StorageFailed. Then the replies
	 * go; the others are written again, later.
	 */
	for (i = 0; i < n; i++)
		if (new[i])
			job_store_unsaved(ids[i]);
	conn_release_held(why);
	store_txn_failed = 0;
	for (i = 0; i < n; i++) {
		if (new[i])
			continue;
		job_store_pending(ids[i]);
		store_retry_ids = xreallocarray(store_retry_ids,
		    store_retry_n + 1, sizeof *store_retry_ids);
		store_retry_ids[store_retry_n++] = ids[i];
	}
	if (store_retry_n > 0 && store_retry_ev != NULL &&
	    !evtimer_pending(store_retry_ev, NULL)) {
		struct timeval tv = { 1, 0 };

		evtimer_add(store_retry_ev, &tv);
	}
out:
	free(ids);
	free(new);
}

/* A second after a failed commit: its jobs are written again. */
static void
store_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	int64_t *ids = store_retry_ids;
	size_t	 i, n = store_retry_n;

	(void)fd;
	(void)what;
	(void)arg;
	store_retry_ids = NULL;
	store_retry_n = 0;
	for (i = 0; i < n; i++)
		job_store_again(ids[i]);
	free(ids);
}

/*
 * Hands every job not finished, in queue order, to cb (which takes the
 * row's owned parts). Returns how many, or -1 (*why set) on a damaged row.
 */
int
store_load(void (*cb)(struct job_row *), char **why)
{
	sqlite3_stmt  *st = store_stmts[STORE_LIVE];
	struct job_row row;
	int	       r, n = 0;

	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (store_row_read(st, &row) != 0) {
			xasprintf(why, "%s: job %" PRId64 " is damaged",
			    store_path, (int64_t)sqlite3_column_int64(st, 0));
			sqlite3_reset(st);
			return -1;
		}
		cb(&row);
		n++;
	}
	sqlite3_reset(st);
	if (r != SQLITE_DONE) {
		xasprintf(why, "%s: %s", store_path, sqlite3_errmsg(store_db));
		return -1;
	}
	return n;
}

/*
 * The finished job id, read back: 1 and *row (free with job_row_free,
 * after store_get_done), 0 if there is none, -1 on an error (logged).
 */
int
store_get(int64_t id, struct job_row *row)
{
	sqlite3_stmt *st = store_stmts[STORE_GET];
	int	      r;

	if (store_db == NULL)
		return 0;
	sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW && store_row_read(st, row) == 0)
		return 1;
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		log_warnx("state database: cannot read job %" PRId64 LOG_KV
			  "error=%s",
		    id, sqlite3_errmsg(store_db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r == SQLITE_DONE ? 0 : -1;
}

/* Lets go of the statement a store_get() row points into. */
void
store_get_done(void)
{
	sqlite3_reset(store_stmts[STORE_GET]);
	sqlite3_clear_bindings(store_stmts[STORE_GET]);
}

/* Ids of the finished jobs in the file of pool (NULL: any), state (-1). */
int64_t *
store_ids(const char *pool, int state, size_t *n)
{
	sqlite3_stmt *st = store_stmts[STORE_IDS];
	int64_t	     *ids = NULL;
	size_t	      size = 0;

	*n = 0;
	if (store_db == NULL)
		return xcalloc(1, sizeof *ids);
	if (pool != NULL)
		sqlite3_bind_text(st, 1, pool, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, state);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (*n == size) {
			size = size == 0 ? 1024 : size * 2;
			ids = xreallocarray(ids, size + 1, sizeof *ids);
		}
		ids[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ids != NULL ? ids : xcalloc(1, sizeof *ids);
}

/* The file's size in bytes (with its WAL), for Status. */
uint64_t
store_size(void)
{
	struct stat st;
	uint64_t    n = 0;
	char	   *wal;

	if (store_path == NULL)
		return 0;
	if (stat(store_path, &st) == 0)
		n += (uint64_t)st.st_size;
	xasprintf(&wal, "%s-wal", store_path);
	if (stat(wal, &st) == 0)
		n += (uint64_t)st.st_size;
	free(wal);
	return n;
}
