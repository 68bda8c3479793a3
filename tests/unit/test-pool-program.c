/*
 * pool-program.c: what mprocd says to a program pool's program and how it
 * takes the answers. The worker process is made up (fake-process.c); the
 * test plays the program on the far ends of its fd 3 socket and its pipes,
 * reading the calls mprocd writes (Hello, Run) and writing replies and
 * output, while the loop runs.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mprocd.h"
#include "proto.h"
#include "util.h"
#include "xmalloc.h"

#include "fake-process.c"

#define PROGRAM_PID (FAKE_PID_BASE + 1000)

/* What the program has read of mprocd's calls and not yet parsed. */
static char   callbuf[1 << 16];
static size_t calllen;

static int
setup(void **state)
{
	(void)state;
	calllen = 0;
	signal(SIGPIPE, SIG_IGN);
	return fake_setup(NULL);
}

static int
teardown(void **state)
{
	(void)state;
	return fake_teardown();
}

/* A program pool "calc" of one worker, started: its made-up process. */
static struct fake *
start_calc(uint64_t max_output)
{
	struct pool_config pc = fake_pool_config();
	struct proto_buf   b;
	struct pool	  *p;
	char		  *argv[] = { (char *)(uintptr_t) "prog",
			     (char *)(uintptr_t) "--serve", NULL };
	struct fake	  *f;

	pc.name = (char *)(uintptr_t) "calc";
	pc.workers = 1;
	pc.max_output = max_output;
	pc.program = argv;
	p = pool_new(&pc);
	pool_start(p);
	assert_int_equal(nfakes, 1);
	f = &fakes[0];
	assert_string_equal(f->name, "calc/0");
	assert_string_equal(f->program, "prog --serve");
	/* Its worker process: the program's pid, then HELLO. */
	proto_pack_job_started(&b, 0, PROGRAM_PID);
	fake_send(f->pid, PROTO_JOB_STARTED, &b);
	proto_buf_free(&b);
	fake_hello(f->pid);
	fake_loop();
	return f;
}

/* The next Varlink message mprocd wrote to the program, parsed. */
static json_t *
next_call(struct fake *f)
{
	char	    *buf = callbuf;
	size_t	    *lenp = &calllen, len = *lenp;
	json_t	    *msg;
	json_error_t e;
	char	    *nul;
	ssize_t	     n;
	int	     tries;

	for (tries = 0; (nul = memchr(buf, '\0', len)) == NULL; tries++) {
		assert_true(tries < 100);
		fcntl(f->prog, F_SETFL, O_NONBLOCK);
		n = read(f->prog, buf + len, sizeof callbuf - len);
		if (n > 0)
			len += (size_t)n;
		else
			fake_loop();
	}
	msg = json_loadb(buf, (size_t)(nul - buf), 0, &e);
	assert_non_null(msg);
	len -= (size_t)(nul - buf) + 1;
	memmove(buf, nul + 1, len);
	*lenp = len;
	return msg;
}

