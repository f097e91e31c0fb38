/* switch.c: what one switch between two execution contexts costs, from a user-level
 * register switch to a process switch, all on one CPU; and a subject process that
 * starts N kernel threads and counts its tasks in /proc.
 * Protocol: docs/kernels.md (common options, output, exit codes);
 * variants and fields: docs/claims/green.md, "Kernels".
 *
 * A switch is half a ping-pong round trip (CLAIMS.md, general rules): every timed
 * iteration is one round trip main -> partner -> main, so per_op_ns is half of it,
 * the system calls the mechanism needs included.
 */
#include "lib/common.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>

enum { V_REGISTER, V_SWAPCONTEXT, V_THREAD_FUTEX, V_THREAD_PIPE, V_PROCESS_FUTEX,
       V_PROCESS_PIPE, V_THREADS_TASKS };
static const char *const variants[] = {"register",      "swapcontext",  "thread-futex",
                                       "thread-pipe",   "process-futex", "process-pipe",
                                       "threads-tasks", NULL};

#define STACK_BYTES (256 * 1024)

/* ---- register-only user-level switch (x86-64) ------------------------------------ *
 * What a green-thread runtime does to switch: save the callee-saved registers of the
 * System V x86-64 ABI (rbx, rbp, r12-r15) on the current stack, store the stack
 * pointer, load the other context's stack pointer, pop its registers and return into
 * it. Caller-saved registers need no saving: the call to perflab_swtch already told
 * the compiler they are clobbered. Neither context changes MXCSR or the x87 control
 * word (also callee-saved), so they are not saved; Boost.Context's jump_fcontext saves
 * them too, at a few cycles more. No system call, no signal mask. */
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl perflab_swtch\n"
        ".type perflab_swtch,@function\n"
        "perflab_swtch:\n" /* rdi: where to store the old sp; rsi: the new sp */
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size perflab_swtch, .-perflab_swtch\n");
void perflab_swtch(void **save_sp, void *new_sp);
#define HAVE_REGISTER_SWITCH 1
#else
#define HAVE_REGISTER_SWITCH 0
#endif

static void *main_sp, *coro_sp;

#if HAVE_REGISTER_SWITCH
ALIGN_LOOPS __attribute__((noreturn)) static void coro_entry(void)
{
    for (;;)
        perflab_swtch(&coro_sp, main_sp);
}

/* A fresh stack laid out as perflab_swtch leaves a suspended context: six saved
 * registers, then the address to "return" to (coro_entry). At coro_entry's first
 * instruction rsp is 8 mod 16, as after a call (ABI: rsp+8 is 16-byte aligned). */
static void register_init(void)
{
    char *stack = malloc(STACK_BYTES);
    if (!stack)
        die("out of memory");
    uintptr_t top = ((uintptr_t)stack + STACK_BYTES) & ~(uintptr_t)15;
    void **sp = (void **)(top - 8); /* a fake return address slot for coro_entry */
    *sp = NULL;
    *--sp = (void *)coro_entry;
    for (int i = 0; i < 6; i++) /* rbp, rbx, r12, r13, r14, r15: popped in reverse */
        *--sp = NULL;
    coro_sp = sp;
}

ALIGN_LOOPS static uint64_t b_register(void *p, uint64_t iters)
{
    (void)p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        perflab_swtch(&main_sp, coro_sp);
    return now_ns() - t0;
}
#endif

/* ---- swapcontext(3): saves and restores the signal mask with rt_sigprocmask(2) on
 * every switch (glibc sysdeps/unix/sysv/linux/x86_64/swapcontext.S), plus the FPU
 * environment. */
static ucontext_t main_uc, coro_uc;

static void uc_entry(void)
{
    for (;;)
        if (swapcontext(&coro_uc, &main_uc) != 0)
            die("swapcontext: %s", strerror(errno));
}

static void swapcontext_init(void)
{
    char *stack = malloc(STACK_BYTES);
    if (!stack)
        die("out of memory");
    if (getcontext(&coro_uc) != 0)
        die("getcontext: %s", strerror(errno));
    coro_uc.uc_stack.ss_sp = stack;
    coro_uc.uc_stack.ss_size = STACK_BYTES;
    coro_uc.uc_link = NULL;
    makecontext(&coro_uc, uc_entry, 0);
}

static uint64_t b_swapcontext(void *p, uint64_t iters)
{
    (void)p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        swapcontext(&main_uc, &coro_uc);
    return now_ns() - t0;
}

/* ---- futex(2) ping-pong: the cheapest blocking hand-off the kernel offers. The word
 * says whose turn it is; each side wakes the other and sleeps until its turn comes.
 * Both wake and wait are made on every hand-off (no "is anyone waiting" shortcut), so
 * a round trip is two FUTEX_WAKE and at least two FUTEX_WAIT calls and two switches. */
