/* lib/varlink.c: parsing calls and replies, encoding, typed getters. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "varlink.h"

static void
call_ok(const char *s, struct varlink_call *call)
{
	const char *errstr = NULL;
	int	    r;

	r = varlink_call_parse(s, strlen(s), call, &errstr);
	if (r != 0)
		print_message("call %s: %s\n", s, errstr);
	assert_int_equal(r, 0);
	assert_non_null(call->msg);
	assert_non_null(call->method);
	assert_non_null(call->params);
	assert_true(json_is_object(call->params));
}

/* The call must be refused with want in the error, and call left empty. */
static void
call_err_len(const char *s, size_t len, const char *want)
{
	struct varlink_call call;
	const char	   *errstr = NULL;
	int		    r;

	memset(&call, 0xa5, sizeof call);
	r = varlink_call_parse(s, len, &call, &errstr);
	if (r != -1 || errstr == NULL || strstr(errstr, want) == NULL)
		print_message("call %.*s: r=%d errstr=%s, want \"%s\"\n",
		    (int)len, s, r, errstr != NULL ? errstr : "(null)", want);
	assert_int_equal(r, -1);
	assert_non_null(errstr);
	assert_non_null(strstr(errstr, want));
	assert_null(call.msg);
	assert_null(call.method);
	assert_null(call.params);
	assert_int_equal(call.flags, 0);
	/* Freeing a failed call is harmless. */
	varlink_call_free(&call);
}

static void
call_err(const char *s, const char *want)
{
	call_err_len(s, strlen(s), want);
}

static void
reply_ok(const char *s, struct varlink_reply *reply)
{
	const char *errstr = NULL;
	int	    r;

	r = varlink_reply_parse(s, strlen(s), reply, &errstr);
	if (r != 0)
		print_message("reply %s: %s\n", s, errstr);
	assert_int_equal(r, 0);
	assert_non_null(reply->msg);
	assert_non_null(reply->params);
	assert_true(json_is_object(reply->params));
}

static void
reply_err(const char *s, const char *want)
{
	struct varlink_reply reply;
	const char	    *errstr = NULL;
	int		     r;

	memset(&reply, 0xa5, sizeof reply);
	r = varlink_reply_parse(s, strlen(s), &reply, &errstr);
	if (r != -1 || errstr == NULL || strstr(errstr, want) == NULL)
		print_message("reply %s: r=%d errstr=%s, want \"%s\"\n", s, r,
		    errstr != NULL ? errstr : "(null)", want);
	assert_int_equal(r, -1);
	assert_non_null(errstr);
	assert_non_null(strstr(errstr, want));
	assert_null(reply.msg);
	assert_null(reply.params);
}

/*
 * An encoded message: exactly one NUL, at the end and counted in len, and
 * compact (no whitespace outside strings, checked by re-dumping).
 */
static json_t *
check_encoded(const char *s, size_t len)
{
	json_t	    *j;
	json_error_t err;
	char	    *again;

	assert_non_null(s);
	assert_true(len >= 3);
	assert_int_equal(s[len - 1], '\0');
	assert_null(memchr(s, '\0', len - 1));
	assert_int_equal(strlen(s), len - 1);
	j = json_loadb(s, len - 1, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
	    &err);
	if (j == NULL)
		print_message("%s: %s\n", s, err.text);
	assert_non_null(j);
	assert_true(json_is_object(j));
	again = json_dumps(j, JSON_COMPACT);
	assert_non_null(again);
	assert_string_equal(again, s);
	free(again);
	return j;
}

