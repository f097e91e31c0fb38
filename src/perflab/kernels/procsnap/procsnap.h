/* procsnap.h: what the parts of the procsnap reader share (declarations only).
 *
 * procsnap reads one live process for `perflab inspect` (observe/procfs/native.py):
 * every task's stat, status and syscall, the smaps, every fd's link, fdinfo and (for a
 * path) stat, the socket tables of its network namespace, and kcmp(2) of the first task
 * against every other. It classifies the mappings and writes the rows of the snapshot as
 * the JSON text Python's json.dumps(..., separators=(",", ":")) writes for the rows the
 * pure-Python path builds (observe/procfs/snapshot.py, classify.py, parse*.py): same
 * keys, same order, same escapes, same float repr. Protocol: docs/kernels.md, "procsnap".
 *
 * Anything it does not model exactly (an unusual fdinfo, an IPv6 socket, a file format
 * it does not know) it hands back: one fd row ("P fd") or the whole process ("X reason"),
 * and Python does that part with its own parsers.
 */
#ifndef PERFLAB_PROCSNAP_H
#define PERFLAB_PROCSNAP_H

#include "lib/common.h"

#include <pthread.h>
#include <stdbool.h>

/* ---- out.c: growable buffers, and JSON as Python's json module writes it ---------- */

struct buf {
    char *p;
    size_t len, cap;
};

void buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *s, size_t n);
void buf_str(struct buf *b, const char *s);
void buf_chr(struct buf *b, char c);
void buf_i64(struct buf *b, long long v);
void buf_u64(struct buf *b, unsigned long long v);
void buf_free(struct buf *b);

/* A JSON string of the text Python gets from these bytes with
 * bytes.decode("utf-8", "surrogateescape"), escaped as json.dumps does with its default
 * ensure_ascii=True. */
void buf_jstr(struct buf *b, const char *s, size_t n);

/* A JSON string "0x..." of f"0x{v:x}". */
void buf_jhex(struct buf *b, unsigned long long v);

/* repr() of a float, which is what json.dumps writes for one (finite values only). */
void buf_jfloat(struct buf *b, double x);


/* ---- failures: the first one wins; the workers stop at the next item ------------- */

/* An errno met reading `what` (relative to /proc/PID): Python raises the typed error of
 * its own reader (NoSuchProcess, AccessDenied...) from it. */
__attribute__((format(printf, 2, 3))) void fail_errno(int err, const char *fmt, ...);

/* Something this reader does not model: Python reads the whole process itself. */
__attribute__((format(printf, 1, 2))) void defer_all(const char *fmt, ...);

bool failed(void);

/* ENOENT or ESRCH: the task, fd or process is gone (read.py's _GONE). */
static inline bool gone(int err) { return err == ENOENT || err == ESRCH; }

/* ---- read.c: files under an open directory ---------------------------------------- */

/* The whole file `rel` under `dirfd` into `b` (reset first), as ProcDir.read does: with
 * `first` > 0 (a single_open seq_file), one read(2) of `first` bytes that comes back
 * short is all of it. 0, or the errno of the open or read. */
int read_file(int dirfd, const char *rel, struct buf *b, size_t first);

/* Python's int() of ASCII text (surrounding blanks, a sign, for base 16 an optional 0x;
 * no underscores): 0 and the value, or -1 where Python would raise or the value does
 * not fit 64 bits. */
int py_int(const char *s, size_t n, int base, long long *out);
int py_uint(const char *s, size_t n, int base, unsigned long long *out);

/* The fields of `s` split at ASCII whitespace (bytes.split()), at most `max`. */
int split_ws(const char *s, size_t n, const char **tok, size_t *len, int max);

/* Only bytes 0x20..0x7e, tab and newline: text that Python's str.split(),
 * str.splitlines() and \s, \d treat as plain ASCII. */
bool plain_ascii(const char *s, size_t n);

/* ---- the process ------------------------------------------------------------------ */

struct task {
    int tid;
    bool vanished;
    char state;
    char *comm;
    size_t comm_len;
    long long utime, stime, processor, policy, priority, nice, rt_priority;
    long long vol, invol;
    bool has_sc, running; /* read syscall; it said "running" */
    long long nr;
    unsigned long long sp;
    int stack; /* index of the mapping that holds sp, or -1 */
};

enum { FD_OK, FD_CLOSED, FD_PYTHON };