static void
say(int fd, const char *text)
{
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

/* A reply on fd 3, NUL and all. */
static void
reply(struct fake *f, const char *json)
{
	assert_int_equal(write(f->prog, json, strlen(json) + 1),
	    (ssize_t)strlen(json) + 1);
	fake_loop();
}

static struct job *
submit(const char *fn, json_t *input)
{
	struct job_spec	  spec;
	enum pool_refusal why;
	struct job	 *j;

	memset(&spec, 0, sizeof spec);
	spec.argv = xcalloc(3, sizeof *spec.argv);
	spec.argv[0] = xstrdup(fn);
	spec.argv[1] = xstrdup("arg");
	spec.env = xcalloc(2, sizeof *spec.env);
	spec.env[0] = xstrdup("A=1");
	spec.cwd = "/tmp";
	spec.stdin_data = (uint8_t *)xstrdup("hi");
	spec.stdin_len = 2;
	spec.input = input;
	j = pool_submit(pool_find("calc"), &spec, 0, &why);
	assert_non_null(j);
	json_decref(input);
	job_spec_free(&spec);
	pool_dispatch(pool_find("calc"));
	return j;
}

static int
has(json_t *array, const char *s)
{
	size_t	i;
	json_t *v;

	json_array_foreach(array, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return 1;
	return 0;
}

static void
test_hello_then_run(void **state)
{
	struct fake *f;
	struct job  *j;
	json_t	    *call, *p;
	char	     jobid[64];

	(void)state;
	f = start_calc(1024);
	call = next_call(f);
	assert_string_equal(json_string_value(json_object_get(call, "method")),
	    "io.mprocd.Worker.Hello");
	p = json_object_get(call, "parameters");
	assert_string_equal(json_string_value(json_object_get(p, "pool")),
	    "calc");
	assert_string_equal(json_string_value(json_object_get(p, "worker")),
	    "calc/0");
	json_decref(call);
	/* Not ready until the program says so. */
	assert_int_equal(pool_find("calc")->workers.tqh_first->state,
	    WORKER_STARTING);
	reply(f, "{\"parameters\": {}}");
	assert_int_equal(pool_find("calc")->workers.tqh_first->state,
	    WORKER_IDLE);

	j = submit("double", json_pack("{s:[i], s:{}}", "args", 21, "kwargs"));
	assert_int_equal(j->state, JOB_RUNNING);
	assert_int_equal(j->pid, PROGRAM_PID);
	call = next_call(f);
	assert_string_equal(json_string_value(json_object_get(call, "method")),
	    "io.mprocd.Worker.Run");
	p = json_object_get(call, "parameters");
	assert_int_equal(json_integer_value(json_object_get(p, "id")), j->id);
	assert_int_equal(json_array_size(json_object_get(p, "argv")), 2);
	assert_string_equal(json_string_value(
				json_array_get(json_object_get(p, "argv"), 0)),
	    "double");
	assert_int_equal(json_integer_value(
			     json_array_get(json_object_get(json_object_get(p,
								"input"),
						"args"),
				 0)),
	    21);
	assert_true(has(json_object_get(p, "env"), "A=1"));
	snprintf(jobid, sizeof jobid, "MPROCD_JOB_ID=%lld", (long long)j->id);
	assert_true(has(json_object_get(p, "env"), jobid));
	assert_true(has(json_object_get(p, "env"), "MPROCD_POOL=calc"));
	assert_true(has(json_object_get(p, "env"), "MPROCD_WORKER=calc/0"));
	assert_string_equal(json_string_value(json_object_get(p, "cwd")),
	    "/tmp");
	assert_string_equal(json_string_value(json_object_get(p, "stdin")),
	    "aGk=");
	json_decref(call);

	/* Output before the answer is the job's, even if unread so far. */
	say(f->out, "printed\n");
	say(f->err, "warned\n");
	reply(f, "{\"parameters\": {\"exit_status\": 0, \"result\": 42}}");
	assert_int_equal(j->state, JOB_SUCCEEDED);
	assert_int_equal(j->exit_status, 0);
	assert_int_equal(json_integer_value(j->result), 42);
	assert_int_equal(j->out[0].len, 8);
	assert_memory_equal(j->out[0].data, "printed\n", 8);
	assert_int_equal(j->out[1].len, 7);
	/* No input kept once it has run. */
	assert_null(j->input);
	assert_int_equal(nfake_kills, 0);
}

static void
test_answers(void **state)
{
	struct fake *f;
	struct job  *j;

	(void)state;
	f = start_calc(64);
	json_decref(next_call(f));
	/* A plain Varlink service: no Hello, and ready. */
	reply(f,
	    "{\"error\": \"org.varlink.service.MethodNotFound\", "
	    "\"parameters\": {\"method\": \"io.mprocd.Worker.Hello\"}}");

	/* A failure status, any result. */
	j = submit("f", NULL);
	json_decref(next_call(f));
	reply(f,
	    "{\"parameters\": {\"exit_status\": 3, \"result\": [1, "
	    "\"x\"]}}");
	assert_int_equal(j->state, JOB_FAILED);
	assert_int_equal(j->exit_status, 3);
	assert_int_equal(json_array_size(j->result), 2);

	/* An error reply: status 1, the error and its parameters. */
	j = submit("f", NULL);
	json_decref(next_call(f));
	reply(f,
	    "{\"error\": \"com.example.Bad\", \"parameters\": {\"why\": "
	    "\"x\"}}");
	assert_int_equal(j->state, JOB_FAILED);
	assert_int_equal(j->exit_status, 1);
	assert_string_equal(json_string_value(
				json_object_get(j->result, "error")),
	    "com.example.Bad");
	assert_string_equal(json_string_value(
				json_object_get(json_object_get(j->result,
						    "parameters"),
				    "why")),
	    "x");

	/* A result past max_output (64): the job fails, with why. */
	j = submit("f", NULL);
	json_decref(next_call(f));
	reply(f,
	    "{\"parameters\": {\"exit_status\": 0, \"result\": "
	    "\"0123456789012345678901234567890123456789012345678901234567"
	    "890123456789\"}}");
	assert_int_equal(j->state, JOB_FAILED);
	assert_string_equal(json_string_value(
				json_object_get(j->result, "error")),
	    "ResultTooLarge");

	/* No result: none kept. */
	j = submit("f", NULL);
	json_decref(next_call(f));
	reply(f, "{\"parameters\": {\"exit_status\": 0, \"result\": null}}");
	assert_int_equal(j->state, JOB_SUCCEEDED);
	assert_null(j->result);
	assert_int_equal(nfake_kills, 0);
}

/* Each breaks the protocol: the worker is killed, its job not finished. */
static void
test_bad_replies(void **state)
{
	static const char *const bad[] = {
		"not json",
		"[1, 2]",
		"{\"parameters\": {\"exit_status\": 256}}",
		"{\"parameters\": {\"exit_status\": -1}}",
		"{\"parameters\": {\"exit_status\": \"0\"}}",
		"{\"parameters\": {}}",
		"{\"parameters\": {\"exit_status\": 0}, \"continues\": true}",
		"{\"error\": 5}",
		"{\"parameters\": 5}",
	};
	struct fake *f;
	struct job  *j;
	size_t	     i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fake_teardown();
		setup(NULL);
		f = start_calc(1024);
		json_decref(next_call(f));
		reply(f, "{\"parameters\": {}}");
		j = submit("f", NULL);
		json_decref(next_call(f));
		reply(f, bad[i]);
		assert_int_equal(j->state, JOB_RUNNING);
		assert_int_equal(fake_signals(f->pid, SIGKILL), 1);
		assert_int_equal(fake_signals(-PROGRAM_PID, SIGKILL), 1);
		/* It takes no job while it dies. */
		assert_int_equal(pool_find("calc")->workers.tqh_first->state,
		    WORKER_STOPPING);
	}
}

/* A program ready (Hello answered) and a call of job *j in flight. */
static struct fake *
call_in_flight(struct job **j)
{
	struct fake *f = start_calc(1024);

	json_decref(next_call(f));
	reply(f, "{\"parameters\": {}}");
	*j = submit("f", NULL);
	json_decref(next_call(f));
	return f;
}

/* A timeout or Cancel kills the program's group: a restart, no crash. */
static void
test_kill_restarts(void **state)
{
	struct fake   *f;
	struct job    *j;
	struct worker *w;

	(void)state;
	f = call_in_flight(&j);
	w = pool_find("calc")->workers.tqh_first;
	job_kill(j, JOB_KILL_CANCEL);
	assert_int_equal(fake_signals(-PROGRAM_PID, SIGTERM), 1);
	assert_int_equal(fake_signals(f->pid, SIGTERM), 0);
	assert_int_equal(w->stop, STOP_RECYCLE);
	/* The program dies of it; so does its worker process. */
	assert_int_equal(pool_child_exited(f->pid, SIGTERM), 1);
	assert_int_equal(j->state, JOB_CANCELLED);
	assert_int_equal(w->restarts, 0);
	assert_int_equal(nfakes, 2); /* started again at once */
	assert_int_equal(w->state, WORKER_STARTING);
}

/*
 * The program answered, then died, and the supervisor hears of the death
 * first: the answer, still in the socket, is read before the death is
 * handled, and the job succeeds (bev_read_all must thaw the bufferevent's
 * input to read into it).
 */
static void
test_answer_read_after_death(void **state)
{
	struct fake *f;
	struct job  *j;
	const char   answer[] = "{\"parameters\": {\"exit_status\": 0, "
				"\"result\": 7}}";

	(void)state;
	f = call_in_flight(&j);
	/* Written, and no loop pass to read it before the death. */
	assert_int_equal(write(f->prog, answer, sizeof answer),
	    (ssize_t)sizeof answer);
	say(f->out, "last words\n");
	assert_int_equal(pool_child_exited(f->pid, 9 << 8), 1);
	assert_int_equal(j->state, JOB_SUCCEEDED);
	assert_int_equal(json_integer_value(j->result), 7);
	assert_int_equal(j->out[0].len, 11);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello_then_run, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_replies, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill_restarts, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_answer_read_after_death,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
