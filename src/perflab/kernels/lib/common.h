/* common.h: what perflab's native kernels share: declarations, structs and macros.
 * The definitions are in common.c, compiled once and linked into every kernel
 * (setup.py; docs/kernels.md, "Building").
 *
 * The protocol these implement (options, JSON output, exit codes) is docs/kernels.md.
 *
 * Exception: now_ns() stays static inline here. It is the one function of this file
 * that runs inside a timed interval (each batch reads the clock right before and right
 * after its loop, and some kernels time single operations with it): an out-of-line call
 * there would add a call and return to every measurement and change what the kernels
 * measure. Nothing else here runs between two clock reads: calibrate(), run_batches()
 * and measure() call a batch function through a pointer, so its timed loop is compiled
 * with the kernel either way; die() inside a loop is the cold path, and exit_msg() was
 * never inlined (a variadic function that calls va_start cannot be).
 */
#ifndef PERFLAB_COMMON_H
#define PERFLAB_COMMON_H

/* Kernels rely on these coming with common.h. */
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
 * helper's own PR_SET_PDEATHSIG kills it and the reaper of orphans reaps it. -1: none.
 * A kernel that reaped its helper itself sets it back to -1. */
extern volatile pid_t helper_pid;

/* Kill (SIGKILL) and reap the helper, if any. */
void kill_helper(void);

/* Register `pid` as the helper and kill it on SIGTERM/SIGINT/SIGHUP/SIGQUIT. */
void set_helper(pid_t pid);

/* Message on stderr, then exit(code). */
__attribute__((noreturn, cold, format(printf, 2, 3))) void exit_msg(int code, const char *fmt,
                                                                     ...);
#define die(...) exit_msg(1, __VA_ARGS__)                             /* the kernel failed */
#define die_badargs(...) exit_msg(EXIT_BADARGS, __VA_ARGS__)          /* bad arguments */
#define die_unsupported(...) exit_msg(EXIT_UNSUPPORTED, __VA_ARGS__)  /* not here */

/* ---- start-up, arguments, pinning ----------------------------------------------- */

/* prctl(2) PR_SET_PDEATHSIG: get SIGKILL when the parent (perflab) dies. */
void kernel_init(void);

/* fork(2) a helper process that dies with this kernel: in the child (return 0) SIGKILL
 * is set as its parent-death signal, and it exits at once if the parent is already gone
 * (the race prctl(2) describes). The child inherits the CPU affinity. */
pid_t fork_helper(void);

/* /proc/self/maps (proc(5)) into buf, NUL-terminated, with raw read(2) into the
 * caller's buffer: no stdio and no malloc, so reading it changes no heap under study.
 * Returns the length. */
size_t read_self_maps(char *buf, size_t cap);

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

/* A decimal integer (optional '-', digits, nothing after) into *out; 0, or -1 if `s`
 * is not one or is out of range. */
int parse_ll(const char *s, long long *out);

/* Parse --key=value options: the common ones plus `extra` (NULL-name terminated).
 * `variants` is a NULL-terminated list of accepted --variant names. Exits 2 on an
 * unknown option, a malformed or out-of-range value, or a missing/unknown variant. */
void parse_args(int argc, char **argv, struct common *c, const char *const *variants,
                struct opt *extra);

/* sched_setaffinity(2); returns 0 or an errno value. The mask is inherited across
 * fork(2), so a helper forked after this runs on the same CPU. */
int pin_cpu(int cpu);

/* Pin to `cpu` unless it is -1; a CPU this process may not use exits 77. */
void pin_or_exit(long long cpu);

/* ---- timing --------------------------------------------------------------------- */

/* clock_gettime(2) CLOCK_MONOTONIC: served by the vDSO on x86-64, no kernel entry.
 * static inline on purpose: it is read inside every timed interval (see the top). */
static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Median; sorts v in place. */
double median(double *v, size_t n);

/* Median of many back-to-back now_ns() deltas: the cost of one clock read, which
 * every batch's elapsed time contains once. */
