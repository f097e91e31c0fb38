/* heapexec: where a process's [heap] comes from (claim malloc.heap-after-exec).
 * Built twice: dynamically (heapexec) and statically (heapexec_static, from
 * heapexec_static.c, which includes this file and asks setup.py for -static).
 *
 *   --variant=subject [--probe=ADDR --cookie=V]
 *       marker at main's entry; reads /proc/self/maps (raw read(2), no malloc) and
 *       whether [heap] is there; malloc(4096) (the program's first heap use); maps
 *       again; marker; JSON. With --probe: is ADDR mapped here, and if so does it hold
 *       the cookie V (a parent's heap block that must not survive execve)?
 *   --variant=exec-parent --target=0|1
 *       mallocs a 64 KiB block in its heap, fills it with a cookie, then execve()s
 *       heapexec (0) or heapexec_static (1) --variant=subject --probe=that block.
 *   --variant=fork-child
 *       mallocs a block with a cookie, forks; the child reports the [heap] range it
 *       sees, whether the block holds the cookie at the same address, and the page
 *       frame numbers of that page in itself and in the parent (/proc/PID/pagemap:
 *       0 without CAP_SYS_ADMIN).
 */
#include "lib/common.h"
#include "lib/trace_marker.h"

#include <fcntl.h>
#include <libgen.h>
#include <sys/wait.h>

static const char *const VARIANTS[] = {"subject", "exec-parent", "fork-child", NULL};
static long long probe = 0, cookie = 0, target = 0;
#define COOKIE 0x2e65726c61626865LL /* "ehbalre." in memory: below 2^62 for --cookie */
#define BLOCK (64 << 10)

static char maps0[1 << 18], maps1[1 << 18];

