/* mprocctl reload: have mprocd re-read its configuration file. */
#include "config.h"

#include "mprocctl.h"

static int cmd_reload_exec(struct ctl *, int, char **);

const struct ctl_cmd cmd_reload_entry = {
	.name = "reload",
	.usage = "",
	.help = "have mprocd re-read its configuration file",
	.details =
	    "Prints nothing when the new configuration is in effect. If the file is\n"
	    "invalid, mprocd keeps the old one and mprocctl prints why and exits 125.\n"
	    "Needs root or mprocd's own user. With --json, prints the reply ({}).\n",
	.minargs = 0,
	.maxargs = 0,
	.exec = cmd_reload_exec,
};

static int
cmd_reload_exec(struct ctl *ctl, int argc, char **argv)
{
	struct client *c;
	json_t	      *r;

	c = client_connect(ctl->socket);
	r = client_call(c, "io.mprocd.Reload", NULL);
	client_free(c);
	if (ctl->json)
		mprocctl_print_json(r);
	json_decref(r);
	return 0;
}