static void
test_call_with_parameters(void **state)
{
	struct varlink_call call;
	json_t		   *v;

	call_ok("{\"method\":\"io.mprocd.Submit\",\"parameters\":"
		"{\"argv\":[\"sleep\",\"1\"],\"timeout\":3}}",
	    &call);
	assert_string_equal(call.method, "io.mprocd.Submit");
	assert_int_equal(call.flags, 0);
	assert_int_equal(json_object_size(call.params), 2);
	v = json_object_get(call.params, "timeout");
	assert_true(json_is_integer(v));
	assert_int_equal(json_integer_value(v), 3);
	v = json_object_get(call.params, "argv");
	assert_true(json_is_array(v));
	assert_int_equal(json_array_size(v), 2);
	/* params and method point into msg. */
	assert_ptr_equal(call.params, json_object_get(call.msg, "parameters"));
	assert_ptr_equal(call.method,
	    json_string_value(json_object_get(call.msg, "method")));
	varlink_call_free(&call);
	assert_null(call.msg);
	assert_null(call.method);
	assert_null(call.params);
	/* A second free is harmless. */
	varlink_call_free(&call);
}

static void
test_call_without_parameters(void **state)
{
	struct varlink_call call;

	call_ok("{\"method\":\"io.mprocd.Status\"}", &call);
	assert_string_equal(call.method, "io.mprocd.Status");
	assert_int_equal(json_object_size(call.params), 0);
	assert_int_equal(call.flags, 0);
	varlink_call_free(&call);

	call_ok(" { \"method\" : \"a.B\" , \"parameters\" : { } } ", &call);
	assert_string_equal(call.method, "a.B");
	assert_int_equal(json_object_size(call.params), 0);
	varlink_call_free(&call);
}

static void
test_call_null_parameters(void **state)
{
	struct varlink_call call;

	call_ok("{\"method\":\"io.mprocd.Status\",\"parameters\":null}", &call);
	assert_int_equal(json_object_size(call.params), 0);
	assert_ptr_equal(call.params, json_object_get(call.msg, "parameters"));
	varlink_call_free(&call);
}

static void
test_call_flags(void **state)
{
	struct varlink_call call;

	call_ok("{\"method\":\"a.B\",\"more\":true}", &call);
	assert_int_equal(call.flags, VARLINK_MORE);
	varlink_call_free(&call);

	call_ok("{\"method\":\"a.B\",\"oneway\":true}", &call);
	assert_int_equal(call.flags, VARLINK_ONEWAY);
	varlink_call_free(&call);

	call_ok("{\"method\":\"a.B\",\"more\":true,\"oneway\":true}", &call);
	assert_int_equal(call.flags, VARLINK_MORE | VARLINK_ONEWAY);
	varlink_call_free(&call);

	call_ok("{\"method\":\"a.B\",\"more\":false,\"oneway\":false}", &call);
	assert_int_equal(call.flags, 0);
	varlink_call_free(&call);

	/* Unknown fields are ignored. */
	call_ok("{\"method\":\"a.B\",\"upgrade\":false,\"x\":[1]}", &call);
	assert_int_equal(call.flags, 0);
	varlink_call_free(&call);
}

static void
test_call_wrong_types(void **state)
{
	call_err("{}", "method");
	call_err("{\"parameters\":{}}", "method");
	call_err("{\"method\":42}", "method");
	call_err("{\"method\":null}", "method");
	call_err("{\"method\":[\"a.B\"]}", "method");
	call_err("{\"method\":{\"a\":\"b.c\"}}", "method");
	call_err("{\"method\":true}", "method");
	call_err("{\"method\":\"a.B\",\"parameters\":[]}", "parameters");
	call_err("{\"method\":\"a.B\",\"parameters\":\"x\"}", "parameters");
	call_err("{\"method\":\"a.B\",\"parameters\":1}", "parameters");
	call_err("{\"method\":\"a.B\",\"parameters\":true}", "parameters");
	call_err("{\"method\":\"a.B\",\"more\":1}", "more");
	call_err("{\"method\":\"a.B\",\"more\":\"true\"}", "more");
	call_err("{\"method\":\"a.B\",\"more\":{}}", "more");
	call_err("{\"method\":\"a.B\",\"oneway\":0}", "oneway");
	call_err("{\"method\":\"a.B\",\"oneway\":\"yes\"}", "oneway");
	call_err("{\"method\":\"a.B\",\"more\":true,\"oneway\":[]}", "oneway");
}

static void
test_call_method_without_dot(void **state)
{
	call_err("{\"method\":\"Status\"}", "interface.Method");
	call_err("{\"method\":\"\"}", "interface.Method");
	call_err("{\"method\":\"io_mprocd_Status\",\"parameters\":{}}",
	    "interface.Method");
}

