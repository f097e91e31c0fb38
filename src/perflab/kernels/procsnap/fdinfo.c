/* fdinfo.c: what an fd is, from its fd/N link (parse_fds.parse_fd_target), and its
 * fdinfo/N (parse_fds.parse_fdinfo, fdinfo_details): the row's fields and details. */

#include "procsnap.h"

/* ---- fd/N: what the link names (parse_fd_target) ----------------------------------- */

static const struct { const char *name, *kind; } anon_kinds[] = {
    {"[eventfd]", "eventfd"}, {"[eventpoll]", "epoll"}, {"[signalfd]", "signalfd"},
    {"[timerfd]", "timerfd"}, {"inotify", "inotify"}, {"[fanotify]", "fanotify"},
    {"[pidfd]", "pidfd"}, {"[io_uring]", "io_uring"}, {"[userfaultfd]", "userfaultfd"},
    {"[perf_event]", "perf_event"},
};
static const char *const ns_types[] = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"};

/* false: a link this reader does not model (Python classifies it) */
bool fd_target(struct fdrow *r)
{
    const char *l = r->link;
    size_t n = r->link_len;
    if (n && l[0] == '/') {
        r->kind = "path";
        r->path_target = true;
        return true;
    }
    if (n >= 11 && !memcmp(l, "anon_inode:", 11)) {
        r->kind = "anon_inode";
        for (size_t i = 0; i < sizeof anon_kinds / sizeof anon_kinds[0]; i++)
            if (strlen(anon_kinds[i].name) == n - 11 && !memcmp(l + 11, anon_kinds[i].name, n - 11))
                r->kind = anon_kinds[i].kind;
        return true;
    }
    if (!plain_ascii(l, n) || memchr(l, '\n', n) || memchr(l, '\t', n))
        return false; /* _PSEUDO's \d is any Unicode digit, its $ matches before a last \n */
    size_t fs = 0; /* ^([a-z_]+):\[(\d+)\]$ */
    while (fs < n && ((l[fs] >= 'a' && l[fs] <= 'z') || l[fs] == '_'))
        fs++;
    bool pseudo = fs > 0 && fs + 3 < n && l[fs] == ':' && l[fs + 1] == '[' && l[n - 1] == ']';
    for (size_t i = fs + 2; pseudo && i < n - 1; i++)
        pseudo = l[i] >= '0' && l[i] <= '9';
    if (!pseudo) {
        r->kind = "unknown";
        return true;
    }
    if (py_uint(l + fs + 2, n - 1 - (fs + 2), 10, &r->target_ino))
        return false;
    r->has_target_ino = true;
    r->kind = "pseudo";
    if ((fs == 4 && !memcmp(l, "pipe", 4)) || (fs == 6 && !memcmp(l, "socket", 6)))
        r->kind = l[0] == 'p' ? "pipe" : "socket";
    else if (fs == 5 && !memcmp(l, "pidfd", 5))
        r->kind = "pidfd";
    else
        for (size_t i = 0; i < sizeof ns_types / sizeof ns_types[0]; i++)
            if (strlen(ns_types[i]) == fs && !memcmp(l, ns_types[i], fs))
                r->kind = "namespace";
    return true;
}

/* ---- fdinfo/N (parse_fdinfo, fdinfo_details) --------------------------------------- */

struct kv {
    const char *key, *val;
    size_t klen, vlen;
};

static const struct kv *lookup(const struct kv *kv, int n, const char *key) /* the last one */
{
    for (int i = n - 1; i >= 0; i--)
        if (kv[i].klen == strlen(key) && !memcmp(kv[i].key, key, kv[i].klen))
            return &kv[i];
    return NULL;
}

