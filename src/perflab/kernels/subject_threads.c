/* subject_threads: a process to be looked at, not a measurement.
 *
 * It starts N threads with the stack sizes it is given (cycled over the threads, so a
 * size heuristic cannot find them), optionally opens M extra file descriptors of every
 * common type and forks a child, prints one JSON line describing itself (TIDs, each
 * thread's stack range as pthread_getattr_np(3) reports it, the fds it opened) and then
 * blocks until stdin reaches EOF or a signal arrives. Every thread waits in a system
 * call (futex), so /proc/PID/task/TID/syscall reports its user stack pointer.
 *
 * Used by `perflab inspect` tests, its scale benchmark and the space.user-layout claim.
 *
 *   subject_threads [--threads=N] [--stack-kib=K1,K2,...] [--fds=M] [--fork-child=0|1]
 *
 * Exit codes: 0 after EOF on stdin, 1 on failure, 2 on bad arguments.
 */
#include "lib/common.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>

#define MAX_THREADS 30000
#define MAX_SIZES 64

struct thread_info {
    pthread_t handle;
    pid_t tid;
    uintptr_t stack_lo, stack_hi; /* pthread_getattr_np: [stackaddr, stackaddr + size) */
    size_t guard;
};

static struct thread_info *threads;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t started_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t never_cv = PTHREAD_COND_INITIALIZER; /* nobody signals it */
static long started;

static void *thread_main(void *arg)
{
    struct thread_info *t = arg;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        die("pthread_getattr_np failed");
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_getguardsize(&attr, &t->guard);
    pthread_attr_destroy(&attr);
    t->tid = (pid_t)syscall(SYS_gettid);
    t->stack_lo = (uintptr_t)addr;
    t->stack_hi = (uintptr_t)addr + size;
    pthread_mutex_lock(&lock);
    started++;
    pthread_cond_signal(&started_cv);
    for (;;) /* futex wait, forever: a task blocked in a system call */
        pthread_cond_wait(&never_cv, &lock);
    return NULL;
}

/* Open `count` descriptors, cycling over the types `perflab inspect` tells apart.
 * Counts per type go into `counts` (same order as `names`). */
static const char *const fd_names[] = {"regular", "pipe", "socket", "eventfd", "epoll",
                                       "timerfd", "signalfd"};
#define N_FD_TYPES 7

static void open_fds(long count, long counts[N_FD_TYPES])
{
    char path[] = "/tmp/perflab-subject-XXXXXX";
    int file = mkstemp(path);
    if (file < 0)
        die("mkstemp: %s", strerror(errno));
    unlink(path); /* fds keep it; nothing is left behind after kill -9 */
    if (write(file, "perflab\n", 8) != 8)
        die("write: %s", strerror(errno));
    counts[0]++;
    long opened = 1;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR2);
    for (long i = 0; opened < count; i++) {
        int type = (int)(i % N_FD_TYPES), fds[2] = {-1, -1}, n = 1;
        switch (type) {
        case 0: {
            char self[64];
            snprintf(self, sizeof self, "/proc/self/fd/%d", file);
            fds[0] = open(self, O_RDONLY); /* a new open file description, offset 0 */
            if (fds[0] >= 0)
                lseek(fds[0], (off_t)(i % 8), SEEK_SET);
            break;
        }
        case 1:
            n = 2;
            if (pipe(fds) != 0)
                fds[0] = -1;
            break;
        case 2:
            n = 2;
            if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
                fds[0] = -1;
            break;
        case 3:
            fds[0] = eventfd((unsigned)i, 0);
            break;
        case 4:
            fds[0] = epoll_create1(0);
            if (fds[0] >= 0) {
                struct epoll_event ev = {.events = EPOLLIN, .data.fd = file};
                epoll_ctl(fds[0], EPOLL_CTL_ADD, file, &ev);
            }
            break;
        case 5:
            fds[0] = timerfd_create(CLOCK_MONOTONIC, 0);
            break;
        case 6:
            fds[0] = signalfd(-1, &mask, 0);
            break;
        }
        if (fds[0] < 0)
            die("opening a %s fd (%ld open): %s", fd_names[type], opened, strerror(errno));
        if (n == 2 && opened + 2 > count) { /* keep the total exact */
            close(fds[1]);
            n = 1;
        }
        counts[type] += n;
        opened += n;
    }
}

static int parse_sizes(const char *s, size_t *sizes)
{
    int n = 0;
    while (*s && n < MAX_SIZES) {
        char *end;
        errno = 0;
        unsigned long long kib = strtoull(s, &end, 10);
        if (errno || end == s || kib == 0 || kib > (1ull << 22))
            return -1;
        sizes[n++] = (size_t)kib * 1024;
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        s = end;
    }
    return *s ? -1 : n;
}

