/* iomux.c: the cost of one select / poll / epoll_wait call over N watched eventfds,
 * K of them ready, plus `spin`, a positive control of known linear cost.
 * Protocol: docs/kernels.md, "iomux".
 *
 * What the kernel does per call (why select/poll grow with N and epoll does not):
 * - select(2) -> fs/select.c core_sys_select(): copies in nfds bits per set, then
 *   do_select() walks every bit up to nfds and calls each file's ->poll (vfs_poll).
 *   (glibc 2.36 issues select() as the pselect6 system call: same kernel path.)
 * - poll(2) -> fs/select.c do_sys_poll(): copies in N struct pollfd, do_poll() calls
 *   ->poll on each, copies revents back.
 * - epoll_wait(2) -> fs/eventpoll.c ep_poll(): only walks the ready list (rdllist);
 *   ep_send_events() re-polls each ready item, and with level-triggered mode puts it
 *   back on the list (epoll(7)), with EPOLLET it does not: a new event is needed.
 * Descriptors are eventfd(2)s: readable while the counter is non-zero, and each
 * write(2) wakes the wait queue, i.e. calls ep_poll_callback() (fs/eventfd.c).
 */
#include "lib/common.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>

enum { V_SELECT, V_POLL, V_EPOLL_LT, V_EPOLL_ET, V_SPIN };
static const char *const variants[] = {"select", "poll", "epoll-lt", "epoll-et", "spin", NULL};

#define SPARE_FDS 16 /* stdio, the epoll fd, whatever the parent left open */
#define LONG_BITS (8 * sizeof(unsigned long))

struct ctx {
    int n, k, m, expect; /* expect: what each call must return */
    int *fds;            /* ascending; fds[n-k .. n-1] (the highest) are the ready ones */
    int nfds;            /* select: highest fd + 1 */
    size_t set_bytes;
    unsigned long *tmpl, *set;
    struct pollfd *pfd;
    int ep;
    struct epoll_event *ev;
    uint64_t spin_x;
};

__attribute__((noinline, cold, noreturn)) static void bad_return(const char *call, int r, int want)
{
    if (r < 0)
        die("%s: %s", call, strerror(errno));
    die("%s returned %d, expected %d", call, r, want);
}

/* The bitmap is copied from the template before each call because select(2) overwrites
 * it with the ready subset; that memcpy (nfds/8 bytes, ~2.4 KB at N=19000) is included
 * in the cost and is tiny next to the kernel's walk of nfds bits. */
static uint64_t b_select(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        struct timeval tv = {0, 0}; /* zero timeout: poll once, never sleep */
        memcpy(c->set, c->tmpl, c->set_bytes);
        int r = select(c->nfds, (fd_set *)c->set, NULL, NULL, &tv);
        if (r != c->expect)
            bad_return("select", r, c->expect);
    }
    return now_ns() - t0;
}

static uint64_t b_poll(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        int r = poll(c->pfd, (nfds_t)c->n, 0); /* revents is output-only: no reset */
        if (r != c->expect)
            bad_return("poll", r, c->expect);
    }
    return now_ns() - t0;
}

static uint64_t b_epoll_lt(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        int r = epoll_wait(c->ep, c->ev, c->m, 0);
        if (r != c->expect)
            bad_return("epoll_wait", r, c->expect);
    }
    return now_ns() - t0;
}

/* Re-arm the K ready eventfds: each write is a new edge; eventfd_write() wakes the
 * wait queue and ep_poll_callback() queues the item on the ready list again. */
static inline void rearm(const struct ctx *c)
{
    static const uint64_t one = 1;
    for (int j = c->n - c->k; j < c->n; j++)
        if (write(c->fds[j], &one, sizeof one) != sizeof one)
            die("write(eventfd): %s", strerror(errno));
}

static uint64_t b_epoll_et(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        rearm(c);
        int r = epoll_wait(c->ep, c->ev, c->m, 0);
        if (r != c->expect)
            bad_return("epoll_wait", r, c->expect);
    }
    return now_ns() - t0;
}

/* The re-arm alone, subtracted from epoll-et. Here the items are already on the ready
 * list, so ep_poll_callback() returns early: the list insertion stays in the ET cost. */
static uint64_t b_rearm(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        rearm(c);
    return now_ns() - t0;
}

/* Positive control: N dependent multiply-adds (an LCG step) per "call"; the empty asm
 * keeps the chain from being folded or vectorised. */
static uint64_t b_spin(void *p, uint64_t iters)
{
    struct ctx *c = p;
    uint64_t x = c->spin_x, t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        for (int j = 0; j < c->n; j++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            __asm__ volatile("" : "+r"(x));
        }
    uint64_t t = now_ns() - t0;
    c->spin_x = x;
    return t;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        die("out of memory");
    return p;
}

static void json_rlim(const char *k, rlim_t v)
{
    if (v == RLIM_INFINITY)
        json_null(k);
    else
        json_int(k, (long long)v);
}

