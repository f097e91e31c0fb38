/* common.h: helpers shared by perflab's native kernels (header-only).
 *
 * The protocol these implement (options, JSON output, exit codes) is docs/kernels.md.
 * Everything here is static inline so each kernel stays one translation unit.
 */
#ifndef PERFLAB_COMMON_H
#define PERFLAB_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_BADARGS 2
#define EXIT_UNSUPPORTED 77
#define MAX_ITERS (1ull << 30) /* calibration cap: ~1 s even for a 1 ns operation */

/* ---- exits ---------------------------------------------------------------------- */

/* A helper process (space.c forks one). Every exit path below kills and reaps it, and
 * so do SIGTERM/SIGINT/SIGHUP/SIGQUIT once set_helper() registered it; on SIGKILL the
 * helper's own PR_SET_PDEATHSIG kills it and the reaper of orphans reaps it. */
static volatile pid_t helper_pid = -1;

static inline void kill_helper(void)
{
    if (helper_pid <= 0)
        return;
    kill(helper_pid, SIGKILL);
    while (waitpid(helper_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    helper_pid = -1;
}

/* kill(2), waitpid(2), signal(2), raise(3) are async-signal-safe (signal-safety(7)). */
static inline void on_fatal_signal(int sig)
{
    kill_helper();
    signal(sig, SIG_DFL);
    raise(sig);
}

static inline void set_helper(pid_t pid)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    helper_pid = pid;
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* Message on stderr, then exit(code). */
__attribute__((noreturn, cold, format(printf, 2, 3))) static inline void exit_msg(
    int code, const char *fmt, ...)
{
    int saved = errno;
    kill_helper();
    errno = saved;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}
#define die(...) exit_msg(1, __VA_ARGS__)                             /* the kernel failed */
#define die_badargs(...) exit_msg(EXIT_BADARGS, __VA_ARGS__)          /* bad arguments */
#define die_unsupported(...) exit_msg(EXIT_UNSUPPORTED, __VA_ARGS__)  /* not here */

/* ---- start-up, arguments, pinning ----------------------------------------------- */

/* prctl(2) PR_SET_PDEATHSIG: get SIGKILL when the parent (perflab) dies. */
static inline void kernel_init(void)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
}

/* fork(2) a helper process that dies with this kernel: in the child (return 0) SIGKILL
 * is set as its parent-death signal, and it exits at once if the parent is already gone
 * (the race prctl(2) describes). The child inherits the CPU affinity. */
static inline pid_t fork_helper(void)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
        _exit(1);
    return pid;
}

/* /proc/self/maps (proc(5)) into buf, NUL-terminated, with raw read(2) into the
 * caller's buffer: no stdio and no malloc, so reading it changes no heap under study. */
static inline size_t read_self_maps(char *buf, size_t cap)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("open /proc/self/maps: %s", strerror(errno));
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = 0;
    return len;
}

struct opt {
    const char *name; /* without the leading "--" */
    long long *val;
    long long lo, hi;
    int seen;
};

struct common {
    const char *variant;
    int vidx; /* index into the kernel's variant list */
    long long cpu, target_ns, batches;
};

static inline int parse_ll(const char *s, long long *out)
{
    char *end;
    if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Parse --key=value options: the common ones plus `extra` (NULL-name terminated).
 * `variants` is a NULL-terminated list of accepted --variant names. Exits 2 on an
 * unknown option, a malformed or out-of-range value, or a missing/unknown variant. */
static inline void parse_args(int argc, char **argv, struct common *c,
                              const char *const *variants, struct opt *extra)
{
    struct opt base[] = {
        {"cpu", &c->cpu, -1, CPU_SETSIZE - 1, 0},
        {"target-ns", &c->target_ns, 1000, 60000000000LL, 0},
        {"batches", &c->batches, 1, 1000, 0},
        {NULL, NULL, 0, 0, 0},
    };
    c->variant = NULL;
    c->cpu = -1;
    c->target_ns = 1000000;
    c->batches = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) != 0 || !eq)
            die_badargs("expected --key=value, got '%s'", a);
        size_t klen = (size_t)(eq - a - 2);
        if (klen == 7 && !strncmp(a + 2, "variant", 7)) {
            c->variant = eq + 1;
            continue;
        }
        struct opt *o = NULL;
        for (struct opt *t = base; !o && t->name; t++)
            if (strlen(t->name) == klen && !strncmp(t->name, a + 2, klen))
                o = t;
        for (struct opt *t = extra; !o && t && t->name; t++)
            if (strlen(t->name) == klen && !strncmp(t->name, a + 2, klen))
                o = t;
        if (!o)
            die_badargs("unknown option '%.*s'", (int)(klen + 2), a);
        if (parse_ll(eq + 1, o->val) || *o->val < o->lo || *o->val > o->hi)
            die_badargs("--%s must be an integer in [%lld, %lld], got '%s'", o->name, o->lo,
                        o->hi, eq + 1);
        o->seen = 1;
    }
    if (!c->variant)
        die_badargs("--variant=NAME is required");
    for (c->vidx = 0; variants[c->vidx]; c->vidx++)
        if (!strcmp(variants[c->vidx], c->variant))
            return;
    die_badargs("unknown variant '%s'", c->variant);
}