static void
test_call_not_an_object(void **state)
{
	call_err("[1,2]", "not a JSON object");
	call_err("[]", "not a JSON object");
	call_err("\"io.mprocd.Status\"", "JSON");
	call_err("42", "JSON");
	call_err("null", "JSON");
	call_err("true", "JSON");
}

static void
test_call_invalid_json(void **state)
{
	static const char trailing[] = "{\"method\":\"a.B\"}{}";

	call_err("{", "not valid JSON");
	call_err("}", "not valid JSON");
	call_err("{\"method\":}", "not valid JSON");
	call_err("{\"method\":\"a.B\",}", "not valid JSON");
	call_err("{'method':'a.B'}", "not valid JSON");
	call_err("not json", "not valid JSON");
	call_err("   ", "not valid JSON");
	call_err(trailing, "not valid JSON");
	/* Invalid UTF-8 in a string. */
	call_err("{\"method\":\"a.\xff\"}", "not valid JSON");
	/* A NUL inside a string would cut the method short. */
	call_err("{\"method\":\"a.B\\u0000x\"}", "not valid JSON");
}

static void
test_call_only_len_bytes(void **state)
{
	static const char   buf[] = "{\"method\":\"a.B\"}GARBAGE";
	struct varlink_call call;
	const char	   *errstr = NULL;

	assert_int_equal(varlink_call_parse(buf, strlen("{\"method\":\"a.B\"}"),
			     &call, &errstr),
	    0);
	assert_string_equal(call.method, "a.B");
	varlink_call_free(&call);
	/* Cut short, the same buffer is not JSON. */
	call_err_len(buf, 5, "not valid JSON");
}

static void
test_call_empty(void **state)
{
	call_err_len("", 0, "empty");
	call_err_len("{\"method\":\"a.B\"}", 0, "empty");
}

static void
test_call_duplicate_keys(void **state)
{
	call_err("{\"method\":\"a.B\",\"method\":\"c.D\"}", "JSON");
	call_err("{\"method\":\"a.B\",\"parameters\":{},\"parameters\":{}}",
	    "JSON");
	call_err("{\"method\":\"a.B\",\"parameters\":{\"x\":1,\"x\":2}}",
	    "JSON");
}

static void
test_reply_normal(void **state)
{
	struct varlink_reply reply;

	reply_ok("{\"parameters\":{\"pid\":42}}", &reply);
	assert_null(reply.error);
	assert_int_equal(reply.continues, 0);
	assert_int_equal(json_integer_value(
			     json_object_get(reply.params, "pid")),
	    42);
	varlink_reply_free(&reply);
	assert_null(reply.msg);
	assert_null(reply.params);

	reply_ok("{}", &reply);
	assert_null(reply.error);
	assert_int_equal(json_object_size(reply.params), 0);
	varlink_reply_free(&reply);

	reply_ok("{\"parameters\":null}", &reply);
	assert_int_equal(json_object_size(reply.params), 0);
	varlink_reply_free(&reply);
}

static void
test_reply_error(void **state)
{
	struct varlink_reply reply;

	reply_ok("{\"error\":\"org.varlink.service.InvalidParameter\","
		 "\"parameters\":{\"parameter\":\"timeout\"}}",
	    &reply);
	assert_non_null(reply.error);
	assert_string_equal(reply.error, VARLINK_ERR_PARAM);
	assert_string_equal(json_string_value(
				json_object_get(reply.params, "parameter")),
	    "timeout");
	varlink_reply_free(&reply);

	reply_ok("{\"error\":\"io.mprocd.NoSuchJob\"}", &reply);
	assert_string_equal(reply.error, "io.mprocd.NoSuchJob");
	assert_int_equal(json_object_size(reply.params), 0);
	varlink_reply_free(&reply);
}

