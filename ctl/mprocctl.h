/* mprocctl's private declarations, one heading per file. */
#ifndef MPROCCTL_H
#define MPROCCTL_H

#include <jansson.h>

#include "varlink.h"

/* Exit status when mprocctl itself fails (cannot connect, bad usage...). */
#define CTL_EXIT_FAILURE	125

/* mprocctl.c */
struct ctl {
	const char	*socket;
	int		 json;
};

struct ctl_cmd {
	const char	*name;
	const char	*usage;
	const char	*help;
	int		 minargs;
	int		 maxargs;	/* -1: any */
	int		(*exec)(struct ctl *, int, char **);
};

void	 ctl_usage_error(const struct ctl_cmd *, const char *, ...)
	    __attribute__((format(printf, 2, 3), noreturn));
void	 ctl_fail(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	 ctl_print_json(json_t *);

/* cmd.c */
extern const struct ctl_cmd *const ctl_cmds[];
const struct ctl_cmd *cmd_find(const char *);

/* cmd-status.c */
extern const struct ctl_cmd cmd_status_entry;

/* client.c */
struct client;
struct client	*client_connect(const char *);
void		 client_free(struct client *);
int		 client_send(struct client *, const char *, json_t *, int);
int		 client_recv(struct client *, struct varlink_reply *);
json_t		*client_call(struct client *, const char *, json_t *);
const char	*client_default_socket(void);

#endif
