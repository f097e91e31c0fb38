/* chase.c: memory latency by pointer chasing over a working set of --bytes.
 * Protocol: docs/kernels.md (common options, output, exit codes);
 * variants and fields: docs/claims/cache.md, "Kernels".
 *
 * The working set is cut into 64-byte cache lines linked into one random cycle
 * (Sattolo's algorithm: a uniformly random cyclic permutation, so the chase visits every
 * line once per lap in an order no prefetcher can predict). Each hop is a load whose
 * address is the value of the previous load, so hops cannot overlap: the time per hop
 * is the latency of the level of the memory hierarchy the working set lives in.
 */
#include "lib/common.h"

#include <sys/mman.h>
#include <sys/resource.h>

enum { V_CHASE };
static const char *const variants[] = {"chase", NULL};

#define LINE 64
#define UNROLL 16
#define WARM_HOPS (1u << 16) /* at most: a whole lap of sets up to 4 MiB */

struct line {
    struct line *next;
    char pad[LINE - sizeof(struct line *)];
};
_Static_assert(sizeof(struct line) == LINE, "one line per hop");

struct chase {
    struct line *p;
};

static volatile uintptr_t sink;

/* Context switches of this thread so far (getrusage(2), RUSAGE_THREAD). */
static long switches(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

#define MAX_RETRIES 50

/* lib/common.c's measure(), except that a timed batch during which this thread was switched
 * out (another task ran on the CPU: its time and its cache footprint are in the batch)
 * is run again, up to MAX_RETRIES times in all; the count is reported. A sub-nanosecond
 * L1 hop and a 0.25 ms batch make a single preemption a tenfold error otherwise. */
static int measure_unswitched(struct timing *t, batch_fn f, void *ctx, const struct common *c)
{
    measure_setup(t, f, ctx, c);
    int retries = 0;
    for (int b = 0; b < t->batches; b++) {
        long s0 = switches();
        uint64_t e = f(ctx, t->iters);
        if (switches() != s0 && retries < MAX_RETRIES) {
            retries++;
            b--;
            continue;
        }
        t->per_op[b] = ((double)e - t->timer_ns) / (double)t->iters - t->loop_ns;
    }
    return retries;
}

static uint64_t b_chase(void *ctx, uint64_t iters)
{
    struct chase *c = ctx;
    struct line *p = c->p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
#define HOP p = p->next;
        HOP HOP HOP HOP HOP HOP HOP HOP HOP HOP HOP HOP HOP HOP HOP HOP
#undef HOP
    }
    uint64_t t = now_ns() - t0;
    c->p = p;
    return t;
}

/* splitmix64 (Steele, Lea, Flood 2014): a fast generator, good enough to shuffle. */
static uint64_t rng_state;
static inline uint64_t next_rand(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound) by Lemire's multiply-shift (bias < bound / 2^64, negligible). */
static inline uint64_t below(uint64_t bound)
{
    return (uint64_t)(((unsigned __int128)next_rand() * bound) >> 64);
}

static long long meminfo_kib(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[256];
    size_t k = strlen(key);
    long long v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, k) && line[k] == ':')
            v = strtoll(line + k + 1, NULL, 10);
    fclose(f);
    return v;
}

