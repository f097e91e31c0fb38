/* mallocs: what malloc does, seen from a traced process (claims lib.*, malloc.*).
 *
 *   --variant=pairs     --n=N --size=S   N malloc(S)/write/free pairs between two markers
 *   --variant=leak      --n=N --size=S   N malloc(S), written, never freed, between markers;
 *                                        records every change of the program break
 *   --variant=threshold --size=S --cycles=C  C cycles of malloc(S)/write/free between markers;
 *                                        where each block was (heap or not)
 *   --variant=arenas                     main thread and a second thread malloc a block;
 *                                        addresses and /proc/self/maps
 *   --variant=scaling   --threads=T --pattern=0|1 --ms=M --size=S
 *                                        malloc/free throughput, thread-local (0) or
 *                                        cross-thread through SPSC rings (1), plus the
 *                                        rings' own throughput with no malloc; the
 *                                        run is read in 5 slices, ops_per_s is the
 *                                        median slice
 *   --variant=empty                      markers and nothing else (a baseline)
 * Markers: trace_marker() (lib/trace_marker.h). Output: one JSON line (docs/kernels.md).
 */
#include "lib/common.h"
#include "lib/trace_marker.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static const char *const VARIANTS[] = {"pairs", "leak", "threshold", "arenas", "scaling", "empty", NULL};
static long long n = 1000000, size = 64, cycles = 1, threads = 1, pattern = 0, ms = 100;

#define MAX_STEPS 4096

static void fill(volatile char *p, size_t len, char v)
{
    /* write into every block (every byte for small ones, every page for big ones), so
     * a compiler cannot delete the malloc/free pair */
    size_t step = len > 4096 ? 4096 : 1;
    for (size_t i = 0; i < len; i += step)
        p[i] = v;
    p[len - 1] = v;
}

static void run_pairs(void)
{
    unsigned long sum = 0;
    trace_marker();
    for (long long i = 0; i < n; i++) {
        char *p = malloc((size_t)size);
        if (!p)
            die("malloc: out of memory");
        fill(p, (size_t)size, (char)i);
        sum += (unsigned char)p[size / 2];
        free(p);
    }
    trace_marker();
    json_begin();
    json_string("kernel", "mallocs");
    json_string("variant", "pairs");
    json_int("n", n);
    json_int("size", size);
    json_int("checksum", (long long)(sum & 0xffff));
    json_end();
}

static void run_leak(void)
{
    static long long steps[MAX_STEPS];
    int nsteps = 0, lost = 0;
    char *first = NULL, *last = NULL;
    char *brk0 = sbrk(0), *brk_prev;
    trace_marker();
    brk_prev = sbrk(0); /* sbrk(0) is answered from glibc's cached break: no system call */
    for (long long i = 0; i < n; i++) {
        char *p = malloc((size_t)size);
        if (!p)
            die("malloc: out of memory");
        fill(p, (size_t)size, (char)i);
        if (!first)
            first = p;
        last = p;
        char *b = sbrk(0);
        if (b != brk_prev) {
            if (nsteps < MAX_STEPS)
                steps[nsteps++] = (long long)(b - brk_prev);
            else
                lost++;
            brk_prev = b;
        }
    }
    trace_marker();
    char *brk1 = sbrk(0);
    json_begin();
    json_string("kernel", "mallocs");
    json_string("variant", "leak");
    json_int("n", n);
    json_int("size", size);
    json_int("heap_growth_bytes", (long long)(brk1 - brk0));
    json_int("first_in_heap", first >= brk0 - (64 << 20) && first < brk1);
    json_int("last_in_heap", last < brk1 && last >= brk0 - (64 << 20));
    json_key("steps");
    putchar('[');
    for (int i = 0; i < nsteps; i++)
        printf("%s%lld", i ? "," : "", steps[i]);
    putchar(']');
    json_int("steps_lost", lost);
    json_end();
}

static void run_threshold(void)
{
    static int in_heap[1024];
    long long c = cycles > 1024 ? 1024 : cycles;
    char *heap_lo = sbrk(0);
    /* the heap's start: the lowest address malloc's main arena can hand out */
    trace_marker();
    for (long long i = 0; i < cycles; i++) {
        char *p = malloc((size_t)size);
        if (!p)
            die("malloc(%lld): out of memory", size);
        fill(p, (size_t)size, (char)i);
        char *brk = sbrk(0);
        if (i < c)
            in_heap[i] = p < brk && p + size <= brk && p >= heap_lo - (256 << 20);
        free(p);
    }
    trace_marker();
    json_begin();
    json_string("kernel", "mallocs");
    json_string("variant", "threshold");
    json_int("size", size);
    json_int("cycles", cycles);
    json_key("in_heap");
    putchar('[');
    for (long long i = 0; i < c; i++)
        printf("%s%d", i ? "," : "", in_heap[i]);
    putchar(']');
    json_end();
}

