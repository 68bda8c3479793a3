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

struct varlink_buf;

#define MPROCD_DEFAULT_CONFIG SYSCONFDIR "/mprocd.conf"
#define MPROCD_SYSTEM_SOCKET  "/run/mprocd/mprocd.sock"

/* config.c */
struct pool_config {
	TAILQ_ENTRY(pool_config) entry;
	char	    *name;
	int	     line; /* of its [pool NAME] header */
	unsigned int workers;
	int	     workers_auto;
	uint64_t     spare_workers; /* started ahead, in no slot */
	uint64_t     queue_limit;
	uint64_t     job_timeout; /* usec; 0: none */
	uint64_t     kill_grace;
	uint64_t     max_jobs_per_worker;
	uint64_t     max_output;
	uint64_t     retries;
	uint64_t     restart_delay;
	uint64_t     restart_delay_max;
	uint64_t     crash_limit;
	uint64_t     crash_interval;
	char	   **program;	   /* a program pool's; NULL: a command pool */
	char	    *program_text; /* as the file has it */
	uint64_t     start_timeout;
	uint64_t     max_memory;  /* bytes; 0: no limit */
	int	     keyline[32]; /* where each key was set; see config.c */
};
TAILQ_HEAD(pool_configs, pool_config);

struct config {
	char		   *path;
	char		   *socket; /* NULL: the default for our uid */
	unsigned int	    socket_mode;
	char		   *log_target;
	int		    log_level;
	uint64_t	    max_clients;
	uint64_t	    max_message;
	uint64_t	    message_timeout;
	uint64_t	    keep_finished;
	uint64_t	    shutdown_timeout;
	char		   *state; /* "auto", "none" or a path */
	int		    durability_power;
	struct pool_configs pools;
	int		    keyline[32];
};

/* Errors found while reading a file, each "FILE:LINE: ...". */
struct config_errors {
	char **v;
	size_t n;
};

struct config	   *config_new(void);
void		    config_free(struct config *);
struct config	   *config_load(const char *, struct config_errors *);
struct config	   *config_load_string(const char *, const char *,
	 struct config_errors *);
void		    config_errors_free(struct config_errors *);
void		    config_print(const struct config *, FILE *);
struct pool_config *config_find_pool(const struct config *, const char *);
void		    config_pool_clear(struct pool_config *);
void config_pool_copy(struct pool_config *, const struct pool_config *);

char *config_default_socket(const char **);
char *config_state_path(const struct config *, const char **);

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
#define JOB_MAX_STDIN (16U << 20)

struct job;
struct worker;

/* "POOL/N" or "POOL/spare": a pool's name is 32 bytes at most. */
#define WORKER_NAME_LEN 40

/*
 * A job as a client asked for it, checked (method-submit.c). Strings point
 * into the call's JSON; argv, env and stdin_data are owned.
 */
struct job_spec {
	char	  **argv;
	const char *pool;
	const char *name;
	const char *cwd;
	char	  **env;
	uint8_t	   *stdin_data;
	size_t	    stdin_len;
	int	    has_timeout;
	uint64_t    timeout;
	int	    has_retries;
	uint64_t    retries;
	json_t	   *input; /* a program's call: args, kwargs; NULL: none */
	int64_t	   *after; /* owned; NULL: none */
	size_t	    nafter;
	const char *lock; /* NULL: none */
};

/* Why a queued job may not start yet (job-wait.c, lock.c). */
enum job_wait {
	JOB_WAIT_NONE,	/* in its pool's queue, or not queued */
	JOB_WAIT_AFTER, /* for jobs named in after to finish */
	JOB_WAIT_LOCK,	/* for its lock */
};

/*
 * Someone waiting for a job to finish (a client's Wait or Cancel), or
 * following its output (Follow): output, if set, is told of each piece
 * kept in the job's output (and of lost, the part past max_output that
 * was not), or with JOB_OUTPUT_RESTART that the output begins again (a
 * retry), or with JOB_OUTPUT_GAP that some past max_output never came.
 */
