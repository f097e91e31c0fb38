/* tasks.c: every task's stat, status and syscall (snapshot.py _threads; the parsers of
 * procfs/parse.py: parse_stat, status_switches, parse_syscall), and their rows. */

#include "procsnap.h"

/* parse_stat(): comm is what lies between the FIRST '(' and the LAST ')' (do_task_stat()
 * in fs/proc/array.c prints "%d (%s) %c ..." without escaping comm); then field n
 * (1-based, proc(5)) is f[n - 3] of the rest split at whitespace, at least 39 of them.
 * Every field parse_stat converts is checked here too, so a file it would reject goes
 * back to Python, which rejects it with its own message. */
static bool parse_stat(const char *raw, size_t n, struct task *t)
{
    const char *open_ = memchr(raw, '(', n), *close = memrchr(raw, ')', n);
    if (!open_ || !close || close < open_)
        return false;
    long long pid;
    if (py_int(raw, (size_t)(open_ - raw), 10, &pid))
        return false;
    size_t rest_at = (size_t)(close - raw) + 2;
    const char *f[48];
    size_t fl[48];
    int nf = rest_at < n ? split_ws(raw + rest_at, n - rest_at, f, fl, 48) : 0;
    if (nf < 39 || fl[0] != 1 || (unsigned char)f[0][0] > 0x7e)
        return false;
    static const int used[] = {1, 2, 3, 6, 7, 9, 11, 12, 15, 16, 17, 19, 20, 21, 26, 36, 37, 38};
    long long v[39];
    for (size_t k = 0; k < sizeof used / sizeof used[0]; k++) {
        unsigned long long u;
        int i = used[k];
        if (py_int(f[i], fl[i], 10, &v[i]) && py_uint(f[i], fl[i], 10, &u))
            return false; /* not an int at all (an unsigned one past 2^63 is fine) */
    }
    t->state = f[0][0];
    t->comm_len = (size_t)(close - open_ - 1);
    t->comm = malloc(t->comm_len + 1);
    if (!t->comm)
        die("out of memory");
    memcpy(t->comm, open_ + 1, t->comm_len);
    /* the ones used in rows must be true signed values: a huge one goes to Python */
    return py_int(f[11], fl[11], 10, &t->utime) == 0 && py_int(f[12], fl[12], 10, &t->stime) == 0
        && py_int(f[36], fl[36], 10, &t->processor) == 0 && py_int(f[37], fl[37], 10, &t->rt_priority) == 0
        && py_int(f[38], fl[38], 10, &t->policy) == 0 && py_int(f[15], fl[15], 10, &t->priority) == 0
        && py_int(f[16], fl[16], 10, &t->nice) == 0 && t->utime >= 0 && t->stime >= 0
        && t->utime <= (1ll << 52) && t->stime <= (1ll << 52);
}

/* status_switches(): the lines found directly, "\nvoluntary_ctxt_switches:" and
 * "\nnonvoluntary_ctxt_switches:" (proc_pid_status() in fs/proc/array.c). */
static bool find_switches(const char *d, size_t n, const char *key, long long *out)
{
    size_t kl = strlen(key);
    const char *at = memmem(d, n, key, kl);
    if (!at)
        return false;
    const char *from = at + kl, *end = d + n;
    const char *nl = memchr(at + 1, '\n', (size_t)(end - at - 1));
    return py_int(from, (size_t)((nl ? nl : end) - from), 10, out) == 0;
}

/* parse_syscall(): "running", or "NR ARGS... SP PC" / "-1 SP PC" (proc_pid_syscall() in
 * fs/proc/base.c); SP and PC are hex with 0x. */
static bool parse_syscall(const char *d, size_t n, struct task *t)
{
    if (!plain_ascii(d, n))
        return false;
    const char *f[16];
    size_t fl[16];
    int nf = split_ws(d, n, f, fl, 16);
    if (nf == 1 && fl[0] == 7 && !memcmp(f[0], "running", 7)) {
        t->running = true;
        return true;
    }
    unsigned long long pc;
    if (nf < 3 || nf > 9 || py_int(f[0], fl[0], 10, &t->nr) || py_uint(f[nf - 2], fl[nf - 2], 16, &t->sp)
        || py_uint(f[nf - 1], fl[nf - 1], 16, &pc))
        return false;
    t->running = false;
    return true;
}

