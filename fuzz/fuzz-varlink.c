/*
 * libFuzzer target for lib/varlink.c and the base64 of lib/util.c: the
 * input is a byte stream as a client or the daemon would send it, split at
 * NUL bytes into messages. Each is parsed as a call and as a reply; what
 * parses must come out of the encoders and parse back to the same thing.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "varlink.h"
#include "fuzz.h"

/* Every typed getter on every parameter: none may crash or lie. */
static void
check_getters(json_t *params)
{
	const char *key, *s;
	json_t	   *v;
	int64_t	    i;
	double	    d;
	int	    b, r;

	json_object_foreach(params, key, v) {
		r = varlink_get_int(params, key, 0, INT64_MAX, &i);
		CHECK(r == -1 || (r == 0 && json_is_null(v)) ||
		    (r == 1 && json_is_integer(v) && i >= 0));
		r = varlink_get_int(params, key, -5, 5, &i);
		CHECK(r != 1 || (i >= -5 && i <= 5));
		r = varlink_get_string(params, key, &s);
		CHECK(r != 1 || s == json_string_value(v));
		r = varlink_get_number(params, key, &d);
		CHECK(r != 1 || json_is_number(v));
		r = varlink_get_bool(params, key, &b);
		CHECK(r != 1 || b == json_is_true(v));
	}
	CHECK(varlink_get_int(params, "\x01missing", 0, 1, &i) == 0);
}

/* stdin and output travel as base64: both ways must agree. */
static void
check_base64(const char *s, size_t len)
{
	uint8_t *data, *again;
	char	*enc;
	size_t	 n, n2;

	if ((data = util_base64_decode(s, len, &n)) == NULL)
		return;
	CHECK(n <= len / 4 * 3);
	enc = util_base64_encode(data, n);
	CHECK(strlen(enc) == len);
	again = util_base64_decode(enc, strlen(enc), &n2);
	CHECK(again != NULL && n2 == n && memcmp(again, data, n) == 0);
	free(again);
	free(enc);
	free(data);
}

static void
check_call(const char *msg, size_t len)
{
	struct varlink_call call, again;
	const char	   *errstr = NULL, *s;
	char		    iface[256], tiny[4], *enc;
	size_t		    n;

	if (varlink_call_parse(msg, len, &call, &errstr) != 0) {
		CHECK(errstr != NULL);
		CHECK(call.msg == NULL && call.method == NULL &&
		    call.params == NULL && call.flags == 0);
		return;
	}
	CHECK(strchr(call.method, '.') != NULL);
	CHECK(json_is_object(call.params));
	CHECK((call.flags & ~(VARLINK_MORE | VARLINK_ONEWAY)) == 0);
	if (varlink_method_interface(call.method, iface, sizeof iface) == 0)
		CHECK(strncmp(iface, call.method, strlen(iface)) == 0 &&
		    call.method[strlen(iface)] == '.');
	if (varlink_method_interface(call.method, tiny, sizeof tiny) == 0)
		CHECK(strlen(tiny) < sizeof tiny);
	check_getters(call.params);
	if (varlink_get_string(call.params, "stdin", &s) == 1)
		check_base64(s, strlen(s));

	/* What we would send for it parses back to the same call. */
	enc = varlink_call_encode(call.method, json_incref(call.params),
	    call.flags, &n);
	CHECK(n > 0 && enc[n - 1] == '\0' && strlen(enc) == n - 1);
	CHECK(varlink_call_parse(enc, n - 1, &again, &errstr) == 0);
	CHECK(strcmp(again.method, call.method) == 0);
	CHECK(again.flags == call.flags);
	CHECK(json_equal(again.params, call.params));
	varlink_call_free(&again);
	free(enc);
	varlink_call_free(&call);
	CHECK(call.msg == NULL);
}

static void
check_reply(const char *msg, size_t len)
{
	struct varlink_reply reply, again;
	const char	    *errstr = NULL;
	char		    *enc;
	size_t		     n;

	if (varlink_reply_parse(msg, len, &reply, &errstr) != 0) {
		CHECK(errstr != NULL);
		CHECK(reply.msg == NULL && reply.error == NULL &&
		    reply.params == NULL && reply.continues == 0);
		return;
	}
	CHECK(json_is_object(reply.params));
	check_getters(reply.params);
	if (reply.error != NULL)
		enc = varlink_error_encode(reply.error,
		    json_incref(reply.params), &n);
	else
		enc = varlink_reply_encode(json_incref(reply.params),
		    reply.continues ? VARLINK_CONTINUES : 0, &n);
	CHECK(n > 0 && enc[n - 1] == '\0' && strlen(enc) == n - 1);
	CHECK(varlink_reply_parse(enc, n - 1, &again, &errstr) == 0);
	CHECK((again.error == NULL) == (reply.error == NULL));
	CHECK(again.error == NULL || strcmp(again.error, reply.error) == 0);
	/* An error reply never continues. */
	CHECK(again.continues == (reply.error == NULL && reply.continues));
	CHECK(json_equal(again.params, reply.params));
	varlink_reply_free(&again);
	free(enc);
	varlink_reply_free(&reply);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nul;
	char	   *enc;
	uint8_t	   *dec;
	size_t	    len, n;
	static int  init;

	if (!init) {
		log_setlevel(LOG_CRIT);
		init = 1;
	}
	/* Messages as the control socket splits them; the last may lack its NUL. */
	while (p < end) {
		nul = memchr(p, '\0', (size_t)(end - p));
		len = nul != NULL ? (size_t)(nul - p) : (size_t)(end - p);
		check_call(p, len);
		check_reply(p, len);
		p += len + 1;
	}

	/* The whole input as base64 text, and as bytes to encode. */
	check_base64((const char *)data, size);
	enc = util_base64_encode(data, size);
	CHECK(strlen(enc) == (size + 2) / 3 * 4);
	dec = util_base64_decode(enc, strlen(enc), &n);
	CHECK(dec != NULL && n == size && memcmp(dec, data, size) == 0);
	free(dec);
	free(enc);
	return 0;
}