#define JOB_OUTPUT_RESTART (-1)
#define JOB_OUTPUT_GAP	   (-2)
struct job_watch {
	TAILQ_ENTRY(job_watch) entry;
	struct job *job;
	void (*cb)(struct job_watch *, struct job *);
	void (*output)(struct job_watch *, struct job *, int, const void *,
	    size_t);
	void  *arg;
	size_t index;
	int    after_commit; /* told only once the end is stored */
};
TAILQ_HEAD(job_watches, job_watch);

struct job_output {
	uint8_t *data;
	size_t	 len;
	size_t	 size;
};

/*
 * What a job that has run has besides (job-output.c): made when it first
 * starts, or its output is read back. Queued jobs, most of all, go
 * without.
 */
struct job_live {
	uint32_t *runs; /* the order its output came in: JOB_RUN_* */
	size_t	  nruns;
	size_t	  runs_size;
	size_t	  lost[2];    /* bytes past max_output, not kept */
	uint64_t  max_output; /* its pool's when it started */
};

/* A run of output: so many bytes of one stream, stderr's flagged. */
#define JOB_RUN_STDERR 0x80000000U
#define JOB_RUN_MAX    0x7fffffffU

struct job {
	TAILQ_ENTRY(job) entry; /* a pool's queue, or the finished */
	TAILQ_ENTRY(job) all;	/* every job, by id */
	struct job   *hnext;	/* id hash chain */
	int64_t	      id;
	char	     *name;
	char	     *pool; /* its pool's name */
	char	    **argv;
	char	     *cwd;
	char	    **env;	  /* "K=V" added to the pool's */
	uint8_t	     *stdin_data; /* NULL: /dev/null */
	size_t	      stdin_len;
	uid_t	      uid;
	enum job_wait wait;    /* why it may not start yet, if queued */
	uint64_t      timeout; /* usec; 0: none */
	uint64_t      retries;
	int	      timeout_given; /* by Submit; else the pool's */
	int	      retries_given;

	enum job_state state;
	enum job_kill  kill;
	int	       kill_signal; /* last signal sent: 0, TERM, KILL */
	int	       exit_status; /* -1: none */
	int	       signal;	    /* 0: none */
	char	       worker[WORKER_NAME_LEN]; /* "" until it first runs */
	struct worker *w;			/* running on, or NULL */
	pid_t	       pid;
	unsigned int   attempts;
	uint64_t       submitted_usec;
	uint64_t       started_usec;
	uint64_t       finished_usec;
	uint64_t       started_mono;

	struct job_output out[2]; /* stdout, stderr */
	struct job_live	 *live;	  /* once it has run or has output */
	unsigned int	  pins;	  /* followers: not to be let go */
	int		  truncated;
	int64_t		  seq; /* queue order, as the database has it */
	int	      unsaved; /* a change not committed yet: stays, waits */
	int	      cancel_unsaved; /* cancelled while queued, not stored */
	json_t	     *input;  /* a program's call: args, kwargs; or NULL */
	json_t	     *result; /* a program's answer, or NULL */
	struct event *timer;  /* timeout, then kill_grace */
	struct job_watches watches;

	struct job_deps *deps;	 /* its after and lock; NULL: neither */
	char		*reason; /* why it ended as it did; NULL */
};

/* What a job with after or a lock has besides (job-wait.c, lock.c). */
struct job_deps {
	int64_t		 *after; /* as submitted; NULL: none */
	size_t		  nafter;
	size_t		  after_left;  /* of them not finished yet */
	struct job_watch *after_watch; /* on each of them, while it waits */
	int64_t		  after_bad;   /* the first not to succeed */
	enum job_state	  after_bad_state;
	char		 *lock;	     /* NULL: none */
	int		  lock_held; /* granted: queued to run, or running */
	TAILQ_ENTRY(job) wait_entry; /* the waiting jobs */
	TAILQ_ENTRY(job) lock_entry; /* its lock's waiters */
};
TAILQ_HEAD(jobs, job);