double timer_overhead_ns(void);

/* A batch runs `iters` iterations of the measured operation in an inline loop and
 * returns its elapsed ns (now_ns() just before and after the loop). */
typedef uint64_t (*batch_fn)(void *ctx, uint64_t iters);

/* On a batch function whose loop costs only a few cycles per iteration: start its loops
 * on a 64-byte boundary (GCC's -falign-loops=64, for this function alone), so that a
 * loop of under 64 bytes never straddles one. Measured on this project's AMD EPYC VM:
 * the empty loop costs 0.27 ns per iteration inside one 64-byte block and 0.54 across a
 * boundary, space's function-call 1.37 and 1.65 ns (raw, before the loop overhead);
 * without this, where the linker happens to put the loop decides that cycle. Other
 * compilers: no attribute (placement as it falls). Used by the empty loop (common.c),
 * space's function-call, and switch's register (its batch loop and the coroutine's loop
 * it switches to: 6.9 ns aligned, 7.5 with the coroutine's loop straddling). */
#if defined(__GNUC__) && !defined(__clang__)
#define ALIGN_LOOPS __attribute__((optimize("align-loops=64")))
#else
#define ALIGN_LOOPS
#endif

/* Double iters from 1 until one batch lasts >= target_ns (or MAX_ITERS is reached). */
uint64_t calibrate(batch_fn f, void *ctx, uint64_t target_ns);

/* B batches of `iters`; out[b] = per-iteration ns net of the timer overhead. */
void run_batches(batch_fn f, void *ctx, uint64_t iters, int B, double timer_ns, double *out);

/* Median per-iteration cost of `f` over B batches (after calibration and a warm-up),
 * net of the timer and of `loop_ns`. */
double median_cost(batch_fn f, void *ctx, uint64_t iters, int B, double timer_ns,
                   double loop_ns);

struct timing {
    uint64_t iters;
    int batches;
    double timer_ns, loop_ns;
    double *per_op; /* batches values */
};

/* A timing record for c->batches batches of `iters` operations, with the timer overhead
 * measured and no loop overhead yet: kernels that time batches their own way (each op
 * preceded by an eviction, a cache drop) fill per_op themselves. */
void timing_init(struct timing *t, const struct common *c, uint64_t iters);

/* timing_init, the empty-loop overhead per iteration (its own calibration), then the
 * calibration of `f` and one warm-up batch: all of measure() but the timed batches. */
void measure_setup(struct timing *t, batch_fn f, void *ctx, const struct common *c);

/* The whole protocol for one timed operation: timer overhead, empty-loop overhead per
 * iteration (its own calibration), calibration of `f`, one warm-up batch (measure_setup),
 * then B timed batches. per_op[b] = (elapsed_b - timer) / iters - loop; a kernel that
 * measured a per-iteration set-up cost subtracts it afterwards. */
void measure(struct timing *t, batch_fn f, void *ctx, const struct common *c);

/* ---- JSON output: one object on one line ---------------------------------------- */

/* 1 when the next key needs a ", " before it. A kernel that opens an object or array
 * by hand ('{' or '[') sets it to 0, and to 1 after closing it. */
extern int json_comma;

void json_string_value(const char *s); /* a quoted, escaped string */
void json_key(const char *k);
void json_double_value(double v);      /* 10 significant digits; NaN/inf print as null */
void json_begin(void);
void json_obj_begin(const char *k);
void json_obj_end(void);
void json_int(const char *k, long long v);
void json_double(const char *k, double v);
void json_null(const char *k);
void json_string(const char *k, const char *s); /* NULL prints as null */
void json_doubles(const char *k, const double *v, int n);
/* "}\n" and flush; a write error exits 1. */
void json_end(void);

/* The fields every timing kernel reports (docs/kernels.md, "Output"). */
void json_timing(const char *kernel, const struct common *c, long long cpu,
                 const struct timing *t);

#endif /* PERFLAB_COMMON_H */
