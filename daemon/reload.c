/*
 * Reload (SIGHUP, the Reload method, systemctl reload): the configuration
 * file is read and checked whole, then applied all at once or not at all.
 * Pools grow, shrink, appear and go as the file says; no job is dropped,
 * retried or restarted.
 */
#include "config.h"

#include <sys/stat.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mprocd.h"
#include "util.h"
#include "xmalloc.h"

/* The config file in a reload's reason: what was wrong, all of it. */
static void
reload_config_errors(const struct config_errors *errs, char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < errs->n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
		    i > 0 ? "; " : "", errs->v[i]);
}

/* What a reload cannot change in a running mprocd; NULL if none. */
static const char *
reload_refused(struct config *nc, char *buf, size_t len)
{
	const char *errstr;

	if (strcmp(nc->log_target, cfg->log_target) != 0) {
		snprintf(buf, len,
		    "log_target cannot change on reload (it is "
		    "%s); restart mprocd to use %s",
		    cfg->log_target, nc->log_target);
		return buf;
	}
	if (strcmp(nc->state, cfg->state) != 0 ||
	    nc->durability_power != cfg->durability_power) {
		snprintf(buf, len,
		    "state and durability cannot change on reload (they are "
		    "%s, %s); restart mprocd for %s, %s",
		    cfg->state, cfg->durability_power ? "power" : "crash",
		    nc->state, nc->durability_power ? "power" : "crash");
		return buf;
	}
	if (mprocd_socket_override != NULL) {
		free(nc->socket);
		nc->socket = xstrdup(mprocd_socket_override);
	} else if (nc->socket == NULL &&
	    (nc->socket = config_default_socket(&errstr)) == NULL) {
		snprintf(buf, len, "%s", errstr);
		return buf;
	}
	if (!control_is_activated() && strcmp(nc->socket, cfg->socket) != 0) {
		snprintf(buf, len,
		    "socket cannot change on reload (it is %s); "
		    "restart mprocd to listen on %s",
		    cfg->socket, nc->socket);
		return buf;
	}
	return NULL;
}

static void
reload_log_change(const struct config_change *ch)
{
	struct log_ctx ctx = { ch->pool, NULL, 0 };

	switch (ch->kind) {
	case POOL_ADDED:
		clog_info(&ctx, "pool added" LOG_KV "workers=%u", ch->to);
		break;
	case POOL_REMOVED:
		clog_info(&ctx,
		    "pool removed from the configuration: it takes "
		    "no more jobs and goes once its jobs are done");
		break;
	case POOL_GROWS:
	case POOL_SHRINKS:
		clog_info(&ctx,
		    "pool resized%s" LOG_KV "from=%u" LOG_KV "to=%u",
		    ch->limits ? ", other settings changed" : "", ch->from,
		    ch->to);
		break;
	case POOL_KEPT:
		if (ch->limits)
			clog_info(&ctx,
			    "pool settings changed, for jobs that "
			    "start from now on");
		break;
	}
}

/* Whether two pools' settings differ in anything but their workers. */
static int
reload_limits_differ(const struct pool_config *a, const struct pool_config *b)
{
	return a->spare_workers != b->spare_workers ||
	    a->queue_limit != b->queue_limit ||
	    a->job_timeout != b->job_timeout ||
	    a->kill_grace != b->kill_grace ||
	    a->max_jobs_per_worker != b->max_jobs_per_worker ||
	    a->max_output != b->max_output || a->retries != b->retries ||
	    a->restart_delay != b->restart_delay ||
	    a->restart_delay_max != b->restart_delay_max ||
	    a->crash_limit != b->crash_limit ||
	    a->crash_interval != b->crash_interval ||
	    a->start_timeout != b->start_timeout ||
	    a->max_memory != b->max_memory;
}

/*
 * What a reload from old to new does to the pools: each pool of new (kept,
 * grown, shrunk, with other limits, or added), then each pool of old that
 * new lacks (removed). Returns how many; *out is allocated.
 */
