/* task.c: what creating a thread, a process, or a CLONE_VM process costs; a subject
 * whose threads burn different amounts of CPU; and marked fork / pthread_create calls
 * for the tracer. Protocol: docs/kernels.md; variants and fields: docs/claims/task.md.
 *
 *   --variant=create-thread    pthread_create + pthread_join of a thread that returns
 *   --variant=create-fork      fork() + _exit(0) in the child + waitpid()
 *   --variant=create-clone-vm  clone(CLONE_VM | SIGCHLD) (no CLONE_THREAD, no CLONE_FILES
 *                              ...) of a function that returns + waitpid()
 *   --variant=spin-subject --n=N --unit-ms=M
 *        N threads; thread i burns (i+1)*M ms of its own CPU time (CLOCK_THREAD_CPUTIME_ID)
 *        and then blocks in futex(2); the main thread prints one JSON line and spins
 *        (state R) polling stdin until EOF. Not a measurement: a process to look at.
 *   --variant=fork-marked | thread-marked
 *        trace_marker(); one fork() (child _exit(0), waited) or one pthread_create
 *        (+join); trace_marker(). For perflab.observe.trace (clone.fork-is-clone, thread-flags).
 *
 * Every timed iteration creates one task and waits for it to be gone (reaped or
 * joined), so nothing accumulates; with --cpu the children inherit the pinning.
 */
#include "lib/common.h"
#include "lib/trace_marker.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>

enum { V_THREAD, V_FORK, V_CLONE_VM, V_SPIN, V_FORK_MARKED, V_THREAD_MARKED };
static const char *const variants[] = {"create-thread", "create-fork", "create-clone-vm",
                                       "spin-subject",  "fork-marked", "thread-marked", NULL};

static void *nothing(void *p) { return p; }
static int clone_fn(void *p) { (void)p; return 0; }

static uint64_t b_thread(void *p, uint64_t iters)
{
    (void)p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        pthread_t t;
        int e = pthread_create(&t, NULL, nothing, NULL);
        if (e)
            die("pthread_create: %s", strerror(e));
        pthread_join(t, NULL);
    }
    return now_ns() - t0;
}

static void reap(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            die("waitpid: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("child %d did not exit cleanly (status 0x%x)", (int)pid, st);
}

static uint64_t b_fork(void *p, uint64_t iters)
{
    (void)p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0)
            _exit(0);
        reap(pid);
    }
    return now_ns() - t0;
}

#define CLONE_STACK (64 * 1024)
static char *clone_stack;

static uint64_t b_clone_vm(void *p, uint64_t iters)
{
    (void)p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        /* The child shares the address space but nothing else: its own fd table, fs,
         * signal handlers, and it is a separate thread group (its own PID). It only
         * returns (glibc's clone() then calls exit(2), not exit_group(2)). Reaped before
         * the next iteration reuses its stack. */
        pid_t pid = clone(clone_fn, clone_stack + CLONE_STACK, CLONE_VM | SIGCHLD, NULL);
        if (pid < 0)
            die("clone(CLONE_VM): %s", strerror(errno));
        reap(pid);
    }
    return now_ns() - t0;
}

