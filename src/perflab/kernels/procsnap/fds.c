/* fds.c: every fd's link, fdinfo and (for a path) stat (snapshot.py _fds, now
 * fdtable.py fd_row), and the fd table's JSON (fdinfo.c parses, net.c adds sockets). */

#include "procsnap.h"

#include <sys/stat.h>

/* ---- reading ------------------------------------------------------------------------ */

static const struct { unsigned mask; const char *kind; } mode_kinds[] = {
    {S_IFREG, "regular"}, {S_IFDIR, "directory"}, {S_IFCHR, "char_device"},
    {S_IFBLK, "block_device"}, {S_IFIFO, "fifo"}, {S_IFSOCK, "socket"}, {S_IFLNK, "symlink"},
};

/* read.py ProcDir.alive(): the process has not been reaped; its errors are raised */
static int alive(struct snap *s)
{
    struct buf b = {0};
    int err = read_file(s->dir, "stat", &b, 0);
    buf_free(&b);
    if (err && !gone(err)) {
        fail_errno(err, "stat");
        return -1;
    }
    return !err;
}

static void read_fd(struct snap *s, struct fdrow *r, struct buf *b)
{
    char name[16], lnk[4096];
    snprintf(name, sizeof name, "%d", r->fd);
    ssize_t n = readlinkat(s->fd_dir, name, lnk, sizeof lnk);
    int err = n < 0 ? errno : 0, in_fdinfo = 0;
    if (!err) {
        r->link_len = (size_t)n;
        r->link = malloc((size_t)n + 1);
        if (!r->link)
            die("out of memory");
        memcpy(r->link, lnk, (size_t)n);
        in_fdinfo = 1;
        if (!s->view) /* the terminal's view reads it for the rows it shows */
            err = read_file(s->info_dir, name, b, 4096);
    }
    if (err) {
        if (!gone(err) || alive(s) == 0)
            fail_errno(err, "%s/%d", in_fdinfo ? "fdinfo" : "fd", r->fd);
        r->status = FD_CLOSED; /* closed between listing and reading: a normal race */
        return;
    }
    if (n == (ssize_t)sizeof lnk || !fd_target(r)) {
        r->status = FD_PYTHON;
        return;
    }
    if (r->path_target) { /* stat(2) follows the magic link to the open file */
        struct stat st;
        if (fstatat(s->fd_dir, name, &st, 0) == 0) {
            r->kind = "unknown";
            for (size_t i = 0; i < sizeof mode_kinds / sizeof mode_kinds[0]; i++)
                if ((st.st_mode & S_IFMT) == mode_kinds[i].mask)
                    r->kind = mode_kinds[i].kind;
        } else {
            err = errno;
            if (!gone(err) || alive(s) == 0) {
                fail_errno(err, "fd/%d", r->fd);
                return;
            }
            struct buf again = {0}; /* closed since, or a link that cannot be followed */
            err = read_file(s->info_dir, name, &again, 4096);
            buf_free(&again);
            if (err) {
                if (!gone(err))
                    fail_errno(err, "fdinfo/%d", r->fd);
                r->status = FD_CLOSED;
                return;
            }
            r->kind = "unknown";
        }
    }
    if (!s->view && !fdinfo(r, b->p, b->len))
        r->status = FD_PYTHON;
}

/* The terminal's view (--rows=N) shows N fds: their fdinfo (offset, flags, details), no
 * other's (their types and count come from the links). The first N still open. */
void read_shown_fdinfo(struct snap *s)
{
    struct buf b = {0};
    char name[16];
    for (int i = 0, shown = 0; i < s->nfds && shown < s->view && !failed(); i++) {
        struct fdrow *r = &s->fds[i];
        if (r->status == FD_CLOSED)
            continue;
        snprintf(name, sizeof name, "%d", r->fd);
        int err = read_file(s->info_dir, name, &b, 4096);
        if (err) {
            if (!gone(err) || alive(s) == 0)
                fail_errno(err, "fdinfo/%d", r->fd);
            r->status = FD_CLOSED;
            continue;
        }
        if (r->status == FD_OK && !fdinfo(r, b.p, b.len))
            r->status = FD_PYTHON;
        shown++;
    }
    buf_free(&b);
}

void read_fds(struct snap *s, int from, int to)
{
    struct buf b = {0};
    for (int i = from; i < to && !failed(); i++)
        read_fd(s, &s->fds[i], &b);
    buf_free(&b);
}

/* ---- rows ------------------------------------------------------------------------- */

