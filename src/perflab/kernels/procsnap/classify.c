/* classify.c: the classification of every mapping (procfs/classify.py): libraries,
 * the executable, heap, stacks found by each thread's stack pointer, guard pages,
 * legacy labels, named anonymous memory. */

#include "procsnap.h"

static const char DELETED[] = " (deleted)";

static bool file_backed(const struct mapping *m) /* classify.is_file_backed */
{
    return m->inode != 0 || (starts(m->path, m->path_len, "/") && !starts(m->path, m->path_len, "/["));
}

/* _SHARED_OBJECT: r"\.so(\.[0-9][0-9.]*)?$" searched in the basename */
static bool shared_object_name(const char *s, size_t n)
{
    for (size_t p = 0; p + 3 <= n; p++) {
        if (memcmp(s + p, ".so", 3))
            continue;
        size_t q = p + 3;
        if (q == n)
            return true;
        if (s[q] != '.' || q + 1 >= n || !(s[q + 1] >= '0' && s[q + 1] <= '9'))
            continue;
        size_t r = q + 2;
        while (r < n && ((s[r] >= '0' && s[r] <= '9') || s[r] == '.'))
            r++;
        if (r == n)
            return true;
    }
    return false;
}

static int bisect_mapping(struct snap *s, unsigned long long sp) /* bisect_right - 1 */
{
    int lo = 0, hi = s->nmaps;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (sp < s->maps[mid].start)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo - 1;
}

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

static void add_tids(struct mapping *m, const int *tids, int n) /* sorted(set(old) | set(new)) */
{
    m->tids = realloc(m->tids, (size_t)(m->ntids + n) * sizeof(int));
    if (!m->tids && m->ntids + n)
        die("out of memory");
    memcpy(m->tids + m->ntids, tids, (size_t)n * sizeof(int));
    m->ntids += n;
    qsort(m->tids, (size_t)m->ntids, sizeof(int), cmp_int);
    int k = 0;
    for (int i = 0; i < m->ntids; i++)
        if (k == 0 || m->tids[k - 1] != m->tids[i])
            m->tids[k++] = m->tids[i];
    m->ntids = k;
}