static bool is_tok(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == '-'; }
static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* dict(_TOKENS.findall(line)), _TOKENS = r"([A-Za-z_-]+):\s*(\S+)" */
static int tokens(const char *s, size_t n, struct kv *kv, int max)
{
    int k = 0;
    size_t i = 0;
    while (i < n) {
        if (!is_tok(s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && is_tok(s[j]))
            j++;
        if (j < n && s[j] == ':') {
            size_t v = j + 1;
            while (v < n && is_space(s[v]))
                v++;
            size_t e = v;
            while (e < n && !is_space(s[e]))
                e++;
            if (e > v && k < max) {
                kv[k++] = (struct kv){s + i, s + v, j - i, e - v};
                i = e;
                continue;
            }
        }
        i = j;
    }
    return k;
}

static bool head_line(const char **p, const char *end, const char *key, const char *digits,
                      const char **v, size_t *vn)
{
    size_t kl = strlen(key);
    const char *s = *p;
    if ((size_t)(end - s) < kl || memcmp(s, key, kl))
        return false;
    s += kl;
    const char *d = s;
    if (digits[0] == '-' && s < end && *s == '-')
        s++;
    const char *first = s;
    while (s < end && strchr(digits + (digits[0] == '-'), *s) && *s)
        s++;
    if (s == first || s == end || *s != '\n')
        return false;
    *v = d;
    *vn = (size_t)(s - d);
    *p = s + 1;
    return true;
}

/* "(S, NS)" of timerfd_show() (fs/timerfd.c), as ts() in fdinfo_details reads it */
static bool timespec_ns(const struct kv *f, long long *out)
{
    if (!f)
        return false;
    const char *s = f->val, *e = f->val + f->vlen;
    while (s < e && (*s == '(' || *s == ')'))
        s++;
    while (e > s && (e[-1] == '(' || e[-1] == ')'))
        e--;
    const char *comma = memchr(s, ',', (size_t)(e - s));
    if (!comma || memchr(comma + 1, ',', (size_t)(e - comma - 1)))
        return false;
    long long sec, ns;
    if (py_int(s, (size_t)(comma - s), 10, &sec) || py_int(comma + 1, (size_t)(e - comma - 1), 10, &ns))
        return false;
    __int128 v = (__int128)sec * 1000000000 + ns;
    if (v > INT64_MAX || v < INT64_MIN)
        return false;
    *out = (long long)v;
    return true;
}

/* false: Python parses this one (its own errors included) */
bool fdinfo(struct fdrow *r, const char *d, size_t n)
{
    if (!plain_ascii(d, n))
        return false;
    const char *p = d, *end = d + n, *v;
    size_t vn;
    unsigned long long u;
    if (!head_line(&p, end, "pos:\t", "-0123456789", &v, &vn) || py_int(v, vn, 10, &r->pos)
        || !head_line(&p, end, "flags:\t", "01234567", &v, &vn) || py_uint(v, vn, 8, &r->flags)
        || !head_line(&p, end, "mnt_id:\t", "0123456789", &v, &vn) || py_int(v, vn, 10, &r->mnt_id))
        return false;
    if ((size_t)(end - p) >= 5 && !memcmp(p, "ino:\t", 5)) {
        if (!head_line(&p, end, "ino:\t", "0123456789", &v, &vn) || py_uint(v, vn, 10, &r->ino))
            return false;
        r->has_ino = true;
    }
    /* the type-specific lines */
    struct kv fields[32], t[16];
    int nf = 0, watches = 0;
    struct buf targets = {0};
    bool ok = true;
    while (p < end && ok) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        size_t ln = (size_t)(eol - p);
        if (ln >= 4 && !memcmp(p, "tfd:", 4)) { /* ep_show_fdinfo() in fs/eventpoll.c */
            int nt = tokens(p, ln, t, 16);
            const struct kv *tfd = lookup(t, nt, "tfd"), *ev = lookup(t, nt, "events"), *data = lookup(t, nt, "data");
            long long a;
            unsigned long long b, c;
            ok = tfd && ev && data && !py_int(tfd->val, tfd->vlen, 10, &a) && !py_uint(ev->val, ev->vlen, 16, &b)
                 && !py_uint(data->val, data->vlen, 16, &c) && b < (1ull << 63) && c < (1ull << 63);
            if (ok) {
                buf_str(&targets, targets.len ? ",{\"tfd\":" : "{\"tfd\":");
                buf_i64(&targets, a);
                buf_str(&targets, ",\"events\":");
                buf_u64(&targets, b);
                buf_str(&targets, ",\"data\":");
                buf_u64(&targets, c);
                buf_chr(&targets, '}');
            }
        } else if ((ln >= 8 && !memcmp(p, "inotify ", 8)) || (ln >= 9 && !memcmp(p, "fanotify ", 9))) {
            watches++; /* inotify_fdinfo() in fs/notify/fdinfo.c: one line per watch */
        } else {
            const char *s = p, *e = eol;
            while (s < e && is_space(*s))
                s++;
            if (s < e) {
                const char *colon = memchr(p, ':', ln);
                if (!colon || nf == 32) {
                    ok = false;
                    break;
                }
                const char *vs = colon + 1, *ve = eol;
                while (vs < ve && is_space(*vs))
                    vs++;
                while (ve > vs && is_space(ve[-1]))
                    ve--;
                fields[nf++] = (struct kv){p, vs, (size_t)(colon - p), (size_t)(ve - vs)};
            }
        }
        p = eol + 1;
    }
    struct buf *o = &r->details;
    const char *k = r->kind;
    const struct kv *f;
    if (ok && !strcmp(k, "eventfd") && (f = lookup(fields, nf, "eventfd-count"))) {
        const struct kv *sem = lookup(fields, nf, "eventfd-semaphore");
        ok = !py_uint(f->val, f->vlen, 16, &u) && u < (1ull << 63);
        buf_str(o, "{\"count\":");
        buf_u64(o, u);
        buf_str(o, sem && sem->vlen == 1 && sem->val[0] == '1' ? ",\"semaphore\":true}" : ",\"semaphore\":false}");
    } else if (ok && !strcmp(k, "epoll")) {
        buf_str(o, "{\"targets\":[");
        if (targets.len)
            buf_add(o, targets.p, targets.len);
        buf_str(o, "]}");
    } else if (ok && !strcmp(k, "timerfd") && (f = lookup(fields, nf, "clockid"))) {
        const struct kv *ticks = lookup(fields, nf, "ticks");
        long long clockid, nticks, value, interval;
        ok = !py_int(f->val, f->vlen, 10, &clockid) && ticks && !py_int(ticks->val, ticks->vlen, 10, &nticks)
             && timespec_ns(lookup(fields, nf, "it_value"), &value)
             && timespec_ns(lookup(fields, nf, "it_interval"), &interval);
        if (ok) {
            buf_str(o, "{\"clockid\":");
            buf_i64(o, clockid);
            buf_str(o, ",\"ticks\":");
            buf_i64(o, nticks);
            buf_str(o, ",\"it_value_ns\":");
            buf_i64(o, value);
            buf_str(o, ",\"it_interval_ns\":");
            buf_i64(o, interval);
            buf_chr(o, '}');
        }
    } else if (ok && !strcmp(k, "signalfd") && (f = lookup(fields, nf, "sigmask"))) {
        /* render_sigset_t: hex, bit n - 1 is signal n (fs/signalfd.c) */
        ok = !py_uint(f->val, f->vlen, 16, &u);
        buf_str(o, "{\"signals\":[");
        for (int b = 0, c = 0; b < 64; b++)
            if (u >> b & 1) {
                if (c++)
                    buf_chr(o, ',');
                buf_i64(o, b + 1);
            }
        buf_str(o, "]}");
    } else if (ok && !strcmp(k, "pidfd") && (f = lookup(fields, nf, "Pid"))) {
        long long pid;
        ok = !py_int(f->val, f->vlen, 10, &pid);
        buf_str(o, "{\"pid\":");
        buf_i64(o, pid);
        buf_chr(o, '}');
    } else if (ok && (!strcmp(k, "inotify") || !strcmp(k, "fanotify"))) {
        buf_str(o, "{\"watches\":");
        buf_i64(o, watches);
        buf_chr(o, '}');
    }
    buf_free(&targets);
    return ok;
}
