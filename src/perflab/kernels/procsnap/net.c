/* net.c: the socket tables of the process's network namespace, /proc/PID/net/ files
 * (parse_fds.parse_net_sockets), and the details of every socket fd from them. */

#include "procsnap.h"

/* ---- the socket tables of the process's network namespace (parse_net_sockets) ------ */

struct sock {
    unsigned long long ino;
    int seq;
    struct buf json;
};

static const char *const tcp_states[] = {NULL, "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",
                                         "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT",
                                         "LAST_ACK", "LISTEN", "CLOSING"};

/* _inet_addr() of an IPv4 "%08X:%04X" (tcp4_seq_show()): the __be32 printed as a host
 * (little-endian) int, so its bytes come out reversed */
static bool inet4(struct buf *o, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (!colon || memchr(colon + 1, ':', n - (size_t)(colon - s) - 1) || colon - s != 8)
        return false;
    unsigned long long a, port;
    if (py_uint(s, 8, 16, &a) || py_uint(colon + 1, n - 9, 16, &port))
        return false;
    for (size_t i = 0; i < 8; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    char t[48];
    snprintf(t, sizeof t, "\"%llu.%llu.%llu.%llu:%llu\"", a & 255, a >> 8 & 255, a >> 16 & 255, a >> 24 & 255, port);
    buf_str(o, t);
    return true;
}

static bool net_line(const char *proto, const char *line, size_t ln, struct sock *e)
{
    const char *f[64];
    size_t fl[64];
    int n = split_ws(line, ln, f, fl, 64);
    if (n == 0)
        return true;
    if (n == 64)
        return false;
    struct buf *o = &e->json;
    unsigned long long v;
    if (!strcmp(proto, "unix")) {
        static const char *const types[] = {NULL, "stream", "dgram", NULL, NULL, "seqpacket"};
        if (n < 7 || py_uint(f[4], fl[4], 16, &v) || py_uint(f[6], fl[6], 10, &e->ino))
            return false;
        buf_str(o, "{\"protocol\":\"unix\",\"type\":");
        if (v < 6 && types[v]) {
            buf_chr(o, '"');
            buf_str(o, types[v]);
            buf_chr(o, '"');
        } else {
            buf_jstr(o, f[4], fl[4]);
        }
        if (n > 7) {
            struct buf path = {0};
            for (int i = 7; i < n; i++) {
                if (i > 7)
                    buf_chr(&path, ' ');
                buf_add(&path, f[i], fl[i]);
            }
            buf_str(o, ",\"path\":");
            buf_jstr(o, path.p, path.len);
            buf_free(&path);
        }
        buf_chr(o, '}');
        return true;
    }
    if (!strcmp(proto, "netlink")) {
        long long family;
        if (n < 10 || py_int(f[1], fl[1], 10, &family) || py_uint(f[9], fl[9], 10, &e->ino))
            return false;
        buf_str(o, "{\"protocol\":\"netlink\",\"family\":");
        buf_i64(o, family);
        buf_chr(o, '}');
        return true;
    }
    if (!strcmp(proto, "packet")) {
        if (n < 9 || py_uint(f[8], fl[8], 10, &e->ino))
            return false;
        buf_str(o, "{\"protocol\":\"packet\"}");
        return true;
    }
    /* tcp, udp, raw */
    if (n < 10 || py_uint(f[9], fl[9], 10, &e->ino))
        return false;
    buf_str(o, "{\"protocol\":\"");
    buf_str(o, proto);
    buf_str(o, "\",\"local\":");
    if (!inet4(o, f[1], fl[1]))
        return false;
    buf_str(o, ",\"remote\":");
    if (!inet4(o, f[2], fl[2]))
        return false;
    if (!strcmp(proto, "tcp")) {
        buf_str(o, ",\"state\":");
        if (py_uint(f[3], fl[3], 16, &v))
            return false;
        if (v >= 1 && v <= 11) {
            buf_chr(o, '"');
            buf_str(o, tcp_states[v]);
            buf_chr(o, '"');
        } else {
            buf_jstr(o, f[3], fl[3]);
        }
    }
    buf_chr(o, '}');
    return true;
}

static int by_ino(const void *a, const void *b)
{
    const struct sock *x = a, *y = b;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static struct sock *find_sock(struct sock *t, int n, unsigned long long ino) /* the last one */
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (t[mid].ino <= ino)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && t[lo - 1].ino == ino ? &t[lo - 1] : NULL;
}

struct socktab {
    struct sock *t; /* sorted by inode, then file order */
    int n;
    bool unparsed, ipv6; /* a file it could not parse; an IPv6 one with entries */
    int err;             /* a file it could not read (not ENOENT: not built in) */
    char what[32];
};

/* NET_PROTOCOL_FILES, in order: a later file's entry wins (table.update) */
void read_sockets(struct snap *s)
{
    static const char *const protos[] = {"unix", "tcp", "tcp6", "udp", "udp6", "raw", "raw6", "netlink", "packet"};
    struct socktab *tab = calloc(1, sizeof *tab);
    if (!tab)
        die("out of memory");
    int cap = 0;
    struct buf b = {0};
    for (size_t p = 0; p < sizeof protos / sizeof protos[0] && !tab->unparsed && !tab->err; p++) {
        snprintf(tab->what, sizeof tab->what, "net/%s", protos[p]);
        int err = read_file(s->dir, tab->what, &b, 0);
        if (err) {
            if (!gone(err))
                tab->err = err;
            continue; /* gone: the protocol is not built in */
        }
        if (!plain_ascii(b.p, b.len)) {
            tab->unparsed = true;
            break;
        }
        const char *line = memchr(b.p, '\n', b.len), *end = b.p + b.len;
        line = line ? line + 1 : end; /* the header */
        bool v6 = strchr(protos[p], '6') != NULL;
        for (; line < end; line++) {
            const char *eol = memchr(line, '\n', (size_t)(end - line));
            if (!eol)
                eol = end;
            if (v6) { /* IPv6 addresses are written by Python's ipaddress */
                const char *f[1];
                size_t fl[1];
                tab->ipv6 |= split_ws(line, (size_t)(eol - line), f, fl, 1) > 0;
            } else {
                if (tab->n == cap) {
                    cap = cap ? 2 * cap : 256;
                    tab->t = realloc(tab->t, (size_t)cap * sizeof *tab->t);
                    if (!tab->t)
                        die("out of memory");
                }
                struct sock *e = &tab->t[tab->n];
                *e = (struct sock){0, tab->n, {0}};
                if (!net_line(protos[p], line, (size_t)(eol - line), e)) {
                    buf_free(&e->json);
                    tab->unparsed = true;
                    break;
                }
                if (e->json.len)
                    tab->n++;
            }
            line = eol;
        }
    }
    buf_free(&b);
    qsort(tab->t, (size_t)tab->n, sizeof *tab->t, by_ino);
    s->sockets = tab;
}

/* The details of every socket fd, from the tables (Python reads them at the first
 * socket, so a table it could not read fails the snapshot only then); any other fd's
 * details came from its fdinfo. */
void fd_details(struct snap *s)
{
    bool any = false;
    for (int i = 0; i < s->nfds; i++)
        any |= s->fds[i].status == FD_OK && !strcmp(s->fds[i].kind, "socket");
    struct socktab *tab = s->sockets;
    if (!any || !tab)
        return;
    if (tab->err) {
        fail_errno(tab->err, "%s", tab->what);
        return;
    }
    for (int i = 0; i < s->nfds; i++) {
        struct fdrow *r = &s->fds[i];
        if (r->status != FD_OK || strcmp(r->kind, "socket"))
            continue;
        r->details.len = 0;
        struct sock *e = r->has_target_ino ? find_sock(tab->t, tab->n, r->target_ino) : NULL;
        if (tab->unparsed || (!e && tab->ipv6 && r->has_target_ino))
            r->status = FD_PYTHON;
        else if (e)
            buf_add(&r->details, e->json.p, e->json.len);
        else
            buf_str(&r->details, "{\"protocol\":null}");
    }
}
