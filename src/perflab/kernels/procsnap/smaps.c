/* smaps.c: /proc/PID/smaps (parse_maps.parse_smaps, its fast path) and the address
 * space's JSON (snapshot.py _address_space); classify.c labels the mappings. */

#include "procsnap.h"

const char *const kind_names[K_N] = {"executable", "library", "heap", "main_stack", "thread_stack",
                                     "stack_guard", "anonymous", "file", "vdso", "vvar",
                                     "vsyscall", "special"};

/* ---- smaps ------------------------------------------------------------------------ */

static bool hexrun(const char **p, const char *end, unsigned long long *v) /* [0-9a-f]+ */
{
    const char *s = *p;
    unsigned long long x = 0;
    while (s < end && ((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) {
        if (x >> 60)
            return false;
        x = x << 4 | (unsigned)(*s <= '9' ? *s - '0' : *s - 'a' + 10);
        s++;
    }
    if (s == *p)
        return false;
    *p = s;
    *v = x;
    return true;
}

/* A header line, as _SMAPS_FAST reads it: "START-END PERMS OFFSET MAJ:MIN INODE" then
 * an optional space, blanks and the path (show_map_vma() in fs/proc/task_mmu.c). */
static bool header(const char *s, const char *end, struct mapping *m)
{
    unsigned long long dmaj, dmin;
    if (!hexrun(&s, end, &m->start) || s == end || *s++ != '-' || !hexrun(&s, end, &m->end)
        || s == end || *s++ != ' ' || end - s < 5)
        return false;
    m->perms = s;
    for (int i = 0; i < 4; i++)
        if (!strchr("-rwxsp", s[i]) || !s[i])
            return false;
    s += 4;
    if (*s++ != ' ' || !hexrun(&s, end, &m->offset) || s == end || *s++ != ' ')
        return false;
    m->dev = s;
    if (!hexrun(&s, end, &dmaj) || s == end || *s++ != ':' || !hexrun(&s, end, &dmin))
        return false;
    m->dev_len = (size_t)(s - m->dev);
    if (s == end || *s++ != ' ' || s == end || !(*s >= '0' && *s <= '9'))
        return false;
    unsigned long long ino = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (ino > (~0ull - 9) / 10)
            return false;
        ino = ino * 10 + (unsigned)(*s++ - '0');
    }
    m->inode = ino;
    if (s < end && *s == ' ')
        s++;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    m->path = s;
    m->path_len = (size_t)(end - s);
    return true;
}

static bool field(const char *s, const char *end, const char *name) /* "Name: .*" */
{
    size_t n = strlen(name);
    return (size_t)(end - s) >= n && !memcmp(s, name, n);
}

static bool kib(const char *s, const char *end, const char *name, unsigned long long *v)
{   /* "Rss: +(\d+) kB$" */
    size_t n = strlen(name);
    if (!field(s, end, name))
        return false;
    s += n;
    if (s == end || *s != ' ')
        return false;
    while (s < end && *s == ' ')
        s++;
    unsigned long long x = 0;
    const char *d = s;
    while (s < end && *s >= '0' && *s <= '9') {
        if (x > (~0ull >> 11) / 10)
            return false;
        x = x * 10 + (unsigned)(*s++ - '0');
    }
    if (s == d || end - s != 3 || memcmp(s, " kB", 3))
        return false;
    *v = x;
    return true;
}

void read_smaps(struct snap *s)
{
    int err = read_file(s->dir, "smaps", &s->smaps, 0);
    if (err) {
        fail_errno(err, "smaps");
        return;
    }
    const char *p = s->smaps.p, *end = p + s->smaps.len;
    size_t cap = 0, rss_lines = 0;
    for (const char *q = p; (q = memmem(q, (size_t)(end - q), "\nRss:", 5)); q += 5)
        rss_lines++;
    /* Each mapping: its header, then Size, KernelPageSize, MMUPageSize, Rss and Pss in
     * this order (show_smap() and __show_smap()), the rest skipped. A file of any other
     * shape goes to Python's generic parser. */
    const char *line = p;
    while (line < end && !failed()) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        struct mapping m = {0};
        if (header(line, eol, &m)) {
            const char *l[5];
            const char *e[5];
            const char *at = eol + 1;
            bool ok = true;
            for (int k = 0; k < 5 && ok; k++) {
                if (at > end) {
                    ok = false;
                    break;
                }
                l[k] = at;
                e[k] = memchr(at, '\n', (size_t)(end - at));
                if (!e[k])
                    e[k] = end;
                at = e[k] + 1;
            }
            ok = ok && field(l[0], e[0], "Size: ") && field(l[1], e[1], "KernelPageSize: ")
                 && field(l[2], e[2], "MMUPageSize: ") && kib(l[3], e[3], "Rss:", &m.rss_kib)
                 && kib(l[4], e[4], "Pss:", &m.pss_kib);
            if (!ok) {
                defer_all("smaps: a mapping without Size, KernelPageSize, MMUPageSize, Rss, Pss in order");
                return;
            }
            if (s->nmaps == (int)cap) {
                cap = cap ? cap * 2 : 1024;
                s->maps = realloc(s->maps, cap * sizeof *s->maps);
                if (!s->maps)
                    die("out of memory");
            }
            s->maps[s->nmaps++] = m;
            line = e[4] + 1;
            continue;
        }
        if (s->nmaps == 0 && eol > line) {
            defer_all("smaps: does not start with a mapping");
            return;
        }
        line = eol + 1;
    }
    if ((size_t)s->nmaps != rss_lines)
        defer_all("smaps: %d mappings but %zu Rss lines", s->nmaps, rss_lines);
}

