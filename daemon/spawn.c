/*
 * The one recipe for starting a process (workers and jobs): block
 * every signal around vfork(); in the child reset every handler and the
 * mask, put descriptors where they belong, close everything else, then exec.
 *
 * vfork(), not fork(): the child borrows our memory until it execs instead
 * of copying our page tables, which made fork() the largest part of a short
 * job's cost (and grows with the supervisor's job table). We are suspended
 * meanwhile, so the child touches nothing of ours: no malloc, no stdio, no
 * globals (the job's environment goes to execve(), not into environ).
 *
 * With an announce hook, the child first tells whoever must be able to kill
 * it (a worker's job tells the supervisor its pid) and only then execs:
 * none of its code runs unknown to them. If the parent dies first, the
 * child ends without running (PR_SET_PDEATHSIG, then a getppid() check).
 *
 * And the one for ending what escaped them: spawn_kill_orphans().
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocd.h"
#include "util.h"

extern char **environ;

/* The signals to reset to SIG_DFL in a child; -1: not read yet. */
static int custom[NSIG];
static int ncustom = -1;

/* Between vfork and exec: report why we failed on fd 2 and give up. */
static void __attribute__((noreturn))
spawn_child_fail(const char *what, const char *arg, int error)
{
	char msg[512];
	int  n;

	/* A long argument is cut: the line is never more than msg holds. */
	n = snprintf(msg, sizeof msg, "mprocd: %s '%.300s%s': %s\n", what, arg,
	    strlen(arg) > 300 ? "..." : "", strerror(error));
	if (n > (int)sizeof msg - 1)
		n = (int)sizeof msg - 1;
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n);
	_exit(127);
}