/* AnonHugePages of the mapping at `addr` in /proc/self/smaps (proc(5)), in KiB. */
static long long anon_huge_kib(void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512], want[32];
    snprintf(want, sizeof want, "%lx-", (unsigned long)(uintptr_t)addr);
    int in = 0;
    long long v = -1;
    while (fgets(line, sizeof line, f)) {
        /* a mapping's header starts with its lower-case hex start address; its fields
         * ("Size:", "AnonHugePages:", ...) start with an upper-case letter */
        if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
            if (in)
                break;
            in = !strncmp(line, want, strlen(want));
        } else if (in && !strncmp(line, "AnonHugePages:", 14)) {
            v = strtoll(line + 14, NULL, 10);
        }
    }
    fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    struct common c;
    long long bytes = 0, seed = 1;
    struct opt extra[] = {
        {"bytes", &bytes, 2 * LINE, 1LL << 40, 0},
        {"seed", &seed, 0, 1LL << 62, 0},
        {NULL, NULL, 0, 0, 0},
    };
    parse_args(argc, argv, &c, variants, extra);
    if (!extra[0].seen)
        die_badargs("--bytes=N is required");
    kernel_init();
    pin_or_exit(c.cpu);
    rng_state = (uint64_t)seed;

    uint64_t n = (uint64_t)bytes / LINE;
    size_t size = (size_t)(n * LINE);
    long long avail = meminfo_kib("MemAvailable");
    if (avail >= 0 && (long long)((size + n * 4) / 1024) > avail * 9 / 10)
        die_unsupported("a %lld-byte working set needs more memory than MemAvailable "
                        "(%lld KiB) allows", bytes, avail);
    if (n > UINT32_MAX)
        die_unsupported("at most 2^32 lines (256 GiB)");

    /* Base pages, never transparent huge pages: MADV_NOHUGEPAGE before the first touch
     * (madvise(2)). EINVAL means a kernel without THP, where base pages are all there is. */
    struct line *lines = mmap(NULL, size, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (lines == MAP_FAILED)
        die_unsupported("mmap of %zu bytes: %s", size, strerror(errno));
    const char *thp = "MADV_NOHUGEPAGE";
    if (madvise(lines, size, MADV_NOHUGEPAGE) != 0) {
        if (errno != EINVAL)
            die("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
        thp = "kernel without THP";
    }
    /* Fault the pages in with one call where the kernel has MADV_POPULATE_WRITE (Linux
     * 5.14; cheaper than a fault per page); otherwise the link pass below faults them. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
    uint64_t t_build = now_ns();
    madvise(lines, size, MADV_POPULATE_WRITE);

    /* Sattolo's algorithm (Sattolo 1986; Knuth TAOCP vol. 2, 3.4.2): like Fisher-Yates,
     * but j < i strictly, which yields a single cycle through all n elements. The
     * permutation lives in a separate index array (4 bytes per line), so the pass that
     * writes the links afterwards is sequential over the working set. */
    size_t perm_bytes = (size_t)n * sizeof(uint32_t);
    uint32_t *perm = mmap(NULL, perm_bytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (perm == MAP_FAILED)
        die_unsupported("cannot map the %llu-entry permutation", (unsigned long long)n);
    madvise(perm, perm_bytes, MADV_HUGEPAGE); /* scratch only: fewer TLB misses if allowed */
    for (uint64_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    /* The swaps touch perm[j] at random: draw each j AHEAD iterations early and prefetch
     * its line, so that many misses are in flight at once (the j are independent of the
     * array's contents; the sequence of draws, hence the permutation, is unchanged). */
    enum { AHEAD = 32 };
    uint64_t ring[AHEAD];
    uint64_t next_i = n - 1; /* the next i whose j has not been drawn yet */
    for (int k = 0; k < AHEAD && next_i > 0; k++, next_i--) {
        ring[k] = below(next_i);
        __builtin_prefetch(&perm[ring[k]], 1);
    }
    for (uint64_t i = n - 1, k = 0; i > 0; i--, k = (k + 1) % AHEAD) {
        uint64_t j = ring[k];
        if (next_i > 0) {
            ring[k] = below(next_i--);
            __builtin_prefetch(&perm[ring[k]], 1);
        }
        uint32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    for (uint64_t i = 0; i < n; i++)
        lines[i].next = &lines[perm[i]];
    munmap(perm, perm_bytes);
    double build_ms = (double)(now_ns() - t_build) / 1e6;
    long long huge_kib = anon_huge_kib(lines);
    if (huge_kib > 0)
        die("%lld KiB of the working set are transparent huge pages despite MADV_NOHUGEPAGE",
            huge_kib);

    /* The sequential link pass has just put the tail of the set in the caches; one lap
     * (up to 2^16 hops, all of a set up to 4 MiB) spreads what they hold over the cycle.
     * Beyond that, hits depend only on how much of the set the caches hold, not which
     * part, and calibration and the warm-up batch (lib/common.c) come before any timing. */
    struct chase ch = {lines};
    uint64_t warm = n < WARM_HOPS ? n : WARM_HOPS;
    b_chase(&ch, (warm + UNROLL - 1) / UNROLL);

    struct timing t;
    int retried = measure_unswitched(&t, b_chase, &ch, &c);
    for (int b = 0; b < t.batches; b++) /* net of the loop overhead per iteration */
        t.per_op[b] /= UNROLL;
    sink = (uintptr_t)ch.p;
    json_timing("chase", &c, c.cpu, &t);
    json_int("bytes", (long long)size);
    json_int("lines", (long long)n);
    json_int("line_bytes", LINE);
    json_int("hops_per_iter", UNROLL);
    json_int("hops_per_batch", (long long)(t.iters * UNROLL));
    json_int("page_bytes", sysconf(_SC_PAGESIZE));
    json_string("huge_pages", thp);
    json_int("anon_huge_kib", huge_kib);
    json_double("build_ms", build_ms);
    json_int("warm_hops", (long long)warm);
    json_int("batches_retried", retried);
    json_end();
    return 0;
}