int main(int argc, char **argv)
{
    long long nthreads = 3, nfds = 0, fork_child = 0;
    size_t sizes[MAX_SIZES] = {64 * 1024, 192 * 1024, 1024 * 1024};
    int nsizes = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--threads=", 10)) {
            if (parse_ll(a + 10, &nthreads) || nthreads < 0 || nthreads > MAX_THREADS)
                die_badargs("--threads must be in [0, %d]", MAX_THREADS);
        } else if (!strncmp(a, "--fds=", 6)) {
            if (parse_ll(a + 6, &nfds) || nfds < 0 || nfds > 1000000)
                die_badargs("--fds must be in [0, 1000000]");
        } else if (!strncmp(a, "--fork-child=", 13)) {
            if (parse_ll(a + 13, &fork_child) || fork_child < 0 || fork_child > 1)
                die_badargs("--fork-child must be 0 or 1");
        } else if (!strncmp(a, "--stack-kib=", 12)) {
            if ((nsizes = parse_sizes(a + 12, sizes)) <= 0)
                die_badargs("--stack-kib must be a comma list of positive KiB sizes");
        } else {
            die_badargs("unknown argument '%s'", a);
        }
    }
    kernel_init();

    long fd_counts[N_FD_TYPES] = {0};
    if (nfds > 0) {
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)nfds + 16 > rl.rlim_cur) {
            rl.rlim_cur = rl.rlim_max; /* the soft limit may rise to the hard one */
            setrlimit(RLIMIT_NOFILE, &rl);
            if (rl.rlim_max != RLIM_INFINITY && (rlim_t)nfds + 16 > rl.rlim_max)
                die_unsupported("%lld fds exceed the hard RLIMIT_NOFILE %llu", nfds,
                                (unsigned long long)rl.rlim_max);
        }
        open_fds((long)nfds, fd_counts);
    }

    threads = calloc((size_t)(nthreads ? nthreads : 1), sizeof *threads);
    if (!threads)
        die("calloc: %s", strerror(errno));
    for (long long i = 0; i < nthreads; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        size_t size = sizes[i % nsizes];
        if (size < (size_t)PTHREAD_STACK_MIN)
            size = PTHREAD_STACK_MIN;
        int e = pthread_attr_setstacksize(&attr, size);
        if (e)
            die("pthread_attr_setstacksize(%zu): %s", size, strerror(e));
        e = pthread_create(&threads[i].handle, &attr, thread_main, &threads[i]);
        if (e)
            die("pthread_create (thread %lld): %s", i, strerror(e));
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_lock(&lock);
    while (started < nthreads)
        pthread_cond_wait(&started_cv, &lock);
    pthread_mutex_unlock(&lock);

    pid_t child = 0;
    if (fork_child) {
        fflush(stdout);
        child = fork();
        if (child < 0)
            die("fork: %s", strerror(errno));
        if (child == 0) { /* blocks on the same stdin; dies with its parent */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            char c;
            while (read(0, &c, 1) > 0)
                ;
            _exit(0);
        }
    }

    /* One JSON line, written with stdio: stack sizes are what the test checks. */
    pthread_attr_t mattr;
    void *maddr = NULL;
    size_t msize = 0;
    if (pthread_getattr_np(pthread_self(), &mattr) == 0) {
        pthread_attr_getstack(&mattr, &maddr, &msize);
        pthread_attr_destroy(&mattr);
    }
    printf("{\"pid\": %d, \"child_pid\": %d, \"main_stack_lo\": %llu, \"main_stack_hi\": %llu, "
           "\"fds\": {",
           (int)getpid(), (int)child, (unsigned long long)(uintptr_t)maddr,
           (unsigned long long)((uintptr_t)maddr + msize));
    for (int t = 0; t < N_FD_TYPES; t++)
        printf("%s\"%s\": %ld", t ? ", " : "", fd_names[t], fd_counts[t]);
    printf("}, \"threads\": [");
    for (long long i = 0; i < nthreads; i++)
        printf("%s{\"tid\": %d, \"stack_lo\": %llu, \"stack_hi\": %llu, \"guard_bytes\": %zu, "
               "\"requested_stack_bytes\": %zu}",
               i ? ", " : "", (int)threads[i].tid, (unsigned long long)threads[i].stack_lo,
               (unsigned long long)threads[i].stack_hi, threads[i].guard,
               sizes[i % nsizes] < (size_t)PTHREAD_STACK_MIN ? (size_t)PTHREAD_STACK_MIN
                                                             : sizes[i % nsizes]);
    printf("]}\n");
    fflush(stdout);

    char buf[256];
    for (;;) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EINTR))
            break;
    }
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    return 0;
}