static void
test_reply_continues(void **state)
{
	struct varlink_reply reply;

	reply_ok("{\"parameters\":{},\"continues\":true}", &reply);
	assert_int_equal(reply.continues, 1);
	varlink_reply_free(&reply);

	reply_ok("{\"parameters\":{},\"continues\":false}", &reply);
	assert_int_equal(reply.continues, 0);
	varlink_reply_free(&reply);
}

static void
test_reply_bad(void **state)
{
	reply_err("{\"error\":42}", "error");
	reply_err("{\"error\":null}", "error");
	reply_err("{\"error\":\"a.B\",\"parameters\":[]}", "parameters");
	reply_err("{\"parameters\":\"x\"}", "parameters");
	reply_err("{\"parameters\":7}", "parameters");
	reply_err("[{}]", "not a JSON object");
	reply_err("{", "not valid JSON");
	reply_err("{\"error\":\"a.B\",\"error\":\"c.D\"}", "JSON");
	reply_err("", "empty");
}

/*
 * Like varlink_call_parse(), a failed parse leaves nothing behind: above
 * all no "error" pointer into the message it has just freed.
 */
static void
test_reply_failure_leaves_reply_empty(void **state)
{
	static const char *bad[] = {
		"{\"error\":\"a.B\",\"parameters\":[]}",
		"{\"error\":\"a.B\",\"parameters\":7}",
		"{\"error\":42}",
		"{",
	};
	struct varlink_reply reply;
	const char	    *errstr;
	size_t		     i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&reply, 0xa5, sizeof reply);
		errstr = NULL;
		assert_int_equal(varlink_reply_parse(bad[i], strlen(bad[i]),
				     &reply, &errstr),
		    -1);
		assert_non_null(errstr);
		if (reply.error != NULL)
			print_message("%s: reply.error left set\n", bad[i]);
		assert_null(reply.msg);
		assert_null(reply.params);
		assert_null(reply.error);
		assert_int_equal(reply.continues, 0);
	}
}

static void
test_encode_call(void **state)
{
	struct varlink_call call;
	const char	   *errstr = NULL;
	json_t		   *j, *p;
	char		   *s;
	size_t		    len = 0;

	s = varlink_call_encode("io.mprocd.Status", NULL, 0, &len);
	j = check_encoded(s, len);
	assert_string_equal(s,
	    "{\"method\":\"io.mprocd.Status\",\"parameters\":{}}");
	json_decref(j);
	assert_int_equal(varlink_call_parse(s, len - 1, &call, &errstr), 0);
	assert_string_equal(call.method, "io.mprocd.Status");
	assert_int_equal(call.flags, 0);
	assert_int_equal(json_object_size(call.params), 0);
	varlink_call_free(&call);
	free(s);

	p = json_pack("{s:i, s:s, s:[s, s]}", "timeout", 5, "name", "a \"b\" c",
	    "argv", "sh", "-c");
	assert_non_null(p);
	/* Keep a reference to check the encoder takes exactly one. */
	json_incref(p);
	s = varlink_call_encode("io.mprocd.Submit", p,
	    VARLINK_MORE | VARLINK_ONEWAY, &len);
	assert_int_equal(p->refcount, 1);
	j = check_encoded(s, len);
	assert_true(json_is_true(json_object_get(j, "more")));
	assert_true(json_is_true(json_object_get(j, "oneway")));
	json_decref(j);
	assert_int_equal(varlink_call_parse(s, len - 1, &call, &errstr), 0);
	assert_string_equal(call.method, "io.mprocd.Submit");
	assert_int_equal(call.flags, VARLINK_MORE | VARLINK_ONEWAY);
	assert_true(json_equal(call.params, p));
	varlink_call_free(&call);
	json_decref(p);
	free(s);

	s = varlink_call_encode("a.B", json_object(), VARLINK_MORE, &len);
	j = check_encoded(s, len);
	assert_true(json_is_true(json_object_get(j, "more")));
	assert_null(json_object_get(j, "oneway"));
	json_decref(j);
	free(s);
}

