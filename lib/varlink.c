#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "varlink.h"
#include "xmalloc.h"

static json_t *
varlink_load_object(const char *buf, size_t len, const char **errstr)
{
	json_t	    *msg;
	json_error_t err;

	if (len == 0) {
		*errstr = "empty message";
		return NULL;
	}
	msg = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
	if (msg == NULL) {
		*errstr = "message is not valid JSON";
		return NULL;
	}
	if (!json_is_object(msg)) {
		json_decref(msg);
		*errstr = "message is not a JSON object";
		return NULL;
	}
	return msg;
}

/* A call: {"method": "a.b.C", "parameters": {...}, "more": bool, ...}. */
int
varlink_call_parse(const char *buf, size_t len, struct varlink_call *call,
    const char **errstr)
{
	json_t *msg, *v;

	memset(call, 0, sizeof *call);
	if ((msg = varlink_load_object(buf, len, errstr)) == NULL)
		return -1;
	v = json_object_get(msg, "method");
	if (!json_is_string(v) || strchr(json_string_value(v), '.') == NULL) {
		*errstr = "call has no \"method\" string of the form "
			  "interface.Method";
		goto fail;
	}
	call->method = json_string_value(v);
	v = json_object_get(msg, "parameters");
	if (v != NULL && !json_is_object(v) && !json_is_null(v)) {
		*errstr = "\"parameters\" is not an object";
		goto fail;
	}
	if (v == NULL || json_is_null(v)) {
		v = json_object();
		json_object_set_new(msg, "parameters", v);
	}
	call->params = v;
	if ((v = json_object_get(msg, "more")) != NULL) {
		if (!json_is_boolean(v)) {
			*errstr = "\"more\" is not a boolean";
			goto fail;
		}
		if (json_is_true(v))
			call->flags |= VARLINK_MORE;
	}
	if ((v = json_object_get(msg, "oneway")) != NULL) {
		if (!json_is_boolean(v)) {
			*errstr = "\"oneway\" is not a boolean";
			goto fail;
		}
		if (json_is_true(v))
			call->flags |= VARLINK_ONEWAY;
	}
	call->msg = msg;
	return 0;

fail:
	json_decref(msg);
	memset(call, 0, sizeof *call);
	return -1;
}

void
varlink_call_free(struct varlink_call *call)
{
	json_decref(call->msg);
	memset(call, 0, sizeof *call);
}

int
varlink_reply_parse(const char *buf, size_t len, struct varlink_reply *reply,
    const char **errstr)
{
	json_t *msg, *v;

	memset(reply, 0, sizeof *reply);
	if ((msg = varlink_load_object(buf, len, errstr)) == NULL)
		return -1;
	if ((v = json_object_get(msg, "error")) != NULL) {
		if (!json_is_string(v)) {
			*errstr = "\"error\" is not a string";
			goto fail;
		}
		reply->error = json_string_value(v);
	}
	v = json_object_get(msg, "parameters");
	if (v == NULL || json_is_null(v)) {
		v = json_object();
		json_object_set_new(msg, "parameters", v);
	} else if (!json_is_object(v)) {
		*errstr = "\"parameters\" is not an object";
		goto fail;
	}
	reply->params = v;
	reply->continues = json_is_true(json_object_get(msg, "continues"));
	reply->msg = msg;
	return 0;

fail:
	json_decref(msg);
	memset(reply, 0, sizeof *reply);
	return -1;
}

void
varlink_reply_free(struct varlink_reply *reply)
{
	json_decref(reply->msg);
	memset(reply, 0, sizeof *reply);
}

void
varlink_buf_init(struct varlink_buf *b)
{
	b->size = 256;
	b->len = 0;
	b->data = xmalloc(b->size);
}

/* Appends n bytes (always with room for a NUL after them). */
void
varlink_buf_add(struct varlink_buf *b, const void *part, size_t n)
{
	if (b->size - b->len < n + 1) {
		while (b->size - b->len < n + 1)
			b->size *= 2;
		b->data = xreallocarray(b->data, 1, b->size);
	}
	memcpy(b->data + b->len, part, n);
	b->len += n;
}

void
varlink_buf_raw(struct varlink_buf *b, const char *s)
{
	varlink_buf_add(b, s, strlen(s));
}

/*
 * s as a JSON string. s must be valid UTF-8 (it came through jansson, or
 * from us): only '"', '\\' and control characters need escaping. jansson
 * decodes every character, which made it the largest cost of a call.
 */
