/*
 * The one recipe for starting a process (workers and jobs): block
 * every signal around fork(); in the child reset every handler and the mask,
 * put descriptors where they belong, close everything else, then exec.
 *
 * With a gate, the child waits before exec until its parent says go, so the
 * parent can first tell whoever must be able to kill the new process (a
 * worker tells the supervisor its job's pid): none of its code runs unknown
 * to them. If the parent dies first, the child ends without running.
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprocd.h"
#include "util.h"

extern char **environ;

/* Between fork and exec: report why we failed on fd 2 and give up. */
static void __attribute__((noreturn))
child_fail(const char *what, const char *arg, int error)
{
	char	 msg[512];
	int	 n;

	/* A long argument is cut: the line is never more than msg holds. */
	n = snprintf(msg, sizeof msg, "mprocd: %s '%.300s%s': %s\n", what, arg,
	    strlen(arg) > 300 ? "..." : "", strerror(error));
	if (n > (int)sizeof msg - 1)
		n = (int)sizeof msg - 1;
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n);
	_exit(127);
}

static void __attribute__((noreturn))
spawn_child(const struct spawn *sp, pid_t parent)
{
	struct sigaction	 sa;
	/* The kernel's struct sigaction, all zero: SIG_DFL, no flags. */
	unsigned long		 kdfl[4] = { 0, 0, 0, 0 };
	sigset_t		 none;
	ssize_t			 n;
	char			 go;
	int			 sig, i, tmp[5], nfds = 0;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++) {
		/*
		 * glibc refuses its own signals (32, 33), which may still be
		 * ignored from whoever started us: ask the kernel directly.
		 */
		if (sigaction(sig, &sa, NULL) == -1 && errno == EINVAL &&
		    sig != SIGKILL && sig != SIGSTOP)
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
	for (i = 0; i < 4; i++) {
		if (sp->fds[i] == -1 && i < 3)
			tmp[i] = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
		else if (sp->fds[i] == -1)
			tmp[i] = -1;
		else
			tmp[i] = fcntl(sp->fds[i], F_DUPFD, 10);
		if (tmp[i] == -1 && (sp->fds[i] != -1 || i < 3))
			_exit(126);
	}
	tmp[4] = sp->gate > 0 ? fcntl(sp->gate, F_DUPFD, 10) : -1;
	if (sp->gate > 0 && tmp[4] == -1)
		_exit(126);
	for (i = 0; i < 4; i++) {
		if (tmp[i] == -1)
			continue;
		if (dup2(tmp[i], i) == -1)
			_exit(126);
		nfds = i + 1;
	}
	if (tmp[4] != -1) {
		/*
		 * Just above ours, and every other descriptor closed, the
		 * gate's write end too: the parent's death is end of file.
		 */
		if (dup2(tmp[4], nfds) == -1)
			_exit(126);
		util_closefrom(nfds + 1, NULL, 0);
		do {
			n = read(nfds, &go, 1);
		} while (n == -1 && errno == EINTR);
		if (n != 1)
			_exit(1);
	}
	util_closefrom(nfds, NULL, 0);

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (sp->cwd != NULL && chdir(sp->cwd) != 0)
		child_fail("cannot change directory to", sp->cwd, errno);
	if (sp->envp != NULL)
		environ = (char **)(uintptr_t)sp->envp;
	if (sp->path != NULL)
		execv(sp->path, (char *const *)(uintptr_t)sp->argv);
	else
		execvp(sp->argv[0], (char *const *)(uintptr_t)sp->argv);
	child_fail("cannot run", sp->argv[0], errno);
}

/* Returns the child's pid, or -1 with errno set if fork() failed. */
pid_t
spawn_process(const struct spawn *sp)
{
	sigset_t	 all, old;
	pid_t		 pid, parent = getpid();
	int		 saved;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
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
	DIR		*d;
	struct dirent	*de;
	FILE		*f;
	char		 path[64], buf[512], *p;
	pid_t		 self = getpid(), pid;
	long		 ppid;
	char		 state;
	int		 round;

	/* Killing one may hand us its children: a few rounds, 1s at most. */
	for (round = 0; round < 100; round++) {
		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0 ||
		    (pid == -1 && errno == EINTR))
			;
		if (pid == -1)
			return;		/* ECHILD: none left */
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
			log_info("killing a process left behind by a job"
			    LOG_KV "orphan_pid=%d", (int)pid);
			kill(pid, SIGKILL);
		}
		closedir(d);
	}
}