/* sched_setaffinity(2); returns 0 or an errno value. The mask is inherited across
 * fork(2), so a helper forked after this runs on the same CPU. */
static inline int pin_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) ? errno : 0;
}

/* Pin to `cpu` unless it is -1; a CPU this process may not use exits 77. */
static inline void pin_or_exit(long long cpu)
{
    int e = cpu < 0 ? 0 : pin_cpu((int)cpu);
    if (e)
        die_unsupported("cannot pin to cpu %lld: sched_setaffinity: %s", cpu, strerror(e));
}

/* ---- timing --------------------------------------------------------------------- */

/* clock_gettime(2) CLOCK_MONOTONIC: served by the vDSO on x86-64, no kernel entry. */
static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median; sorts v in place. */
static inline double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median of many back-to-back now_ns() deltas: the cost of one clock read, which
 * every batch's elapsed time contains once. */
static inline double timer_overhead_ns(void)
{
    enum { SAMPLES = 10001 };
    double *d = malloc(SAMPLES * sizeof *d);
    if (!d)
        die("out of memory");
    for (int i = 0; i < 1000; i++) /* warm up the vDSO page and caches */
        (void)now_ns();
    for (int i = 0; i < SAMPLES; i++) {
        uint64_t t0 = now_ns(), t1 = now_ns();
        d[i] = (double)(t1 - t0);
    }
    double m = median(d, SAMPLES);
    free(d);
    return m;
}

/* A batch runs `iters` iterations of the measured operation in an inline loop and
 * returns its elapsed ns (now_ns() just before and after the loop). */
typedef uint64_t (*batch_fn)(void *ctx, uint64_t iters);

/* Double iters from 1 until one batch lasts >= target_ns (or MAX_ITERS is reached). */
static inline uint64_t calibrate(batch_fn f, void *ctx, uint64_t target_ns)
{
    uint64_t it = 1;
    f(ctx, 1); /* the first call is cold (page faults, kernel allocations): not a sample */
    while (it < MAX_ITERS && f(ctx, it) < target_ns)
        it *= 2;
    return it;
}

/* B batches of `iters`; out[b] = per-iteration ns net of the timer overhead. */
static inline void run_batches(batch_fn f, void *ctx, uint64_t iters, int B, double timer_ns,
                               double *out)
{
    for (int b = 0; b < B; b++)
        out[b] = ((double)f(ctx, iters) - timer_ns) / (double)iters;
}

/* The loop shape every batch uses, with nothing in it: the compiler barrier keeps the
 * loop from being deleted but costs no instruction. */
static inline uint64_t empty_batch(void *ctx, uint64_t iters)
{
    (void)ctx;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        __asm__ volatile("" ::: "memory");
    return now_ns() - t0;
}

/* Median per-iteration cost of `f` over B batches (after calibration and a warm-up),
 * net of the timer and of `loop_ns`. */
static inline double median_cost(batch_fn f, void *ctx, uint64_t iters, int B,
                                 double timer_ns, double loop_ns)
{
    double *v = malloc((size_t)B * sizeof *v);
    if (!v)
        die("out of memory");
    f(ctx, iters);
    run_batches(f, ctx, iters, B, timer_ns, v);
    double m = median(v, (size_t)B) - loop_ns;
    free(v);
    return m;
}

