/* cloneshare.c: what each clone(2) flag shares, seen two ways: an effect the child
 * makes that the parent can or cannot see, and kcmp(2) on the kernel objects.
 * Not a timing: one JSON record (docs/claims/clone.md, clone.flags-share).
 *
 *   cloneshare --variant=flags
 *
 * For each flag F in VM, FILES, FS, SIGHAND, IO and each of (with F, without F), a
 * child is made with clone(2) (its own stack; exit signal SIGCHLD; SIGHAND trials both
 * carry CLONE_VM, which CLONE_SIGHAND requires). The child makes its effect, tells the
 * parent through a pipe and waits; the parent looks for the effect, compares itself
 * with the live child with kcmp on all five resources, lets the child go and reaps it,
 * then undoes the effect on itself. Effects:
 *   VM       the child writes a magic value into a global variable
 *   FILES    the child opens /dev/null; is that fd number open in the parent?
 *   FS       the child chdir("/") while the parent is in /dev; the parent's getcwd()
 *   SIGHAND  the child installs a SIGUSR1 handler; sigaction(SIGUSR1, NULL, &old) in
 *            the parent
 *   IO       the parent first gets an I/O context with ioprio_set(2) (best-effort,
 *            level 4; without one, kcmp would compare two NULL pointers as equal); the
 *            child sets best-effort level 7; ioprio_get(2) in the parent
 * Control in the record: kcmp of the parent with itself is 0 (equal) for every resource.
 * Exit 77: kcmp or ioprio_set refused here, or /dev missing.
 */
#include "lib/common.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static const char *const variants[] = {"flags", NULL};

#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_CLASS_BE 2
#define IOPRIO_WHO_PROCESS 1
#define PRIO(level) ((IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | (level))
#define MAGIC 0x5eed

enum { R_VM, R_FILES, R_FS, R_SIGHAND, R_IO, NRES };
static const char *const res_names[NRES] = {"vm", "files", "fs", "sighand", "io"};
static const int res_kcmp[NRES] = {KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_IO};
static const char *const flag_names[NRES] = {"CLONE_VM", "CLONE_FILES", "CLONE_FS", "CLONE_SIGHAND",
                                             "CLONE_IO"};
static const unsigned long flag_bits[NRES] = {CLONE_VM, CLONE_FILES, CLONE_FS, CLONE_SIGHAND, CLONE_IO};

static volatile int shared_word;
static int *child_fd; /* MAP_SHARED: the fd number the child got, whatever it shares */

struct trial {
    int resource;
    int to_child[2], to_parent[2];
};

static void on_usr1(int sig) { (void)sig; }

static int child_main(void *arg)
{
    struct trial *t = arg;
    /* Only the pipe ends this child uses matter; with CLONE_FILES it must not close
     * anything (it would close the parent's too). */
    switch (t->resource) {
    case R_VM:
        shared_word = MAGIC;
        break;
    case R_FILES:
        *child_fd = open("/dev/null", O_RDONLY);
        break;
    case R_FS:
        if (chdir("/") != 0)
            return 3;
        break;
    case R_SIGHAND: {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGUSR1, &sa, NULL) != 0)
            return 3;
        break;
    }
    case R_IO:
        if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, PRIO(7)) != 0)
            return 3;
        break;
    }
    char ch = 'd';
    if (write(t->to_parent[1], &ch, 1) != 1)
        return 4;
    while (read(t->to_child[0], &ch, 1) < 0 && errno == EINTR)
        ;
    return 0;
}

static int kcmp(pid_t a, pid_t b, int type)
{
    long r = syscall(SYS_kcmp, a, b, type, 0, 0);
    if (r < 0)
        die_unsupported("kcmp(%d): %s", type, strerror(errno));
    return (int)r;
}

static char cwd0[4096];
#define STACK_BYTES (256 * 1024)

