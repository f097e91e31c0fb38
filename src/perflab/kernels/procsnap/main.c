/* procsnap: one process's tasks, mappings and fds, read for `perflab inspect`.
 *
 *   procsnap --pid=PID [--proc-root=DIR] [--parent=PPID] [--kcmp=0|1] [--rows=N]
 *
 * --rows=N: the terminal's view: only the first N rows of each list are written, and
 * only their threads' status and fds' fdinfo are read (the counts, types, states, stack
 * pointers and mappings that the view's totals need are read for all).
 * Reads DIR/PID (default /proc/PID) of a live, non-zombie user process, with as many
 * worker threads as this process may use CPUs (at most 4): the files are ~40,000 small
 * seq_files for 10,000 threads and 19,000 fds, ~5 us of kernel time each here, and two
 * readers overlap on two CPUs. Writes the protocol of docs/kernels.md, "procsnap", on
 * stdout: the rows as JSON lines, or one line "E ERRNO WHAT" (reading WHAT failed: the
 * Python side raises its typed error) or "X REASON" (something this reader does not
 * model: the Python side reads the process itself). Exit 0 either way; 2 on bad
 * arguments.
 */
#include "procsnap.h"

#include <dirent.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>

int write_failure(FILE *f); /* read.c */

#define TASK_CHUNK 256
#define FD_CHUNK 512
#define ROW_CHUNK 1024 /* rows formatted per item */
#define MAX_WORKERS 4

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* the numeric entries of a directory fd, sorted (sorted(int(n) for n in listdir)) */
static int *list_numbers(int dirfd, const char *what, int *count)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        fail_errno(errno, "%s", what);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    rewinddir(d);
    int *v = NULL, n = 0, cap = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        long long x;
        if (parse_ll(e->d_name, &x) || x < 0 || x > 0x7fffffff) {
            defer_all("%s: an entry that is not a number", what);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            if (!(v = realloc(v, (size_t)cap * sizeof *v)))
                die("out of memory");
        }
        v[n++] = (int)x;
        errno = 0;
    }
    if (!e && errno)
        fail_errno(errno, "%s", what);
    closedir(d);
    qsort(v, (size_t)n, sizeof *v, cmp_int);
    *count = n;
    return v;
}

static int open_dir(struct snap *s, const char *rel)
{
    int fd = openat(s->dir, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fail_errno(errno, "%s", rel);
    return fd;
}

static int workers(void)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : n;
}

/* ---- the work, shared by the workers ------------------------------------------------ */

/* The rows of the three lists, formatted a chunk per work item: the text of its rows
 * ("," between them) and the offset just past each. */
enum { L_THREADS, L_MAPS, L_FDS, L_N };
static const char *const list_names[L_N] = {"threads", "maps", "fds"};

struct chunk {
    struct buf text;
    size_t *ends;
    int n;
};

static struct snap snap;
static int phase; /* 0: read, 1: format */
static int n_items, n_task_items, kcmp_items;
static int next_item;
static int list_items[L_N]; /* items (tasks, mappings, fds) and chunks of each list */
static struct chunk *chunks[L_N];

static void read_item(int i)
{
    struct snap *s = &snap;
    if (i == 0) {
        read_smaps(s);
        return;
    }
    if (i == 1) {
        read_sockets(s);
        return;
    }
    i -= 2;
    if (i < kcmp_items) {
        compare_tasks(s, i);
        return;
    }
    i -= kcmp_items;
    if (i < n_task_items) {
        int from = i * TASK_CHUNK, to = from + TASK_CHUNK < s->ntasks ? from + TASK_CHUNK : s->ntasks;
        read_tasks(s, from, to);
        return;
    }
    i -= n_task_items;
    int from = i * FD_CHUNK, to = from + FD_CHUNK < s->nfds ? from + FD_CHUNK : s->nfds;
    read_fds(s, from, to);
}