static void *arena_thread(void *arg)
{
    char **out = arg;
    trace_marker();
    *out = malloc(64);
    if (*out)
        fill(*out, 64, 1);
    trace_marker();
    return NULL;
}

static char maps_buf[1 << 20];

static void run_arenas(void)
{
    char *main_block = malloc(64), *thread_block = NULL;
    if (!main_block)
        die("malloc: out of memory");
    fill(main_block, 64, 2);
    pthread_t t;
    int e = pthread_create(&t, NULL, arena_thread, &thread_block);
    if (e)
        die("pthread_create: %s", strerror(e));
    pthread_join(t, NULL);
    if (!thread_block)
        die("malloc in the thread failed");
    read_self_maps(maps_buf, sizeof maps_buf);
    json_begin();
    json_string("kernel", "mallocs");
    json_string("variant", "arenas");
    json_int("main_block", (long long)(uintptr_t)main_block);
    json_int("thread_block", (long long)(uintptr_t)thread_block);
    json_int("brk", (long long)(uintptr_t)sbrk(0));
    json_string("maps", maps_buf);
    json_end();
}

/* ---- scaling ---- */
#define RING 1024 /* a power of two */
struct ring {
    _Atomic unsigned long head __attribute__((aligned(64))); /* written by the consumer */
    _Atomic unsigned long tail __attribute__((aligned(64))); /* written by the producer */
    void *slot[RING] __attribute__((aligned(64)));
};
static int ring_push(struct ring *r, void *p)
{
    unsigned long t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - atomic_load_explicit(&r->head, memory_order_acquire) == RING)
        return 0;
    r->slot[t & (RING - 1)] = p;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return 1;
}
static void *ring_pop(struct ring *r)
{
    unsigned long h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&r->tail, memory_order_acquire))
        return NULL;
    void *p = r->slot[h & (RING - 1)];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return p;
}

struct worker {
    pthread_t tid;
    int idx, use_malloc;
    struct ring *in, *out;
    _Atomic unsigned long ops; /* malloc/free pairs (or ring transfers) done so far */
} __attribute__((aligned(64)));

static _Atomic int go_flag, stop_flag;
static char dummy_block[64];

static size_t block_size(unsigned long i) { return (size_t)(16 + (i * 7 % 16) * ((size - 16) / 16 + 1)); }

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    unsigned long ops = 0, i = (unsigned long)w->idx * 977;
    while (!atomic_load_explicit(&go_flag, memory_order_acquire))
        ;
    if (!pattern) {
        void *blk[32];
        while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
            for (int k = 0; k < 32; k++, i++) {
                size_t s = block_size(i);
                blk[k] = malloc(s);
                if (!blk[k])
                    die("malloc: out of memory");
                fill(blk[k], s, (char)i);
            }
            for (int k = 0; k < 32; k++)
                free(blk[k]);
            ops += 32;
            atomic_store_explicit(&w->ops, ops, memory_order_relaxed);
        }
    } else {
        while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
            int progressed = 0;
            for (int k = 0; k < 32; k++, i++) {
                void *p;
                if (w->use_malloc) {
                    size_t s = block_size(i);
                    p = malloc(s);
                    if (!p)
                        die("malloc: out of memory");
                    fill(p, s, (char)i);
                } else {
                    p = dummy_block;
                }
                if (!ring_push(w->out, p)) {
                    if (w->use_malloc)
                        free(p);
                    break;
                }
                progressed = 1;
            }
            void *q;
            for (int k = 0; k < 64 && (q = ring_pop(w->in)); k++) {
                if (w->use_malloc)
                    free(q); /* freed by another thread than the one that allocated it */
                ops++;
                progressed = 1;
            }
            atomic_store_explicit(&w->ops, ops, memory_order_relaxed);
            if (!progressed)
                sched_yield();
        }
    }
    atomic_store_explicit(&w->ops, ops, memory_order_relaxed);
    return NULL;
}

#define SLICES 5 /* the run is read in SLICES equal intervals; the median interval is reported */

/* Worker k on the k-th CPU this process may use (modulo their number): T threads on T
 * CPUs each run on its own, as the claim means, instead of wherever the scheduler first
 * put them. Unpinned, a cross-thread pair started on one vCPU of this 2-vCPU guest
 * passed its blocks through sched_yield for part of a run, and one process in ten read a
 * tenth of the others' throughput (pthread_setaffinity_np(3); sched_getaffinity(2)). */
static void spread(pthread_t tid, int k)
{
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return;
    int n = CPU_COUNT(&allowed), want = k % (n > 0 ? n : 1), seen = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &allowed))
            continue;
        if (seen++ == want) {
            CPU_ZERO(&one);
            CPU_SET(c, &one);
            pthread_setaffinity_np(tid, sizeof one, &one);
            return;
        }
    }
}

