/* forkcost: fork / vfork / posix_spawn latency against the parent's touched memory
 * (claims fork.cost-grows-with-memory, fork.vfork-constant).
 *
 *   --variant=fork|vfork|spawn --mib=M [--thp=0|1] [--reps=R]
 * The parent maps M MiB of private anonymous memory, madvise(MADV_NOHUGEPAGE) (thp=0)
 * or MADV_HUGEPAGE (thp=1), writes every 4 KiB page, then times R times: fork (or vfork,
 * or posix_spawn of /bin/true) + the child's _exit(0) + waitpid. per_op_ns holds one
 * value per repetition (the first, cold one is discarded). `spawn` also times vfork in
 * the same process (vfork_ns) so one process gives both.
 */
#include "lib/common.h"

#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE_ 23
#else
#define MADV_POPULATE_WRITE_ MADV_POPULATE_WRITE
#endif

extern char **environ;
static const char *const VARIANTS[] = {"fork", "vfork", "spawn", NULL};
static long long mib = 0, thp = 0, reps = 5;

static long long anon_huge_kib(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long long v = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "AnonHugePages: %lld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

static double one(int how)
{
    uint64_t t0 = now_ns();
    pid_t pid;
    if (how == 0) {
        pid = fork();
        if (pid == 0)
            _exit(0);
    } else if (how == 1) {
        pid = vfork();
        if (pid == 0)
            _exit(0);
    } else {
        char *args[] = {"/bin/true", NULL};
        int e = posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ);
        if (e == ENOENT || e == EACCES)
            die_unsupported("posix_spawn(/bin/true): %s (needs /bin/true)", strerror(e));
        if (e)
            die("posix_spawn(/bin/true): %s", strerror(e));
    }
    if (pid < 0)
        die("fork: %s", strerror(errno));
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("child %d did not exit 0", (int)pid);
    return (double)(now_ns() - t0);
}

int main(int argc, char **argv)
{
    struct common c;
    struct opt extra[] = {
        {"mib", &mib, 0, 65536, 0}, {"thp", &thp, 0, 1, 0}, {"reps", &reps, 1, 1000, 0},
        {NULL, NULL, 0, 0, 0},
    };
    kernel_init();
    parse_args(argc, argv, &c, VARIANTS, extra);
    if (c.cpu >= 0)
        pin_or_exit(c.cpu);
    size_t len = (size_t)mib << 20;
    char *mem = NULL;
    int advice_ok = 1;
    if (len) {
        /* 2 MiB-aligned so that THP can back the whole range */
        size_t pad = 2u << 20;
        char *raw = mmap(NULL, len + pad, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED)
            die_unsupported("mmap %lld MiB: %s", mib, strerror(errno));
        mem = (char *)(((uintptr_t)raw + pad - 1) & ~(uintptr_t)(pad - 1));
        if (madvise(mem, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0) {
            if (thp)
                die_unsupported("madvise(MADV_HUGEPAGE): %s (no THP here)", strerror(errno));
            advice_ok = 0;
        }
        /* write every page: MADV_POPULATE_WRITE (Linux 5.14) faults them all in, writable,
         * in one call (the same pages a write loop would make, without a trap per
         * page); older kernels: a write loop */
        if (madvise(mem, len, MADV_POPULATE_WRITE_) != 0)
            for (size_t off = 0; off < len; off += 4096)
                mem[off] = (char)off | 1;
    }
    long long huge = anon_huge_kib();
    double *v = malloc(sizeof(double) * (size_t)reps);
    double *vf = malloc(sizeof(double) * (size_t)reps);
    if (!v || !vf)
        die("out of memory");
    int how = c.vidx;
    one(how); /* cold */
    for (long long i = 0; i < reps; i++) {
        v[i] = one(how);
        vf[i] = how == 2 ? one(1) : v[i];
    }
    json_begin();
    json_string("kernel", "forkcost");
    json_string("variant", c.variant);
    json_int("cpu", c.cpu);
    json_int("mib", mib);
    json_int("thp", thp);
    json_int("advice_ok", advice_ok);
    json_int("anon_huge_kib", huge);
    json_int("reps", reps);
    json_doubles("per_op_ns", v, (int)reps);
    json_doubles("vfork_ns", vf, (int)reps);
    json_end();
    return 0;
}