struct fdrow {
    int fd;
    int status;
    char *link;
    size_t link_len;
    const char *kind; /* "regular", "pipe", "socket", ... */
    bool path_target;  /* the link is a path (parse_fd_target's "path") */
    bool has_target_ino;
    unsigned long long target_ino;
    long long pos, mnt_id;
    unsigned long long flags, ino;
    bool has_ino;
    struct buf details; /* the JSON object of "details", or empty for none */
};

struct mapping {
    unsigned long long start, end, offset, inode, rss_kib, pss_kib;
    const char *perms, *dev, *path; /* into the smaps text */
    size_t dev_len, path_len;
    int kind;
    bool deleted;
    size_t stripped_len; /* the path without " (deleted)" */
    const char *name;    /* [anon:NAME] */
    size_t name_len;
    int *tids, ntids;
};

enum { K_EXECUTABLE, K_LIBRARY, K_HEAP, K_MAIN_STACK, K_THREAD_STACK, K_STACK_GUARD,
       K_ANONYMOUS, K_FILE, K_VDSO, K_VVAR, K_VSYSCALL, K_SPECIAL, K_N };
extern const char *const kind_names[K_N];

#define N_KCMP 6 /* RESOURCES of procfs/kcmp.py, in order: vm files fs sighand io sysvsem */

struct socktab;

struct snap {
    int pid;
    long long ppid; /* compared with kcmp too; 0: none */
    int view;       /* --rows=N: the terminal's view, N rows of each list; 0: every row */
    char path[4096]; /* PROC_ROOT/PID */
    int dir, task_dir, fd_dir, info_dir;
    long ticks;
    bool arm64;
    /* tasks, sorted by tid */
    int ntasks;
    struct task *tasks;
    /* exe (readlink), and its (dev, ino) when stat() could follow it */
    char *exe;
    size_t exe_len;
    bool has_exe_id;
    char exe_dev[32];
    unsigned long long exe_ino;
    /* smaps */
    struct buf smaps;
    int nmaps;
    struct mapping *maps;
    /* fds, sorted */
    int nfds;
    struct fdrow *fds;
    /* kcmp of tasks[0] against tasks[1..] and ppid, per resource: '0'..'3', or unset */
    char *kcmp[N_KCMP];
    struct socktab *sockets; /* net.c */
};

/* tasks.c */
void read_tasks(struct snap *s, int from, int to);
void reread_running(struct snap *s);
void read_shown_status(struct snap *s);
void write_tasks(struct snap *s, struct buf *out);
void task_row(struct snap *s, struct task *t, struct buf *o);

/* smaps.c */
void read_smaps(struct snap *s);
void write_maps(struct snap *s, struct buf *out);
void mapping_span(const struct mapping *m, struct buf *o);
void mapping_row(struct mapping *m, struct buf *o);

/* classify.c */
void classify(struct snap *s);

/* strset.c: bytes compared as Python compares the str they decode to */
bool starts(const char *s, size_t n, const char *prefix);
bool same(const char *a, size_t an, const char *b, size_t bn);
const char *basename_of(const char *s, size_t n, size_t *len); /* os.path.basename */

struct strset {
    const char **s;
    size_t *n, cap;
    int *val; /* optional: a value per string */
};

void strset_init(struct strset *t, size_t items, bool values);
size_t strset_slot(struct strset *t, const char *s, size_t n); /* its slot, or a free one */
bool strset_has(struct strset *t, const char *s, size_t n, bool add);
void strset_free(struct strset *t);

/* fdinfo.c: false where Python classifies or parses it (the row is left to Python) */
bool fd_target(struct fdrow *r);
bool fdinfo(struct fdrow *r, const char *d, size_t n);

/* fds.c */
void read_fds(struct snap *s, int from, int to);
void read_shown_fdinfo(struct snap *s);
void write_fds(struct snap *s, struct buf *out);
void fd_row(struct snap *s, struct fdrow *r, struct buf *o);

/* net.c: the tables read by a worker whatever the fds (their errors kept), used (and
 * their errors raised) when an fd is a socket, as Python reads them at the first */
void read_sockets(struct snap *s);
void fd_details(struct snap *s);

/* kcmp.c */
void compare_tasks(struct snap *s, int resource);
void write_kcmp(struct snap *s, struct buf *out);

#endif /* PERFLAB_PROCSNAP_H */