static bool zombie_state(char c) { return c == 'Z' || c == 'X'; }

/* One task: NoSuchProcess on any of its files drops it ("vanished"), as _threads does. */
static void read_task(struct snap *s, struct task *t, struct buf *b)
{
    char rel[64];
    const char *const names[3] = {"stat", "status", "syscall"};
    for (int k = 0; k < 3; k++) {
        if (k == 1 && s->view)
            continue; /* the terminal's view: read for the rows it shows (read_shown_status) */
        if (k == 2 && zombie_state(t->state))
            break; /* an exited task has no syscall state to show */
        snprintf(rel, sizeof rel, "%d/%s", t->tid, names[k]);
        int err = read_file(s->task_dir, rel, b, 4096);
        if (err) {
            if (gone(err))
                t->vanished = true;
            else
                fail_errno(err, "task/%s", rel);
            return;
        }
        bool ok = k == 0 ? parse_stat(b->p, b->len, t)
                : k == 1 ? find_switches(b->p, b->len, "\nvoluntary_ctxt_switches:", &t->vol)
                               && find_switches(b->p, b->len, "\nnonvoluntary_ctxt_switches:", &t->invol)
                         : parse_syscall(b->p, b->len, t);
        if (!ok) {
            defer_all("task/%s: a format this reader does not model", rel);
            return;
        }
        if (k == 2)
            t->has_sc = true;
    }
}

void read_tasks(struct snap *s, int from, int to)
{
    struct buf b = {0};
    for (int i = from; i < to && !failed(); i++)
        read_task(s, &s->tasks[i], &b);
    buf_free(&b);
}

/* The terminal's view (--rows=N) shows N threads: their status, nobody else's (its
 * switch counts are in no other line). The first N that are still there. */
void read_shown_status(struct snap *s)
{
    struct buf b = {0};
    char rel[64];
    for (int i = 0, shown = 0; i < s->ntasks && shown < s->view && !failed(); i++) {
        struct task *t = &s->tasks[i];
        if (t->vanished)
            continue;
        snprintf(rel, sizeof rel, "%d/status", t->tid);
        int err = read_file(s->task_dir, rel, &b, 4096);
        if (err) {
            if (gone(err))
                t->vanished = true;
            else
                fail_errno(err, "task/%s", rel);
            continue;
        }
        if (!find_switches(b.p, b.len, "\nvoluntary_ctxt_switches:", &t->vol)
            || !find_switches(b.p, b.len, "\nnonvoluntary_ctxt_switches:", &t->invol))
            defer_all("task/%s: a format this reader does not model", rel);
        shown++;
    }
    buf_free(&b);
}

/* A running task reports no stack pointer; it may have blocked since: ask once more
 * (the second loop of _threads). Its in_syscall stays what the first read said. */
void reread_running(struct snap *s)
{
    struct buf b = {0};
    char rel[64];
    for (int i = 0; i < s->ntasks && !failed(); i++) {
        struct task *t = &s->tasks[i];
        if (t->vanished || !t->has_sc || !t->running)
            continue;
        snprintf(rel, sizeof rel, "%d/syscall", t->tid);
        int err = read_file(s->task_dir, rel, &b, 4096);
        if (err) {
            if (!gone(err))
                fail_errno(err, "task/%s", rel);
            continue;
        }
        struct task again = *t;
        if (!parse_syscall(b.p, b.len, &again)) {
            defer_all("task/%s: a format this reader does not model", rel);
            break;
        }
        if (!again.running) {
            t->sp = again.sp;
            t->running = false;
            t->nr = -2; /* known stack pointer now, but in_syscall stays null (running) */
        }
    }
    buf_free(&b);
}

/* ---- rows ------------------------------------------------------------------------- */

static const char *state_name(char c) /* parse.STATE_NAMES (fs/proc/array.c) */
{
    switch (c) {
    case 'R': return "running";
    case 'S': return "sleeping";
    case 'D': return "disk sleep";
    case 'T': return "stopped";
    case 't': return "tracing stop";
    case 'X': case 'x': return "dead";
    case 'Z': return "zombie";
    case 'P': return "parked";
    case 'I': return "idle";
    case 'K': return "wakekill";
    case 'W': return "waking";
    default: return "unknown";
    }
}