void
varlink_buf_string(struct varlink_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char	 *run = s;
	char		  esc[6] = { '\\', 'u', '0', '0', 0, 0 };
	unsigned char	  c;

	varlink_buf_add(b, "\"", 1);
	for (; (c = (unsigned char)*s) != '\0'; s++) {
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		varlink_buf_add(b, run, (size_t)(s - run));
		run = s + 1;
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			varlink_buf_add(b, esc, 2);
			esc[1] = 'u';
		} else {
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			varlink_buf_add(b, esc, 6);
		}
	}
	varlink_buf_add(b, run, (size_t)(s - run));
	varlink_buf_add(b, "\"", 1);
}

void
varlink_buf_int(struct varlink_buf *b, int64_t v)
{
	char	 digits[24], *p = digits + sizeof digits;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	varlink_buf_add(b, p, (size_t)(digits + sizeof digits - p));
}

static int
varlink_buf_json_cb(const char *part, size_t n, void *arg)
{
	varlink_buf_add(arg, part, n);
	return 0;
}

/* v as JSON (any value; null for NULL). */
void
varlink_buf_json(struct varlink_buf *b, const json_t *v)
{
	if (v == NULL)
		varlink_buf_raw(b, "null");
	else if (json_dump_callback(v, varlink_buf_json_cb, b,
		     JSON_COMPACT | JSON_ENCODE_ANY) != 0)
		fatalx("varlink: cannot encode a value");
}

/* The message, NUL included, and its length with the NUL; b is emptied. */
char *
varlink_buf_finish(struct varlink_buf *b, size_t *len)
{
	char *s = b->data;

	s[b->len] = '\0';
	*len = b->len + 1;
	memset(b, 0, sizeof *b);
	return s;
}

/*
 * Serialises msg (and drops it) with the NUL terminator, in one pass: a
 * json_dumpb() to learn the size first doubled the cost of every reply.
 */
static char *
varlink_encode(json_t *msg, size_t *len)
{
	struct varlink_buf b;

	varlink_buf_init(&b);
	varlink_buf_json(&b, msg);
	json_decref(msg);
	return varlink_buf_finish(&b, len);
}

char *
varlink_call_encode(const char *method, json_t *params, int flags, size_t *len)
{
	json_t *msg = json_object();

	json_object_set_new(msg, "method", json_string(method));
	json_object_set_new(msg, "parameters",
	    params != NULL ? params : json_object());
	if (flags & VARLINK_MORE)
		json_object_set_new(msg, "more", json_true());
	if (flags & VARLINK_ONEWAY)
		json_object_set_new(msg, "oneway", json_true());
	return varlink_encode(msg, len);
}

char *
varlink_reply_encode(json_t *params, int flags, size_t *len)
{
	json_t *msg = json_object();

	json_object_set_new(msg, "parameters",
	    params != NULL ? params : json_object());
	if (flags & VARLINK_CONTINUES)
		json_object_set_new(msg, "continues", json_true());
	return varlink_encode(msg, len);
}

char *
varlink_error_encode(const char *error, json_t *params, size_t *len)
{
	json_t *msg = json_object();

	json_object_set_new(msg, "error", json_string(error));
	json_object_set_new(msg, "parameters",
	    params != NULL ? params : json_object());
	return varlink_encode(msg, len);
}

int
varlink_get_int(json_t *params, const char *name, int64_t min, int64_t max,
    int64_t *out)
{
	json_t	  *v = json_object_get(params, name);
	json_int_t i;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return -1;
	i = json_integer_value(v);
	if (i < min || i > max)
		return -1;
	*out = i;
	return 1;
}

int
varlink_get_string(json_t *params, const char *name, const char **out)
{
	json_t *v = json_object_get(params, name);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	*out = json_string_value(v);
	return 1;
}

int
varlink_get_number(json_t *params, const char *name, double *out)
{
	json_t *v = json_object_get(params, name);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return -1;
	*out = json_number_value(v);
	return 1;
}

int
varlink_get_bool(json_t *params, const char *name, int *out)
{
	json_t *v = json_object_get(params, name);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return -1;
	*out = json_is_true(v);
	return 1;
}

int
varlink_method_interface(const char *method, char *buf, size_t len)
{
	const char *dot = strrchr(method, '.');
	size_t	    n;

	if (dot == NULL || dot == method)
		return -1;
	n = (size_t)(dot - method);
	if (n >= len)
		return -1;
	memcpy(buf, method, n);
	buf[n] = '\0';
	return 0;
}