/* A job as the state database holds it: store.c reads, job.c builds. */
struct job_row {
	int64_t	       id;
	const char    *pool, *name, *cwd, *worker; /* the store's, for now */
	char	     **argv, **env;		   /* owned */
	const void    *stdin_data;
	size_t	       stdin_len;
	json_t	      *input, *result; /* owned */
	uid_t	       uid;
	int	       timeout_given, retries_given;
	uint64_t       timeout, retries;
	enum job_state state;
	int	       exit_status, signal, truncated;
	pid_t	       pid;
	unsigned int   attempts;
	uint64_t       submitted_usec, started_usec, finished_usec;
	const void    *out[2];
	size_t	       outlen[2];
	int64_t	       seq;
	int64_t	      *after; /* owned */
	size_t	       nafter;
	const char    *lock, *reason;
	const uint8_t *runs; /* its output's order (job_output_runs_blob) */
	size_t	       runs_len;
};

struct job    *job_new(const char *, struct job_spec *, uid_t);
void	       job_set_deps(struct job *, int64_t **, size_t, const char *);
void	       job_spec_free(struct job_spec *);
void	       job_free(struct job *);
struct job    *job_find(int64_t);
struct job    *job_find_live(int64_t);
void	       job_trim(void);
void	       job_uncancel(struct job *);
void	       job_set_next_id(int64_t);
void	       job_link(struct job *);
struct log_ctx job_ctx(const struct job *);
void	       job_cache_add(struct job *);
void	       job_pin(struct job *);
void	       job_watch_fire(struct job *);
void	       job_unpin(struct job *);
int64_t	       job_front_seq(int64_t);

/* job-store.c */
void	       job_store_put(struct job *, int);
void	       job_store_row_free(struct job_row *);
struct job    *job_store_restore(struct job_row *);
void	       job_store_load(struct job_row *);
void	       job_store_loaded(void);
void	       job_store_saved(int64_t);
void	       job_store_unsaved(int64_t);
void	       job_store_pending(int64_t);
void	       job_store_again(int64_t);
int	       job_store_shutdown(struct job *);
const char    *job_state_name(enum job_state);
int	       job_parse_state(const char *);
int	       job_is_finished(const struct job *);
enum job_state job_final_state(enum job_kill, int);
void job_output_add(struct job *, int, const void *, size_t, uint64_t);
void job_output_gap(struct job *);
void job_output_restart(struct job *);
struct job_live *job_output_live(struct job *);
int		 job_output_plain(const uint32_t *, size_t);
void		 job_output_plain_runs(const struct job *, uint32_t[2]);
uint8_t		*job_output_runs_blob(const struct job *, size_t *);
int		 job_output_set_runs(struct job *, const uint8_t *, size_t);
void		 job_output_trim(struct job_output *);
void		 job_output_trim_runs(struct job *);
void		 job_watch_add(struct job *, struct job_watch *);
void		 job_watch_remove(struct job_watch *);
void		 job_finish(struct job *, enum job_state);
void		 job_started(struct job *, struct worker *);
void		 job_set_pid(struct job *, pid_t);
void		 job_set_result(struct job *, json_t *);
void		 job_done(struct job *, int, int);
void		 job_worker_died(struct job *);
void		 job_kill(struct job *, enum job_kill);
int		 job_matches(const struct job *, const char *, int);
int64_t		*job_ids(const char *, int, size_t *);
uint64_t	 job_count_finished(void);
void		 job_free_all(void);

/* pool-worker.c */
/*
 * A worker's life, as the supervisor sees it. pool_worker_set_state() is
 * the one place that moves a worker, and it refuses a move not drawn here:
 *
 *	backoff  -> starting (spawned, or took a spare's process), backoff
 *	            (could not be spawned), waiting (a new spare's position)
 *	waiting  -> backoff (its turn to start has come)
 *	starting -> idle (said HELLO), stopping, exited
 *	idle     -> busy, stopping, exited, waiting (a spare given to a slot)
 *	busy     -> idle, stopping, exited
 *	stopping -> exited
 *	exited   -> backoff (a crash), starting (recycled)
 */
enum worker_state {
	WORKER_STARTING, /* has a process; HELLO not yet read */
	WORKER_IDLE,	 /* ready for a job (a spare: for a slot) */
	WORKER_BUSY,	 /* runs a job */
	WORKER_BACKOFF,	 /* no process; its timer restarts it */
	WORKER_STOPPING, /* sent SIGTERM; KILL after kill_grace */
	WORKER_WAITING,	 /* a spare, no process: starts when slots are up */
	WORKER_EXITED,	 /* reaped: its last frames are being read */
};
#define WORKER_NSTATES (WORKER_EXITED + 1)

