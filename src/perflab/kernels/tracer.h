/* tracer.h: what the tracer kernel counts, shared by its three mechanisms
 * (tracer_bpf.h, tracer_perf.h, tracer_ptrace.h) and its main program (tracer.c).
 * Protocol: docs/kernels.md, "tracer".
 */
#ifndef PERFLAB_TRACER_H
#define PERFLAB_TRACER_H

#include "common.h"
#include "syscall_names.h"

/* Counts are kept by x86_64 system call number. Slot NR_OTHER holds every number that
 * does not fit (negative: a task ptrace or seccomp made skip its call; x32 ABI numbers,
 * which carry bit 30, __X32_SYSCALL_BIT in arch/x86/include/uapi/asm/unistd.h). */
#define NR_SLOTS 1024
#define NR_OTHER (NR_SLOTS - 1)

#define NR_CLONE 56   /* arch/x86/entry/syscalls/syscall_64.tbl */
#define NR_CLONE3 435

/* Distinct (syscall, flags, exit signal, region, readable) kinds of clone/clone3 call
 * recorded; more kinds than this are counted in clones_lost. */
#define MAX_CLONE_KINDS 64
#define CLONE_IN_REGION 1u  /* made between the two marker calls */
#define CLONE_UNREADABLE 2u /* clone3's struct clone_args could not be read */

/* Offsets into struct clone_args (include/uapi/linux/sched.h): flags is the first
 * __aligned_u64, exit_signal the fifth. */
#define CLONE_ARGS_FLAGS_OFF 0
#define CLONE_ARGS_EXIT_SIGNAL_OFF 32
#define CSIGNAL_MASK 0xffu /* clone(2): the low byte of clone's flags is the exit signal */

struct clone_kind {
    uint64_t flags;       /* clone: the whole first argument; clone3: clone_args.flags */
    uint64_t exit_signal; /* clone: flags & CSIGNAL; clone3: clone_args.exit_signal */
    uint32_t nr;          /* NR_CLONE or NR_CLONE3 */
    uint32_t status;      /* CLONE_IN_REGION | CLONE_UNREADABLE */
    uint64_t count;
};

struct tally {
    uint64_t calls[NR_SLOTS];  /* every call from the command's execve on */
    uint64_t region[NR_SLOTS]; /* calls made while exactly one marker call had been seen */
    uint64_t markers;          /* marker calls seen (they count in calls, never in region) */
    long marker_nr;            /* -1: no region asked */
    struct clone_kind clones[MAX_CLONE_KINDS];
    int nclones;
    uint64_t clones_lost;
    const char *clones_unavailable; /* non-NULL: this mechanism sees no arguments */
    uint64_t other_arch;            /* ptrace: calls through a non-x86_64 ABI (int 0x80) */
};

static inline long nr_slot(long nr)
{
    return nr >= 0 && nr < NR_OTHER ? nr : NR_OTHER;
}

/* Add one (or `n`) clone call of a kind; used by ptrace (one at a time) and by the BPF
 * read-out (a whole map entry at a time). */
static inline void tally_clone(struct tally *t, uint32_t nr, uint64_t flags,
                               uint64_t exit_signal, uint32_t status, uint64_t n)
{
    for (int i = 0; i < t->nclones; i++) {
        struct clone_kind *k = &t->clones[i];
        if (k->nr == nr && k->flags == flags && k->exit_signal == exit_signal &&
            k->status == status) {
            k->count += n;
            return;
        }
    }
    if (t->nclones == MAX_CLONE_KINDS) {
        t->clones_lost += n;
        return;
    }
    t->clones[t->nclones++] = (struct clone_kind){flags, exit_signal, nr, status, n};
}

/* One system call entry by a traced task, for the mechanisms that see each call
 * (ptrace). Returns 1 when the call is counted in the region. */
static inline int tally_call(struct tally *t, long nr)
{
    long s = nr_slot(nr);
    t->calls[s]++;
    if (t->marker_nr >= 0 && nr == t->marker_nr) {
        t->markers++;
        return 0;
    }
    if (t->markers == 1) {
        t->region[s]++;
        return 1;
    }
    return 0;
}

/* clone3's flags and exit signal, read from the caller's struct clone_args at `addr`;
 * returns -1 when they cannot be read (then the call is recorded as unreadable). */
typedef int (*clone_args_reader)(void *ctx, uint64_t addr, uint64_t *flags, uint64_t *sig);

/* One system call entry with its first argument, for the mechanisms that see each
 * call in order (ptrace, perf samples): counts, region, clone flags. */
static inline void tally_syscall(struct tally *t, long nr, uint64_t arg0,
                                 clone_args_reader read_clone_args, void *ctx)
{
    uint32_t status = tally_call(t, nr) ? CLONE_IN_REGION : 0;
    if (nr == NR_CLONE) {
        tally_clone(t, NR_CLONE, arg0, arg0 & CSIGNAL_MASK, status, 1);
    } else if (nr == NR_CLONE3) {
        uint64_t flags = 0, sig = 0;
        if (!read_clone_args || read_clone_args(ctx, arg0, &flags, &sig) != 0) {
            flags = sig = 0;
            status |= CLONE_UNREADABLE;
        }
        tally_clone(t, NR_CLONE3, flags, sig, status, 1);
    }
}

#endif /* PERFLAB_TRACER_H */
