/* mprocctl's private declarations, one heading per file. */
#ifndef MPROCCTL_H
#define MPROCCTL_H

#include <getopt.h>
#include <poll.h>
#include <stddef.h>

#include <jansson.h>

#include "varlink.h"

/* Exit statuses of mprocctl itself; a job's own status passes through. */
#define CTL_EXIT_SOME_FAILED 1	 /* several jobs, not all succeeded */
#define CTL_EXIT_TIMEOUT     124 /* job timed out, or Wait did */
#define CTL_EXIT_FAILURE     125 /* cannot connect, error reply, usage */
#define CTL_EXIT_SIGNAL	     128 /* plus the signal's number */

/* What mprocd takes in a job's after and lock (DESIGN.md §5). */
#define CTL_MAX_AFTER 1000 /* ids */
#define CTL_MAX_LOCK  256  /* bytes */

/* mprocctl.c */
struct ctl {
	const char *socket;
	int	    json;
};

struct ctl_cmd {
	const char *name;
	const char *usage;
	const char *help;    /* one line, for mprocctl --help */
	const char *details; /* options and exit status, or NULL */
	int	    minargs;
	int	    maxargs; /* -1: any */
	int (*exec)(struct ctl *, int, char **);
};

void mprocctl_usage_error(const struct ctl_cmd *, const char *, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void mprocctl_fail(const char *, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void mprocctl_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void mprocctl_print_json(json_t *);
int  mprocctl_getopt(const struct ctl_cmd *, int, char **, const char *);
int  mprocctl_getopt_long(const struct ctl_cmd *, int, char **, const char *,
     const struct option *);
void mprocctl_check_nargs(const struct ctl_cmd *, int, int, int);
void mprocctl_dep_option(const struct ctl_cmd *, int, const char *, json_t *);
json_int_t  mprocctl_parse_id(const struct ctl_cmd *, const char *);
void	    mprocctl_add_id(json_t *, json_int_t);
double	    mprocctl_parse_seconds(const struct ctl_cmd *, int, const char *);
json_t	   *mprocctl_string(const struct ctl_cmd *, const char *, const char *);
json_t	   *mprocctl_string_array(const struct ctl_cmd *, char **, int,
	const char *);
json_t	   *mprocctl_cwd(void);
const char *mprocctl_printable(const char *, char *, size_t);
void	    mprocctl_catch_signals(void (*)(void *), void *);
int	    mprocctl_poll(struct pollfd *, nfds_t, int);

/* cmd.c */
extern const struct ctl_cmd *const cmd_table[];
const struct ctl_cmd		  *cmd_find(const char *);

/* cmd-*.c */
extern const struct ctl_cmd cmd_call_entry;
extern const struct ctl_cmd cmd_cancel_entry;
extern const struct ctl_cmd cmd_follow_entry;
extern const struct ctl_cmd cmd_get_entry;
extern const struct ctl_cmd cmd_list_entry;
extern const struct ctl_cmd cmd_map_entry;
extern const struct ctl_cmd cmd_reload_entry;
extern const struct ctl_cmd cmd_status_entry;
extern const struct ctl_cmd cmd_submit_entry;
extern const struct ctl_cmd cmd_wait_entry;

/* cmd-call.c */
json_t *cmd_call_arg(const char *);
json_t *cmd_call_pool(json_t *, const char *);
int	cmd_call_write_result(json_t *, int);

/* cmd-cancel.c */
#define CMD_CANCEL_CONNS 8
void cmd_cancel_jobs(const char *, const json_int_t *, size_t,
    void (*)(void *, size_t, struct varlink_reply *), void *);

/* cmd-follow.c */
struct client;
int cmd_follow_read(struct ctl *, struct client *, json_int_t, const char *);

/* client.c */
struct client *client_connect(const char *);
void	       client_free(struct client *);
int	       client_fd(struct client *);
int	       client_buffered(struct client *);
size_t	       client_unsent(struct client *);
void	       client_hint(struct client *, const char *);
void	       client_queue_text(struct client *, const char *, size_t);
void	       client_queue(struct client *, const char *, json_t *, int);
void	       client_write(struct client *);
void	       client_send(struct client *, const char *, json_t *, int);
size_t	       client_read(struct client *);
void	       client_recv(struct client *, struct varlink_reply *);
void	       client_skip(struct client *);
json_t	      *client_call(struct client *, const char *, json_t *);
void	       client_fail_reply(const char *, struct varlink_reply *)
    __attribute__((noreturn));
const char *client_error_message(const char *, struct varlink_reply *, char *,
    size_t);
const char *client_default_socket(void);

/* format.c */
#define FORMAT_DESCLEN 160
int	    format_job_state_is(json_t *, const char *);
int	    format_job_finished(json_t *);
int	    format_exit_status(json_t *);
int	    format_jobs_status(json_t *, size_t);
json_int_t  format_job_id(json_t *);
const char *format_describe(json_t *, char *, size_t);
void	    format_warn_unrun(json_t *);
const char *format_signame(int, char *, size_t);
const char *format_duration(json_t *, char *, size_t);
void	    format_print_table(json_t *);
int	    format_write_output(json_t *, int);
int	    format_write_all(int, const void *, size_t);
json_t	   *format_check_jobs(json_t *, const char *);

/* progress.c */
#define PROGRESS_AUTO 0
#define PROGRESS_ON   0x100 /* --progress, as mprocctl_getopt_long() gives it */
#define PROGRESS_OFF  0x101 /* --no-progress */
extern const struct option progress_options[];
struct progress;
int		 progress_wanted(int, int);
struct progress *progress_new(int, const char *, int (*)(void *, json_int_t),
    void *);
void		 progress_free(struct progress *);
void		 progress_total(struct progress *, size_t, int);
void		 progress_done(struct progress *, int);
void		 progress_hide(struct progress *);
void		 progress_hide_current(void);
void		 progress_output(struct progress *, json_t *);
void		 progress_pollfd(struct progress *, struct pollfd *);
int		 progress_timeout(struct progress *, int);
void		 progress_update(struct progress *, const struct pollfd *);

#endif
