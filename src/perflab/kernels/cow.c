/* cow: fork's copy-on-write, step by step, driven by the caller over stdin/stdout
 * (claim fork.cow). --variant=cow --pages=K
 *
 * The parent maps K pages (MADV_NOHUGEPAGE), writes each, forks, and waits for the
 * child. The child prints one JSON line per phase and waits for a line on stdin before
 * the next, so the caller can read both processes' /proc/PID/pagemap in between:
 *   {"phase":"forked","parent":P,"child":C,"addr":A,"pages":K}
 *   {"phase":"read","faults":F}      after reading every page (minor faults, getrusage)
 *   {"phase":"written","faults":F}   after writing every page
 * then the child exits, the parent reaps it and prints {"phase":"done",...}.
 * EOF on stdin ends the child at once; the child dies with the parent (PDEATHSIG).
 */
#include "lib/common.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

static const char *const VARIANTS[] = {"cow", NULL};
static long long pages = 64;

static long minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static void wait_line(void)
{
    char buf[64];
    if (!fgets(buf, sizeof buf, stdin))
        _exit(3);
}

int main(int argc, char **argv)
{
    struct common c;
    struct opt extra[] = {{"pages", &pages, 1, 1 << 20, 0}, {NULL, NULL, 0, 0, 0}};
    kernel_init();
    parse_args(argc, argv, &c, VARIANTS, extra);
    if (c.cpu >= 0)
        pin_or_exit(c.cpu);
    size_t len = (size_t)pages * 4096;
    volatile char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    madvise((void *)mem, len, MADV_NOHUGEPAGE);
    for (long long i = 0; i < pages; i++)
        mem[i * 4096] = (char)(i | 1);
    fflush(stdout);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        printf("{\"phase\": \"forked\", \"parent\": %d, \"child\": %d, \"addr\": %llu, \"pages\": %lld}\n",
               (int)parent, (int)getpid(), (unsigned long long)(uintptr_t)mem, pages);
        fflush(stdout);
        wait_line();
        unsigned sum = 0;
        long f0 = minflt();
        for (long long i = 0; i < pages; i++)
            sum += (unsigned char)mem[i * 4096];
        long f1 = minflt();
        printf("{\"phase\": \"read\", \"faults\": %ld, \"sum\": %u}\n", f1 - f0, sum);
        fflush(stdout);
        wait_line();
        f0 = minflt();
        for (long long i = 0; i < pages; i++)
            mem[i * 4096] = (char)(i + 2);
        f1 = minflt();
        printf("{\"phase\": \"written\", \"faults\": %ld}\n", f1 - f0);
        fflush(stdout);
        wait_line();
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid)
        die("waitpid: %s", strerror(errno));
    int intact = 1;
    for (long long i = 0; i < pages; i++)
        intact &= mem[i * 4096] == (char)(i | 1);
    printf("{\"phase\": \"done\", \"kernel\": \"cow\", \"child_status\": %d, \"parent_pages_intact\": %d}\n",
           WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), intact);
    fflush(stdout);
    return 0;
}
