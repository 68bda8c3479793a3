/*
 * Checking the parameters of calls: every Submit parameter with every kind
 * of wrong value must be refused, naming that parameter.
 */
#include "config.h"

#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mprocd.h"
#include "util.h"

/* Parses Submit parameters given as JSON text; returns the bad name. */
static const char *
submit_bad(const char *text, struct job_spec *sb)
{
	json_error_t err;
	json_t	    *params;
	const char  *bad = NULL;
	static char  name[64];

	params = json_loads(text, 0, &err);
	assert_non_null(params);
	if (method_submit_parse(params, sb, &bad) == 0) {
		json_decref(params);
		return NULL;
	}
	assert_non_null(bad);
	snprintf(name, sizeof name, "%s", bad);
	json_decref(params);
	return name;
}

static void
refused(const char *text, const char *param)
{
	struct job_spec sb;
	const char     *bad = submit_bad(text, &sb);

	if (bad == NULL || strcmp(bad, param) != 0)
		fail_msg("%s: wanted %s refused, got %s", text, param,
		    bad != NULL ? bad : "accepted");
	/* Nothing is left allocated on failure. */
	assert_null(sb.argv);
	assert_null(sb.env);
	assert_null(sb.stdin_data);
}

static void
test_submit_minimal(void **state)
{
	struct job_spec sb;

	assert_null(submit_bad("{\"argv\": [\"true\"]}", &sb));
	assert_string_equal(sb.argv[0], "true");
	assert_null(sb.argv[1]);
	assert_null(sb.pool);
	assert_string_equal(sb.cwd, "/");
	assert_null(sb.env);
	assert_null(sb.stdin_data);
	assert_int_equal(sb.has_timeout, 0);
	assert_int_equal(sb.has_retries, 0);
	job_spec_free(&sb);
}

static void
test_submit_everything(void **state)
{
	struct job_spec sb;
	json_t	       *params;
	const char     *bad;

	params = json_pack("{s:[s,s], s:s, s:s, s:s, s:[s,s], s:s, s:f, s:i}",
	    "argv", "sh", "-c", "pool", "web", "name", "n", "cwd", "/tmp",
	    "env", "A=1", "B=", "stdin", "aGkK", "timeout_sec", 1.5, "retries",
	    3);
	assert_int_equal(method_submit_parse(params, &sb, &bad), 0);
	assert_string_equal(sb.argv[1], "-c");
	assert_string_equal(sb.pool, "web");
	assert_string_equal(sb.name, "n");
	assert_string_equal(sb.cwd, "/tmp");
	assert_string_equal(sb.env[1], "B=");
	assert_int_equal(sb.stdin_len, 3);
	assert_memory_equal(sb.stdin_data, "hi\n", 3);
	assert_int_equal(sb.has_timeout, 1);
	assert_int_equal(sb.timeout, 1500 * USEC_PER_MSEC);
	assert_int_equal(sb.has_retries, 1);
	assert_int_equal(sb.retries, 3);
	job_spec_free(&sb);
	json_decref(params);
}

static void
test_submit_nulls_are_absent(void **state)
{
	struct job_spec sb;

	assert_null(
	    submit_bad("{\"argv\": [\"x\"], \"pool\": null, "
		       "\"env\": null, \"stdin\": null, \"timeout_sec\": null, "
		       "\"retries\": null, \"cwd\": null, \"name\": null}",
		&sb));
	assert_string_equal(sb.cwd, "/");
	assert_int_equal(sb.has_timeout, 0);
	job_spec_free(&sb);
	/* An integer is a number of seconds too; 0 means none. */
	assert_null(submit_bad("{\"argv\": [\"x\"], \"timeout_sec\": 0}", &sb));
	assert_int_equal(sb.has_timeout, 1);
	assert_int_equal(sb.timeout, 0);
	job_spec_free(&sb);
}