static struct task *find_task(struct snap *s, int tid) /* tasks are sorted by tid */
{
    int lo = 0, hi = s->ntasks;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s->tasks[mid].tid == tid)
            return &s->tasks[mid];
        if (s->tasks[mid].tid < tid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool sp_known(const struct task *t) { return !t->vanished && t->has_sc && !t->running; }

void classify(struct snap *s)
{
    /* exe_path: readlink(exe) without " (deleted)" */
    size_t exe_len = s->exe_len;
    if (exe_len >= sizeof DELETED - 1 && !memcmp(s->exe + exe_len - (sizeof DELETED - 1), DELETED, sizeof DELETED - 1))
        exe_len -= sizeof DELETED - 1;
    for (int i = 0; i < s->nmaps; i++) {
        struct mapping *m = &s->maps[i];
        m->stripped_len = m->path_len;
        if (m->path_len >= sizeof DELETED - 1
            && !memcmp(m->path + m->path_len - (sizeof DELETED - 1), DELETED, sizeof DELETED - 1)) {
            m->stripped_len -= sizeof DELETED - 1;
            m->deleted = true;
        }
    }
    /* library_paths */
    struct strset libs = {0};
    strset_init(&libs, (size_t)s->nmaps, false);
    for (int i = 0; i < s->nmaps; i++) {
        struct mapping *m = &s->maps[i];
        if (!file_backed(m) || same(m->path, m->stripped_len, s->exe, exe_len))
            continue;
        size_t bl;
        const char *base = basename_of(m->path, m->stripped_len, &bl);
        if (shared_object_name(base, bl) || memchr(m->perms, 'x', 4))
            strset_has(&libs, m->path, m->stripped_len, true);
    }
    /* find_stacks: the mapping holding each known stack pointer; holders per mapping */
    int *holder_count = calloc((size_t)s->nmaps + 1, sizeof(int));
    if (!holder_count)
        die("out of memory");
    for (int i = 0; i < s->ntasks; i++) {
        struct task *t = &s->tasks[i];
        t->stack = -1;
        if (!sp_known(t))
            continue;
        int k = bisect_mapping(s, t->sp);
        if (k >= 0 && s->maps[k].start <= t->sp && t->sp < s->maps[k].end) {
            t->stack = k;
            holder_count[k]++;
        }
    }
    int **held = calloc((size_t)s->nmaps + 1, sizeof(int *));
    int *nheld = calloc((size_t)s->nmaps + 1, sizeof(int));
    if (!held || !nheld)
        die("out of memory");
    for (int i = 0; i < s->ntasks; i++) {
        int k = s->tasks[i].stack;
        if (k < 0)
            continue;
        if (!held[k] && !(held[k] = malloc((size_t)holder_count[k] * sizeof(int))))
            die("out of memory");
        held[k][nheld[k]++] = s->tasks[i].tid; /* tasks are sorted: so is each list */
    }
    for (int i = 0; i < s->nmaps; i++) {
        struct mapping *m = &s->maps[i];
        const char *path = m->path;
        size_t n = m->stripped_len;
        if (m->path_len == 0) { /* most mappings of a many-threaded process */
            m->kind = nheld[i] ? K_THREAD_STACK : K_ANONYMOUS;
            if (nheld[i])
                add_tids(m, held[i], nheld[i]);
            continue;
        }
        int kind = -1;
        if (same(path, n, "[heap]", 6))
            kind = K_HEAP;
        else if (same(path, n, "[stack]", 7))
            kind = K_MAIN_STACK;
        else if (same(path, n, "[vdso]", 6))
            kind = K_VDSO;
        else if (same(path, n, "[vvar]", 6) || same(path, n, "[vvar_vclock]", 13))
            kind = K_VVAR;
        else if (same(path, n, "[vsyscall]", 10))
            kind = K_VSYSCALL;
        if (kind < 0 && starts(path, n, "[stack:")) { /* Linux < 4.5: "[stack:TID]" */
            const char *d = path + 7;
            size_t dn = n - 7;
            bool digits = dn >= 2 && path[n - 1] == ']';
            for (size_t k = 0; digits && k + 1 < dn; k++)
                digits = d[k] >= '0' && d[k] <= '9';
            long long tid;
            if (!plain_ascii(path, n) || (digits && (py_int(d, dn - 1, 10, &tid) || tid > 0x7fffffff))) {
                defer_all("maps: a [stack:...] label this reader does not model");
                break;
            }
            if (digits) {
                int t = (int)tid;
                kind = K_THREAD_STACK;
                add_tids(m, &t, 1);
            }
        }
        if (kind < 0) {
            if (starts(path, n, "[anon:") || starts(path, n, "[anon_shmem:")) {
                if (!plain_ascii(path, n)) { /* path[index(":") + 1:-1] counts characters */
                    defer_all("maps: an [anon:...] name this reader does not model");
                    break;
                }
                const char *colon = memchr(path, ':', n);
                kind = K_ANONYMOUS;
                m->name = colon + 1;
                m->name_len = path + n - 1 > colon + 1 ? (size_t)(path + n - 1 - (colon + 1)) : 0;
            } else if (starts(path, n, "[")) {
                kind = K_SPECIAL;
            } else if (file_backed(m)) {
                if (same(path, n, s->exe, exe_len)
                    || (s->has_exe_id && same(m->dev, m->dev_len, s->exe_dev, strlen(s->exe_dev))
                        && m->inode == s->exe_ino))
                    kind = K_EXECUTABLE;
                else if (strset_has(&libs, path, n, false))
                    kind = K_LIBRARY;
                else
                    kind = K_FILE;
            } else {
                kind = K_ANONYMOUS;
            }
        }
        /* A mapping holding a thread's stack pointer is its stack, if it is anonymous
         * memory (a pointer into the heap or a file is reported, not relabelled). */
        if (nheld[i] && (kind == K_ANONYMOUS || kind == K_THREAD_STACK || kind == K_MAIN_STACK)) {
            add_tids(m, held[i], nheld[i]);
            if (kind == K_ANONYMOUS)
                kind = K_THREAD_STACK;
        }
        m->kind = kind;
    }
    /* Legacy labels stand in for threads with no stack found by pointer. */
    for (int i = 0; i < s->nmaps && !failed(); i++) {
        struct mapping *m = &s->maps[i];
        if (m->kind != K_THREAD_STACK || !m->path_len)
            continue;
        for (int k = 0; k < m->ntids; k++) {
            struct task *t = find_task(s, m->tids[k]);
            if (t && !t->vanished && t->stack < 0)
                t->stack = i;
        }
    }
    /* glibc's guard page(s) below a thread stack: PROT_NONE anonymous memory right below
     * (nptl/allocatestack.c) */
    for (int i = 0; i + 1 < s->nmaps; i++) {
        struct mapping *c = &s->maps[i], *above = &s->maps[i + 1];
        if (c->kind == K_ANONYMOUS && !c->name && c->perms[0] == '-' && c->perms[1] == '-'
            && c->perms[2] == '-' && above->kind == K_THREAD_STACK && c->end == above->start) {
            c->kind = K_STACK_GUARD;
            free(c->tids);
            c->ntids = 0;
            c->tids = NULL;
            if (above->ntids)
                add_tids(c, above->tids, above->ntids);
        }
    }
    for (int i = 0; i < s->nmaps; i++)
        free(held[i]);
    free(held);
    free(nheld);
    free(holder_count);
    strset_free(&libs);
}
