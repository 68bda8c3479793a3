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

#define PROTO_VERSION		2
#define PROTO_HDRLEN		8
#define PROTO_MAX_PAYLOAD	(64U << 20)

enum proto_type {
	/* worker -> supervisor */
	PROTO_HELLO = 1,	/* u32 version, u32 pid */
	PROTO_JOB_STARTED,	/* u64 job, u32 pid */
	PROTO_JOB_OUTPUT,	/* u64 job, u32 stream (1, 2), bytes */
	PROTO_JOB_DONE,		/* u64 job, u32 wait status, u32 flags */
	/* supervisor -> worker */
	/*
	 * u64 job, u64 max_output, str cwd, u32 argc, str argv[argc],
	 * u32 envc, str env[envc], u32 has_stdin, bytes stdin
	 */
	PROTO_JOB_START = 64,
	PROTO_JOB_SIGNAL,	/* u64 job, u32 signal */
	PROTO_EXIT,		/* (empty): finish and exit 0 */
	PROTO_LOG_LEVEL,	/* u32 level: a reload changed log_level */
	/*
	 * u32 slot: a spare (started with --spare, in no slot) becomes the
	 * worker POOL/slot and says HELLO again under that name.
	 */
	PROTO_ASSIGN,
};

/* JOB_DONE flags. */
#define PROTO_DONE_TRUNCATED	0x1	/* output went past max_output */

struct proto_hdr {
	uint32_t	 type;
	uint32_t	 len;
};

/* A growable payload being written. */
struct proto_buf {
	uint8_t		*data;
	size_t		 len;
	size_t		 size;
};

/* A payload being read; a read past the end sets error and yields zeros. */
struct proto_reader {
	const uint8_t	*data;
	size_t		 len;
	size_t		 off;
	int		 error;
};

void	 proto_buf_init(struct proto_buf *);
void	 proto_buf_free(struct proto_buf *);
void	 proto_put_u32(struct proto_buf *, uint32_t);
void	 proto_put_u64(struct proto_buf *, uint64_t);
void	 proto_put_bytes(struct proto_buf *, const void *, size_t);
void	 proto_put_str(struct proto_buf *, const char *);

void	 proto_reader_init(struct proto_reader *, const void *, size_t);
uint32_t proto_get_u32(struct proto_reader *);
uint64_t proto_get_u64(struct proto_reader *);
const void *proto_get_bytes(struct proto_reader *, size_t *);
char	*proto_get_str(struct proto_reader *);

/* Parses a header; -1 if its length is out of bounds. */
int	 proto_hdr_parse(const uint8_t *, struct proto_hdr *);
void	 proto_hdr_pack(uint8_t *, uint32_t, uint32_t);

/* Blocking I/O for the worker: whole frames or -1. */
int	 proto_send(int, uint32_t, const void *, size_t);
int	 proto_recv(int, struct proto_hdr *, uint8_t **);

#endif