static void format_item(int i)
{
    struct snap *s = &snap;
    int l = 0;
    while (i >= (list_items[l] + ROW_CHUNK - 1) / ROW_CHUNK)
        i -= (list_items[l++] + ROW_CHUNK - 1) / ROW_CHUNK;
    struct chunk *c = &chunks[l][i];
    int from = i * ROW_CHUNK, to = from + ROW_CHUNK < list_items[l] ? from + ROW_CHUNK : list_items[l];
    if (!(c->ends = malloc((size_t)(to - from) * sizeof *c->ends)))
        die("out of memory");
    for (int k = from; k < to; k++) {
        if ((l == L_THREADS && s->tasks[k].vanished) || (l == L_FDS && s->fds[k].status == FD_CLOSED))
            continue;
        if (c->n)
            buf_chr(&c->text, ',');
        if (l == L_THREADS)
            task_row(s, &s->tasks[k], &c->text);
        else if (l == L_MAPS)
            mapping_row(&s->maps[k], &c->text);
        else if (s->fds[k].status == FD_OK)
            fd_row(s, &s->fds[k], &c->text);
        else
            buf_chr(&c->text, 'P'); /* left to Python: where, the line "python" says */
        c->ends[c->n++] = c->text.len;
    }
}

static void *worker(void *unused)
{
    (void)unused;
    int i;
    while (!failed() && (i = __atomic_fetch_add(&next_item, 1, __ATOMIC_RELAXED)) < n_items)
        (phase ? format_item : read_item)(i);
    return NULL;
}

/* Run the items of this phase on every worker, this thread one of them. */
static void run_phase(int items)
{
    pthread_t th[MAX_WORKERS];
    int nw = workers(), started = 0;
    n_items = items;
    next_item = 0;
    for (int i = 1; i < nw && i < items; i++) {
        if (pthread_create(&th[started], NULL, worker, NULL) != 0)
            break; /* fewer workers: slower, not wrong */
        started++;
    }
    worker(NULL);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
}

/* "NAME BYTES END..." and the JSON array of list `l` (its chunks joined): END is the
 * offset just past each of its first `view` rows; `ends` gets every row's. */
static void write_list(struct buf *o, int l, int view, size_t **ends)
{
    int nc = (list_items[l] + ROW_CHUNK - 1) / ROW_CHUNK, rows = 0;
    size_t len = 2;
    for (int c = 0; c < nc; c++) {
        len += chunks[l][c].text.len + (chunks[l][c].n && rows ? 1 : 0);
        rows += chunks[l][c].n;
    }
    size_t *e = malloc(((size_t)rows + 1) * sizeof *e), base = 1;
    if (!e)
        die("out of memory");
    int k = 0;
    for (int c = 0; c < nc; c++) {
        struct chunk *ch = &chunks[l][c];
        if (ch->n && k)
            base++; /* the comma between two chunks */
        for (int j = 0; j < ch->n; j++)
            e[k++] = base + ch->ends[j];
        base += ch->text.len;
    }
    buf_str(o, list_names[l]);
    buf_chr(o, ' ');
    buf_u64(o, len);
    for (int j = 0; j < rows && j < view; j++) {
        buf_chr(o, ' ');
        buf_u64(o, e[j]);
    }
    buf_str(o, "\n[");
    for (int c = 0, any = 0; c < nc; c++) {
        struct chunk *ch = &chunks[l][c];
        if (ch->n && any++)
            buf_chr(o, ',');
        buf_add(o, ch->text.p, ch->text.len);
        buf_free(&ch->text);
        free(ch->ends);
    }
    buf_str(o, "]\n");
    *ends = e;
}

/* "python FD:START:END:ROW...": where the placeholder of each row left to Python lies
 * in the array, and its row's index */