struct timing {
    uint64_t iters;
    int batches;
    double timer_ns, loop_ns;
    double *per_op; /* batches values */
};

/* The whole protocol for one timed operation: timer overhead, empty-loop overhead per
 * iteration (its own calibration), calibration of `f`, one warm-up batch (measure_setup),
 * then B timed batches. per_op[b] = (elapsed_b - timer) / iters - loop; a kernel that measured a
 * per-iteration set-up cost subtracts it afterwards. */
/* A timing record for c->batches batches of `iters` operations, with the timer overhead
 * measured and no loop overhead yet: kernels that time batches their own way (each op
 * preceded by an eviction, a cache drop) fill per_op themselves. */
static inline void timing_init(struct timing *t, const struct common *c, uint64_t iters)
{
    t->batches = (int)c->batches;
    t->iters = iters;
    t->per_op = malloc((size_t)t->batches * sizeof *t->per_op);
    if (!t->per_op)
        die("out of memory");
    t->timer_ns = timer_overhead_ns();
    t->loop_ns = 0;
}

static inline void measure_setup(struct timing *t, batch_fn f, void *ctx, const struct common *c)
{
    timing_init(t, c, 0);
    uint64_t eit = calibrate(empty_batch, NULL, (uint64_t)c->target_ns);
    t->loop_ns = median_cost(empty_batch, NULL, eit, t->batches, t->timer_ns, 0);
    t->iters = calibrate(f, ctx, (uint64_t)c->target_ns);
    f(ctx, t->iters); /* warm-up */
}

static inline void measure(struct timing *t, batch_fn f, void *ctx, const struct common *c)
{
    measure_setup(t, f, ctx, c);
    run_batches(f, ctx, t->iters, t->batches, t->timer_ns, t->per_op);
    for (int b = 0; b < t->batches; b++)
        t->per_op[b] -= t->loop_ns;
}

/* ---- JSON output: one object on one line ---------------------------------------- */

static int json_comma;

static inline void json_string_value(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static inline void json_key(const char *k)
{
    if (json_comma)
        fputs(", ", stdout);
    json_comma = 1;
    json_string_value(k);
    fputs(": ", stdout);
}

/* Doubles with 10 significant digits; NaN/inf are not JSON, they print as null. */
static inline void json_double_value(double v)
{
    if (isfinite(v))
        printf("%.10g", v);
    else
        fputs("null", stdout);
}

static inline void json_begin(void) { putchar('{'); json_comma = 0; }
static inline void json_obj_begin(const char *k) { json_key(k); putchar('{'); json_comma = 0; }
static inline void json_obj_end(void) { putchar('}'); json_comma = 1; }
static inline void json_int(const char *k, long long v) { json_key(k); printf("%lld", v); }
static inline void json_double(const char *k, double v) { json_key(k); json_double_value(v); }
static inline void json_null(const char *k) { json_key(k); fputs("null", stdout); }

static inline void json_string(const char *k, const char *s)
{
    json_key(k);
    if (s)
        json_string_value(s);
    else
        fputs("null", stdout);
}

static inline void json_doubles(const char *k, const double *v, int n)
{
    json_key(k);
    putchar('[');
    for (int i = 0; i < n; i++) {
        if (i)
            fputs(", ", stdout);
        json_double_value(v[i]);
    }
    putchar(']');
}

static inline void json_end(void)
{
    fputs("}\n", stdout);
    if (fflush(stdout) != 0 || ferror(stdout))
        die("writing stdout: %s", strerror(errno));
}

/* The fields every timing kernel reports (docs/kernels.md, "Output"). */
static inline void json_timing(const char *kernel, const struct common *c, long long cpu,
                               const struct timing *t)
{
    json_begin();
    json_string("kernel", kernel);
    json_string("variant", c->variant);
    json_int("cpu", cpu);
    json_int("iters", (long long)t->iters);
    json_doubles("per_op_ns", t->per_op, t->batches);
    json_double("timer_overhead_ns", t->timer_ns);
    json_double("loop_overhead_ns", t->loop_ns);
}

#endif /* PERFLAB_COMMON_H */
