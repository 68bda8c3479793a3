/*
 * libFuzzer target for mprocd's start over a damaged state database: the
 * input is the file. It goes to a temporary path, and store.c opens it as
 * mprocd would at start: quick_check, the schema, then every job not
 * finished read back (store-row.c, a row whose columns have any type or
 * none), finished ones by id, the ids for List. Whatever the file holds,
 * the store refuses it with a message or reads it; it never crashes or
 * leaks, and it leaves a file it refused as it was.
 */
#include "config.h"

#include <sys/stat.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocd.h"
#include "fuzz.h"

static char fuzz_dir[64];
static char fuzz_path[128];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(fuzz_dir, sizeof fuzz_dir, "/tmp/mprocd-fuzz-store-XXXXXX");
	if (mkdtemp(fuzz_dir) == NULL)
		abort();
	snprintf(fuzz_path, sizeof fuzz_path, "%s/mprocd.db", fuzz_dir);
	log_setlevel(LOG_CRIT);
	cfg = config_new();
	return 0;
}

static void
fuzz_row(struct job_row *row)
{
	CHECK(row->pool != NULL && row->argv != NULL && row->cwd != NULL);
	job_store_row_free(row);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct job_row row;
	FILE	      *f;
	int64_t	      *ids;
	size_t	       n, i;
	char	      *why = NULL, wal[160];

	unlink(fuzz_path);
	snprintf(wal, sizeof wal, "%s-wal", fuzz_path);
	unlink(wal);
	snprintf(wal, sizeof wal, "%s-shm", fuzz_path);
	unlink(wal);
	CHECK((f = fopen(fuzz_path, "wb")) != NULL);
	CHECK(fwrite(data, 1, size, f) == size);
	fclose(f);
	if (store_open(fuzz_path, 0, &why) != 0) {
		CHECK(why != NULL && strstr(why, fuzz_path) != NULL);
		free(why);
		return 0;
	}
	if (store_load(fuzz_row, &why) < 0)
		free(why);
	ids = store_ids(NULL, -1, &n);
	for (i = 0; i < n && i < 64; i++)
		if (store_get(ids[i], &row) == 1) {
			job_store_row_free(&row);
			store_get_done();
		}
	free(ids);
	store_close();
	return 0;
}