static double run_workers(int use_malloc, double *per_thread_min, double *per_thread_max, double *slices)
{
    int T = (int)threads;
    struct worker *ws = aligned_alloc(64, sizeof *ws * (size_t)T);
    struct ring *rings = aligned_alloc(64, sizeof *rings * (size_t)T);
    if (!ws || !rings)
        die("out of memory");
    memset(rings, 0, sizeof *rings * (size_t)T);
    atomic_store(&go_flag, 0);
    atomic_store(&stop_flag, 0);
    for (int k = 0; k < T; k++) {
        ws[k].idx = k;
        ws[k].use_malloc = use_malloc;
        ws[k].in = &rings[k];
        ws[k].out = &rings[(k + 1) % T]; /* thread k hands its blocks to thread k+1 */
        atomic_store(&ws[k].ops, 0);
        int e = pthread_create(&ws[k].tid, NULL, worker_main, &ws[k]);
        if (e)
            die("pthread_create: %s", strerror(e));
        spread(ws[k].tid, k);
    }
    uint64_t t0 = now_ns(), tprev = t0;
    unsigned long prev = 0;
    atomic_store_explicit(&go_flag, 1, memory_order_release);
    long long slice_ns = ms * 1000000LL / SLICES;
    for (int i = 0; i < SLICES; i++) {
        struct timespec d = {slice_ns / 1000000000LL, slice_ns % 1000000000LL};
        nanosleep(&d, NULL);
        unsigned long sum = 0;
        for (int k = 0; k < T; k++)
            sum += atomic_load_explicit(&ws[k].ops, memory_order_relaxed);
        uint64_t t = now_ns();
        slices[i] = (double)(sum - prev) / ((double)(t - tprev) / 1e9);
        prev = sum;
        tprev = t;
    }
    atomic_store_explicit(&stop_flag, 1, memory_order_release);
    unsigned long total = 0, mn = ~0ul, mx = 0;
    for (int k = 0; k < T; k++)
        pthread_join(ws[k].tid, NULL);
    uint64_t t1 = now_ns();
    for (int k = 0; k < T; k++) {
        unsigned long o = atomic_load(&ws[k].ops);
        total += o;
        if (o < mn) mn = o;
        if (o > mx) mx = o;
        void *q;
        while ((q = ring_pop(&rings[k])))
            if (use_malloc)
                free(q);
    }
    double secs = (double)(t1 - t0) / 1e9;
    *per_thread_min = (double)mn / secs;
    *per_thread_max = (double)mx / secs;
    free(ws);
    free(rings);
    return (double)total / secs;
}

static void run_scaling(void)
{
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    const char *lib = (sym && dladdr(sym, &info) && info.dli_fname) ? info.dli_fname : "";
    double tmin, tmax, rmin, rmax, ring = -1, sl[SLICES], rsl[SLICES];
    double total = run_workers(1, &tmin, &tmax, sl);
    double ops = median(sl, SLICES); /* robust to a slice shared with another process */
    if (pattern) {
        run_workers(0, &rmin, &rmax, rsl);
        ring = median(rsl, SLICES);
    }
    json_begin();
    json_string("kernel", "mallocs");
    json_string("variant", "scaling");
    json_string("malloc_library", lib);
    json_int("threads", threads);
    json_string("pattern", pattern ? "cross-thread" : "thread-local");
    json_int("ms", ms);
    json_int("max_size", size);
    json_double("ops_per_s", ops);
    json_doubles("slice_ops_per_s", sl, SLICES);
    json_double("whole_run_ops_per_s", total);
    json_double("ops_per_s_per_thread", ops / (double)threads);
    json_double("slowest_thread_ops_per_s", tmin);
    json_double("fastest_thread_ops_per_s", tmax);
    if (pattern)
        json_double("ring_only_ops_per_s", ring);
    else
        json_null("ring_only_ops_per_s");
    json_end();
}

int main(int argc, char **argv)
{
    struct common c;
    struct opt extra[] = {
        {"n", &n, 1, 1000000000LL, 0},       {"size", &size, 16, 1LL << 30, 0},
        {"cycles", &cycles, 1, 100000, 0},   {"threads", &threads, 1, 1024, 0},
        {"pattern", &pattern, 0, 1, 0},      {"ms", &ms, 1, 60000, 0},
        {NULL, NULL, 0, 0, 0},
    };
    kernel_init();
    parse_args(argc, argv, &c, VARIANTS, extra);
    if (c.cpu >= 0)
        pin_or_exit(c.cpu);
    switch (c.vidx) {
    case 0: run_pairs(); break;
    case 1: run_leak(); break;
    case 2: run_threshold(); break;
    case 3: run_arenas(); break;
    case 4: run_scaling(); break;
    default:
        trace_marker();
        trace_marker();
        json_begin();
        json_string("kernel", "mallocs");
        json_string("variant", "empty");
        json_end();
    }
    return 0;
}
