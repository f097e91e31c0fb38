/* tally.c: what the tracer counts, by system call number, with the marker region and
 * the kinds of clone/clone3 call; shared by the three mechanisms. Declarations and the
 * constants: tracer.h. Protocol: docs/kernels.md, "tracer".
 */
#include "tracer.h"

static long nr_slot(long nr)
{
    return nr >= 0 && nr < NR_OTHER ? nr : NR_OTHER;
}

/* Add one (or `n`) clone call of a kind; used by ptrace (one at a time) and by the BPF
 * read-out (a whole map entry at a time). */
void tally_clone(struct tally *t, uint32_t nr, uint64_t flags, uint64_t exit_signal,
                 uint32_t status, uint64_t n)
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
static int tally_call(struct tally *t, long nr)
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

/* One system call entry with its first argument, for the mechanisms that see each
 * call in order (ptrace, perf samples): counts, region, clone flags. */
void tally_syscall(struct tally *t, long nr, uint64_t arg0, clone_args_reader read_clone_args,
                   void *ctx)
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