static void trial(int r, int with, char *stack)
{
    struct trial t = {.resource = r};
    if (pipe(t.to_child) || pipe(t.to_parent))
        die("pipe: %s", strerror(errno));
    unsigned long flags = SIGCHLD | (with ? flag_bits[r] : 0);
    if (r == R_SIGHAND)
        flags |= CLONE_VM; /* CLONE_SIGHAND requires it; both trials carry it */
    shared_word = 0;
    *child_fd = -1;
    fflush(NULL);
    pid_t pid = clone(child_main, stack + STACK_BYTES, (int)flags, &t);
    if (pid < 0)
        die("clone(%s%s): %s", with ? "" : "no ", flag_names[r], strerror(errno));
    set_helper(pid);
    char ch;
    if (read(t.to_parent[0], &ch, 1) != 1)
        die("the %s child did not report", flag_names[r]);

    int seen = 0;
    switch (r) {
    case R_VM:
        seen = shared_word == MAGIC;
        break;
    case R_FILES:
        seen = *child_fd >= 0 && fcntl(*child_fd, F_GETFD) >= 0;
        break;
    case R_FS: {
        char now[4096];
        seen = getcwd(now, sizeof now) && strcmp(now, "/") == 0;
        break;
    }
    case R_SIGHAND: {
        struct sigaction old;
        sigaction(SIGUSR1, NULL, &old);
        seen = old.sa_handler == on_usr1;
        break;
    }
    case R_IO:
        seen = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0) == PRIO(7);
        break;
    }
    int eq[NRES];
    pid_t me = getpid();
    for (int k = 0; k < NRES; k++)
        eq[k] = kcmp(me, pid, res_kcmp[k]) == 0;

    if (write(t.to_child[1], "g", 1) != 1)
        die("write: %s", strerror(errno));
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    helper_pid = -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("the %s child failed (status 0x%x)", flag_names[r], st);
    close(t.to_child[0]);
    close(t.to_child[1]);
    close(t.to_parent[0]);
    close(t.to_parent[1]);
    /* undo the effect on the parent */
    if (r == R_FILES && seen)
        close(*child_fd);
    if (r == R_FS && chdir(cwd0) != 0)
        die("chdir back: %s", strerror(errno));
    if (r == R_SIGHAND)
        signal(SIGUSR1, SIG_DFL);
    if (r == R_IO)
        syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, PRIO(4));


    printf("%s{\"flag\": \"%s\", \"with\": %s, \"clone_flags\": %lu, \"effect_seen\": %s, \"kcmp_equal\": {",
           (r == 0 && with) ? "" : ", ", flag_names[r], with ? "true" : "false", flags, seen ? "true" : "false");
    for (int k = 0; k < NRES; k++)
        printf("%s\"%s\": %s", k ? ", " : "", res_names[k], eq[k] ? "true" : "false");
    printf("}}");
}

int main(int argc, char **argv)
{
    struct common c;
    parse_args(argc, argv, &c, variants, NULL);
    kernel_init();
    if (syscall(SYS_kcmp, getpid(), getpid(), KCMP_VM, 0, 0) < 0)
        die_unsupported("kcmp: %s (CONFIG_KCMP=n or a seccomp filter)", strerror(errno));
    if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, PRIO(4)) != 0)
        die_unsupported("ioprio_set(2): %s: no I/O context for the CLONE_IO trial", strerror(errno));
    if (chdir("/dev") != 0 || !getcwd(cwd0, sizeof cwd0))
        die_unsupported("chdir(/dev): %s", strerror(errno));
    child_fd = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *stack = mmap(NULL, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (child_fd == MAP_FAILED || stack == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    int self_eq[NRES];
    for (int k = 0; k < NRES; k++)
        self_eq[k] = kcmp(getpid(), getpid(), res_kcmp[k]) == 0;

    printf("{\"kernel\": \"cloneshare\", \"variant\": \"flags\", \"parent_ioprio\": %ld, \"trials\": [",
           syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0));
    for (int r = 0; r < NRES; r++)
        for (int with = 1; with >= 0; with--)
            trial(r, with, stack);
    printf("], \"control_self_equal\": {");
    for (int k = 0; k < NRES; k++)
        printf("%s\"%s\": %s", k ? ", " : "", res_names[k], self_eq[k] ? "true" : "false");
    printf("}}\n");
    if (fflush(stdout) != 0)
        die("writing stdout: %s", strerror(errno));
    return 0;
}
