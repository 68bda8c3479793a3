/*
 * ctl/progress.c: the progress line's text, its rate and time left, how
 * often it is drawn, when it is erased, and the running jobs it counts
 * from a Status reply, on a fake clock (util_mono_usec() is wrapped).
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mprocctl.h"
#include "util.h"

#define MS  USEC_PER_MSEC
#define SEC USEC_PER_SEC
/* Far from 0, as a monotonic clock is. */
#define T0 (1000 * SEC)

uint64_t __wrap_util_mono_usec(void);

static uint64_t fake_now = T0;

uint64_t
__wrap_util_mono_usec(void)
{
	return fake_now;
}

/* A line drawn into a pipe (or pty), and what it read back. */
struct fixture {
	int		 rfd; /* what was drawn comes out here */
	int		 wfd; /* the line's fd */
	struct progress *p;
	char		 got[4096];
};

/* Standard output is /dev/null while the line is made: not a terminal. */
static struct progress *
new_progress(int fd, const char *socket, int (*ours)(void *, json_int_t),
    void *arg)
{
	struct progress *p;
	int		 saved, null;

	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	null = open("/dev/null", O_WRONLY);
	assert_true(saved != -1 && null != -1);
	dup2(null, STDOUT_FILENO);
	p = progress_new(fd, socket, ours, arg);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(null);
	return p;
}