static void
test_submit_refused(void **state)
{
	refused("{}", "argv");
	refused("{\"argv\": \"true\"}", "argv");
	refused("{\"argv\": []}", "argv");
	refused("{\"argv\": [\"\"]}", "argv");
	refused("{\"argv\": [\"a\", 1]}", "argv");
	refused("{\"argv\": [\"a\", null]}", "argv");
	refused("{\"argv\": [\"a\"], \"pool\": 1}", "pool");
	refused("{\"argv\": [\"a\"], \"name\": []}", "name");
	refused("{\"argv\": [\"a\"], \"cwd\": \"tmp\"}", "cwd");
	refused("{\"argv\": [\"a\"], \"cwd\": \"\"}", "cwd");
	refused("{\"argv\": [\"a\"], \"cwd\": 5}", "cwd");
	refused("{\"argv\": [\"a\"], \"env\": \"A=1\"}", "env");
	refused("{\"argv\": [\"a\"], \"env\": [\"A\"]}", "env");
	refused("{\"argv\": [\"a\"], \"env\": [\"=1\"]}", "env");
	refused("{\"argv\": [\"a\"], \"env\": [\"A=1\", 2]}", "env");
	refused("{\"argv\": [\"a\"], \"stdin\": \"abc\"}", "stdin");
	refused("{\"argv\": [\"a\"], \"stdin\": \"a===\"}", "stdin");
	refused("{\"argv\": [\"a\"], \"stdin\": \"!!!!\"}", "stdin");
	refused("{\"argv\": [\"a\"], \"stdin\": 12}", "stdin");
	refused("{\"argv\": [\"a\"], \"timeout_sec\": -1}", "timeout_sec");
	refused("{\"argv\": [\"a\"], \"timeout_sec\": \"5\"}", "timeout_sec");
	refused("{\"argv\": [\"a\"], \"timeout_sec\": 1e300}", "timeout_sec");
	refused("{\"argv\": [\"a\"], \"retries\": -1}", "retries");
	refused("{\"argv\": [\"a\"], \"retries\": 1000}", "retries");
	refused("{\"argv\": [\"a\"], \"retries\": 1.5}", "retries");
	refused("{\"argv\": [\"a\"], \"retries\": \"x\"}", "retries");
	/* A misspelt parameter is named, not ignored. */
	refused("{\"argv\": [\"a\"], \"timeout\": 5}", "timeout");
}

static void
test_unknown_param(void **state)
{
	static const char *const known[] = { "id", NULL };
	static const char *const none[] = { NULL };
	json_t			*p = json_pack("{s:i}", "id", 1);

	assert_null(method_unknown_param(p, known));
	assert_string_equal(method_unknown_param(p, none), "id");
	assert_null(method_unknown_param(NULL, none));
	json_object_set_new(p, "extra", json_true());
	assert_string_equal(method_unknown_param(p, known), "extra");
	json_decref(p);
}

static void
test_seconds(void **state)
{
	json_t	*p = json_pack("{s:f, s:i, s:f, s:s}", "a", 0.25, "b", 2, "c",
	     -0.5, "d", "1");
	uint64_t usec = 0;

	assert_int_equal(method_get_seconds(p, "a", &usec), 1);
	assert_int_equal(usec, 250 * USEC_PER_MSEC);
	assert_int_equal(method_get_seconds(p, "b", &usec), 1);
	assert_int_equal(usec, 2 * USEC_PER_SEC);
	assert_int_equal(method_get_seconds(p, "c", &usec), -1);
	assert_int_equal(method_get_seconds(p, "d", &usec), -1);
	assert_int_equal(method_get_seconds(p, "missing", &usec), 0);
	json_decref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_submit_minimal),
		cmocka_unit_test(test_submit_everything),
		cmocka_unit_test(test_submit_nulls_are_absent),
		cmocka_unit_test(test_submit_refused),
		cmocka_unit_test(test_unknown_param),
		cmocka_unit_test(test_seconds),
	};

	log_setlevel(LOG_CRIT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
