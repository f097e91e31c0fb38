/* space.c: the cost of a function call vs a vDSO call vs a system call vs a process
 * switch, and probes that count context switches around system calls.
 * Protocol: docs/kernels.md, "space".
 */
#include "lib/common.h"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

enum { V_CALL, V_VDSO, V_GETPPID, V_PSWITCH, V_CSW_COUNT, V_CSW_CONTROL };
static const char *const variants[] = {"function-call", "vdso-clock_gettime",
                                       "syscall-getppid", "process-switch",
                                       "ctxsw-count", "ctxsw-control", NULL};

static volatile long sink;

/* ---- function call: through a volatile pointer, so it cannot be inlined or elided */
__attribute__((noinline)) static void empty_fn(void) { __asm__ volatile("" ::: "memory"); }
static void (*volatile call_ptr)(void) = empty_fn;

ALIGN_LOOPS static uint64_t b_call(void *p, uint64_t iters)
{
    (void)p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        call_ptr();
    return now_ns() - t0;
}

/* ---- clock_gettime(CLOCK_MONOTONIC) through glibc: vDSO, no kernel entry (vdso(7)) */
static uint64_t b_vdso(void *p, uint64_t iters)
{
    (void)p;
    struct timespec ts;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t = now_ns() - t0;
    sink = ts.tv_nsec;
    return t;
}

/* ---- a null system call: syscall(2) makes the kernel entry explicit (getppid(2)) */
static uint64_t b_getppid(void *p, uint64_t iters)
{
    (void)p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        sink = syscall(SYS_getppid);
    return now_ns() - t0;
}

/* ---- pipe ping-pong with a forked helper on the same CPU (pipe(7)) ---------------- */
struct pipes {
    int to_child, from_child;
};

/* Fork the echo helper. Call after pinning: the affinity mask is inherited across
 * fork(2) (sched_setaffinity(2)), so both run on the same CPU. */
static struct pipes start_helper(void)
{
    int down[2], up[2];
    if (pipe2(down, O_CLOEXEC) || pipe2(up, O_CLOEXEC))
        die("pipe2: %s", strerror(errno));
    pid_t pid = fork_helper(); /* dies with this kernel however it ends */
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        char ch;
        for (;;) {
            ssize_t r = read(down[0], &ch, 1);
            if (r == 1) {
                if (write(up[1], &ch, 1) != 1)
                    _exit(1);
            } else if (r == 0) {
                _exit(0); /* parent closed its end */
            } else if (errno != EINTR) {
                _exit(1);
            }
        }
    }
    set_helper(pid);
    close(down[0]);
    close(up[1]);
    signal(SIGPIPE, SIG_IGN); /* a dead helper gives EPIPE (die with a message), not a signal */
    return (struct pipes){down[1], up[0]};
}

/* One round trip: the parent's read blocks, the scheduler switches to the helper, which
 * echoes and blocks in its own read, switching back: two switches, each with one
 * one-byte pipe write and read around it. */
static inline void round_trip(const struct pipes *pp)
{
    char ch = 'x';
    if (write(pp->to_child, &ch, 1) != 1)
        die("write(pipe): %s", strerror(errno));
    ssize_t r;
    while ((r = read(pp->from_child, &ch, 1)) < 0 && errno == EINTR)
        ;
    if (r != 1)
        die("read(pipe): %s", r < 0 ? strerror(errno) : "helper exited");
}

static uint64_t b_pswitch(void *p, uint64_t iters)
{
    const struct pipes *pp = p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        round_trip(pp);
    return now_ns() - t0;
}

/* Pin for a same-CPU pair: --cpu, or else the CPU this process runs on now. */
static long long pin_pair(long long cpu)
{
    if (cpu < 0 && (cpu = sched_getcpu()) < 0)
        die("sched_getcpu: %s", strerror(errno));
    pin_or_exit(cpu);
    return cpu;
}

/* ---- context-switch counting ------------------------------------------------------ */

/* perf_event_open(2): a software counter of this thread's context switches. Kernel-side
 * events must be included (exclude_kernel=0): the switch happens in the kernel, so a
 * user-only counter always reads 0 and is never used. Returns the fd or -1 with a
 * reason. */