/* ---- JSON ------------------------------------------------------------------------- */

static void opt_str(struct buf *o, const char *s, size_t n, bool present)
{
    if (present)
        buf_jstr(o, s, n);
    else
        buf_str(o, "null");
}

/* The fields a mapping's row and a thread's stack share: {"start", "end", "size_bytes",
 * "rss_bytes" (the object left open). */
void mapping_span(const struct mapping *m, struct buf *o)
{
    buf_str(o, "{\"start\":");
    buf_jhex(o, m->start);
    buf_str(o, ",\"end\":");
    buf_jhex(o, m->end);
    buf_str(o, ",\"size_bytes\":");
    buf_u64(o, m->end - m->start);
    buf_str(o, ",\"rss_bytes\":");
    buf_u64(o, m->rss_kib * 1024);
}

void mapping_row(struct mapping *m, struct buf *o)
{
    mapping_span(m, o);
    buf_str(o, ",\"pss_bytes\":");
    buf_u64(o, m->pss_kib * 1024);
    buf_str(o, ",\"perms\":");
    buf_jstr(o, m->perms, 4);
    buf_str(o, ",\"offset_bytes\":");
    buf_u64(o, m->offset);
    buf_str(o, ",\"dev\":");
    buf_jstr(o, m->dev, m->dev_len);
    buf_str(o, ",\"inode\":");
    buf_u64(o, m->inode);
    buf_str(o, ",\"path\":");
    opt_str(o, m->path, m->path_len, m->path_len > 0);
    buf_str(o, ",\"kind\":\"");
    buf_str(o, kind_names[m->kind]);
    buf_str(o, "\",\"library\":");
    opt_str(o, m->path, m->stripped_len, m->kind == K_LIBRARY);
    buf_str(o, ",\"tids\":[");
    for (int k = 0; k < m->ntids; k++) {
        if (k)
            buf_chr(o, ',');
        buf_i64(o, m->tids[k]);
    }
    buf_str(o, "],\"name\":");
    opt_str(o, m->name, m->name_len, m->name != NULL);
    buf_str(o, m->deleted ? ",\"deleted\":true}" : ",\"deleted\":false}");
}

struct sums {
    unsigned long long mappings, size, rss, pss;
};

