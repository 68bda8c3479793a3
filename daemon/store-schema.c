/*
 * The state database's schema: the tables of a new file, the checks that
 * a file is a sound one of ours, and the migration of one that an earlier
 * release wrote (PRAGMA user_version is its schema's version).
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "mprocd.h"
#include "xmalloc.h"

/* The schema this mprocd writes; PRAGMA user_version says a file's. */
#define STORE_SCHEMA	  3
#define STORE_STR(x)	  #x
#define STORE_XSTR(x)	  STORE_STR(x)
#define STORE_SET_VERSION "PRAGMA user_version = " STORE_XSTR(STORE_SCHEMA) ";"

static const char store_schema_v3[] =
    "CREATE TABLE jobs ("
    " id INTEGER PRIMARY KEY,"
    " pool TEXT NOT NULL,"
    " name TEXT,"
    " argv BLOB NOT NULL," /* each string ended by a NUL */
    " cwd TEXT NOT NULL,"
    " env BLOB,"
    " stdin BLOB,"
    " input TEXT," /* JSON */
    " uid INTEGER NOT NULL,"
    " timeout INTEGER," /* usec; NULL: the pool's */
    " retries INTEGER," /* NULL: the pool's */
    " state INTEGER NOT NULL,"
    " exit_status INTEGER,"
    " signal INTEGER,"
    " worker TEXT,"
    " pid INTEGER,"
    " attempts INTEGER NOT NULL,"
    " submitted_usec INTEGER NOT NULL,"
    " started_usec INTEGER,"
    " finished_usec INTEGER,"
    " stdout BLOB,"
    " stderr BLOB,"
    " truncated INTEGER NOT NULL DEFAULT 0,"
    " result TEXT,"	     /* JSON */
    " seq INTEGER NOT NULL," /* queue order */
    " after_ids TEXT,"	     /* JSON: [ids] */
    " lock TEXT,"
    " reason TEXT,"
    " runs BLOB" /* its output's order, when not stdout then stderr */
    ") STRICT;"
    "CREATE INDEX jobs_finished ON jobs (finished_usec) WHERE state >= 2;"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) "
    "STRICT;"
    "INSERT INTO meta VALUES ('next_id', 1);";

/*
 * quick_check, then the schema: 0 if it is ours, 1 if the file is new (it
 * has none), 2 if an earlier release wrote it (store_schema_migrate), -1
 * (*why set) if it is not a sound mprocd database. Reads only: a file
 * refused is left as it was.
 */
int
store_schema_check(sqlite3 *db, char **why)
{
	sqlite3_stmt *st;
	const char   *ok;
	int64_t	      version;
	int	      r;

	if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) !=
	    SQLITE_OK) {
		xasprintf(why, "%s", sqlite3_errmsg(db));
		return -1;
	}
	r = sqlite3_step(st);
	ok = r == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	if (ok == NULL || strcmp(ok, "ok") != 0) {
		xasprintf(why, "quick_check: %s",
		    ok != NULL ? ok : sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	if ((version = store_query_int("PRAGMA user_version", why)) < 0)
		return -1;
	if (version > STORE_SCHEMA) {
		xasprintf(why,
		    "schema version %" PRId64 " is newer than this mprocd's "
		    "(%d): it was written by a later release",
		    version, STORE_SCHEMA);
		return -1;
	}
	if (version == STORE_SCHEMA)
		return 0;
	if (version > 0)
		return 2;
	if (store_query_int("SELECT count(*) FROM sqlite_master", why) != 0) {
		free(*why);
		xasprintf(why,
		    "schema version 0 but the file has tables: not mprocd's "
		    "state database");
		return -1;
	}
	return 1;
}

/* A new file: our tables, and our schema's version. */
int
store_schema_create(char **why)
{
	return store_exec("BEGIN; " STORE_SET_VERSION, why) == 0 &&
		store_exec(store_schema_v3, why) == 0 &&
		store_exec("COMMIT", why) == 0
	    ? 0
	    : -1;
}

/*
 * A file of an earlier release, brought to this one's schema in one
 * transaction. 1 -> 2: a job's after, lock and reason. 2 -> 3: the order
 * of its output.
 */
int
store_schema_migrate(char **why)
{
	static const char *const step[STORE_SCHEMA] = {
		[1] = "ALTER TABLE jobs ADD COLUMN after_ids TEXT;"
		      "ALTER TABLE jobs ADD COLUMN lock TEXT;"
		      "ALTER TABLE jobs ADD COLUMN reason TEXT;",
		[2] = "ALTER TABLE jobs ADD COLUMN runs BLOB;",
	};
	char   *msg = NULL;
	int64_t v;

	if ((v = store_query_int("PRAGMA user_version", why)) < 1 ||
	    v >= STORE_SCHEMA) {
		if (v >= 0)
			xasprintf(why, "no way from schema %" PRId64, v);
		return -1;
	}
	if (store_exec("BEGIN", why) != 0)
		return -1;
	for (; v < STORE_SCHEMA; v++)
		if (store_exec(step[v], why) != 0)
			goto fail;
	if (store_exec(STORE_SET_VERSION " COMMIT", why) == 0)
		return 0;
fail:
	if (store_exec("ROLLBACK", &msg) != 0)
		free(msg);
	return -1;
}