/* Why a worker is being stopped; decides what its death means. */
enum worker_stop {
	STOP_NONE,     /* not being stopped: a death is a crash */
	STOP_RECYCLE,  /* max_jobs_per_worker reached: replace at once */
	STOP_RETIRE,   /* its slot is going away */
	STOP_SHUTDOWN, /* mprocd is exiting */
};

/*
 * A slot's worker, or a spare's position: a spare has no slot, and is
 * "idle" when it is ready to be given one.
 */
struct worker {
	TAILQ_ENTRY(worker) entry; /* its pool's workers, or spares */
	struct pool	    *pool;
	int		     spare;
	unsigned int	     slot; /* not for a spare */
	char		     name[WORKER_NAME_LEN];
	enum worker_state    state;
	enum worker_stop     stop;
	pid_t		     pid;
	int		     said_hello; /* its process reads its signals now */
	int		     reopen_log; /* asked: SIGUSR1 once it said HELLO */
	struct bufferevent  *bev;
	struct event	    *timer;	   /* restart after backoff; kill */
	uint64_t	     started_usec; /* wall clock, for Status */
	uint64_t	     started_mono;
	uint64_t	     delay;   /* backoff before the next restart */
	uint64_t	     backoff; /* the wait chosen at the last death */
	uint64_t	     restarts;
	uint64_t	     jobs_done;
	struct job	    *job;  /* the job it runs, or NULL */
	struct pool_program *prog; /* a program pool's program, or NULL */
};
TAILQ_HEAD(workers, worker);

struct worker *pool_worker_new(struct pool *, unsigned int);
struct worker *pool_worker_new_spare(struct pool *);
void	       pool_worker_free(struct worker *);
const char    *pool_worker_state_name(enum worker_state);
int	       pool_worker_may_move(enum worker_state, enum worker_state);
int	       pool_worker_set_state(struct worker *, enum worker_state);
uint64_t       pool_worker_backoff_next(uint64_t, uint64_t);
void	       pool_worker_spawn(struct worker *);
void	       pool_worker_restart(struct worker *);
void	       pool_worker_ready(struct worker *);
int	       pool_worker_is_ready_spare(const struct worker *);
void	       pool_worker_run(struct worker *, struct job *);
void	       pool_worker_signal_job(struct worker *, struct job *, int);
void	       pool_worker_kill(struct worker *);
void	       pool_worker_stop(struct worker *, enum worker_stop);
void	       pool_worker_stop_later(struct worker *, enum worker_stop);
void	       pool_worker_start_soon(struct worker *);
void	       pool_worker_reopen_log(struct worker *);
struct pool   *pool_worker_exited(struct worker *, int);
json_t	      *pool_worker_json(const struct worker *);
void	       pool_worker_finish_job(struct worker *, struct job *, int, int);
void	       pool_worker_hello(struct worker *);

/* pool-channel.c */
void pool_channel_open(struct worker *, int);
void pool_channel_close(struct worker *);
void pool_channel_send(struct worker *, uint32_t, const void *, size_t);
void pool_channel_drain(struct worker *);

/* pool-program.c */
struct pool_program *pool_program_new(struct worker *, int, int, int);
void		     pool_program_free(struct pool_program *);
void  pool_program_set_worker(struct pool_program *, struct worker *);
void  pool_program_set_pid(struct pool_program *, pid_t);
pid_t pool_program_pid(const struct pool_program *);
int   pool_program_usable(const struct pool_program *);
int   pool_program_is_ready(const struct pool_program *);
void  pool_program_kill(const struct pool_program *, int);
void  pool_program_run(struct pool_program *, struct job *);
void  pool_program_drain(struct pool_program *);
int   pool_program_over_memory(const struct pool_program *);

