/* launch: run another program so that nothing of it outlives perflab.
 *
 *   launch PROGRAM [ARGS...]
 *
 * perflab starts every command that is not one of its kernels through this (the Python
 * and Go subjects, a plug-in's shell command), as the leader of a new process group
 * (engine/process.py). perflab's own kernels set PR_SET_PDEATHSIG themselves; a foreign
 * program does not, and the children it forks would not inherit it anyway (prctl(2):
 * the setting is cleared for the child of a fork). So launch stays as the program's
 * parent, a supervisor:
 *   - its parent-death signal is SIGTERM (prctl(2) PR_SET_PDEATHSIG); on SIGTERM, SIGINT,
 *     SIGHUP or SIGQUIT it sends SIGKILL to its whole process group (kill(2) with pid 0),
 *     the program and every descendant that stayed in the group, itself included;
 *   - the program runs in a fork(2)ed child (PDEATHSIG SIGKILL there too, for the case
 *     where launch itself is killed outright) and launch ends as the program ended: the
 *     same exit status, or the same signal re-raised (so a crash still reads as a crash).
 * The race the man page describes (the parent dying before prctl) is closed by comparing
 * getppid() with the parent seen at entry.
 *
 * Exit codes: the program's; 127 when it cannot be executed (as sh(1)); 1 when launch
 * itself cannot set up (prctl, fork).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const int STOP_SIGNALS[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
#define N_STOP (sizeof STOP_SIGNALS / sizeof *STOP_SIGNALS)

/* kill(2) is async-signal-safe (signal-safety(7)) */
static void kill_group(int sig)
{
    (void)sig;
    kill(0, SIGKILL);
}

int main(int argc, char **argv)
{
    pid_t parent = getppid();
    if (argc < 2) {
        fprintf(stderr, "usage: launch PROGRAM [ARGS...]\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = kill_group;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < N_STOP; i++)
        sigaction(STOP_SIGNALS[i], &sa, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
        fprintf(stderr, "launch: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
        return 1;
    }
    if (getppid() != parent) /* the parent died before prctl took effect */
        kill_group(SIGTERM);
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "launch: fork: %s\n", strerror(errno));
        return 1;
    }
    if (child == 0) {
        for (size_t i = 0; i < N_STOP; i++)
            signal(STOP_SIGNALS[i], SIG_DFL);
        pid_t me = getppid();
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != me)
            _exit(1);
        execvp(argv[1], argv + 1);
        fprintf(stderr, "launch: cannot execute %s: %s\n", argv[1], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            return 1;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        signal(sig, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, 0);
        raise(sig);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