struct futex_pp {
    _Atomic int *word; /* 0: main's turn, 1: partner's turn */
    int op_private;    /* FUTEX_PRIVATE_FLAG for threads, 0 for processes (shared page) */
};

static long futex(_Atomic int *uaddr, int op, int val)
{
    return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static void futex_pass(struct futex_pp *f, int mine, int theirs)
{
    atomic_store(f->word, theirs);
    futex(f->word, FUTEX_WAKE | f->op_private, 1);
    while (atomic_load(f->word) != mine) {
        long r = futex(f->word, FUTEX_WAIT | f->op_private, theirs);
        if (r != 0 && errno != EAGAIN && errno != EINTR)
            die("futex(FUTEX_WAIT): %s", strerror(errno));
    }
}

static void futex_partner_loop(struct futex_pp *f)
{
    while (atomic_load(f->word) != 1)
        futex(f->word, FUTEX_WAIT | f->op_private, 0);
    for (;;)
        futex_pass(f, 1, 0);
}

static void *futex_thread(void *p)
{
    futex_partner_loop(p);
    return NULL;
}

static uint64_t b_futex(void *p, uint64_t iters)
{
    struct futex_pp *f = p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        futex_pass(f, 0, 1);
    return now_ns() - t0;
}

/* ---- pipe(7) ping-pong: one byte each way, a write(2) and a read(2) per hand-off --- */
struct pipe_pp {
    int to_partner[2], from_partner[2];
};

static void pipe_partner_loop(struct pipe_pp *pp)
{
    char ch;
    for (;;) {
        if (read(pp->to_partner[0], &ch, 1) != 1)
            _exit(0); /* main is gone */
        if (write(pp->from_partner[1], &ch, 1) != 1)
            _exit(0);
    }
}

static void *pipe_thread(void *p)
{
    pipe_partner_loop(p);
    return NULL;
}

static uint64_t b_pipe(void *p, uint64_t iters)
{
    struct pipe_pp *pp = p;
    char ch = 'x';
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        if (write(pp->to_partner[1], &ch, 1) != 1)
            die("write(pipe): %s", strerror(errno));
        ssize_t r = read(pp->from_partner[0], &ch, 1);
        if (r != 1)
            die("read(pipe): %s", r < 0 ? strerror(errno) : "partner exited");
    }
    return now_ns() - t0;
}

/* ---- partners ------------------------------------------------------------------- */
static void start_thread(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, STACK_BYTES);
    int e = pthread_create(&t, &attr, fn, arg);
    if (e)
        die("pthread_create: %s", strerror(e));
    pthread_attr_destroy(&attr);
}

/* fork(2) after pinning: the child inherits the CPU affinity (sched_setaffinity(2)). */
static void start_process(void (*loop)(void *), void *arg)
{
    pid_t pid = fork_helper(); /* dies with this kernel however it ends */
    if (pid == 0) {
        loop(arg);
        _exit(0);
    }
    set_helper(pid);
}

static void pipe_loop_cb(void *p) { pipe_partner_loop(p); }
static void futex_loop_cb(void *p) { futex_partner_loop(p); }

/* ---- threads-tasks: a subject, not a timing ---------------------------------------
 * Starts N threads blocked in futex(2) (pthread_cond_wait) and counts this process's
 * tasks in /proc/self/task (one entry per task, proc(5)) before and after, and the
 * Threads: line of /proc/self/status. */
static pthread_mutex_t tt_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tt_started = PTHREAD_COND_INITIALIZER, tt_never = PTHREAD_COND_INITIALIZER;
static long tt_count;

static void *tt_main(void *p)
{
    (void)p;
    pthread_mutex_lock(&tt_lock);
    tt_count++;
    pthread_cond_signal(&tt_started);
    for (;;)
        pthread_cond_wait(&tt_never, &tt_lock);
    return NULL;
}

static long count_tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        die("opendir(/proc/self/task): %s", strerror(errno));
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static long status_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        die("fopen(/proc/self/status): %s", strerror(errno));
    char line[256];
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8))
            n = strtol(line + 8, NULL, 10);
    fclose(f);
    return n;
}