size_t
reload_diff(const struct config *old, const struct config *new,
    struct config_change       **out)
{
	const struct pool_config *pc, *was;
	struct config_change	 *v;
	size_t			  n = 0, cap = 0;

	TAILQ_FOREACH(pc, &new->pools, entry)
		cap++;
	TAILQ_FOREACH(pc, &old->pools, entry)
		cap++;
	v = xcalloc(cap + 1, sizeof *v);
	TAILQ_FOREACH(pc, &new->pools, entry) {
		v[n].pool = pc->name;
		v[n].to = pc->workers;
		if ((was = config_find_pool(old, pc->name)) == NULL)
			v[n].kind = POOL_ADDED;
		else {
			v[n].from = was->workers;
			v[n].limits = reload_limits_differ(was, pc);
			v[n].program = !util_strv_equal(was->program,
			    pc->program);
			v[n].kind = pc->workers > was->workers ? POOL_GROWS
			    : pc->workers < was->workers       ? POOL_SHRINKS
							       : POOL_KEPT;
		}
		n++;
	}
	TAILQ_FOREACH(pc, &old->pools, entry)
		if (config_find_pool(new, pc->name) == NULL) {
			v[n].pool = pc->name;
			v[n].kind = POOL_REMOVED;
			v[n].from = pc->workers;
			n++;
		}
	*out = v;
	return n;
}

/*
 * Applies a valid configuration nc, which replaces cfg: pools first, then
 * the settings of mprocd itself.
 */
void
reload_apply(struct config *nc)
{
	struct config_change *ch;
	struct pool_config   *pc;
	struct pool	     *p;
	size_t		      i, n;
	unsigned int	      nworkers = 0, npools = 0;

	n = reload_diff(cfg, nc, &ch);
	for (i = 0; i < n; i++) {
		reload_log_change(&ch[i]);
		p = pool_find(ch[i].pool);
		switch (ch[i].kind) {
		case POOL_REMOVED:
			if (p != NULL)
				pool_remove(p);
			break;
		default:
			pc = config_find_pool(nc, ch[i].pool);
			if (p == NULL) {
				p = pool_new(pc);
				pool_start(p);
			} else
				pool_apply(p, pc);
			break;
		}
	}
	TAILQ_FOREACH(pc, &nc->pools, entry) {
		nworkers += pc->workers;
		npools++;
	}
	if (!control_is_activated() && nc->socket_mode != cfg->socket_mode &&
	    chmod(cfg->socket, nc->socket_mode) != 0)
		log_warn("socket_mode: chmod %s", cfg->socket);
	if (nc->log_level != cfg->log_level) {
		log_setlevel(nc->log_level);
		pool_set_log_level(nc->log_level);
	}
	log_notice("configuration reloaded" LOG_KV "pools=%u" LOG_KV
		   "workers=%u" LOG_KV "path=%s",
	    npools, nworkers, nc->path);
	free(ch);
	config_free(cfg);
	cfg = nc;
	supervisor_changed(0);
}

/*
 * Re-reads the configuration file and applies it, or changes nothing and
 * says why in reason.
 */
int
reload_run(char *reason, size_t len)
{
	struct config_errors errs = { NULL, 0 };
	struct config	    *nc;
	int		     rc = -1;

	if (mprocd_shutting_down) {
		snprintf(reason, len, "mprocd is shutting down");
		return -1;
	}
	systemd_reloading();

	if ((nc = config_load(cfg->path, &errs)) == NULL)
		reload_config_errors(&errs, reason, len);
	else if (reload_refused(nc, reason, len) == NULL)
		rc = 0;
	config_errors_free(&errs);
	if (rc != 0) {
		config_free(nc);
		log_warnx("reload failed, nothing changed" LOG_KV "reason=%s",
		    reason);
		systemd_reloaded();
		return -1;
	}
	reload_apply(nc);
	systemd_reloaded();
	return 0;
}