static void write_python_rows(struct buf *o, struct snap *s, const size_t *ends)
{
    buf_str(o, "python");
    for (int i = 0, k = 0; i < list_items[L_FDS]; i++) {
        if (s->fds[i].status == FD_CLOSED)
            continue;
        if (s->fds[i].status == FD_PYTHON) {
            buf_chr(o, ' ');
            buf_i64(o, s->fds[i].fd);
            buf_chr(o, ':');
            buf_u64(o, k ? ends[k - 1] + 1 : 1);
            buf_chr(o, ':');
            buf_u64(o, ends[k]);
            buf_chr(o, ':');
            buf_i64(o, k);
        }
        k++;
    }
    buf_chr(o, '\n');
}

static void *list_fds(void *arg)
{
    struct snap *s = arg;
    if ((s->fd_dir = open_dir(s, "fd")) < 0 || (s->info_dir = open_dir(s, "fdinfo")) < 0)
        return NULL;
    int *fds = list_numbers(s->fd_dir, "fd", &s->nfds);
    if (failed())
        return NULL;
    s->fds = calloc((size_t)s->nfds + 1, sizeof *s->fds);
    if (!s->fds)
        die("out of memory");
    for (int i = 0; i < s->nfds; i++)
        s->fds[i].fd = fds[i];
    free(fds);
    return NULL;
}

static void list_tasks(struct snap *s)
{
    char lnk[4096];
    ssize_t n = readlinkat(s->dir, "exe", lnk, sizeof lnk);
    if (n < 0 || n == (ssize_t)sizeof lnk) {
        if (n < 0)
            fail_errno(errno, "exe");
        else
            defer_all("exe: a path of 4096 bytes or more");
        return;
    }
    s->exe = malloc((size_t)n + 1);
    if (!s->exe)
        die("out of memory");
    memcpy(s->exe, lnk, (size_t)n);
    s->exe_len = (size_t)n;
    struct stat st;
    if (fstatat(s->dir, "exe", &st, 0) == 0) {
        s->has_exe_id = true;
        snprintf(s->exe_dev, sizeof s->exe_dev, "%02x:%02x", major(st.st_dev), minor(st.st_dev));
        s->exe_ino = (unsigned long long)st.st_ino;
    } else if (!gone(errno)) {
        fail_errno(errno, "exe");
        return;
    }
    if ((s->task_dir = open_dir(s, "task")) < 0)
        return;
    int *tids = list_numbers(s->task_dir, "task", &s->ntasks);
    if (failed())
        return;
    s->tasks = calloc((size_t)s->ntasks + 1, sizeof *s->tasks);
    if (!s->tasks)
        die("out of memory");
    for (int i = 0; i < s->ntasks; i++)
        s->tasks[i].tid = tids[i];
    free(tids);
}

static void read_all(struct snap *s, bool kcmp)
{
    /* the two listings (getdents(2) of 10,000 and 19,000 entries) at once */
    pthread_t lister;
    bool apart = workers() > 1 && pthread_create(&lister, NULL, list_fds, s) == 0;
    if (!apart)
        list_fds(s);
    list_tasks(s);
    if (apart)
        pthread_join(lister, NULL);
    if (failed())
        return;
    kcmp_items = kcmp ? N_KCMP : 0;
    n_task_items = (s->ntasks + TASK_CHUNK - 1) / TASK_CHUNK;
    run_phase(2 + kcmp_items + n_task_items + (s->nfds + FD_CHUNK - 1) / FD_CHUNK);
    if (failed())
        return;
    reread_running(s);
    if (s->view) {
        read_shown_status(s);
        read_shown_fdinfo(s);
    }
    fd_details(s);
    if (failed())
        return;
    classify(s);
    if (failed())
        return;
    /* then the rows, formatted by the workers too (the view's: its first rows only) */
    list_items[L_THREADS] = s->ntasks;
    list_items[L_MAPS] = s->nmaps;
    list_items[L_FDS] = s->nfds;
    if (s->view) {
        list_items[L_MAPS] = s->nmaps < s->view ? s->nmaps : s->view;
        for (int i = 0, n = 0; i < s->ntasks; i++)
            if (!s->tasks[i].vanished && ++n == s->view)
                list_items[L_THREADS] = i + 1;
        for (int i = 0, n = 0; i < s->nfds; i++) {
            if (s->fds[i].status != FD_CLOSED && ++n == s->view)
                list_items[L_FDS] = i + 1;
            if (i >= list_items[L_FDS] && s->fds[i].status == FD_PYTHON && !s->fds[i].kind) {
                defer_all("fd %d: a link this reader does not classify, beyond the rows shown", s->fds[i].fd);
                return;
            }
        }
    }
    int items = 0;
    for (int l = 0; l < L_N; l++) {
        int nc = (list_items[l] + ROW_CHUNK - 1) / ROW_CHUNK;
        if (!(chunks[l] = calloc((size_t)nc + 1, sizeof *chunks[l])))
            die("out of memory");
        items += nc;
    }
    phase = 1;
    run_phase(items);
}

