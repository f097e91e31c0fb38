/* ptrace.c: count system calls by stopping the command at each one (ptrace(2)).
 *
 * Works without privileges on one's own children (no tracefs, no BPF), at the price of
 * two stops per call (entry and exit, each a round trip through the tracer: ~20 us
 * here, benchmarks/README-trace.md). The child asked for it with PTRACE_TRACEME before
 * it stopped itself (main.c); from that SIGSTOP on:
 * - PTRACE_O_TRACESYSGOOD marks syscall stops as SIGTRAP|0x80;
 * - PTRACE_O_TRACECLONE/FORK/VFORK attach every new thread and child automatically
 *   (each starts with a SIGSTOP we swallow);
 * - PTRACE_O_TRACEEXEC turns a traced execve's SIGTRAP into an event stop;
 * - PTRACE_O_EXITKILL kills every tracee if the tracer dies.
 * Each syscall-entry stop is read with PTRACE_GET_SYSCALL_INFO (Linux 5.3): number,
 * arguments, ABI. clone's flags are its first argument; clone3's are read from the
 * tracee's struct clone_args with process_vm_readv(2) (PTRACE_PEEKDATA if that fails).
 *
 * Signals: a signal-delivery-stop is resumed with the signal injected; a group-stop
 * (PTRACE_GETSIGINFO fails with EINVAL, ptrace(2) "Group-stop") is resumed without
 * one, so a traced command that stops itself keeps running (as strace without -D/seize
 * does).
 */

#include "tracer.h"

#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/uio.h>

#define AUDIT_ARCH_X86_64_VALUE 0xc000003eu /* include/uapi/linux/audit.h */

/* Tasks seen, by tid: the first stop of an auto-attached task is its attach SIGSTOP. */
static unsigned char *seen;
static long seen_max;

static void seen_init(void)
{
    FILE *f = fopen("/proc/sys/kernel/pid_max", "re");
    seen_max = 4194304; /* PID_MAX_LIMIT on 64-bit (include/linux/threads.h) */
    if (f) {
        if (fscanf(f, "%ld", &seen_max) != 1)
            seen_max = 4194304;
        fclose(f);
    }
    seen = calloc((size_t)seen_max / 8 + 1, 1);
    if (!seen)
        die("out of memory");
}

static int seen_test_set(pid_t tid)
{
    if (tid < 0 || tid >= seen_max)
        return 1;
    int had = seen[tid / 8] >> (tid % 8) & 1;
    seen[tid / 8] |= (unsigned char)(1u << (tid % 8));
    return had;
}

void seen_clear(pid_t tid)
{
    if (tid >= 0 && tid < seen_max)
        seen[tid / 8] &= (unsigned char)~(1u << (tid % 8));
}

static int read_tracee(pid_t pid, uint64_t addr, uint64_t *out)
{
    struct iovec local = {out, sizeof *out}, remote = {(void *)(uintptr_t)addr, sizeof *out};
    if (process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)sizeof *out)
        return 0;
    errno = 0;
    long v = ptrace(PTRACE_PEEKDATA, pid, (void *)(uintptr_t)addr, NULL);
    if (errno)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int read_clone_args(void *ctx, uint64_t addr, uint64_t *flags, uint64_t *sig)
{
    pid_t pid = (pid_t)(intptr_t)ctx;
    if (read_tracee(pid, addr + CLONE_ARGS_FLAGS_OFF, flags) ||
        read_tracee(pid, addr + CLONE_ARGS_EXIT_SIGNAL_OFF, sig))
        return -1;
    return 0;
}

static void on_syscall_entry(struct tally *t, pid_t pid)
{
    struct __ptrace_syscall_info info;
    if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof info, &info) <= 0) {
        if (errno == ESRCH) /* killed while stopped */
            return;
        die("ptrace(PTRACE_GET_SYSCALL_INFO): %s", strerror(errno));
    }
    if (info.op != PTRACE_SYSCALL_INFO_ENTRY)
        return;
    if (info.arch != AUDIT_ARCH_X86_64_VALUE) {
        t->other_arch++;
        return;
    }
    tally_syscall(t, (long)info.entry.nr, info.entry.args[0], read_clone_args,
                  (void *)(intptr_t)pid);
}

/* The command is stopped at its SIGSTOP (signal-delivery-stop, it is our tracee):
 * set the options and let it run to its execve. */
void ptrace_release(pid_t child)
{
    long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK |
                PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
    seen_init();
    seen_test_set(child);
    if (ptrace(PTRACE_SETOPTIONS, child, NULL, (void *)opts) != 0)
        die_unsupported("ptrace(PTRACE_SETOPTIONS): %s", strerror(errno));
    if (ptrace(PTRACE_SYSCALL, child, NULL, NULL) != 0) /* swallow the SIGSTOP */
        die("ptrace(PTRACE_SYSCALL): %s", strerror(errno));
}

/* Handle one wait status of a traced task that is stopped; resume it. */
void ptrace_stopped(struct tally *t, pid_t pid, int status)
{
    int sig = WSTOPSIG(status), inject = 0;
    if (sig == (SIGTRAP | 0x80)) {
        on_syscall_entry(t, pid); /* entry or exit; counts entries only */
    } else if (status >> 16) {
        /* PTRACE_EVENT_FORK/VFORK/CLONE/EXEC stop: the new task is attached already */
    } else if (!seen_test_set(pid) && sig == SIGSTOP) {
        /* the attach stop of a new thread or child */
    } else {
        siginfo_t si;
        if (ptrace(PTRACE_GETSIGINFO, pid, NULL, &si) == 0)
            inject = sig; /* signal-delivery-stop: deliver it */
        /* else EINVAL: group-stop, resume without a signal */
    }
    if (ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)inject) != 0 && errno != ESRCH)
        die("ptrace(PTRACE_SYSCALL, %d): %s", pid, strerror(errno));
}
