/* common.c: the helpers shared by perflab's native kernels, linked into every one of
 * them (setup.py). Declarations and the protocol: common.h, docs/kernels.md. now_ns()
 * is not here: it stays static inline in common.h (it runs inside timed intervals). */
#include "common.h"

/* ---- exits ---------------------------------------------------------------------- */

volatile pid_t helper_pid = -1;

void kill_helper(void)
{
    if (helper_pid <= 0)
        return;
    kill(helper_pid, SIGKILL);
    while (waitpid(helper_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    helper_pid = -1;
}

/* kill(2), waitpid(2), signal(2), raise(3) are async-signal-safe (signal-safety(7)). */
static void on_fatal_signal(int sig)
{
    kill_helper();
    signal(sig, SIG_DFL);
    raise(sig);
}

void set_helper(pid_t pid)
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

void exit_msg(int code, const char *fmt, ...)
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

/* ---- start-up, arguments, pinning ----------------------------------------------- */

void kernel_init(void)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
}

pid_t fork_helper(void)
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

size_t read_self_maps(char *buf, size_t cap)
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

int parse_ll(const char *s, long long *out)
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

void parse_args(int argc, char **argv, struct common *c, const char *const *variants,
                struct opt *extra)
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

int pin_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) ? errno : 0;
}

void pin_or_exit(long long cpu)
{
    int e = cpu < 0 ? 0 : pin_cpu((int)cpu);
    if (e)
        die_unsupported("cannot pin to cpu %lld: sched_setaffinity: %s", cpu, strerror(e));
}

/* ---- timing --------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double timer_overhead_ns(void)
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

uint64_t calibrate(batch_fn f, void *ctx, uint64_t target_ns)
{
    uint64_t it = 1;
    f(ctx, 1); /* the first call is cold (page faults, kernel allocations): not a sample */
    while (it < MAX_ITERS && f(ctx, it) < target_ns)
        it *= 2;
    return it;
}

void run_batches(batch_fn f, void *ctx, uint64_t iters, int B, double timer_ns, double *out)
{
    for (int b = 0; b < B; b++)
        out[b] = ((double)f(ctx, iters) - timer_ns) / (double)iters;
}

/* ALIGN_LOOPS (common.h): one copy of this loop serves every kernel, placed by each
 * kernel's link layout; when common.h was all static inline, each kernel compiled its
 * own copy, placed by its own code (of chase, iomux, pagecache, space, switch and task,
 * only task's straddled a 64-byte boundary). */
/* The loop shape every batch uses, with nothing in it: the compiler barrier keeps the
 * loop from being deleted but costs no instruction. */
ALIGN_LOOPS static uint64_t empty_batch(void *ctx, uint64_t iters)
{
    (void)ctx;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        __asm__ volatile("" ::: "memory");
    return now_ns() - t0;
}

double median_cost(batch_fn f, void *ctx, uint64_t iters, int B, double timer_ns,
                   double loop_ns)
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

void timing_init(struct timing *t, const struct common *c, uint64_t iters)
{
    t->batches = (int)c->batches;
    t->iters = iters;
    t->per_op = malloc((size_t)t->batches * sizeof *t->per_op);
    if (!t->per_op)
        die("out of memory");
    t->timer_ns = timer_overhead_ns();
    t->loop_ns = 0;
}

void measure_setup(struct timing *t, batch_fn f, void *ctx, const struct common *c)
{
    timing_init(t, c, 0);
    uint64_t eit = calibrate(empty_batch, NULL, (uint64_t)c->target_ns);
    t->loop_ns = median_cost(empty_batch, NULL, eit, t->batches, t->timer_ns, 0);
    t->iters = calibrate(f, ctx, (uint64_t)c->target_ns);
    f(ctx, t->iters); /* warm-up */
}

void measure(struct timing *t, batch_fn f, void *ctx, const struct common *c)
{
    measure_setup(t, f, ctx, c);
    run_batches(f, ctx, t->iters, t->batches, t->timer_ns, t->per_op);
    for (int b = 0; b < t->batches; b++)
        t->per_op[b] -= t->loop_ns;
}

/* ---- JSON output: one object on one line ---------------------------------------- */

int json_comma;

void json_string_value(const char *s)
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

void json_key(const char *k)
{
    if (json_comma)
        fputs(", ", stdout);
    json_comma = 1;
    json_string_value(k);
    fputs(": ", stdout);
}

/* Doubles with 10 significant digits; NaN/inf are not JSON, they print as null. */
void json_double_value(double v)
{
    if (isfinite(v))
        printf("%.10g", v);
    else
        fputs("null", stdout);
}

void json_begin(void) { putchar('{'); json_comma = 0; }
void json_obj_begin(const char *k) { json_key(k); putchar('{'); json_comma = 0; }
void json_obj_end(void) { putchar('}'); json_comma = 1; }
void json_int(const char *k, long long v) { json_key(k); printf("%lld", v); }
void json_double(const char *k, double v) { json_key(k); json_double_value(v); }
void json_null(const char *k) { json_key(k); fputs("null", stdout); }

void json_string(const char *k, const char *s)
{
    json_key(k);
    if (s)
        json_string_value(s);
    else
        fputs("null", stdout);
}

void json_doubles(const char *k, const double *v, int n)
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

void json_end(void)
{
    fputs("}\n", stdout);
    if (fflush(stdout) != 0 || ferror(stdout))
        die("writing stdout: %s", strerror(errno));
}

void json_timing(const char *kernel, const struct common *c, long long cpu,
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
