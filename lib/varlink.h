/*
 * Varlink messages (varlink.org): one JSON object each, ended by a NUL byte.
 * Parsing and encoding only; the daemon and mprocctl own their sockets.
 */
#ifndef MPROCD_VARLINK_H
#define MPROCD_VARLINK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define VARLINK_MORE	  0x1
#define VARLINK_ONEWAY	  0x2
#define VARLINK_CONTINUES 0x4

#define VARLINK_ERR_METHOD    "org.varlink.service.MethodNotFound"
#define VARLINK_ERR_INTERFACE "org.varlink.service.InterfaceNotFound"
#define VARLINK_ERR_PARAM     "org.varlink.service.InvalidParameter"

/* A parsed call. method and params point into msg, which owns them. */
struct varlink_call {
	json_t	   *msg;
	const char *method;
	json_t	   *params;
	int	    flags;
};

/* A parsed reply: error is NULL for a normal reply. */
struct varlink_reply {
	json_t	   *msg;
	const char *error;
	json_t	   *params;
	int	    continues;
};

int  varlink_call_parse(const char *, size_t, struct varlink_call *,
     const char **);
void varlink_call_free(struct varlink_call *);
int  varlink_reply_parse(const char *, size_t, struct varlink_reply *,
     const char **);
void varlink_reply_free(struct varlink_reply *);

/*
 * Encoders return a malloc'd message including its NUL terminator; *len
 * counts the NUL. They steal the reference to params (which may be NULL).
 */
char *varlink_call_encode(const char *, json_t *, int, size_t *);
char *varlink_reply_encode(json_t *, int, size_t *);
char *varlink_error_encode(const char *, json_t *, size_t *);

/*
 * A message written by hand, for the hot paths where building a json_t
 * only to dump it costs more than the work: varlink_buf_init(), then the
 * parts (strings escaped, integers, any json_t, raw text), then
 * varlink_buf_finish() for the text with its NUL.
 */
struct varlink_buf {
	char  *data;
	size_t len;
	size_t size;
};

void  varlink_buf_init(struct varlink_buf *);
void  varlink_buf_add(struct varlink_buf *, const void *, size_t);
void  varlink_buf_raw(struct varlink_buf *, const char *);
void  varlink_buf_string(struct varlink_buf *, const char *);
void  varlink_buf_int(struct varlink_buf *, int64_t);
void  varlink_buf_json(struct varlink_buf *, const json_t *);
char *varlink_buf_finish(struct varlink_buf *, size_t *);

/*
 * Typed parameter access. Each returns 1 if present and of the right type,
 * 0 if absent or null (optional fields), -1 if present with a wrong type or
 * out of range.
 */
int varlink_get_int(json_t *, const char *, int64_t, int64_t, int64_t *);
int varlink_get_string(json_t *, const char *, const char **);
int varlink_get_number(json_t *, const char *, double *);
int varlink_get_bool(json_t *, const char *, int *);

/* The interface part of "io.mprocd.Status": copies up to the last dot. */
int varlink_method_interface(const char *, char *, size_t);

#endif