/* job-wait.c */
#define JOB_MAX_AFTER 1000
#define JOB_MAX_LOCK  256
void job_wait_admit(struct job *);
void job_wait_ready(struct job *);
void job_wait_forget(struct job *);
void job_wait_reason(struct job *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
void job_wait_write_reason(struct varlink_buf *, const struct job *);
void job_wait_cancel_all(void);
void job_wait_ended(struct job *);

/* lock.c */
void lock_wait(struct job *);
void lock_unwait(struct job *);
void lock_release(struct job *);
void lock_free_all(void);

/* pool.c */
struct pool {
	TAILQ_ENTRY(pool) entry;
	char		  *name;
	struct pool_config cfg;	    /* a copy; name points at ours */
	struct workers	   workers; /* one per slot */
	struct workers	   spares;
	uint64_t	  *deaths; /* ring of the last crash_limit+1 */
	uint64_t	   ndeaths;
	int		   degraded;
	struct event	  *timer; /* rechecks degraded */
	uint64_t	   restarts;
	int		   removed; /* by a reload: drains, then goes */
	struct jobs	   queue;
	uint64_t	   nqueued; /* in queue, ready to run */
	struct job	  *placed;  /* the last put back in its place (seq) */
	uint64_t	   nwait_after; /* queued, waiting for jobs */
	uint64_t	   nwait_lock;	/* queued, waiting for a lock */
	uint64_t	   succeeded;
	uint64_t	   failed; /* failed, timeout and lost */
	uint64_t	   cancelled;
};
TAILQ_HEAD(pools, pool);

/* Why pool_submit() refused a job. */
enum pool_refusal {
	POOL_ACCEPTED,
	POOL_SHUTTING_DOWN,
	POOL_NO_SUCH, /* no such pool, or one being removed */
	POOL_FULL,    /* queue_limit reached */
};

extern struct pools pools;

struct pool   *pool_new(const struct pool_config *);
void	       pool_free(struct pool *);
struct pool   *pool_find(const char *);
struct pool   *pool_default(void);
void	       pool_start(struct pool *);
void	       pool_stop(struct pool *, enum worker_stop);
void	       pool_trim(struct pool *);
void	       pool_apply(struct pool *, const struct pool_config *);
void	       pool_remove(struct pool *);
void	       pool_set_log_level(int);
int	       pool_record_death(struct pool *, uint64_t);
int	       pool_note_death(struct pool *, int, uint64_t);
void	       pool_start_spares(struct pool *);
struct worker *pool_next_worker(struct pool *, struct worker *);
struct worker *pool_find_worker(pid_t);
int	       pool_child_exited(pid_t, int);
unsigned int   pool_count_live(void);
unsigned int   pool_count_processes(void);
unsigned int   pool_count_starting(void);
unsigned int   pool_count_busy(void);
uint64_t       pool_count_queued(void);
void	       pool_reopen_logs(void);
json_t	      *pool_status_json(const struct pool *);
struct job    *pool_submit(struct pool *, struct job_spec *, uid_t,
       enum pool_refusal *);
#define POOL_ENQUEUE_ORDERED 2 /* pool_enqueue's front: by seq */
void pool_enqueue(struct pool *, struct job *, int);
void pool_dequeue(struct job *);
void pool_dispatch(struct pool *);
void pool_job_finished(const struct job *);
void pool_job_unfinished(const struct job *);
void pool_cancel_queued(struct pool *);
void pool_kill_running(enum job_kill);

/* The pool's workers, those of slots and then the spares. */
#define POOL_FOREACH_WORKER(w, p) \
	for ((w) = pool_next_worker((p), NULL); (w) != NULL; \
	     (w) = pool_next_worker((p), (w)))

/* spawn.c */
#define SPAWN_NFDS 7
struct spawn {
	const char *const *argv;
	const char *const *envp; /* NULL: our environment */
	const char	  *cwd;	 /* NULL: ours */
	/* fds[i] becomes i, for i < nfds; -1: /dev/null (0-2) or none. */
	int	    fds[SPAWN_NFDS];
	int	    nfds;
	int	    setsid;
	int	    pdeathsig; /* 0: none */
	const char *path;      /* executable; NULL: argv[0] via PATH */
	/* Called in the child with its pid before it execs (no malloc). */
	void (*announce)(pid_t, void *);
	void *announce_arg;
};
pid_t spawn_process(const struct spawn *);
void  spawn_kill_orphans(void);

/* worker.c */
/* The job being run, or a program worker's program. */
struct worker_job {
	uint64_t       id;
	pid_t	       pid;
	int	       out[2]; /* read ends of stdout, stderr; -1 */
	int	       in;     /* write end of stdin; -1 */
	const uint8_t *stdin_data;
	size_t	       stdin_len;
	size_t	       stdin_off;
	uint64_t       max_output;
	uint64_t       sent[2];
	int	       dropped[2]; /* output past max_output not sent */
	int	       truncated;
	const char   **env; /* its environment (strings borrowed) */
};

extern int   worker_sigfd;
extern char *worker_env_pool, *worker_env_worker;

int	     worker_main(int, char **);
const char **worker_job_environ(char *const *, const char *const *);
void	     worker_kill_job(struct worker_job *, int);
int	     worker_reap(const struct worker_job *, int *);
void	     worker_exit(struct worker_job *, int) __attribute__((noreturn));
void	     worker_take_slot(const uint8_t *, size_t);
void	     worker_set_log_level(const uint8_t *, size_t);
void	     worker_send_hello(void);
/* What worker_wait() says has come. */
#define WORKER_CHANNEL 0x1
#define WORKER_SIGNAL  0x2
int worker_wait(void);

/* worker-program.c */
void worker_program_run(char **) __attribute__((noreturn));

/* control.c */
int  control_init(const char *, unsigned int, int);
int  control_is_activated(void);
void control_shutdown(void);
void control_close(void);

/* store-row.c */
struct sqlite3_stmt;
void store_row_bind(struct sqlite3_stmt *, const struct job *);
int  store_row_read(struct sqlite3_stmt *, struct job_row *);

/* store.c */
int	    store_open(const char *, int, char **);
void	    store_close(void);
int	    store_is_open(void);
const char *store_file(void);
const char *store_error(void);
char	   *store_default_path(const char **);
int64_t	    store_first_id(void);
int	    store_holding(void);
int	    store_put(const struct job *, int);
int	    store_load(void (*)(struct job_row *), char **);
int	    store_get(int64_t, struct job_row *);
void	    store_get_done(void);
int64_t	   *store_ids(const char *, int, size_t *);
uint64_t    store_count_finished(void);
uint64_t    store_size(void);
void	    store_flush(void);
void	    store_crash(const char *);
int	    store_exec(const char *, char **);
int64_t	    store_query_int(const char *, char **);

/* store-schema.c */
struct sqlite3;
int store_schema_check(struct sqlite3 *, char **);
int store_schema_create(char **);
int store_schema_migrate(char **);

/* conn.c */
struct method_wait;
struct method_list;
struct method_follow;

/* One client's connection. */
struct conn {
	TAILQ_ENTRY(conn) entry;
	struct bufferevent   *bev;
	uid_t		      uid;
	gid_t		      gid;
	pid_t		      pid;
	size_t		      scanned; /* input already searched for a NUL */
	int		      closing; /* flush replies, then close */
	int		      eof; /* it sends no more; answer what it sent */
	struct method_wait   *pending;	 /* a Wait or Cancel being answered */
	struct method_list   *listing;	 /* a List reply still being written */
	struct method_follow *following; /* a Follow's output being sent */
	struct event	     *resume;	 /* go on after a pending call */
	struct event	     *stall;	 /* message_timeout for a partial one */
	struct event	     *hup;	 /* not read: notice a hang-up anyway */
	struct evbuffer	     *held;	 /* replies waiting for a commit */
	int		      holding;
	size_t		      held_ends; /* held replies that end their call */
	int		      held_open; /* the last held one continues */
	TAILQ_ENTRY(conn) held_entry;
};

struct conn *conn_new(int, uid_t, gid_t, pid_t);
void	     conn_free(struct conn *);
void	     conn_free_all(void);
unsigned int conn_count(void);
void	     conn_answer(struct conn *, int, const char *, json_t *);
void	     conn_answer_text(struct conn *, int, struct varlink_buf *);
void	     conn_release_held(const char *);
void	     conn_flush(struct conn *);
void	     conn_resume(struct conn *);
size_t	     conn_queued(struct conn *);
size_t	     conn_unsent(struct conn *);

/* A reply sent alike to many clients (Follow's pieces), by reference. */
struct conn_msg {
	char	    *text; /* the whole message, its NUL included */
	size_t	     len;
	int	     continues;
	unsigned int refs;
};
struct conn_msg *conn_msg_new(char *, size_t, int);
void		 conn_msg_unref(struct conn_msg *);
void		 conn_send_msg(struct conn *, struct conn_msg *);
void		 conn_write(struct conn *, const void *, size_t);
void		 conn_watch_output(struct conn *, size_t);

/* method.c: the Varlink methods; one file for the larger ones. */
struct varlink_call;

void method_dispatch(struct conn *, struct varlink_call *);
void method_reply(struct conn *, struct varlink_call *, json_t *);
void method_error(struct conn *, struct varlink_call *, const char *, json_t *);
void method_invalid_param(struct conn *, struct varlink_call *, const char *);
int  method_has_duplicate(const int64_t *, size_t);
int  method_check_params(struct conn *, struct varlink_call *,
     const char *const *);
const char *method_unknown_param(json_t *, const char *const *);
int	    method_get_seconds(json_t *, const char *, uint64_t *);
struct job *method_get_job(struct conn *, struct varlink_call *, int64_t);
struct job *method_id_param(struct conn *, struct varlink_call *);
int	    method_may(const struct conn *, const struct job *);
void	    method_job_write(struct varlink_buf *, const struct job *);
void	    method_job_output(struct varlink_buf *, const struct job *, int);

/* method-submit.c */
void method_submit(struct conn *, struct varlink_call *);
void method_submit_run(struct conn *, struct varlink_call *);
int  method_submit_parse(json_t *, struct job_spec *, const char **);

/* method-wait.c */
void method_wait(struct conn *, struct varlink_call *);
void method_wait_cancel(struct conn *, struct varlink_call *);
void method_wait_run(struct conn *, struct varlink_call *, struct job *);
void method_wait_free(struct method_wait *);

/* method-list.c */
void method_list(struct conn *, struct varlink_call *);
void method_list_continue(struct conn *);
void method_list_free(struct method_list *);

/* method-follow.c */
void method_follow(struct conn *, struct varlink_call *);
void method_follow_run(struct conn *, struct varlink_call *, struct job *);
void method_follow_continue(struct conn *);
void method_follow_free(struct method_follow *);

/* bev.c */
size_t bev_write_now(struct bufferevent *, const struct iovec *, int);
void   bev_send(struct bufferevent *, const struct iovec *, int);
void   bev_read_all(struct bufferevent *);

/* supervisor.c */
extern struct event_base *ev_base;
extern struct config	 *cfg;
extern uint64_t		  mprocd_started_usec;
extern int		  mprocd_shutting_down;
extern const char	 *mprocd_self;

extern const char *mprocd_socket_override;

/* What supervisor_changed() is told, besides "a count changed". */
#define SUPERVISOR_NOW	    0x1 /* STATUS= at once, not throttled */
#define SUPERVISOR_WORKERS  0x2 /* a slot's worker started or went */
#define SUPERVISOR_DISPATCH 0x4 /* jobs stored: give them to workers */
#define SUPERVISOR_TRIM	    0x8 /* a removed pool may have drained */

int  supervisor_main(struct config *, int);
void supervisor_changed(int);
void supervisor_check_exit(void);

/* reload.c */
/* What a reload does to one pool. */
struct config_change {
	const char *pool; /* points into the configurations */
	enum {
		POOL_KEPT,
		POOL_GROWS,
		POOL_SHRINKS,
		POOL_ADDED,
		POOL_REMOVED,
	} kind;
	unsigned int from, to; /* workers */
	int	     limits;   /* other settings changed */
	int	     program;  /* its program changed */
};
size_t reload_diff(const struct config *, const struct config *,
    struct config_change **);
int    reload_run(char *, size_t);
void   reload_apply(struct config *);

/* systemd.c */
int  systemd_listen_fd(void);
void systemd_notify(const char *);
void systemd_init(void);
void systemd_free(void);
void systemd_changed(int);
void systemd_reloading(void);
void systemd_reloaded(void);
void systemd_stopping(void);

/* proctitle.c */
void proctitle_init(int, char **);
void proctitle_set(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
