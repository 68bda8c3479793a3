/* The table of mprocctl's commands. */
#include "config.h"

#include <string.h>

#include "mprocctl.h"

const struct ctl_cmd *const ctl_cmds[] = {
	&cmd_status_entry,
	NULL,
};

const struct ctl_cmd *
cmd_find(const char *name)
{
	size_t	 i;

	for (i = 0; ctl_cmds[i] != NULL; i++)
		if (strcmp(ctl_cmds[i]->name, name) == 0)
			return ctl_cmds[i];
	return NULL;
}