static void
test_encode_reply(void **state)
{
	struct varlink_reply reply;
	const char	    *errstr = NULL;
	json_t		    *j, *p;
	char		    *s;
	size_t		     len = 0;

	s = varlink_reply_encode(NULL, 0, &len);
	j = check_encoded(s, len);
	assert_string_equal(s, "{\"parameters\":{}}");
	assert_null(json_object_get(j, "continues"));
	json_decref(j);
	free(s);

	p = json_pack("{s:I, s:b}", "job", (json_int_t)12345678901LL, "done",
	    1);
	json_incref(p);
	s = varlink_reply_encode(p, VARLINK_CONTINUES, &len);
	assert_int_equal(p->refcount, 1);
	j = check_encoded(s, len);
	json_decref(j);
	assert_int_equal(varlink_reply_parse(s, len - 1, &reply, &errstr), 0);
	assert_null(reply.error);
	assert_int_equal(reply.continues, 1);
	assert_true(json_equal(reply.params, p));
	varlink_reply_free(&reply);
	json_decref(p);
	free(s);
}

static void
test_encode_error(void **state)
{
	struct varlink_reply reply;
	const char	    *errstr = NULL;
	json_t		    *j;
	char		    *s;
	size_t		     len = 0;

	s = varlink_error_encode(VARLINK_ERR_METHOD, NULL, &len);
	j = check_encoded(s, len);
	json_decref(j);
	assert_int_equal(varlink_reply_parse(s, len - 1, &reply, &errstr), 0);
	assert_string_equal(reply.error, VARLINK_ERR_METHOD);
	assert_int_equal(json_object_size(reply.params), 0);
	assert_int_equal(reply.continues, 0);
	varlink_reply_free(&reply);
	free(s);

	s = varlink_error_encode(VARLINK_ERR_PARAM,
	    json_pack("{s:s}", "parameter", "argv"), &len);
	j = check_encoded(s, len);
	json_decref(j);
	assert_int_equal(varlink_reply_parse(s, len - 1, &reply, &errstr), 0);
	assert_string_equal(reply.error, VARLINK_ERR_PARAM);
	assert_string_equal(json_string_value(
				json_object_get(reply.params, "parameter")),
	    "argv");
	varlink_reply_free(&reply);
	free(s);
}

static void
test_encode_escapes_nul(void **state)
{
	json_t	   *j, *p;
	const char *v;
	char	   *s;
	size_t	    len = 0;

	p = json_object();
	json_object_set_new(p, "out", json_stringn("a\0b\nc", 5));
	s = varlink_reply_encode(p, 0, &len);
	/* No raw NUL before the terminator. */
	j = check_encoded(s, len);
	assert_non_null(strstr(s, "a\\u0000b\\nc"));
	v = json_string_value(
	    json_object_get(json_object_get(j, "parameters"), "out"));
	assert_non_null(v);
	assert_int_equal(json_string_length(
			     json_object_get(json_object_get(j, "parameters"),
				 "out")),
	    5);
	assert_memory_equal(v, "a\0b\nc", 5);
	json_decref(j);
	free(s);
}

static void
test_get_int(void **state)
{
	json_t *p;
	int64_t v;

	p = json_pack("{s:i, s:I, s:I, s:n, s:s, s:f, s:b, s:[]}", "n", 5,
	    "big", (json_int_t)INT64_MAX, "small", (json_int_t)INT64_MIN,
	    "null", "str", "5", "real", 5.0, "bool", 1, "arr");
	assert_non_null(p);

	v = 99;
	assert_int_equal(varlink_get_int(p, "n", 0, 10, &v), 1);
	assert_int_equal(v, 5);
	assert_int_equal(varlink_get_int(p, "n", 5, 5, &v), 1);
	assert_int_equal(varlink_get_int(p, "big", 0, INT64_MAX, &v), 1);
	assert_true(v == INT64_MAX);
	assert_int_equal(varlink_get_int(p, "small", INT64_MIN, 0, &v), 1);
	assert_true(v == INT64_MIN);

	v = 99;
	assert_int_equal(varlink_get_int(p, "absent", 0, 10, &v), 0);
	assert_int_equal(varlink_get_int(p, "null", 0, 10, &v), 0);
	assert_int_equal(v, 99);

	assert_int_equal(varlink_get_int(p, "n", 6, 10, &v), -1);
	assert_int_equal(varlink_get_int(p, "n", 0, 4, &v), -1);
	assert_int_equal(varlink_get_int(p, "big", 0, INT64_MAX - 1, &v), -1);
	assert_int_equal(varlink_get_int(p, "small", INT64_MIN + 1, 0, &v), -1);
	assert_int_equal(varlink_get_int(p, "str", 0, 10, &v), -1);
	assert_int_equal(varlink_get_int(p, "real", 0, 10, &v), -1);
	assert_int_equal(varlink_get_int(p, "bool", 0, 10, &v), -1);
	assert_int_equal(varlink_get_int(p, "arr", 0, 10, &v), -1);
	assert_int_equal(v, 99);
	json_decref(p);
}

