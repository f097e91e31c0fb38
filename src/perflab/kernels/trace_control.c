/* trace_control.c: known workloads for the tracer. Protocol: docs/kernels.md,
 * "trace_control".
 *
 * --variant=control   the positive control (perflab.observe.trace.control): exactly 29
 *                     getppid(2) calls, 23 of them between the two marker calls (7 from
 *                     the main thread, 5 from a second thread, 11 from a forked child),
 *                     2 before the first marker and 4 after the second. Primes, so a
 *                     mechanism that loses a thread's or the child's calls, or counts
 *                     one twice, cannot land on the expected numbers by accident.
 *                     Between the markers: one thread creation (pthread_create: clone3
 *                     or clone with CLONE_THREAD) and one fork (clone with SIGCHLD).
 * --variant=getppid-loop --n=N   N getppid calls between the markers, timed in here
 *                     (overhead per traced call: benchmarks/trace_overhead.py): wall
 *                     time, and the thread's CPU time (which time spent preempted by
 *                     other processes of a shared machine does not inflate).
 * --variant=threads --n=N   N threads created, each making one getppid call, then all
 *                     joined; between the markers, timed in here: per_op_ns is ns per thread.
 * --variant=empty     nothing: the start-up and exit of a C program, to subtract.
 *
 * Every variant prints one JSON line: what it did and how long the marked part took.
 * getppid is made with syscall(2) so that no library can cache it.
 */
#include "lib/common.h"
#include "lib/trace_marker.h"

#include <pthread.h>
#include <sys/syscall.h>

enum { V_CONTROL, V_LOOP, V_THREADS, V_EMPTY };
static const char *const variants[] = {"control", "getppid-loop", "threads", "empty", NULL};

enum { BEFORE = 2, MAIN = 7, THREAD = 5, CHILD = 11, AFTER = 4 };

static void getppid_n(long n)
{
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
}

static void *thread_calls(void *n)
{
    getppid_n((long)(intptr_t)n);
    return NULL;
}

static void control(void)
{
    getppid_n(BEFORE);
    trace_marker();
    pthread_t th;
    int e = pthread_create(&th, NULL, thread_calls, (void *)(intptr_t)THREAD);
    if (e)
        die("pthread_create: %s", strerror(e));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        getppid_n(CHILD);
        _exit(0);
    }
    getppid_n(MAIN);
    if ((e = pthread_join(th, NULL)))
        die("pthread_join: %s", strerror(e));
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("the forked child failed (status %#x)", st);
    trace_marker();
    getppid_n(AFTER);
    json_begin();
    json_string("kernel", "trace_control");
    json_string("variant", "control");
    json_int("getppid_total", BEFORE + MAIN + THREAD + CHILD + AFTER);
    json_int("getppid_region", MAIN + THREAD + CHILD);
    json_int("getppid_main", MAIN);
    json_int("getppid_thread", THREAD);
    json_int("getppid_child", CHILD);
    json_string("marker", TRACE_MARKER_NAME);
    json_end();
}

static void threads(long n)
{
    pthread_t *th = malloc((size_t)n * sizeof *th);
    if (!th)
        die("out of memory");
    for (long i = 0; i < n; i++) {
        int e = pthread_create(&th[i], NULL, thread_calls, (void *)(intptr_t)1);
        if (e)
            die("pthread_create #%ld: %s", i, strerror(e));
    }
    for (long i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    free(th);
}

int main(int argc, char **argv)
{
    struct common c;
    long long n = 1000;
    struct opt extra[] = {{"n", &n, 0, 1000000000LL, 0}, {NULL, NULL, 0, 0, 0}};
    parse_args(argc, argv, &c, variants, extra);
    if (c.vidx == V_CONTROL) {
        control();
        return 0;
    }
    uint64_t t0 = 0, t1 = 0;
    struct timespec c0 = {0, 0}, c1 = {0, 0};
    if (c.vidx != V_EMPTY) {
        /* CLOCK_THREAD_CPUTIME_ID is a real system call (no vDSO for it): read outside the
         * markers, so the region holds the workload's calls only */
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
        trace_marker();
        t0 = now_ns();
        if (c.vidx == V_LOOP)
            getppid_n((long)n);
        else
            threads((long)n);
        t1 = now_ns();
        trace_marker();
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    }
    long long cpu = (c1.tv_sec - c0.tv_sec) * 1000000000LL + (c1.tv_nsec - c0.tv_nsec);
    json_begin();
    json_string("kernel", "trace_control");
    json_string("variant", c.variant);
    json_int("n", c.vidx == V_EMPTY ? 0 : n);
    json_int("elapsed_ns", (long long)(t1 - t0));
    json_double("per_op_ns", n && c.vidx != V_EMPTY ? (double)(t1 - t0) / (double)n : NAN);
    if (c.vidx == V_LOOP) { /* the main thread's CPU time: the whole workload here */
        json_int("cpu_ns", cpu);
        json_double("per_op_cpu_ns", n ? (double)cpu / (double)n : NAN);
    }
    json_end();
    return 0;
}