static void policy_name(struct buf *b, long long p) /* parse.SCHED_POLICIES */
{
    static const char *const names[] = {"SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH",
                                         NULL, "SCHED_IDLE", "SCHED_DEADLINE", "SCHED_EXT"};
    if (p >= 0 && p < 8 && names[p]) {
        buf_chr(b, '"');
        buf_str(b, names[p]);
        buf_chr(b, '"');
    } else {
        buf_str(b, "\"policy ");
        buf_i64(b, p);
        buf_chr(b, '"');
    }
}

void task_row(struct snap *s, struct task *t, struct buf *o)
{
    double ticks = (double)s->ticks;
    buf_str(o, "{\"tid\":");
    buf_i64(o, t->tid);
    buf_str(o, ",\"name\":");
    buf_jstr(o, t->comm, t->comm_len);
    buf_str(o, ",\"state\":");
    buf_jstr(o, &t->state, 1);
    buf_str(o, ",\"state_name\":\"");
    buf_str(o, state_name(t->state));
    buf_str(o, "\",\"cpu_user_s\":");
    buf_jfloat(o, (double)t->utime / ticks);
    buf_str(o, ",\"cpu_system_s\":");
    buf_jfloat(o, (double)t->stime / ticks);
    buf_str(o, ",\"cpu_s\":");
    buf_jfloat(o, (double)(t->utime + t->stime) / ticks);
    buf_str(o, ",\"voluntary_switches\":");
    buf_i64(o, t->vol);
    buf_str(o, ",\"involuntary_switches\":");
    buf_i64(o, t->invol);
    buf_str(o, ",\"last_cpu\":");
    buf_i64(o, t->processor);
    buf_str(o, ",\"policy\":");
    policy_name(o, t->policy);
    buf_str(o, ",\"priority\":");
    buf_i64(o, t->priority);
    buf_str(o, ",\"nice\":");
    buf_i64(o, t->nice);
    buf_str(o, ",\"rt_priority\":");
    buf_i64(o, t->rt_priority);
    buf_str(o, ",\"in_syscall\":");
    bool sp_known = t->has_sc && !t->running;
    if (sp_known && t->nr >= 0)
        buf_i64(o, t->nr);
    else
        buf_str(o, "null");
    buf_str(o, ",\"stack_pointer\":");
    if (sp_known)
        buf_jhex(o, t->sp);
    else
        buf_str(o, "null");
    buf_str(o, ",\"stack\":");
    if (t->stack < 0) {
        buf_str(o, "null,\"stack_reason\":\"");
        buf_str(o, zombie_state(t->state) ? "the thread has exited"
                   : !sp_known ? "running: the kernel reports a user stack pointer only for a task "
                                 "blocked in the kernel (proc_pid_syscall)"
                               : "its stack pointer is outside every mapping");
        buf_str(o, "\"}");
        return;
    }
    struct mapping *m = &s->maps[t->stack];
    mapping_span(m, o);
    buf_str(o, ",\"kind\":\"");
    buf_str(o, kind_names[m->kind]);
    buf_str(o, "\",\"path\":");
    if (m->path_len)
        buf_jstr(o, m->path, m->path_len);
    else
        buf_str(o, "null");
    buf_str(o, "}}");
}

/* "tasks N", the TIDs, the state letters, the vanished TIDs (the rows: main.c). */
void write_tasks(struct snap *s, struct buf *o)
{
    int live = 0;
    for (int i = 0; i < s->ntasks; i++)
        live += !s->tasks[i].vanished;
    buf_str(o, "tasks ");
    buf_i64(o, live);
    buf_chr(o, '\n');
    for (int i = 0, k = 0; i < s->ntasks; i++)
        if (!s->tasks[i].vanished) {
            if (k++)
                buf_chr(o, ' ');
            buf_i64(o, s->tasks[i].tid);
        }
    buf_chr(o, '\n');
    for (int i = 0; i < s->ntasks; i++)
        if (!s->tasks[i].vanished)
            buf_chr(o, s->tasks[i].state);
    buf_str(o, "\nvanished");
    for (int i = 0; i < s->ntasks; i++)
        if (s->tasks[i].vanished) {
            buf_chr(o, ' ');
            buf_i64(o, s->tasks[i].tid);
        }
    buf_chr(o, '\n');
}