static int
setup_pipe(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	int		fds[2];

	if (f == NULL || pipe(fds) != 0)
		return -1;
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	f->rfd = fds[0];
	f->wfd = fds[1];
	fake_now = T0;
	f->p = new_progress(f->wfd, NULL, NULL, NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	progress_free(f->p);
	close(f->rfd);
	close(f->wfd);
	free(f);
	return 0;
}

/* What has been drawn since last asked ("" if nothing). */
static const char *
drawn(struct fixture *f)
{
	ssize_t n;
	size_t	len = 0;

	while ((n = read(f->rfd, f->got + len, sizeof f->got - 1 - len)) > 0)
		len += (size_t)n;
	f->got[len] = '\0';
	return f->got;
}

/* At time t: an update, as after a poll(2) that found nothing. */
static void
update_at(struct fixture *f, uint64_t t)
{
	fake_now = t;
	progress_update(f->p, NULL);
}

static void
done(struct fixture *f, size_t n, size_t failed)
{
	size_t i;

	for (i = 0; i < n; i++)
		progress_done(f->p, i < failed);
}

static void
test_first_draw_after_an_interval(void **state)
{
	struct fixture *f = *state;

	progress_total(f->p, 10, 1);
	update_at(f, T0 + 100 * MS);
	assert_string_equal(drawn(f), "");
	update_at(f, T0 + 250 * MS);
	assert_string_equal(drawn(f),
	    "\r0/10 done, 0 failed, 0.0 jobs/s, 0:00 elapsed\033[K");
}

static void
test_throttled(void **state)
{
	struct fixture *f = *state;
	int		i;

	progress_total(f->p, 100000, 1);
	update_at(f, T0 + 250 * MS);
	assert_int_not_equal(strlen(drawn(f)), 0);
	/* Thousands of jobs done at once are one draw, when it is due. */
	for (i = 0; i < 5000; i++) {
		progress_done(f->p, 0);
		update_at(f, T0 + 250 * MS + (uint64_t)i * 40);
	}
	assert_string_equal(drawn(f), "");
	update_at(f, T0 + 500 * MS);
	assert_non_null(strstr(drawn(f), "\r5000/100000 done, 0 failed"));
	assert_int_equal(progress_timeout(f->p, -1), 250);
	assert_int_equal(progress_timeout(f->p, 100), 100);
	fake_now = T0 + 700 * MS;
	assert_int_equal(progress_timeout(f->p, -1), 50);
	fake_now = T0 + 900 * MS;
	assert_int_equal(progress_timeout(f->p, 1000), 0);
}

static void
test_unchanged_is_not_redrawn(void **state)
{
	struct fixture *f = *state;

	progress_total(f->p, 3, 1);
	update_at(f, T0 + 250 * MS);
	assert_int_not_equal(strlen(drawn(f)), 0);
	update_at(f, T0 + 500 * MS);
	assert_string_equal(drawn(f), "");
	/* A second on, the time elapsed has changed. */
	update_at(f, T0 + 1000 * MS);
	assert_non_null(strstr(drawn(f), "0:01 elapsed"));
}

static void
test_rate_follows_the_pace(void **state)
{
	struct fixture *f = *state;
	int		s;

	progress_total(f->p, 1000, 1);
	for (s = 1; s <= 10; s++) {
		done(f, 10, 0);
		update_at(f, T0 + (uint64_t)s * SEC);
	}
	assert_non_null(strstr(drawn(f), "100/1000 done, 0 failed, 10 jobs/s"));
	for (s = 11; s <= 15; s++) {
		done(f, 1, 0);
		update_at(f, T0 + (uint64_t)s * SEC);
	}
	/* Half way: 45 jobs since the sample of second 6. */
	assert_non_null(
	    strstr(drawn(f), "105/1000 done, 0 failed, 5.0 jobs/s"));
	for (s = 16; s <= 20; s++) {
		done(f, 1, 0);
		update_at(f, T0 + (uint64_t)s * SEC);
	}
	assert_string_equal(strrchr(drawn(f), '\r'),
	    "\r110/1000 done, 0 failed, 1.0 jobs/s, 0:20 elapsed, 14:50 left"
	    "\033[K");
}

/* The line for jobs done at a time, drawn first then. */
static const struct {
	size_t	    total;
	int	    known;
	size_t	    done;
	size_t	    failed;
	uint64_t    at; /* after T0 */
	const char *line;
} lines[] = {
	{ 100, 1, 50, 3, 10 * SEC,
	    "50/100 done, 3 failed, 5.0 jobs/s, 0:10 elapsed, 0:10 left" },
	/* 99999 jobs to go at one every 3725s. */
	{ 100000, 1, 1, 0, 3725 * SEC,
	    "1/100000 done, 0 failed, 0.0 jobs/s, 1:02:05 elapsed, "
	    "103471:11:15 left" },
	/* Standard input not all read: no time left. */
	{ 7, 0, 5, 0, 2 * SEC,
	    "5/7+ done, 0 failed, 2.5 jobs/s, 0:02 elapsed" },
	{ 4, 1, 4, 4, 2 * SEC,
	    "4/4 done, 4 failed, 2.0 jobs/s, 0:02 elapsed, 0:00 left" },
	/* Nothing done for a while: the rate is 0, the time left unknown. */
	{ 10, 1, 0, 0, 5 * SEC,
	    "0/10 done, 0 failed, 0.0 jobs/s, 0:05 elapsed" },
};

static void
test_lines(void **state)
{
	struct fixture *f;
	char		want[256];
	size_t		i;

	for (i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		teardown(state);
		assert_int_equal(setup_pipe(state), 0);
		f = *state;
		progress_total(f->p, lines[i].total, lines[i].known);
		done(f, lines[i].done, lines[i].failed);
		update_at(f, T0 + lines[i].at);
		snprintf(want, sizeof want, "\r%s\033[K", lines[i].line);
		assert_string_equal(drawn(f), want);
	}
}

static void
test_hide_and_free_erase(void **state)
{
	struct fixture *f = *state;

	progress_hide(f->p);
	assert_string_equal(drawn(f), "");
	update_at(f, T0 + 250 * MS);
	drawn(f);
	progress_hide(f->p);
	assert_string_equal(drawn(f), "\r\033[K");
	progress_hide(f->p);
	assert_string_equal(drawn(f), "");
	/* Drawn again once due, whole though unchanged. */
	update_at(f, T0 + 300 * MS);
	assert_string_equal(drawn(f), "");
	update_at(f, T0 + 500 * MS);
	assert_non_null(strstr(drawn(f), "done"));
	progress_hide_current();
	assert_string_equal(drawn(f), "\r\033[K");
	update_at(f, T0 + 750 * MS);
	drawn(f);
	progress_free(f->p);
	f->p = NULL;
	assert_string_equal(drawn(f), "\r\033[K");
	/* Nothing to erase once it is gone. */
	progress_hide_current();
	assert_string_equal(drawn(f), "");
}

/* Output only erases the line if it may land on it. */
static void
test_output(void **state)
{
	struct fixture *f = *state;
	json_t	       *quiet, *loud;

	quiet = json_pack("{s:s, s:s}", "stdout", "aGkK", "stderr", "");
	loud = json_pack("{s:s, s:s}", "stdout", "", "stderr", "aGkK");
	update_at(f, T0 + 250 * MS);
	drawn(f);
	/* Standard output is not the terminal. */
	progress_output(f->p, NULL);
	progress_output(f->p, quiet);
	assert_string_equal(drawn(f), "");
	progress_output(f->p, loud);
	assert_string_equal(drawn(f), "\r\033[K");
	json_decref(quiet);
	json_decref(loud);
}

static void
test_null_does_nothing(void **state)
{
	struct pollfd pfd;

	(void)state;
	progress_total(NULL, 1, 1);
	progress_done(NULL, 1);
	progress_hide(NULL);
	progress_output(NULL, NULL);
	progress_update(NULL, NULL);
	progress_pollfd(NULL, &pfd);
	assert_int_equal(pfd.fd, -1);
	assert_int_equal(progress_timeout(NULL, -1), -1);
	assert_int_equal(progress_timeout(NULL, 7), 7);
	progress_free(NULL);
}

static void
test_wanted(void **state)
{
	(void)state;
	assert_true(progress_wanted(PROGRESS_ON, 0));
	assert_false(progress_wanted(PROGRESS_ON, 1));
	assert_false(progress_wanted(PROGRESS_OFF, 0));
	assert_false(progress_wanted(PROGRESS_AUTO, 1));
	assert_int_equal(progress_wanted(PROGRESS_AUTO, 0),
	    isatty(STDERR_FILENO) &&
		(getenv("TERM") == NULL ||
		    strcmp(getenv("TERM"), "dumb") != 0));
}

/* On a terminal the line is cut to its width, never to wrap. */
static void
test_cut_to_the_terminal(void **state)
{
	struct winsize	ws = { .ws_row = 24, .ws_col = 30 };
	struct fixture *f = *state;
	int		master, slave;

	if ((master = posix_openpt(O_RDWR | O_NOCTTY)) == -1) {
		skip();
		return;
	}
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	assert_true(slave != -1);
	assert_int_equal(ioctl(master, TIOCSWINSZ, &ws), 0);
	fcntl(master, F_SETFL, O_NONBLOCK);
	progress_free(f->p);
	close(f->rfd);
	close(f->wfd);
	f->rfd = master;
	f->wfd = slave;
	f->p = new_progress(slave, NULL, NULL, NULL);
	progress_total(f->p, 1234, 1);
	update_at(f, T0 + 250 * MS);
	usleep(10000);
	assert_string_equal(drawn(f), "\r0/1234 done, 0 failed, 0.0 jo\033[K");
}

/* A fake mprocd: a listening socket in a temporary directory. */
struct fake_mprocd {
	char dir[64];
	char path[128];
	int  lfd;
	int  fd; /* the line's connection, accepted */
};

static void
fake_mprocd_start(struct fake_mprocd *d)
{
	struct sockaddr_un sun;

	snprintf(d->dir, sizeof d->dir, "/tmp/test-progress.XXXXXX");
	assert_non_null(mkdtemp(d->dir));
	snprintf(d->path, sizeof d->path, "%s/sock", d->dir);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, d->path);
	d->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(d->lfd != -1);
	assert_int_equal(bind(d->lfd, (struct sockaddr *)&sun, sizeof sun), 0);
	assert_int_equal(listen(d->lfd, 4), 0);
	d->fd = -1;
}