int main(int argc, char **argv)
{
    kernel_init();
    struct common cm;
    long long n = 0, ready = 1, maxevents = 0;
    struct opt extra[] = {
        {"n", &n, 1, 10000000, 0},
        {"ready", &ready, 0, 10000000, 0},
        {"maxevents", &maxevents, 1, 1 << 20, 0},
        {NULL, NULL, 0, 0, 0},
    };
    parse_args(argc, argv, &cm, variants, extra);
    int v = cm.vidx, is_epoll = v == V_EPOLL_LT || v == V_EPOLL_ET;
    if (!extra[0].seen)
        die_badargs("--n=N is required");
    if (ready > n)
        die_badargs("--ready=%lld exceeds --n=%lld", ready, n);
    if (v == V_EPOLL_ET && ready < 1)
        die_badargs("epoll-et needs --ready >= 1 (an edge per iteration)");
    if (!extra[2].seen)
        maxevents = ready > 1 ? ready : 1;

    /* getrlimit(2): raise the soft RLIMIT_NOFILE to the hard limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("getrlimit: %s", strerror(errno));
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("setrlimit(RLIMIT_NOFILE): %s", strerror(errno));
    if (v != V_SPIN && (rl.rlim_cur == RLIM_INFINITY ? 0 : (rlim_t)n + SPARE_FDS > rl.rlim_cur))
        die_unsupported("needs %lld fds (n=%lld + %d spare), RLIMIT_NOFILE soft limit is "
                        "%llu (hard %llu)",
                        n + SPARE_FDS, n, SPARE_FDS, (unsigned long long)rl.rlim_cur,
                        (unsigned long long)rl.rlim_max);
    pin_or_exit(cm.cpu);

    struct ctx c = {.n = (int)n, .k = (int)ready, .m = (int)maxevents, .ep = -1};
    c.expect = is_epoll && c.m < c.k ? c.m : c.k;
    if (v != V_SPIN) {
        c.fds = xcalloc((size_t)n, sizeof *c.fds);
        for (int i = 0; i < c.n; i++) {
            c.fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); /* eventfd(2) */
            if (c.fds[i] < 0) {
                if (errno == EMFILE || errno == ENFILE)
                    die_unsupported("eventfd #%d of %d: %s", i + 1, c.n, strerror(errno));
                die("eventfd: %s", strerror(errno));
            }
            if (c.fds[i] >= c.nfds)
                c.nfds = c.fds[i] + 1;
        }
        static const uint64_t one = 1;
        for (int j = c.n - c.k; j < c.n; j++) /* the K highest become readable */
            if (write(c.fds[j], &one, sizeof one) != sizeof one)
                die("write(eventfd): %s", strerror(errno));
    }

    batch_fn f = b_spin;
    if (v == V_SELECT) {
        /* glibc's FD_SET stops at FD_SETSIZE (1024; _FORTIFY_SOURCE aborts beyond), but
         * the kernel takes a bitmap of nfds bits in unsigned longs (select(2) BUGS,
         * fs/select.c FDS_BYTES), so set the bits by hand. */
        size_t words = ((size_t)c.nfds + LONG_BITS - 1) / LONG_BITS;
        c.set_bytes = words * sizeof(unsigned long);
        c.tmpl = xcalloc(words, sizeof(unsigned long));
        c.set = xcalloc(words, sizeof(unsigned long));
        for (int i = 0; i < c.n; i++)
            c.tmpl[c.fds[i] / LONG_BITS] |= 1ul << (c.fds[i] % LONG_BITS);
        f = b_select;
    } else if (v == V_POLL) {
        c.pfd = xcalloc((size_t)n, sizeof *c.pfd);
        for (int i = 0; i < c.n; i++)
            c.pfd[i] = (struct pollfd){.fd = c.fds[i], .events = POLLIN};
        f = b_poll;
    } else if (is_epoll) {
        if ((c.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
            die("epoll_create1: %s", strerror(errno));
        for (int i = 0; i < c.n; i++) {
            struct epoll_event e = {.events = EPOLLIN | (v == V_EPOLL_ET ? EPOLLET : 0),
                                    .data.fd = c.fds[i]};
            if (epoll_ctl(c.ep, EPOLL_CTL_ADD, c.fds[i], &e) != 0) {
                if (errno == ENOSPC) /* epoll(7): /proc/sys/fs/epoll/max_user_watches */
                    die_unsupported("epoll_ctl: %s (fs.epoll.max_user_watches)",
                                    strerror(errno));
                die("epoll_ctl: %s", strerror(errno));
            }
        }
        c.ev = xcalloc((size_t)c.m, sizeof *c.ev);
        f = v == V_EPOLL_ET ? b_epoll_et : b_epoll_lt;
    }

    struct timing t;
    measure(&t, f, &c, &cm);
    double rearm_ns = NAN;
    if (v == V_EPOLL_ET) {
        rearm_ns = median_cost(b_rearm, &c, t.iters, t.batches, t.timer_ns, t.loop_ns);
        for (int b = 0; b < t.batches; b++)
            t.per_op[b] -= rearm_ns;
    }
    int events = v == V_SPIN ? 0 : c.expect;
    double *per_event = xcalloc((size_t)t.batches, sizeof *per_event);
    for (int b = 0; b < t.batches && events; b++)
        per_event[b] = t.per_op[b] / events;

    json_timing("iomux", &cm, cm.cpu, &t);
    json_int("n", n);
    json_int("ready", ready);
    if (is_epoll)
        json_int("maxevents", maxevents);
    else
        json_null("maxevents");
    json_int("events_per_call", events);
    if (events)
        json_doubles("per_event_ns", per_event, t.batches);
    else
        json_null("per_event_ns");
    json_double("rearm_ns", rearm_ns); /* NAN -> null */
    json_obj_begin("rlimit_nofile");
    json_rlim("soft", rl.rlim_cur);
    json_rlim("hard", rl.rlim_max);
    json_obj_end();
    if (v == V_SELECT)
        json_int("nfds", c.nfds);
    else
        json_null("nfds");
    json_end();
    return 0;
}