static void sums_json(struct buf *o, const struct sums *t)
{
    buf_str(o, "{\"mappings\":");
    buf_u64(o, t->mappings);
    buf_str(o, ",\"size_bytes\":");
    buf_u64(o, t->size);
    buf_str(o, ",\"rss_bytes\":");
    buf_u64(o, t->rss);
    buf_str(o, ",\"pss_bytes\":");
    buf_u64(o, t->pss);
    buf_chr(o, '}');
}

struct lib {
    const char *path;
    size_t len;
    bool deleted;
    struct sums t;
    int first; /* order of first appearance: the sort is stable */
};

static int by_pss(const void *a, const void *b) /* sorted(key=-pss_bytes), stable */
{
    const struct lib *x = a, *y = b;
    if (x->t.pss != y->t.pss)
        return x->t.pss > y->t.pss ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

/* One line: the object of by_kind, libraries, totals (the rows: main.c). */
void write_maps(struct snap *s, struct buf *o)
{
    struct sums kinds[K_N] = {{0}}, total = {0};
    struct lib *libs = calloc((size_t)s->nmaps + 1, sizeof *libs);
    int nlibs = 0;
    struct strset index = {0};
    if (!libs)
        die("out of memory");
    strset_init(&index, (size_t)s->nmaps, true);
    for (int i = 0; i < s->nmaps; i++) {
        struct mapping *m = &s->maps[i];
        struct sums *k = &kinds[m->kind];
        k->mappings++;
        k->size += m->end - m->start;
        k->rss += m->rss_kib * 1024;
        k->pss += m->pss_kib * 1024;
        if (m->kind != K_LIBRARY)
            continue;
        size_t slot = strset_slot(&index, m->path, m->stripped_len);
        if (!index.s[slot]) {
            index.s[slot] = m->path;
            index.n[slot] = m->stripped_len;
            index.val[slot] = nlibs;
            libs[nlibs] = (struct lib){m->path, m->stripped_len, m->deleted, {0}, nlibs};
            nlibs++;
        }
        int j = index.val[slot];
        libs[j].t.mappings++;
        libs[j].t.size += m->end - m->start;
        libs[j].t.rss += m->rss_kib * 1024;
        libs[j].t.pss += m->pss_kib * 1024;
    }
    buf_str(o, "{\"by_kind\":{");
    for (int k = 0, n = 0; k < K_N; k++) {
        if (!kinds[k].mappings)
            continue;
        if (n++)
            buf_chr(o, ',');
        buf_chr(o, '"');
        buf_str(o, kind_names[k]);
        buf_str(o, "\":");
        sums_json(o, &kinds[k]);
        total.mappings += kinds[k].mappings;
        total.size += kinds[k].size;
        total.rss += kinds[k].rss;
        total.pss += kinds[k].pss;
    }
    buf_str(o, "},\"libraries\":[");
    qsort(libs, (size_t)nlibs, sizeof *libs, by_pss);
    for (int j = 0; j < nlibs; j++) {
        size_t bl;
        const char *base = basename_of(libs[j].path, libs[j].len, &bl);
        if (j)
            buf_chr(o, ',');
        buf_str(o, "{\"path\":");
        buf_jstr(o, libs[j].path, libs[j].len);
        buf_str(o, ",\"name\":");
        buf_jstr(o, base, bl);
        buf_str(o, ",\"mappings\":");
        buf_u64(o, libs[j].t.mappings);
        buf_str(o, ",\"size_bytes\":");
        buf_u64(o, libs[j].t.size);
        buf_str(o, ",\"rss_bytes\":");
        buf_u64(o, libs[j].t.rss);
        buf_str(o, ",\"pss_bytes\":");
        buf_u64(o, libs[j].t.pss);
        buf_str(o, libs[j].deleted ? ",\"deleted\":true}" : ",\"deleted\":false}");
    }
    buf_str(o, "],\"totals\":");
    sums_json(o, &total);
    buf_str(o, "}\n");
    free(libs);
    strset_free(&index);
}
