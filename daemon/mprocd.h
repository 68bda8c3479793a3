/* mprocd's private declarations, one heading per file. */
#ifndef MPROCD_H
#define MPROCD_H

#include <sys/types.h>
#include <sys/uio.h>

#include <stdint.h>
#include <stdio.h>

#include <event2/event.h>
#include <event2/bufferevent.h>
#include <jansson.h>

#include "log.h"
#include "queue.h"

#define MPROCD_DEFAULT_CONFIG	SYSCONFDIR "/mprocd.conf"
#define MPROCD_SYSTEM_SOCKET	"/run/mprocd/mprocd.sock"

/* config.c */
struct pool_config {
	TAILQ_ENTRY(pool_config) entry;
	char		*name;
	int		 line;		/* of its [pool NAME] header */
	unsigned int	 workers;
	int		 workers_auto;
	uint64_t	 spare_workers;	/* started ahead, in no slot */
	uint64_t	 queue_limit;
	uint64_t	 job_timeout;	/* usec; 0: none */
	uint64_t	 kill_grace;
	uint64_t	 max_jobs_per_worker;
	uint64_t	 max_output;
	uint64_t	 retries;
	uint64_t	 restart_delay;
	uint64_t	 restart_delay_max;
	uint64_t	 crash_limit;
	uint64_t	 crash_interval;
	int		 keyline[32];	/* where each key was set; see config.c */
};
TAILQ_HEAD(pool_configs, pool_config);

struct config {
	char		*path;
	char		*socket;	/* NULL: the default for our uid */
	unsigned int	 socket_mode;
	char		*log_target;
	int		 log_level;
	uint64_t	 max_clients;
	uint64_t	 max_message;
	uint64_t	 message_timeout;
	uint64_t	 keep_finished;
	uint64_t	 shutdown_timeout;
	struct pool_configs pools;
	int		 keyline[32];
};

/* Errors found while reading a file, each "FILE:LINE: ...". */
struct config_errors {
	char		**v;
	size_t		  n;
};

struct config	*config_new(void);
void		 config_free(struct config *);
struct config	*config_load(const char *, struct config_errors *);
struct config	*config_load_string(const char *, const char *,
		    struct config_errors *);
void		 config_errors_free(struct config_errors *);
void		 config_print(const struct config *, FILE *);
struct pool_config *config_find_pool(const struct config *, const char *);

/* What a reload does to one pool. */
struct config_change {
	const char	*pool;		/* points into the configurations */
	enum {
		POOL_KEPT,
		POOL_GROWS,
		POOL_SHRINKS,
		POOL_ADDED,
		POOL_REMOVED,
	}		 kind;
	unsigned int	 from, to;	/* workers */
	int		 limits;	/* other settings changed */
};
size_t		 config_diff(const struct config *, const struct config *,
		    struct config_change **);
char		*config_default_socket(const char **);

/* job.c */
enum job_state {
	JOB_QUEUED,
	JOB_RUNNING,
	JOB_SUCCEEDED,
	JOB_FAILED,
	JOB_TIMEOUT,
	JOB_CANCELLED,
	JOB_LOST,
};

/* Why mprocd is killing a running job; decides its final state. */
enum job_kill {
	JOB_KILL_NONE,
	JOB_KILL_TIMEOUT,
	JOB_KILL_CANCEL,
	JOB_KILL_SHUTDOWN,
};

/* Largest stdin a job may be given: it travels in one frame. */
#define JOB_MAX_STDIN	(16U << 20)

struct job;
struct worker;

/* Someone waiting for a job to finish (a client's Wait or Cancel). */
struct job_watch {
	TAILQ_ENTRY(job_watch) entry;
	struct job	*job;
	void		(*cb)(struct job_watch *, struct job *);
	void		*arg;
	size_t		 index;
};
TAILQ_HEAD(job_watches, job_watch);

struct job_output {
	uint8_t		*data;
	size_t		 len;
	size_t		 size;
};

