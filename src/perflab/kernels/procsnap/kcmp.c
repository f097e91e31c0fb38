/* kcmp.c: kcmp(2) of the first task against every other task and the parent, for each
 * resource of procfs/kcmp.py RESOURCES: the first loop of its grouping (_sorted_runs,
 * which splits off the tasks equal to the first one) done here in one batch, while
 * the other worker reads files. 60,000 calls for 10,000 threads: ~1.2 us each in C,
 * ~2 us more each through ctypes. */

#include "procsnap.h"

#include <sys/syscall.h>

/* include/uapi/linux/kcmp.h: KCMP_VM 1, KCMP_FILES 2, KCMP_FS 3, KCMP_SIGHAND 4,
 * KCMP_IO 5, KCMP_SYSVSEM 6, the order of RESOURCES */
void compare_tasks(struct snap *s, int resource)
{
    int n = s->ntasks - 1 + (s->ppid > 0);
    if (s->ntasks == 0)
        return;
    char *out = malloc((size_t)n + 1);
    if (!out)
        die("out of memory");
    pid_t pivot = s->tasks[0].tid;
    for (int i = 0; i < n; i++) {
        pid_t other = i < s->ntasks - 1 ? s->tasks[i + 1].tid : (pid_t)s->ppid;
        long r = syscall(SYS_kcmp, pivot, other, resource + 1, 0, 0);
        if (i == s->ntasks - 1 && r < 0) { /* the parent: perflab may not compare it */
            out[i] = '-';
            continue;
        }
        if (r < 0 || r > 3) { /* an error or no ordering: Python makes its own calls */
            free(out);
            return;
        }
        out[i] = (char)('0' + r);
    }
    out[n] = 0;
    s->kcmp[resource] = out;
}

/* "kcmp RESOURCE PIVOT PPID RESULTS": one character per task after the first (sorted by
 * tid, vanished ones included), then one for the parent when PPID > 0 ('-': kcmp
 * refused it) */
void write_kcmp(struct snap *s, struct buf *o)
{
    for (int r = 0; r < N_KCMP; r++) {
        if (!s->kcmp[r])
            continue;
        buf_str(o, "kcmp ");
        buf_i64(o, r);
        buf_chr(o, ' ');
        buf_i64(o, s->tasks[0].tid);
        buf_chr(o, ' ');
        buf_i64(o, s->ppid);
        buf_chr(o, ' ');
        buf_str(o, s->kcmp[r]);
        buf_chr(o, '\n');
    }
}