static void
test_get_string(void **state)
{
	json_t	   *p;
	const char *v;

	p = json_pack("{s:s, s:s, s:n, s:i, s:b, s:{}}", "name", "web", "empty",
	    "", "null", "num", 1, "bool", 0, "obj");
	assert_non_null(p);

	v = NULL;
	assert_int_equal(varlink_get_string(p, "name", &v), 1);
	assert_non_null(v);
	assert_string_equal(v, "web");
	assert_int_equal(varlink_get_string(p, "empty", &v), 1);
	assert_string_equal(v, "");

	v = "untouched";
	assert_int_equal(varlink_get_string(p, "absent", &v), 0);
	assert_int_equal(varlink_get_string(p, "null", &v), 0);
	assert_int_equal(varlink_get_string(p, "num", &v), -1);
	assert_int_equal(varlink_get_string(p, "bool", &v), -1);
	assert_int_equal(varlink_get_string(p, "obj", &v), -1);
	assert_string_equal(v, "untouched");
	json_decref(p);
}

static void
test_get_number(void **state)
{
	json_t *p;
	double	v;

	p = json_pack("{s:f, s:i, s:n, s:s, s:b}", "real", 2.5, "int", 3,
	    "null", "str", "2.5", "bool", 1);
	assert_non_null(p);

	v = 0;
	assert_int_equal(varlink_get_number(p, "real", &v), 1);
	assert_true(v == 2.5);
	assert_int_equal(varlink_get_number(p, "int", &v), 1);
	assert_true(v == 3.0);

	v = -1;
	assert_int_equal(varlink_get_number(p, "absent", &v), 0);
	assert_int_equal(varlink_get_number(p, "null", &v), 0);
	assert_int_equal(varlink_get_number(p, "str", &v), -1);
	assert_int_equal(varlink_get_number(p, "bool", &v), -1);
	assert_true(v == -1);
	json_decref(p);
}

static void
test_get_bool(void **state)
{
	json_t *p;
	int	v;

	p = json_pack("{s:b, s:b, s:n, s:i, s:s}", "yes", 1, "no", 0, "null",
	    "one", 1, "str", "true");
	assert_non_null(p);

	v = -1;
	assert_int_equal(varlink_get_bool(p, "yes", &v), 1);
	assert_int_equal(v, 1);
	assert_int_equal(varlink_get_bool(p, "no", &v), 1);
	assert_int_equal(v, 0);

	v = 7;
	assert_int_equal(varlink_get_bool(p, "absent", &v), 0);
	assert_int_equal(varlink_get_bool(p, "null", &v), 0);
	assert_int_equal(varlink_get_bool(p, "one", &v), -1);
	assert_int_equal(varlink_get_bool(p, "str", &v), -1);
	assert_int_equal(v, 7);
	json_decref(p);
}

