/*
 * Supervisor <-> worker frames over a socketpair: an 8-byte header (type,
 * payload length, both host-endian: the two ends are one binary on one host)
 * and a payload of fields written with the proto_put_* helpers.
 *
 * Bump PROTO_VERSION when this changes: a worker says its version in HELLO
 * and the supervisor refuses a worker that speaks another.
 */
#ifndef MPROCD_PROTO_H
#define MPROCD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION	  3
#define PROTO_HDRLEN	  8
#define PROTO_MAX_PAYLOAD (64U << 20)

enum proto_type {
	/* worker -> supervisor */
	PROTO_HELLO = 1,   /* u32 version, u32 pid */
	PROTO_JOB_STARTED, /* u64 job (0: a worker's program), u32 pid */
	PROTO_JOB_OUTPUT,  /* u64 job, u32 stream (1, 2), bytes */
	PROTO_JOB_DONE,	   /* u64 job, u32 wait status, u32 flags */
	/* supervisor -> worker */
	/*
	 * u64 job, u64 max_output, str cwd, u32 argc, str argv[argc],
	 * u32 envc, str env[envc], u32 has_stdin, bytes stdin
	 */
	PROTO_JOB_START = 64,
	PROTO_JOB_SIGNAL, /* u64 job, u32 signal */
	PROTO_EXIT,	  /* (empty): finish and exit 0 */
	PROTO_LOG_LEVEL,  /* u32 level: a reload changed log_level */
	/*
	 * u32 slot: a spare (started with --spare, in no slot) becomes the
	 * worker POOL/slot and says HELLO again under that name.
	 */
	PROTO_ASSIGN,
};

/* JOB_DONE flags. */
#define PROTO_DONE_TRUNCATED 0x1 /* output went past max_output */

struct proto_hdr {
	uint32_t type;
	uint32_t len;
};

/* A growable payload being written. */
struct proto_buf {
	uint8_t *data;
	size_t	 len;
	size_t	 size;
};

/* A payload being read; a read past the end sets error and yields zeros. */
struct proto_reader {
	const uint8_t *data;
	size_t	       len;
	size_t	       off;
	int	       error;
};

void proto_buf_init(struct proto_buf *);
void proto_buf_free(struct proto_buf *);
void proto_put_u32(struct proto_buf *, uint32_t);
void proto_put_u64(struct proto_buf *, uint64_t);
void proto_put_bytes(struct proto_buf *, const void *, size_t);
void proto_put_str(struct proto_buf *, const char *);

void	    proto_reader_init(struct proto_reader *, const void *, size_t);
uint32_t    proto_get_u32(struct proto_reader *);
uint64_t    proto_get_u64(struct proto_reader *);
const void *proto_get_bytes(struct proto_reader *, size_t *);
char	   *proto_get_str(struct proto_reader *);

/*
 * Each frame's payload, packed by its sender and unpacked by its reader
 * with the pair below. proto_pack_*() start b afresh; the caller frees it.
 * proto_unpack_*() return 0, or -1 if the payload is too short or a string
 * in it is bad. What they unpack points into the payload, except the
 * strings of JOB_START, which proto_job_start_free() frees.
 */
struct proto_hello {
	uint32_t version;
	uint32_t pid;
};

struct proto_job_started {
	uint64_t id;
	uint32_t pid;
};

/* On a stream: output past max_output was dropped before this piece. */
#define PROTO_OUTPUT_AFTER_LOSS 0x100

struct proto_job_output {
	uint64_t    id;
	uint32_t    stream; /* 1 stdout, 2 stderr; PROTO_OUTPUT_AFTER_LOSS */
	const void *data;
	size_t	    len;
};

struct proto_job_done {
	uint64_t id;
	uint32_t status; /* wait status */
	uint32_t flags;	 /* PROTO_DONE_* */
};

struct proto_job_start {
	uint64_t       id;
	uint64_t       max_output;
	char	      *cwd;
	char	     **argv;	  /* NULL-terminated, at least one */
	char	     **env;	  /* NULL-terminated; NULL: none */
	int	       has_stdin; /* unpacked; packed: stdin_data set */
	const uint8_t *stdin_data;
	size_t	       stdin_len;
};

struct proto_job_signal {
	uint64_t id;
	uint32_t signal;
};

void proto_pack_hello(struct proto_buf *, uint32_t, uint32_t);
int  proto_unpack_hello(const void *, size_t, struct proto_hello *);
void proto_pack_job_started(struct proto_buf *, uint64_t, uint32_t);
int  proto_unpack_job_started(const void *, size_t, struct proto_job_started *);
void proto_pack_job_output(struct proto_buf *, uint64_t, uint32_t, const void *,
    size_t);
int  proto_unpack_job_output(const void *, size_t, struct proto_job_output *);
void proto_pack_job_done(struct proto_buf *, uint64_t, uint32_t, uint32_t);
int  proto_unpack_job_done(const void *, size_t, struct proto_job_done *);
void proto_pack_job_start(struct proto_buf *, const struct proto_job_start *);
int  proto_unpack_job_start(const void *, size_t, struct proto_job_start *);
void proto_job_start_free(struct proto_job_start *);
void proto_pack_job_signal(struct proto_buf *, uint64_t, uint32_t);
int  proto_unpack_job_signal(const void *, size_t, struct proto_job_signal *);
void proto_pack_log_level(struct proto_buf *, uint32_t);
int  proto_unpack_log_level(const void *, size_t, uint32_t *);
void proto_pack_assign(struct proto_buf *, uint32_t);
int  proto_unpack_assign(const void *, size_t, uint32_t *);

/* Parses a header; -1 if its length is out of bounds. */
int  proto_hdr_parse(const uint8_t *, struct proto_hdr *);
void proto_hdr_pack(uint8_t *, uint32_t, uint32_t);

/* Blocking I/O for the worker: whole frames or -1. */
int proto_send(int, uint32_t, const void *, size_t);
int proto_recv(int, struct proto_hdr *, uint8_t **);

#endif