struct job {
	TAILQ_ENTRY(job) entry;		/* a pool's queue, or the finished */
	TAILQ_ENTRY(job) all;		/* every job, by id */
	struct job	*hnext;		/* id hash chain */
	int64_t		 id;
	char		*name;
	char		*pool;		/* its pool's name */
	char		**argv;
	char		*cwd;
	char		**env;		/* "K=V" added to the pool's */
	uint8_t		*stdin_data;	/* NULL: /dev/null */
	size_t		 stdin_len;
	uid_t		 uid;
	uint64_t	 timeout;	/* usec; 0: none */
	uint64_t	 retries;
	int		 timeout_given;	/* by Submit; else the pool's */
	int		 retries_given;

	enum job_state	 state;
	enum job_kill	 kill;
	int		 kill_signal;	/* last signal sent: 0, TERM, KILL */
	int		 exit_status;	/* -1: none */
	int		 signal;	/* 0: none */
	char		 worker[80];	/* "" until it first runs */
	struct worker	*w;		/* running on, or NULL */
	pid_t		 pid;
	unsigned int	 attempts;
	uint64_t	 submitted_usec;
	uint64_t	 started_usec;
	uint64_t	 finished_usec;
	uint64_t	 started_mono;

	struct job_output out[2];	/* stdout, stderr */
	int		 truncated;
	struct event	*timer;		/* timeout, then kill_grace */
	struct job_watches watches;
};
TAILQ_HEAD(jobs, job);

struct job	*job_new(const char *, char **, const char *, uid_t);
void		 job_free(struct job *);
struct job	*job_find(int64_t);
const char	*job_state_name(enum job_state);
int		 job_parse_state(const char *);
int		 job_is_finished(const struct job *);
enum job_state	 job_final_state(enum job_kill, int);
void		 job_output_add(struct job *, int, const void *, size_t,
		    uint64_t);
json_t		*job_to_json(const struct job *);
void		 job_watch_add(struct job *, struct job_watch *);
void		 job_watch_remove(struct job_watch *);
void		 job_finish(struct job *, enum job_state);
void		 job_started(struct job *, struct worker *);
void		 job_done(struct job *, int, int);
void		 job_worker_died(struct job *);
void		 job_kill(struct job *, enum job_kill);
void		 job_dequeue(struct job *);
int		 job_matches(const struct job *, const char *, int);
int64_t		*job_ids(const char *, int, size_t *);
uint64_t	 job_count_finished(void);
void		 job_free_all(void);

/* pool.c */
enum worker_state {
	WORKER_STARTING,
	WORKER_IDLE,
	WORKER_BUSY,
	WORKER_BACKOFF,
	WORKER_STOPPING,
};

/* Why a worker is being stopped; decides what its death means. */
enum worker_stop {
	STOP_NONE,	/* not being stopped: a death is a crash */
	STOP_RECYCLE,	/* max_jobs_per_worker reached: replace at once */
	STOP_RETIRE,	/* its slot is going away */
	STOP_SHUTDOWN,	/* mprocd is exiting */
};

struct pool;

/*
 * A slot's worker, or a spare's position: a spare has no slot, and is
 * "idle" when it is ready to be given one.
 */
struct worker {
	TAILQ_ENTRY(worker) entry;	/* its pool's workers, or spares */
	struct pool	*pool;
	int		 spare;
	unsigned int	 slot;		/* not for a spare */
	char		 name[80];
	enum worker_state state;
	enum worker_stop stop;
	pid_t		 pid;
	int		 reaped;	/* pid is dead: reading its last words */
	int		 said_hello;	/* reads its signals now */
	int		 reopen_log;	/* SIGUSR1 once it has said HELLO */
	int		 waiting;	/* a spare to start once slots are up */
	struct bufferevent *bev;
	struct event	*timer;		/* restart after backoff; kill */
	uint64_t	 started_usec;	/* wall clock, for Status */
	uint64_t	 started_mono;
	uint64_t	 delay;		/* backoff before the next restart */
	uint64_t	 backoff;	/* the wait chosen at the last death */
	uint64_t	 restarts;
	uint64_t	 jobs_done;
	struct job	*job;		/* the job it runs, or NULL */
};
TAILQ_HEAD(workers, worker);