static void threads_tasks(const struct common *c, long long n)
{
    enum { SAMPLES = 5 };
    long before = count_tasks(), before_status = status_threads();
    for (long long i = 0; i < n; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        int e = pthread_create(&t, &attr, tt_main, NULL);
        if (e == EAGAIN)
            die_unsupported("pthread_create of thread %lld: %s (RLIMIT_NPROC or threads-max)",
                            i + 1, strerror(e));
        if (e)
            die("pthread_create: %s", strerror(e));
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_lock(&tt_lock);
    while (tt_count < n)
        pthread_cond_wait(&tt_started, &tt_lock);
    pthread_mutex_unlock(&tt_lock);
    long during[SAMPLES], during_status = 0;
    for (int s = 0; s < SAMPLES; s++) {
        if (s)
            usleep(10000);
        during[s] = count_tasks();
    }
    during_status = status_threads();
    json_begin();
    json_string("kernel", "switch");
    json_string("variant", c->variant);
    json_int("threads_started", n);
    json_int("tasks_before", before);
    json_int("status_threads_before", before_status);
    json_key("tasks_during");
    putchar('[');
    for (int s = 0; s < SAMPLES; s++)
        printf("%s%ld", s ? ", " : "", during[s]);
    putchar(']');
    json_int("status_threads_during", during_status);
    json_int("sample_interval_ms", 10);
    json_end();
    _exit(0); /* the threads stay blocked; exit_group(2) ends them all */
}

/* ---- main ----------------------------------------------------------------------- */
int main(int argc, char **argv)
{
    struct common c;
    long long n = 1000;
    struct opt extra[] = {{"n", &n, 1, 30000, 0}, {NULL, NULL, 0, 0, 0}};
    parse_args(argc, argv, &c, variants, extra);
    kernel_init();
    if (c.vidx == V_THREADS_TASKS)
        threads_tasks(&c, n);
    if (c.vidx == V_REGISTER && !HAVE_REGISTER_SWITCH)
        die_unsupported("the register-only switch is written for x86-64 only");

    /* Both sides on one CPU: --cpu, or the one this process is on now. */
    long long cpu = c.cpu >= 0 ? c.cpu : sched_getcpu();
    pin_or_exit(cpu);

    batch_fn f = NULL;
    void *ctx = NULL;
    struct futex_pp fpp;
    struct pipe_pp ppp;
    switch (c.vidx) {
#if HAVE_REGISTER_SWITCH
    case V_REGISTER:
        register_init();
        f = b_register;
        break;
#endif
    case V_SWAPCONTEXT:
        swapcontext_init();
        f = b_swapcontext;
        break;
    case V_THREAD_FUTEX:
    case V_PROCESS_FUTEX: {
        int process = c.vidx == V_PROCESS_FUTEX;
        /* MAP_SHARED: the word stays shared across fork(2); a futex on shared memory is
         * keyed by page, hence no FUTEX_PRIVATE_FLAG there (futex(2)). */
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                       (process ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            die("mmap: %s", strerror(errno));
        fpp.word = m;
        atomic_store(fpp.word, 0);
        fpp.op_private = process ? 0 : FUTEX_PRIVATE_FLAG;
        if (process)
            start_process(futex_loop_cb, &fpp);
        else
            start_thread(futex_thread, &fpp);
        f = b_futex;
        ctx = &fpp;
        break;
    }
    case V_THREAD_PIPE:
    case V_PROCESS_PIPE:
        if (pipe2(ppp.to_partner, O_CLOEXEC) || pipe2(ppp.from_partner, O_CLOEXEC))
            die("pipe2: %s", strerror(errno));
        if (c.vidx == V_PROCESS_PIPE)
            start_process(pipe_loop_cb, &ppp);
        else
            start_thread(pipe_thread, &ppp);
        f = b_pipe;
        ctx = &ppp;
        break;
    }

    struct rusage r0, r1;
    struct timing t;
    getrusage(RUSAGE_THREAD, &r0);
    measure(&t, f, ctx, &c);
    getrusage(RUSAGE_THREAD, &r1);
    /* All round trips this thread made (calibration, warm-up, timed batches) against
     * the context switches it went through (getrusage(2), RUSAGE_THREAD). */
    /* calibrate() made 1 + (1 + 2 + ... + iters) = 2 iters, then one warm-up batch and
     * B timed batches of iters each. */
    uint64_t trips = t.iters * (3 + (uint64_t)t.batches);
    long vol = r1.ru_nvcsw - r0.ru_nvcsw, invol = r1.ru_nivcsw - r0.ru_nivcsw;
    for (int b = 0; b < t.batches; b++)
        t.per_op[b] /= 2; /* a round trip is two switches */
    json_timing("switch", &c, cpu, &t);
    json_int("switches_per_iter", 2);
    json_int("round_trips", (long long)trips);
    json_int("voluntary_switches", vol);
    json_int("involuntary_switches", invol);
    json_double("kernel_switches_per_round_trip", (double)(vol + invol) / (double)trips);
    json_string("partner", c.vidx == V_PROCESS_FUTEX || c.vidx == V_PROCESS_PIPE ? "process"
                           : c.vidx == V_THREAD_FUTEX || c.vidx == V_THREAD_PIPE ? "thread"
                                                                               : "coroutine");
    json_end();
    kill_helper();
    return 0;
}