/* open_flag_names(): include/uapi/asm-generic/fcntl.h, with the values arm64 overrides
 * (arch/arm64/include/uapi/asm/fcntl.h), in parse_fds' table order */
static void flag_names(struct buf *o, unsigned long long flags, bool arm64)
{
    static const char *const acc[] = {"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"};
    const struct { const char *name; unsigned long long bit, arm64_bit; } t[] = {
        {"O_CREAT", 0100, 0100}, {"O_EXCL", 0200, 0200}, {"O_NOCTTY", 0400, 0400},
        {"O_TRUNC", 01000, 01000}, {"O_APPEND", 02000, 02000}, {"O_NONBLOCK", 04000, 04000},
        {"O_DSYNC", 010000, 010000}, {"O_ASYNC", 020000, 020000}, {"O_DIRECT", 040000, 0200000},
        {"O_LARGEFILE", 0100000, 0400000}, {"O_DIRECTORY", 0200000, 040000},
        {"O_NOFOLLOW", 0400000, 0100000}, {"O_NOATIME", 01000000, 01000000},
        {"O_CLOEXEC", 02000000, 02000000}, {"O_SYNC", 04000000, 04000000},
        {"O_PATH", 010000000, 010000000}, {"O_TMPFILE", 020000000, 020000000},
    };
    const char *names[24];
    int k = 0;
    names[k++] = acc[flags & 3];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (!(flags & (arm64 ? t[i].arm64_bit : t[i].bit)))
            continue;
        names[k++] = t[i].name;
        if (!strcmp(t[i].name, "O_SYNC")) { /* O_SYNC = __O_SYNC | O_DSYNC */
            int j = 0;
            for (int m = 0; m < k; m++)
                if (strcmp(names[m], "O_DSYNC"))
                    names[j++] = names[m];
            k = j;
        }
    }
    buf_chr(o, '[');
    for (int i = 0; i < k; i++) {
        buf_str(o, i ? ",\"" : "\"");
        buf_str(o, names[i]);
        buf_chr(o, '"');
    }
    buf_chr(o, ']');
}

void fd_row(struct snap *s, struct fdrow *r, struct buf *o)
{
    char oct[32];
    buf_str(o, "{\"fd\":");
    buf_i64(o, r->fd);
    buf_str(o, ",\"type\":\"");
    buf_str(o, r->kind);
    buf_str(o, "\",\"target\":");
    buf_jstr(o, r->link, r->link_len);
    buf_str(o, ",\"path\":");
    if (r->path_target)
        buf_jstr(o, r->link, r->link_len);
    else
        buf_str(o, "null");
    buf_str(o, ",\"pos_bytes\":");
    buf_i64(o, r->pos);
    snprintf(oct, sizeof oct, ",\"flags\":\"0%llo\"", r->flags);
    buf_str(o, oct);
    buf_str(o, ",\"flag_names\":");
    flag_names(o, r->flags, s->arm64);
    buf_str(o, ",\"mnt_id\":");
    buf_i64(o, r->mnt_id);
    buf_str(o, ",\"inode\":");
    if (r->has_ino)
        buf_u64(o, r->ino);
    else if (r->has_target_ino)
        buf_u64(o, r->target_ino);
    else
        buf_str(o, "null");
    if (!strcmp(r->kind, "anon_inode")) {
        buf_str(o, ",\"details\":{\"anon_inode\":");
        buf_jstr(o, r->link + 11, r->link_len - 11);
        buf_chr(o, '}');
    } else if (r->details.len) {
        buf_str(o, ",\"details\":");
        buf_add(o, r->details.p, r->details.len);
    }
    buf_chr(o, '}');
}

/* "fdtypes N CLOSED" and the N types of the rows ("?" where Python classifies the
 * link); the rows and the line "python": main.c. */
void write_fds(struct snap *s, struct buf *o)
{
    int rows = 0;
    for (int i = 0; i < s->nfds; i++)
        rows += s->fds[i].status != FD_CLOSED;
    buf_str(o, "fdtypes ");
    buf_i64(o, rows);
    buf_chr(o, ' ');
    buf_i64(o, s->nfds - rows);
    buf_chr(o, '\n');
    for (int i = 0, k = 0; i < s->nfds; i++)
        if (s->fds[i].status != FD_CLOSED) {
            if (k++)
                buf_chr(o, ' ');
            buf_str(o, s->fds[i].kind ? s->fds[i].kind : "?"); /* "?": Python classifies it */
        }
    buf_chr(o, '\n');
}