/* ---- spin-subject ----------------------------------------------------------------- */
struct spinner {
    long long burn_ns;
    pid_t tid;
    double cpu_ns; /* CPU time of the thread when done, by its own clock */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER, never_cv = PTHREAD_COND_INITIALIZER;
static long done_count;
static volatile unsigned long sink;

static double thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *spin_main(void *arg)
{
    struct spinner *s = arg;
    s->tid = (pid_t)syscall(SYS_gettid);
    double start = thread_cpu_ns();
    while (thread_cpu_ns() - start < (double)s->burn_ns)
        for (int k = 0; k < 1000; k++)
            sink += (unsigned long)k * 2654435761u;
    s->cpu_ns = thread_cpu_ns();
    pthread_mutex_lock(&lock);
    done_count++;
    pthread_cond_signal(&done_cv);
    for (;;) /* blocked in futex(2) for good: state S */
        pthread_cond_wait(&never_cv, &lock);
    return NULL;
}

static void spin_subject(long long n, long long unit_ms)
{
    struct spinner *s = calloc((size_t)n, sizeof *s);
    if (!s)
        die("out of memory");
    for (long long i = 0; i < n; i++) {
        s[i].burn_ns = (i + 1) * unit_ms * 1000000LL;
        pthread_t t;
        int e = pthread_create(&t, NULL, spin_main, &s[i]);
        if (e)
            die("pthread_create: %s", strerror(e));
    }
    pthread_mutex_lock(&lock);
    while (done_count < n)
        pthread_cond_wait(&done_cv, &lock);
    pthread_mutex_unlock(&lock);
    json_begin();
    json_string("kernel", "task");
    json_string("variant", "spin-subject");
    json_int("pid", getpid());
    json_int("main_tid", (long long)syscall(SYS_gettid));
    json_int("unit_ms", unit_ms);
    json_key("threads");
    putchar('[');
    for (long long i = 0; i < n; i++) {
        printf("%s{\"tid\": %d, \"burn_ns\": %lld, \"cpu_ns\": %.0f}", i ? ", " : "", (int)s[i].tid,
               s[i].burn_ns, s[i].cpu_ns);
    }
    putchar(']');
    json_end();
    /* Spin (runnable, state R) until stdin reaches EOF: the main task's own state. */
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    char buf[64];
    for (;;) {
        for (int k = 0; k < 100000; k++)
            sink += (unsigned long)k;
        if (poll(&pfd, 1, 0) > 0) {
            ssize_t r = read(0, buf, sizeof buf);
            if (r <= 0)
                break;
        }
    }
    _exit(0); /* exit_group: the blocked threads go with it */
}

int main(int argc, char **argv)
{
    struct common c;
    long long n = 4, unit_ms = 40;
    struct opt extra[] = {{"n", &n, 1, 64, 0}, {"unit-ms", &unit_ms, 1, 1000, 0}, {NULL, NULL, 0, 0, 0}};
    parse_args(argc, argv, &c, variants, extra);
    kernel_init();
    if (c.vidx == V_SPIN)
        spin_subject(n, unit_ms);
    if (c.vidx == V_FORK_MARKED || c.vidx == V_THREAD_MARKED) {
        fflush(NULL);
        trace_marker();
        if (c.vidx == V_FORK_MARKED) {
            pid_t pid = fork();
            if (pid < 0)
                die("fork: %s", strerror(errno));
            if (pid == 0)
                _exit(0);
            reap(pid);
        } else {
            pthread_t t;
            int e = pthread_create(&t, NULL, nothing, NULL);
            if (e)
                die("pthread_create: %s", strerror(e));
            pthread_join(t, NULL);
        }
        trace_marker();
        json_begin();
        json_string("kernel", "task");
        json_string("variant", c.variant);
        json_int("created", 1);
        json_end();
        return 0;
    }

    long long cpu = c.cpu >= 0 ? c.cpu : sched_getcpu();
    pin_or_exit(cpu);
    batch_fn f = b_thread;
    if (c.vidx == V_FORK) {
        f = b_fork;
    } else if (c.vidx == V_CLONE_VM) {
        clone_stack = mmap(NULL, CLONE_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                           -1, 0);
        if (clone_stack == MAP_FAILED)
            die("mmap: %s", strerror(errno));
        f = b_clone_vm;
    }
    struct timing t;
    measure(&t, f, NULL, &c);
    json_timing("task", &c, cpu, &t);
    json_string("creates", c.vidx == V_THREAD ? "pthread_create+join"
                           : c.vidx == V_FORK ? "fork+_exit+waitpid"
                                              : "clone(CLONE_VM|SIGCHLD)+waitpid");
    json_end();
    return 0;
}
