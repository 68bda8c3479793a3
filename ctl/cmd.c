/* The table of mprocctl's commands. */
#include "config.h"

#include <string.h>

#include "mprocctl.h"

/* In the order of mprocctl --help and the manual. */
const struct ctl_cmd *const cmd_table[] = {
	&cmd_submit_entry,
	&cmd_map_entry,
	&cmd_call_entry,
	&cmd_wait_entry,
	&cmd_follow_entry,
	&cmd_get_entry,
	&cmd_list_entry,
	&cmd_status_entry,
	&cmd_cancel_entry,
	&cmd_reload_entry,
	NULL,
};

const struct ctl_cmd *
cmd_find(const char *name)
{
	size_t i;

	for (i = 0; cmd_table[i] != NULL; i++)
		if (strcmp(cmd_table[i]->name, name) == 0)
			return cmd_table[i];
	return NULL;
}