/* the mapping holding addr in a maps text: [lo, hi) or 0 */
static int find_mapping(const char *maps, unsigned long addr, unsigned long *lo, unsigned long *hi)
{
    const char *p = maps;
    while (*p) {
        unsigned long a, b;
        if (sscanf(p, "%lx-%lx", &a, &b) == 2 && a <= addr && addr < b) {
            *lo = a;
            *hi = b;
            return 1;
        }
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

static int heap_range(const char *maps, unsigned long *lo, unsigned long *hi)
{
    const char *h = strstr(maps, "[heap]");
    if (!h)
        return 0;
    while (h > maps && h[-1] != '\n')
        h--;
    return sscanf(h, "%lx-%lx", lo, hi) == 2;
}

static void subject(void)
{
    trace_marker();
    read_self_maps(maps0, sizeof maps0);
    unsigned long hlo0 = 0, hhi0 = 0, hlo1 = 0, hhi1 = 0, plo = 0, phi = 0;
    int heap0 = heap_range(maps0, &hlo0, &hhi0);
    int probe_mapped = probe ? find_mapping(maps0, (unsigned long)probe, &plo, &phi) : 0;
    int probe_cookie = 0;
    if (probe_mapped) /* mapped again at that address by chance: look at what it holds */
        probe_cookie = *(volatile long long *)(uintptr_t)probe == cookie;
    char *p = malloc(4096);
    if (!p)
        die("malloc: out of memory");
    memset(p, 1, 4096);
    read_self_maps(maps1, sizeof maps1);
    int heap1 = heap_range(maps1, &hlo1, &hhi1);
    trace_marker();
    json_begin();
    json_string("kernel", "heapexec");
    json_string("variant", "subject");
    json_int("heap_at_main", heap0);
    json_int("heap_at_main_lo", (long long)hlo0);
    json_int("heap_at_main_hi", (long long)hhi0);
    json_int("heap_after_malloc", heap1);
    json_int("heap_lo", (long long)hlo1);
    json_int("heap_hi", (long long)hhi1);
    json_int("block", (long long)(uintptr_t)p);
    json_int("block_in_heap", heap1 && (unsigned long)p >= hlo1 && (unsigned long)p < hhi1);
    json_int("probe", probe);
    json_int("probe_mapped", probe_mapped);
    json_int("probe_cookie", probe_cookie);
    json_string("maps_at_main", maps0);
    json_end();
}

static void exec_parent(char *self)
{
    long long *blk = malloc(BLOCK);
    if (!blk)
        die("malloc: out of memory");
    for (size_t i = 0; i < BLOCK / sizeof *blk; i++)
        blk[i] = COOKIE;
    char path[4096], a1[64], a2[64];
    char *dir = dirname(self);
    snprintf(path, sizeof path, "%s/%s", dir, target ? "heapexec_static" : "heapexec");
    snprintf(a1, sizeof a1, "--probe=%lld", (long long)(uintptr_t)blk);
    snprintf(a2, sizeof a2, "--cookie=%lld", COOKIE);
    char *args[] = {path, "--variant=subject", a1, a2, NULL};
    fflush(stdout);
    execv(path, args);
    die_unsupported("execv %s: %s", path, strerror(errno));
}

static long long pfn_of(pid_t pid, unsigned long addr)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/pagemap", (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    uint64_t e = 0;
    ssize_t r = pread(fd, &e, 8, (off_t)(addr / 4096) * 8);
    close(fd);
    if (r != 8 || !(e >> 63 & 1))
        return -1;
    return (long long)(e & ((1ULL << 55) - 1));
}

static void fork_child(void)
{
    long long *blk = malloc(BLOCK);
    if (!blk)
        die("malloc: out of memory");
    for (size_t i = 0; i < BLOCK / sizeof *blk; i++)
        blk[i] = COOKIE;
    read_self_maps(maps0, sizeof maps0);
    unsigned long plo = 0, phi = 0, clo = 0, chi = 0;
    int pheap = heap_range(maps0, &plo, &phi);
    fflush(stdout);
    pid_t parent = getpid();
    int fds[2];
    if (pipe(fds))
        die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        read_self_maps(maps1, sizeof maps1);
        long long r[6];
        r[0] = heap_range(maps1, &clo, &chi);
        r[1] = (long long)clo;
        r[2] = (long long)chi;
        r[3] = blk[0] == COOKIE && blk[BLOCK / sizeof *blk - 1] == COOKIE;
        r[4] = pfn_of(getpid(), (unsigned long)blk);
        r[5] = pfn_of(parent, (unsigned long)blk);
        if (write(fds[1], r, sizeof r) != sizeof r)
            _exit(2);
        _exit(0);
    }
    close(fds[1]);
    long long r[6] = {0};
    ssize_t got = read(fds[0], r, sizeof r);
    int st;
    waitpid(pid, &st, 0);
    if (got != sizeof r || !WIFEXITED(st) || WEXITSTATUS(st))
        die("child failed");
    json_begin();
    json_string("kernel", "heapexec");
    json_string("variant", "fork-child");
    json_int("block", (long long)(uintptr_t)blk);
    json_int("parent_heap", pheap);
    json_int("parent_heap_lo", (long long)plo);
    json_int("parent_heap_hi", (long long)phi);
    json_int("child_heap", r[0]);
    json_int("child_heap_lo", r[1]);
    json_int("child_heap_hi", r[2]);
    json_int("child_sees_cookie", r[3]);
    json_int("child_pfn", r[4]);
    json_int("parent_pfn", r[5]);
    json_end();
}

int main(int argc, char **argv)
{
    struct common c;
    struct opt extra[] = {
        {"probe", &probe, 0, 1LL << 62, 0}, {"cookie", &cookie, -(1LL << 62), 1LL << 62, 0},
        {"target", &target, 0, 1, 0},      {NULL, NULL, 0, 0, 0},
    };
    kernel_init();
    parse_args(argc, argv, &c, VARIANTS, extra);
    if (c.vidx == 0)
        subject();
    else if (c.vidx == 1)
        exec_parent(argv[0]);
    else
        fork_child();
    return 0;
}