static void
test_method_interface(void **state)
{
	char buf[32];

	assert_int_equal(varlink_method_interface("io.mprocd.Status", buf,
			     sizeof buf),
	    0);
	assert_string_equal(buf, "io.mprocd");
	assert_int_equal(varlink_method_interface("org.varlink.service."
						  "GetInfo",
			     buf, sizeof buf),
	    0);
	assert_string_equal(buf, "org.varlink.service");
	assert_int_equal(varlink_method_interface("a.B", buf, sizeof buf), 0);
	assert_string_equal(buf, "a");

	assert_int_equal(varlink_method_interface("Status", buf, sizeof buf),
	    -1);
	assert_int_equal(varlink_method_interface("", buf, sizeof buf), -1);
	assert_int_equal(varlink_method_interface(".Status", buf, sizeof buf),
	    -1);

	/* "io.mprocd" needs 10 bytes with its NUL. */
	memset(buf, 'x', sizeof buf);
	assert_int_equal(varlink_method_interface("io.mprocd.Status", buf, 9),
	    -1);
	assert_int_equal(varlink_method_interface("io.mprocd.Status", buf, 10),
	    0);
	assert_string_equal(buf, "io.mprocd");
	assert_int_equal(varlink_method_interface("a.B", buf, 0), -1);
}

/* varlink_buf_string() and _int() read back by jansson as what went in. */
static void
test_buf_writer(void **state)
{
	static const char *const strings[] = { "", "plain", "a\"b\\c",
		"\x01\x1f\n\t\r\x7f", "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80",
		"</script>" };
	static const int64_t ints[] = { 0, 1, -1, 42, INT64_MAX, INT64_MIN };
	struct varlink_buf   b;
	json_error_t	     e;
	json_t		    *v;
	size_t		     i, len;
	char		    *text;

	(void)state;
	for (i = 0; i < sizeof strings / sizeof strings[0]; i++) {
		varlink_buf_init(&b);
		varlink_buf_string(&b, strings[i]);
		text = varlink_buf_finish(&b, &len);
		assert_int_equal(len, strlen(text) + 1);
		v = json_loads(text, JSON_DECODE_ANY, &e);
		assert_non_null(v);
		assert_string_equal(json_string_value(v), strings[i]);
		json_decref(v);
		free(text);
	}
	for (i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		varlink_buf_init(&b);
		varlink_buf_int(&b, ints[i]);
		text = varlink_buf_finish(&b, &len);
		v = json_loads(text, JSON_DECODE_ANY, &e);
		assert_non_null(v);
		assert_true(json_integer_value(v) == ints[i]);
		json_decref(v);
		free(text);
	}
	/* Pieces make one message; any value goes in whole. */
	varlink_buf_init(&b);
	varlink_buf_raw(&b, "{\"a\":");
	v = json_pack("{s:[i,s,n]}", "k", 1, "x");
	varlink_buf_json(&b, v);
	json_decref(v);
	varlink_buf_raw(&b, ",\"b\":");
	varlink_buf_json(&b, NULL);
	varlink_buf_raw(&b, "}");
	text = varlink_buf_finish(&b, &len);
	assert_string_equal(text, "{\"a\":{\"k\":[1,\"x\",null]},\"b\":null}");
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_writer),
		cmocka_unit_test(test_call_with_parameters),
		cmocka_unit_test(test_call_without_parameters),
		cmocka_unit_test(test_call_null_parameters),
		cmocka_unit_test(test_call_flags),
		cmocka_unit_test(test_call_wrong_types),
		cmocka_unit_test(test_call_method_without_dot),
		cmocka_unit_test(test_call_not_an_object),
		cmocka_unit_test(test_call_invalid_json),
		cmocka_unit_test(test_call_only_len_bytes),
		cmocka_unit_test(test_call_empty),
		cmocka_unit_test(test_call_duplicate_keys),
		cmocka_unit_test(test_reply_normal),
		cmocka_unit_test(test_reply_error),
		cmocka_unit_test(test_reply_continues),
		cmocka_unit_test(test_reply_bad),
		cmocka_unit_test(test_reply_failure_leaves_reply_empty),
		cmocka_unit_test(test_encode_call),
		cmocka_unit_test(test_encode_reply),
		cmocka_unit_test(test_encode_error),
		cmocka_unit_test(test_encode_escapes_nul),
		cmocka_unit_test(test_get_int),
		cmocka_unit_test(test_get_string),
		cmocka_unit_test(test_get_number),
		cmocka_unit_test(test_get_bool),
		cmocka_unit_test(test_method_interface),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