/* The value of NAME in ENVP, or NULL. */
static const char *
spawn_env_get(char *const *envp, const char *name)
{
	size_t len = strlen(name);

	for (; *envp != NULL; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

/*
 * execvp() with the job's PATH: glibc's searches our own environ's. The
 * same rules: a name with a slash is run as is; an empty PATH element is
 * the working directory; EACCES is reported only if nothing else is found;
 * a file the kernel cannot run (ENOEXEC) is run by /bin/sh. Returns errno.
 */
static int
spawn_child_exec(const char *file, char *const *argv, char *const *envp)
{
	/* An ENOEXEC script's shell gets these; more args than that: E2BIG. */
	char	   *sh_argv[256];
	char	    buf[4096];
	const char *path, *p, *end;
	size_t	    dlen, flen = strlen(file);
	int	    i, eacces = 0;

	if (strchr(file, '/') != NULL) {
		execve(file, argv, envp);
		return errno;
	}
	if (flen > NAME_MAX)
		return ENAMETOOLONG;
	if ((path = spawn_env_get(envp, "PATH")) == NULL)
		path = "/bin:/usr/bin";
	for (p = path;; p = end + 1) {
		if ((end = strchr(p, ':')) == NULL)
			end = p + strlen(p);
		dlen = (size_t)(end - p);
		if (dlen + 1 + flen < sizeof buf) {
			memcpy(buf, p, dlen);
			if (dlen == 0)
				buf[dlen++] = '.';
			buf[dlen] = '/';
			memcpy(buf + dlen + 1, file, flen + 1);
			execve(buf, argv, envp);
			switch (errno) {
			case EACCES:
				eacces = 1;
				/* FALLTHROUGH */
			case ENOENT:
			case ENOTDIR:
			case ESTALE:
			case ENODEV:
			case ETIMEDOUT:
				break;
			case ENOEXEC:
				sh_argv[0] = (char *)(uintptr_t) "/bin/sh";
				sh_argv[1] = buf;
				for (i = 1; argv[i] != NULL; i++) {
					if (i + 2 >= (int)(sizeof sh_argv /
							 sizeof *sh_argv))
						return E2BIG;
					sh_argv[i + 1] = argv[i];
				}
				sh_argv[i + 1] = NULL;
				execve("/bin/sh", sh_argv, envp);
				return errno;
			default:
				return errno;
			}
		}
		if (*end == '\0')
			break;
	}
	return eacces ? EACCES : ENOENT;
}

static void __attribute__((noreturn))
spawn_child(const struct spawn *sp, pid_t parent)
{
	struct sigaction sa;
	/* The kernel's struct sigaction, all zero: SIG_DFL, no flags. */
	unsigned long kdfl[4] = { 0, 0, 0, 0 };
	sigset_t      none;
	int	      sig, i, tmp[SPAWN_NFDS], nfds = 0, error;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (i = 0; i < ncustom; i++) {
		sig = custom[i];
		/*
		 * glibc refuses its own signals (32, 33), which may still be
		 * ignored from whoever started us: ask the kernel directly.
		 */
		if (sigaction(sig, &sa, NULL) == -1 && errno == EINVAL)
			(void)syscall(SYS_rt_sigaction, sig, &kdfl, NULL,
			    (size_t)_NSIG / 8);
	}

	if (sp->setsid)
		setsid();
	if (sp->pdeathsig != 0) {
		prctl(PR_SET_PDEATHSIG, sp->pdeathsig);
		if (getppid() != parent)
			_exit(1);
	}

	/* Move sources out of the way first, so no dup2 clobbers another. */
	for (i = 0; i < sp->nfds; i++) {
		if (sp->fds[i] == -1 && i < 3)
			tmp[i] = open("/dev/null",
			    i == 0 ? O_RDONLY : O_WRONLY);
		else if (sp->fds[i] == -1)
			tmp[i] = -1;
		else
			tmp[i] = fcntl(sp->fds[i], F_DUPFD, 10);
		if (tmp[i] == -1 && (sp->fds[i] != -1 || i < 3))
			_exit(126);
	}
	for (i = 0; i < sp->nfds; i++) {
		if (tmp[i] == -1)
			continue;
		if (dup2(tmp[i], i) == -1)
			_exit(126);
		nfds = i + 1;
	}
	/* The parent's descriptors are still open here (CLOEXEC or not). */
	if (sp->announce != NULL)
		sp->announce(getpid(), sp->announce_arg);
	util_closefrom(nfds, NULL, 0);

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (sp->cwd != NULL && chdir(sp->cwd) != 0)
		spawn_child_fail("cannot change directory to", sp->cwd, errno);
	error = spawn_child_exec(sp->path != NULL ? sp->path : sp->argv[0],
	    (char *const *)(uintptr_t)sp->argv,
	    sp->envp != NULL ? (char *const *)(uintptr_t)sp->envp : environ);
	spawn_child_fail("cannot run", sp->argv[0], error);
}

/*
 * Notes the signals that are not SIG_DFL here, which a child must reset: an
 * ignored one stays ignored across exec, and a handler of ours must not run
 * in a vfork child. They are read once, at a process's first spawn: asking
 * the kernel about all 64 in every child took about 1 µs a signal on this
 * kind of machine, 60 µs a job. So a process that starts others sets its
 * signals up first (the supervisor and workers do, as they start).
 */
static void
spawn_read_dispositions(void)
{
	unsigned long k[4];
	int	      sig;

	ncustom = 0;
	for (sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		/* The kernel's struct sigaction: the handler comes first. */
		memset(k, 0, sizeof k);
		if (syscall(SYS_rt_sigaction, sig, NULL, k,
			(size_t)_NSIG / 8) == 0 &&
		    k[0] != (unsigned long)SIG_DFL)
			custom[ncustom++] = sig;
	}
}

/* Returns the child's pid, or -1 with errno set if vfork() failed. */
pid_t
spawn_process(const struct spawn *sp)
{
	sigset_t all, old;
	pid_t	 pid, parent = getpid();
	int	 saved;

	if (ncustom == -1)
		spawn_read_dispositions();
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = vfork();
	if (pid == 0)
		spawn_child(sp, parent);
	saved = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return pid;
}

/*
 * Kills and reaps every child of ours, and whatever they in turn leave to
 * us (we are a subreaper): processes that escaped their job (setsid, a
 * double fork). The supervisor calls it as it exits, a worker when the
 * supervisor is gone, so that nothing outlives mprocd.
 */
void
spawn_kill_orphans(void)
{
	DIR	      *d;
	struct dirent *de;
	FILE	      *f;
	char	       path[64], buf[512], *p;
	pid_t	       self = getpid(), pid;
	long	       ppid;
	char	       state;
	int	       round;

	/* Killing one may hand us its children: a few rounds, 1s at most. */
	for (round = 0; round < 100; round++) {
		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0 ||
		    (pid == -1 && errno == EINTR))
			;
		if (pid == -1)
			return; /* ECHILD: none left */
		if (round > 0)
			usleep(10000);
		if ((d = opendir("/proc")) == NULL)
			return;
		while ((de = readdir(d)) != NULL) {
			pid = (pid_t)strtol(de->d_name, &p, 10);
			if (*p != '\0' || pid <= 0)
				continue;
			snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
			if ((f = fopen(path, "re")) == NULL)
				continue;
			p = fgets(buf, sizeof buf, f);
			fclose(f);
			/* "pid (comm) state ppid ...": comm may hold spaces. */
			if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
			    sscanf(p + 1, " %c %ld", &state, &ppid) != 2 ||
			    ppid != (long)self || state == 'Z')
				continue;
			log_info("killing a process left behind by a job" LOG_KV
				 "orphan_pid=%d",
			    (int)pid);
			kill(pid, SIGKILL);
		}
		closedir(d);
	}
}