struct pool {
	TAILQ_ENTRY(pool) entry;
	char		*name;
	struct pool_config cfg;		/* a copy; name points at ours */
	struct workers	 workers;	/* one per slot */
	struct workers	 spares;
	uint64_t	*deaths;	/* ring of the last crash_limit+1 */
	uint64_t	 ndeaths;
	int		 degraded;
	struct event	*timer;		/* rechecks degraded */
	uint64_t	 restarts;
	int		 removed;	/* by a reload: drains, then goes */
	struct jobs	 queue;
	uint64_t	 nqueued;
	uint64_t	 succeeded;
	uint64_t	 failed;	/* failed, timeout and lost */
	uint64_t	 cancelled;
};
TAILQ_HEAD(pools, pool);

extern struct pools pools;

struct pool	*pool_new(const struct pool_config *);
void		 pool_free(struct pool *);
struct pool	*pool_find(const char *);
void		 pool_start(struct pool *);
struct worker	*pool_worker_new(struct pool *, unsigned int);
void		 pool_stop(struct pool *, enum worker_stop);
void		 pool_trim(struct pool *);
void		 pool_apply(struct pool *, const struct pool_config *);
void		 pool_remove(struct pool *);
void		 pool_set_log_level(int);
int		 pool_record_death(struct pool *, uint64_t);
uint64_t	 pool_backoff_next(uint64_t, uint64_t);
struct worker	*pool_find_worker(pid_t);
int		 pool_child_exited(pid_t, int);
void		 pool_worker_ready(struct worker *);
unsigned int	 pool_count_live(void);
unsigned int	 pool_count_processes(void);
unsigned int	 pool_count_starting(void);
void		 pool_reopen_logs(void);
const char	*pool_worker_state_name(enum worker_state);
json_t		*pool_status_json(const struct pool *);
void		 pool_status_fields(int, char *, size_t);
int		 pool_enqueue(struct pool *, struct job *, int);
void		 pool_dispatch(struct pool *);
void		 pool_job_signal(struct worker *, struct job *, int);
void		 pool_kill_running(enum job_kill);
unsigned int	 pool_count_busy(void);
uint64_t	 pool_count_queued(void);

/* spawn.c */
struct spawn {
	const char *const *argv;
	const char *const *envp;		/* NULL: our environment */
	const char	*cwd;		/* NULL: ours */
	int		 fds[4];	/* become 0..3; -1: /dev/null (0-2) or none */
	int		 setsid;
	int		 pdeathsig;	/* 0: none */
	const char	*path;		/* executable; NULL: argv[0] via PATH */
	/* Called in the child with its pid before it execs (no malloc). */
	void		(*announce)(pid_t, void *);
	void		*announce_arg;
};
pid_t		 spawn_process(const struct spawn *);
void		 spawn_kill_orphans(void);

/* worker.c */
int		 worker_main(int, char **);

/* control.c */
/* Submit's parameters, checked. Strings point into the call's JSON. */
struct submit {
	char		**argv;
	const char	*pool;
	const char	*name;
	const char	*cwd;
	char		**env;
	uint8_t		*stdin_data;
	size_t		 stdin_len;
	int		 has_timeout;
	uint64_t	 timeout;
	int		 has_retries;
	uint64_t	 retries;
};

int		 control_parse_submit(json_t *, struct submit *, const char **);
void		 control_submit_free(struct submit *);
const char	*control_unknown_param(json_t *, const char *const *);
int		 control_get_seconds(json_t *, const char *, uint64_t *);
int		 control_init(const char *, unsigned int, int);
void		 control_close(void);
void		 control_shutdown(void);
unsigned int	 control_clients(void);

/* supervisor.c */
extern struct event_base *ev_base;
extern struct config *cfg;
extern uint64_t	 mprocd_started_usec;
extern int	 mprocd_shutting_down;
extern const char *mprocd_self;

extern const char *mprocd_socket_override;

int		 supervisor_main(struct config *, int);
int		 supervisor_reload(char *, size_t);
void		 supervisor_check_exit(void);
void		 supervisor_check_ready(void);
void		 supervisor_update_status(void);
void		 supervisor_status_changed(void);
size_t		 bev_write_now(struct bufferevent *, const struct iovec *,
		    int);
void		 bev_send(struct bufferevent *, const struct iovec *, int);

/* systemd.c */
int		 systemd_listen_fd(void);
void		 systemd_notify(const char *);
void		 systemd_init(void);

/* proctitle.c */
void		 proctitle_init(int, char **);
void		 proctitle_set(const char *, ...)
		    __attribute__((format(printf, 1, 2)));

#endif