int main(int argc, char **argv)
{
    kernel_init();
    const char *root = "/proc";
    long long pid = -1, ppid = 0, kcmp = 0, view = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--pid=", 6)) {
            if (parse_ll(a + 6, &pid) || pid <= 0 || pid > 0x7fffffff)
                die_badargs("--pid must be a positive integer");
        } else if (!strncmp(a, "--parent=", 9)) {
            if (parse_ll(a + 9, &ppid) || ppid < 0 || ppid > 0x7fffffff)
                die_badargs("--parent must be an integer >= 0");
        } else if (!strncmp(a, "--kcmp=", 7)) {
            if (parse_ll(a + 7, &kcmp) || kcmp < 0 || kcmp > 1)
                die_badargs("--kcmp must be 0 or 1");
        } else if (!strncmp(a, "--rows=", 7)) {
            if (parse_ll(a + 7, &view) || view < 0 || view > 1000000)
                die_badargs("--rows must be an integer from 0 to 1000000");
        } else if (!strncmp(a, "--proc-root=", 12)) {
            root = a + 12;
        } else {
            die_badargs("unknown argument %s (see procsnap's header)", a);
        }
    }
    if (pid < 0)
        die_badargs("--pid=PID is required");
    struct snap *s = &snap;
    s->pid = (int)pid;
    s->ppid = ppid;
    s->view = (int)view;
    s->ticks = sysconf(_SC_CLK_TCK);
    struct utsname u;
    s->arm64 = uname(&u) == 0 && (!strcmp(u.machine, "aarch64") || !strcmp(u.machine, "arm64"));
    if ((size_t)snprintf(s->path, sizeof s->path, "%s/%lld", root, pid) >= sizeof s->path)
        die_badargs("--proc-root is too long");
    s->dir = s->task_dir = s->fd_dir = s->info_dir = -1;
    s->dir = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir < 0)
        defer_all("cannot open %s: %s", s->path, strerror(errno));
    else
        read_all(s, kcmp != 0);

    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    if (write_failure(stdout))
        return fflush(stdout) == 0 ? 0 : 1;
    struct buf o = {0};
    buf_reserve(&o, 1 << 20);
    buf_str(&o, "procsnap 1\n");
    write_kcmp(s, &o);
    write_tasks(s, &o);
    size_t *ends[L_N];
    write_list(&o, L_THREADS, s->view, &ends[L_THREADS]);
    write_list(&o, L_MAPS, s->view, &ends[L_MAPS]);
    write_maps(s, &o);
    write_fds(s, &o);
    struct buf fds = {0};
    write_list(&fds, L_FDS, s->view, &ends[L_FDS]); /* its offsets come first */
    write_python_rows(&o, s, ends[L_FDS]);
    buf_add(&o, fds.p, fds.len);
    buf_free(&fds);
    buf_str(&o, "end\n");
    for (size_t done = 0; done < o.len;) {
        ssize_t w = write(1, o.p + done, o.len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        done += (size_t)w;
    }
    return 0;
}