static void
fake_mprocd_stop(struct fake_mprocd *d)
{
	if (d->fd != -1)
		close(d->fd);
	close(d->lfd);
	unlink(d->path);
	rmdir(d->dir);
}

/* The call that came, "" if none has. */
static const char *
fake_mprocd_call(struct fake_mprocd *d, char *buf, size_t len)
{
	ssize_t n;

	if (d->fd == -1) {
		d->fd = accept(d->lfd, NULL, NULL);
		assert_true(d->fd != -1);
		fcntl(d->fd, F_SETFL, O_NONBLOCK);
	}
	n = recv(d->fd, buf, len - 1, 0);
	if (n == -1 && errno == EAGAIN)
		n = 0;
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void
fake_mprocd_reply(struct fake_mprocd *d, const char *text)
{
	assert_int_equal(send(d->fd, text, strlen(text) + 1, 0),
	    (ssize_t)strlen(text) + 1);
}

/* Odd job ids are ours. */
static int
odd(void *arg, json_int_t id)
{
	(*(int *)arg)++;
	return id % 2 == 1;
}

/* The fixture's line, replaced by one that asks d, odd() counting ours. */
static void
ask_fake_mprocd(struct fixture *f, struct fake_mprocd *d, int *asked)
{
	fake_mprocd_start(d);
	progress_free(f->p);
	f->p = new_progress(f->wfd, d->path, odd, asked);
}

/*
 * Polls as a caller would (what the fake mprocd sent has come already),
 * then updates at time t.
 */
static void
poll_update_at(struct fixture *f, uint64_t t)
{
	struct pollfd pfd;

	progress_pollfd(f->p, &pfd);
	if (pfd.fd != -1)
		assert_true(poll(&pfd, 1, 0) != -1);
	fake_now = t;
	progress_update(f->p, &pfd);
}

#define STATUS_REPLY \
	"{\"parameters\":{\"version\":\"1\",\"pid\":1,\"started_usec\":1," \
	"\"pools\":[{\"name\":\"a\",\"workers\":[{\"name\":\"a/0\"," \
	"\"state\":\"busy\",\"job\":5},{\"name\":\"a/1\",\"state\":" \
	"\"idle\"}]},{\"name\":\"b\",\"workers\":[{\"name\":\"b/0\"," \
	"\"state\":\"busy\",\"job\":6},{\"name\":\"b/1\",\"state\":" \
	"\"busy\",\"job\":7}]}]}}"

static void
test_counts_running_jobs(void **state)
{
	struct fixture	  *f = *state;
	struct fake_mprocd d;
	char		   buf[256];
	int		   asked = 0;

	ask_fake_mprocd(f, &d, &asked);
	progress_total(f->p, 10, 1);
	/* Asked when first drawn, and the count shown from the next draw. */
	poll_update_at(f, T0 + 100 * MS);
	assert_string_equal(fake_mprocd_call(&d, buf, sizeof buf), "");
	poll_update_at(f, T0 + 250 * MS);
	assert_string_equal(fake_mprocd_call(&d, buf, sizeof buf),
	    "{\"method\":\"io.mprocd.Status\"}");
	assert_string_equal(drawn(f),
	    "\r0/10 done, 0 failed, 0.0 jobs/s, 0:00 elapsed\033[K");
	fake_mprocd_reply(&d, STATUS_REPLY);
	poll_update_at(f, T0 + 500 * MS);
	assert_int_equal(asked, 3);
	assert_string_equal(drawn(f),
	    "\r0/10 done, 0 failed, 2 running, 0.0 jobs/s, 0:00 elapsed"
	    "\033[K");

	/* Asked again a second after, not before. */
	poll_update_at(f, T0 + 1000 * MS);
	assert_string_equal(fake_mprocd_call(&d, buf, sizeof buf), "");
	poll_update_at(f, T0 + 1250 * MS);
	assert_string_equal(fake_mprocd_call(&d, buf, sizeof buf),
	    "{\"method\":\"io.mprocd.Status\"}");
	/* Unanswered: not asked again. */
	poll_update_at(f, T0 + 3000 * MS);
	assert_string_equal(fake_mprocd_call(&d, buf, sizeof buf), "");
	drawn(f);

	/* mprocd hangs up: the line goes on without the count. */
	close(d.fd);
	d.fd = -1;
	poll_update_at(f, T0 + 3250 * MS);
	assert_string_equal(drawn(f),
	    "\r0/10 done, 0 failed, 0.0 jobs/s, 0:03 elapsed\033[K");
	fake_mprocd_stop(&d);
}

static void
test_error_reply_drops_the_count(void **state)
{
	struct fixture	  *f = *state;
	struct fake_mprocd d;
	struct pollfd	   pfd;
	char		   buf[256];
	int		   asked = 0;

	ask_fake_mprocd(f, &d, &asked);
	poll_update_at(f, T0 + 250 * MS);
	fake_mprocd_call(&d, buf, sizeof buf);
	fake_mprocd_reply(&d,
	    "{\"error\":\"org.varlink.service.PermissionDenied\"}");
	poll_update_at(f, T0 + 500 * MS);
	assert_int_equal(asked, 0);
	assert_null(strstr(drawn(f), "running"));
	progress_pollfd(f->p, &pfd);
	assert_int_equal(pfd.fd, -1);
	fake_mprocd_stop(&d);
}

static void
test_no_mprocd_no_count(void **state)
{
	struct fixture *f = *state;
	struct pollfd	pfd;
	int		asked = 0;

	progress_free(f->p);
	f->p = new_progress(f->wfd, "/nonexistent/mprocd.sock", odd, &asked);
	progress_pollfd(f->p, &pfd);
	assert_int_equal(pfd.fd, -1);
	update_at(f, T0 + 250 * MS);
	assert_string_equal(drawn(f),
	    "\r0/0+ done, 0 failed, 0.0 jobs/s, 0:00 elapsed\033[K");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_first_draw_after_an_interval, setup_pipe, teardown),
		cmocka_unit_test_setup_teardown(test_throttled, setup_pipe,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unchanged_is_not_redrawn,
		    setup_pipe, teardown),
		cmocka_unit_test_setup_teardown(test_rate_follows_the_pace,
		    setup_pipe, teardown),
		cmocka_unit_test_setup_teardown(test_lines, setup_pipe,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hide_and_free_erase,
		    setup_pipe, teardown),
		cmocka_unit_test_setup_teardown(test_output, setup_pipe,
		    teardown),
		cmocka_unit_test(test_null_does_nothing),
		cmocka_unit_test(test_wanted),
		cmocka_unit_test_setup_teardown(test_cut_to_the_terminal,
		    setup_pipe, teardown),
		cmocka_unit_test_setup_teardown(test_counts_running_jobs,
		    setup_pipe, teardown),
		cmocka_unit_test_setup_teardown(
		    test_error_reply_drops_the_count, setup_pipe, teardown),
		cmocka_unit_test_setup_teardown(test_no_mprocd_no_count,
		    setup_pipe, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