static int perf_switch_counter(char *reason, size_t len)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_SOFTWARE;
    a.size = sizeof a;
    a.config = PERF_COUNT_SW_CONTEXT_SWITCHES;
    a.disabled = 1;
    a.exclude_kernel = 0;
    a.exclude_hv = 1;
    int fd = (int)syscall(SYS_perf_event_open, &a, 0 /* this thread */, -1 /* any cpu */,
                          -1, PERF_FLAG_FD_CLOEXEC);
    if (fd >= 0)
        return fd;
    int e = errno, paranoid = -99;
    FILE *fp = fopen("/proc/sys/kernel/perf_event_paranoid", "r");
    if (fp) {
        if (fscanf(fp, "%d", &paranoid) != 1)
            paranoid = -99;
        fclose(fp);
    }
    if (e == EACCES || e == EPERM) {
        if (paranoid != -99)
            snprintf(reason, len, "perf_event_open: %s; perf_event_paranoid=%d forbids kernel-side "
                     "counting: run as root (or with CAP_PERFMON) or lower it to 1",
                     strerror(e), paranoid);
        else
            snprintf(reason, len, "perf_event_open: %s (no perf_event_paranoid: perf events "
                     "blocked, e.g. by a container's seccomp policy)", strerror(e));
    } else if (e == ENOENT || e == ENODEV || e == EOPNOTSUPP) {
        snprintf(reason, len, "perf_event_open: %s: this kernel offers no software "
                 "context-switch counter", strerror(e));
    } else if (e == ENOSYS) {
        snprintf(reason, len, "perf_event_open: %s: kernel built without CONFIG_PERF_EVENTS "
                 "or the call is filtered", strerror(e));
    } else {
        snprintf(reason, len, "perf_event_open: %s", strerror(e));
    }
    return -1;
}

/* Count switches around `calls` null system calls (pp == NULL) or `rounds` round trips. */
static void count_switches(const struct common *cm, long long cpu, long long calls,
                           long long rounds, const struct pipes *pp)
{
    char reason[256];
    int fd = perf_switch_counter(reason, sizeof reason);
    struct rusage r0, r1;
    uint64_t count = 0;
    if (fd >= 0 && ioctl(fd, PERF_EVENT_IOC_RESET, 0) != 0)
        die("ioctl(PERF_EVENT_IOC_RESET): %s", strerror(errno));
    if (getrusage(RUSAGE_THREAD, &r0) != 0) /* getrusage(2) */
        die("getrusage: %s", strerror(errno));
    if (fd >= 0 && ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0)
        die("ioctl(PERF_EVENT_IOC_ENABLE): %s", strerror(errno));
    uint64_t t0 = now_ns();
    if (pp)
        for (long long i = 0; i < rounds; i++)
            round_trip(pp);
    else
        for (long long i = 0; i < calls; i++)
            sink = syscall(SYS_getppid);
    uint64_t t1 = now_ns();
    if (fd >= 0 && ioctl(fd, PERF_EVENT_IOC_DISABLE, 0) != 0)
        die("ioctl(PERF_EVENT_IOC_DISABLE): %s", strerror(errno));
    if (getrusage(RUSAGE_THREAD, &r1) != 0)
        die("getrusage: %s", strerror(errno));
    if (fd >= 0 && read(fd, &count, sizeof count) != sizeof count)
        die("read(perf counter): %s", strerror(errno));
    kill_helper();

    json_begin();
    json_string("kernel", "space");
    json_string("variant", cm->variant);
    json_int("cpu", cpu);
    json_int("calls", calls);
    if (fd >= 0)
        json_int("perf_switches", (long long)count);
    else
        json_null("perf_switches");
    json_string("perf_reason", fd >= 0 ? NULL : reason);
    json_int("rusage_nvcsw", r1.ru_nvcsw - r0.ru_nvcsw);
    json_int("rusage_nivcsw", r1.ru_nivcsw - r0.ru_nivcsw);
    json_int("elapsed_ns", (long long)(t1 - t0));
    if (pp)
        json_int("rounds", rounds);
    json_end();
}

int main(int argc, char **argv)
{
    kernel_init();
    struct common cm;
    long long calls = 1000000, rounds = 1000;
    struct opt extra[] = {
        {"calls", &calls, 1, 1000000000000LL, 0},
        {"rounds", &rounds, 1, 1000000000LL, 0},
        {NULL, NULL, 0, 0, 0},
    };
    parse_args(argc, argv, &cm, variants, extra);
    long long cpu = cm.cpu;
    struct pipes pp;

    if (cm.vidx == V_CSW_COUNT) {
        pin_or_exit(cpu);
        count_switches(&cm, cpu, calls, 0, NULL);
        return 0;
    }
    if (cm.vidx == V_CSW_CONTROL) {
        cpu = pin_pair(cpu);
        pp = start_helper();
        /* the parent makes two system calls (write, read) per round trip */
        count_switches(&cm, cpu, 2 * rounds, rounds, &pp);
        return 0;
    }

    batch_fn f = cm.vidx == V_CALL ? b_call : cm.vidx == V_VDSO ? b_vdso : b_getppid;
    void *ctx = NULL;
    if (cm.vidx == V_PSWITCH) {
        cpu = pin_pair(cpu);
        pp = start_helper();
        f = b_pswitch;
        ctx = &pp;
    } else {
        pin_or_exit(cpu);
    }
    struct timing t;
    measure(&t, f, ctx, &cm);
    if (cm.vidx == V_PSWITCH) {
        kill_helper();
        for (int b = 0; b < t.batches; b++)
            t.per_op[b] /= 2; /* an iteration is a round trip: two switches */
    }
    json_timing("space", &cm, cpu, &t);
    json_end();
    return 0;
}
