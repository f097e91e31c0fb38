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

/* The details of every socket fd, from the tables read once (only when there is one, as
 * _socket_table is read at the first); any other fd's details came from its fdinfo. */
void fd_details(struct snap *s)
{
    bool any = false;
    for (int i = 0; i < s->nfds; i++)
        any |= s->fds[i].status == FD_OK && !strcmp(s->fds[i].kind, "socket");
    if (!any)
        return;
    /* NET_PROTOCOL_FILES, in order: a later file's entry wins (table.update) */
    static const char *const protos[] = {"unix", "tcp", "tcp6", "udp", "udp6", "raw", "raw6", "netlink", "packet"};
    struct sock *t = NULL;
    int n = 0, cap = 0;
    bool unparsed = false, ipv6 = false;
    struct buf b = {0};
    for (size_t p = 0; p < sizeof protos / sizeof protos[0] && !unparsed; p++) {
        char rel[32];
        snprintf(rel, sizeof rel, "net/%s", protos[p]);
        int err = read_file(s->dir, rel, &b, 0);
        if (err) {
            if (!gone(err)) {
                fail_errno(err, "%s", rel);
                break;
            }
            continue; /* the protocol is not built in */
        }
        if (!plain_ascii(b.p, b.len)) {
            unparsed = true;
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
                ipv6 |= split_ws(line, (size_t)(eol - line), f, fl, 1) > 0;
            } else {
                if (n == cap) {
                    cap = cap ? 2 * cap : 256;
                    t = realloc(t, (size_t)cap * sizeof *t);
                    if (!t)
                        die("out of memory");
                }
                t[n] = (struct sock){0, n, {0}};
                if (!net_line(protos[p], line, (size_t)(eol - line), &t[n])) {
                    buf_free(&t[n].json);
                    unparsed = true;
                    break;
                }
                if (t[n].json.len)
                    n++;
            }
            line = eol;
        }
    }
    buf_free(&b);
    qsort(t, (size_t)n, sizeof *t, by_ino);
    for (int i = 0; i < s->nfds && !failed(); i++) {
        struct fdrow *r = &s->fds[i];
        if (r->status != FD_OK || strcmp(r->kind, "socket"))
            continue;
        r->details.len = 0;
        struct sock *e = r->has_target_ino ? find_sock(t, n, r->target_ino) : NULL;
        if (unparsed || (!e && ipv6 && r->has_target_ino))
            r->status = FD_PYTHON;
        else if (e)
            buf_add(&r->details, e->json.p, e->json.len);
        else
            buf_str(&r->details, "{\"protocol\":null}");
    }
    for (int i = 0; i < n; i++)
        buf_free(&t[i].json);
    free(t);
}
