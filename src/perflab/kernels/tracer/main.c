/* main.c, the tracer kernel: count what a command does, from its execve to the exit of
 * the last task it created: system calls by number (named), clone/clone3 flags, and
 * software counters. Mechanisms: bpf.c, perf.c, ptrace.c; counts: tally.c.
 * Protocol: docs/kernels.md, "tracer"; method and choices: docs/trace.md.
 *
 *   tracer --mechanism=bpf|perf|ptrace [--cgroup=DIR] [--tracefs=DIR] [--marker=NAME]
 *          [--stdin-fd=N] [--stdout-fd=N] [--stderr-fd=N] -- COMMAND [ARG...]
 *
 * The command is forked and held before execve: the child stops itself with SIGSTOP
 * (raised by a raw kill(2), so nothing else runs between the stop and execve), the
 * tracer opens its counters on the stopped child (and moves it into the cgroup), then
 * lets it go. Its next system call is the execve, the first one counted.
 *
 * The tracer is a child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER): descendants the
 * command orphans are reparented to it, and it waits for every one, like strace -f.
 * One JSON record on stdout, then exit 0; 77 = this mechanism cannot run here (reason
 * on stderr); 2 = bad arguments. A command that cannot be executed is reported in the
 * record (exec_error), not by the exit code.
 */
#include "tracer.h"
#include "lib/command.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>

enum mech { M_BPF, M_PERF, M_PTRACE };
static const char *const mech_names[] = {"bpf", "perf", "ptrace", NULL};

struct options {
    int mech;
    const char *cgroup, *tracefs, *marker;
    int fd[3]; /* the command's stdin, stdout, stderr; -1: the tracer's own */
    char *path;
    char **argv;
};

/* What the child reports on its error pipe when it could not reach its command. */
enum { STAGE_STDIO = 1, STAGE_TRACEME, STAGE_EXEC };
struct child_error {
    int stage, err;
};

static void usage(const char *msg, const char *arg)
{
    die_badargs("%s%s%s (usage: tracer --mechanism=bpf|perf|ptrace [--cgroup=DIR] "
                "[--tracefs=DIR] [--marker=NAME] [--stdin-fd=N --stdout-fd=N --stderr-fd=N] "
                "-- COMMAND [ARG...])", msg, arg ? ": " : "", arg ? arg : "");
}

static int parse_fd(const char *s)
{
    long long v;
    if (parse_ll(s, &v) || v < 0 || v > 1 << 20)
        usage("bad file descriptor", s);
    return (int)v;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    o->mech = -1;
    o->cgroup = o->tracefs = o->marker = NULL;
    o->fd[0] = o->fd[1] = o->fd[2] = -1;
    int i = 1;
    struct cmd_option opt;
    while (next_cmd_option(argc, argv, &i, &opt, usage)) {
        const char *a = opt.arg, *v = opt.value;
#define KEY(s) cmd_option_is(&opt, s)
        if (KEY("--mechanism")) {
            for (o->mech = 0; mech_names[o->mech] && strcmp(mech_names[o->mech], v); o->mech++)
                ;
            if (!mech_names[o->mech])
                usage("unknown mechanism", v);
        } else if (KEY("--cgroup"))
            o->cgroup = v;
        else if (KEY("--tracefs"))
            o->tracefs = v;
        else if (KEY("--marker"))
            o->marker = v;
        else if (KEY("--stdin-fd"))
            o->fd[0] = parse_fd(v);
        else if (KEY("--stdout-fd"))
            o->fd[1] = parse_fd(v);
        else if (KEY("--stderr-fd"))
            o->fd[2] = parse_fd(v);
        else
            usage("unknown option", a);
#undef KEY
    }
    if (o->mech < 0)
        usage("--mechanism is required", NULL);
    if (i + 1 >= argc)
        usage("no command after --", NULL);
    if (o->mech == M_BPF && !o->cgroup)
        usage("--mechanism=bpf needs --cgroup=DIR (an empty cgroup-v2 directory)", NULL);
    if (o->mech == M_PERF && !o->tracefs)
        usage("--mechanism=perf needs --tracefs=DIR (a mounted tracefs)", NULL);
    o->argv = argv + i + 1;
    o->path = path_search(o->argv[0]);
    if (!o->path) /* not found: execve reports ENOENT, as the command's own failure */
        o->path = strdup(o->argv[0]);
}

/* ---- the held child ---------------------------------------------------------------- */
static pid_t child_pid = -1;
static pid_t parent_pid = -1; /* perflab; getppid() returns another pid once it has died */
static const char *cgroup_dir;
static char cgroup_kill_path[4200];

/* Perflab died (SIGKILL, SIGQUIT's core dump...): no one else will remove the cgroup it
 * made for us. The tasks cgroup.kill killed leave it as they exit (a zombie no longer
 * populates it: cgroup_exit() in kernel/cgroup/cgroup.c), so rmdir(2) is retried while
 * EBUSY, up to 2 s; a cgroup still left then is removed by the next perflab trace. */
static void remove_cgroup(void)
{
    for (int i = 0; i < 400 && rmdir(cgroup_dir) != 0 && errno == EBUSY; i++)
        poll(NULL, 0, 5);
}

/* SIGINT/SIGTERM/SIGHUP/SIGQUIT, and SIGTERM as our parent-death signal (main): take the
 * command down with us. kill(2), open(2), write(2), rmdir(2), poll(2), getppid(2),
 * getpgrp(2) are async-signal-safe (signal-safety(7)); cgroup.kill kills every task of
 * the cgroup (Linux 5.14, Documentation/admin-guide/cgroup-v2.rst), also those that left
 * our process group. While perflab lives it kills our process group and removes the
 * cgroup itself (engine/process.py, observe/trace/cgroup.py); once it is gone we do:
 * kill(0, SIGKILL) ends every task still in our process group (the command's, under
 * perf and ptrace, which use no cgroup), and us with them. */
static void on_signal(int sig)
{
    int saved = errno;
    if (child_pid > 0)
        kill(child_pid, SIGKILL);
    if (cgroup_kill_path[0]) {
        int fd = open(cgroup_kill_path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t w = write(fd, "1", 1);
            (void)w;
            close(fd);
        }
    }
    if (getppid() != parent_pid) {
        if (cgroup_dir)
            remove_cgroup();
        if (getpgrp() == getpid()) /* we lead the group (perflab starts us in a session) */
            kill(0, SIGKILL);
    }
    errno = saved;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_signals(void)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
}

static void write_all(int fd, const void *buf, size_t n)
{
    ssize_t w = write(fd, buf, n); /* a pipe write of <= PIPE_BUF bytes is atomic */
    (void)w;
}

/* In the child: stdio, optional PTRACE_TRACEME, a rusage snapshot, stop, execve. */
__attribute__((noreturn)) static void child_main(const struct options *o, int errfd,
                                                 int rufd)
{
    struct child_error e = {0, 0};
    for (int i = 0; i < 3; i++)
        if (o->fd[i] >= 0 && o->fd[i] != i && dup2(o->fd[i], i) < 0) {
            e.stage = STAGE_STDIO;
            goto fail;
        }
    for (int i = 0; i < 3; i++)
        if (o->fd[i] > 2)
            close(o->fd[i]);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    if (o->mech == M_PTRACE && ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) {
        e.stage = STAGE_TRACEME;
        goto fail;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    write_all(rufd, &ru, sizeof ru);
    syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP); /* the hold */
    execve(o->path, o->argv, environ);
    e.stage = STAGE_EXEC;
fail:
    e.err = errno;
    write_all(errfd, &e, sizeof e);
    _exit(127);
}

/* ---- rusage (getrusage(2)): the fallback for software counters -------------------- */
struct usage {
    uint64_t minflt, majflt, csw, cpu_ns;
};

static void usage_add(struct usage *u, const struct rusage *ru, int sign)
{
    u->minflt += (uint64_t)(sign * ru->ru_minflt);
    u->majflt += (uint64_t)(sign * ru->ru_majflt);
    u->csw += (uint64_t)(sign * (ru->ru_nvcsw + ru->ru_nivcsw));
    u->cpu_ns += (uint64_t)(sign * ((ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000000LL +
                                    (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1000LL));
}

/* ---- output ------------------------------------------------------------------------ */
static void json_counts(const char *key, const uint64_t *v)
{
    json_obj_begin(key);
    for (long nr = 0; nr < NR_SLOTS; nr++) {
        if (!v[nr])
            continue;
        const char *name = nr == NR_OTHER ? "nr_other" : syscall_name(nr);
        char buf[32];
        if (!name) {
            snprintf(buf, sizeof buf, "nr_%ld", nr);
            name = buf;
        }
        json_int(name, (long long)v[nr]);
    }
    json_obj_end();
}

static void json_counter(const char *name, int ok, uint64_t value, const char *source,
                         const char *unavailable)
{
    json_obj_begin(name);
    if (ok) {
        json_int("value", (long long)value);
        json_string("source", source);
    } else {
        json_string("unavailable", unavailable);
    }
    json_obj_end();
}

static void json_clones(const struct tally *t)
{
    json_key("clone_calls");
    if (t->clones_unavailable) {
        putchar('{');
        json_comma = 0;
        json_string("unavailable", t->clones_unavailable);
        json_obj_end();
        return;
    }
    putchar('[');
    for (int i = 0; i < t->nclones; i++) {
        const struct clone_kind *k = &t->clones[i];
        if (i)
            fputs(", ", stdout);
        putchar('{');
        json_comma = 0;
        json_string("syscall", k->nr == NR_CLONE ? "clone" : "clone3");
        json_key("flags");
        printf("%llu", (unsigned long long)k->flags);
        json_int("exit_signal", (long long)k->exit_signal);
        json_int("count", (long long)k->count);
        json_key("in_region");
        fputs(k->status & CLONE_IN_REGION ? "true" : "false", stdout);
        json_key("readable");
        fputs(k->status & CLONE_UNREADABLE ? "false" : "true", stdout);
        json_obj_end();
    }
    putchar(']');
    json_comma = 1;
}

int main(int argc, char **argv)
{
    parent_pid = getppid();
    kernel_init(); /* die with perflab (PR_SET_PDEATHSIG) */
    struct options o;
    parse_options(argc, argv, &o);
    static struct tally t;
    t.marker_nr = -1;
    if (o.marker && (t.marker_nr = syscall_number(o.marker)) < 0)
        usage("unknown system call name for --marker", o.marker);

    /* The bpf program is loaded before the fork: a refusal exits 77 before any child. */
    static struct bpf_tracer bpf;
    if (o.mech == M_BPF)
        bpf_start(&bpf, o.cgroup, t.marker_nr);
    if (o.cgroup) {
        cgroup_dir = o.cgroup;
        snprintf(cgroup_kill_path, sizeof cgroup_kill_path, "%s/cgroup.kill", o.cgroup);
    }
    /* Subreaper: orphaned descendants come back to us (prctl(2)). */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        die("prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));

    int errp[2], rup[2];
    if (pipe2(errp, O_CLOEXEC) || pipe2(rup, O_CLOEXEC))
        die("pipe2: %s", strerror(errno));
    catch_signals();
    /* From here, perflab's death is a SIGTERM we catch, not kernel_init's SIGKILL: the
     * command (not a child of perflab) must not outlive it (prctl(2) PR_SET_PDEATHSIG).
     * A parent that died before this call sends nothing: then getppid() has changed. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        die("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
    if (getppid() != parent_pid)
        die("perflab exited before the trace began");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0)
        child_main(&o, errp[1], rup[1]);
    child_pid = pid;
    helper_pid = pid; /* every die() from here on kills it first (lib/common.c) */
    close(errp[1]);
    close(rup[1]);

    /* Wait for the hold. A child that exited instead failed before execve. */
    int st;
    while (waitpid(pid, &st, WUNTRACED | __WALL) < 0)
        if (errno != EINTR)
            die("waitpid: %s", strerror(errno));
    if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP) {
        struct child_error e = {0, 0};
        if (read(errp[0], &e, sizeof e) != (ssize_t)sizeof e)
            die("the command's child died before execve (wait status %#x)", st);
        if (e.stage == STAGE_TRACEME)
            die_unsupported("ptrace(PTRACE_TRACEME): %s (is perflab itself being traced?)",
                            strerror(e.err));
        die("child: dup2 of the command's stdio: %s", strerror(e.err));
    }
    struct rusage ru0;
    if (read(rup[0], &ru0, sizeof ru0) != (ssize_t)sizeof ru0)
        die("child sent no rusage snapshot");

    /* Counters on the held child, then release it. */
    static struct sw_counters sw;
    static struct perf_tracer perf;
    sw_open(&sw, pid);
    if (o.mech == M_PERF) {
        perf.keep = t.marker_nr >= 0;
        perf_start(&perf, o.tracefs, pid, &t);
    }
    if (o.cgroup) {
        char path[4200], buf[32];
        snprintf(path, sizeof path, "%s/cgroup.procs", o.cgroup);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        int n = snprintf(buf, sizeof buf, "%d", pid);
        if (fd < 0 || write(fd, buf, (size_t)n) != n)
            die_unsupported("moving the command into %s: %s", path, strerror(errno));
        close(fd);
    }
    uint64_t t0 = now_ns();
    if (o.mech == M_PERF) {
        perf_enable(&perf);
        perf_run_reader(&perf);
    }
    if (o.mech == M_PTRACE)
        ptrace_release(pid);
    else if (kill(pid, SIGCONT) != 0)
        die("kill(SIGCONT): %s", strerror(errno));

    /* Wait for every task: the command, its children, orphans reparented to us. */
    int main_status = 0;
    for (;;) {
        pid_t w = waitpid(-1, &st, __WALL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECHILD)
                break;
            die("waitpid: %s", strerror(errno));
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (w == pid)
                main_status = st;
            if (o.mech == M_PTRACE)
                seen_clear(w);
        } else if (WIFSTOPPED(st) && o.mech == M_PTRACE) {
            ptrace_stopped(&t, w, st);
        }
    }
    uint64_t elapsed = now_ns() - t0;
    child_pid = helper_pid = -1;

    struct child_error e = {0, 0};
    int exec_failed = read(errp[0], &e, sizeof e) == (ssize_t)sizeof e;
    if (o.mech == M_BPF)
        bpf_finish(&bpf, &t);
    else if (o.mech == M_PERF)
        perf_finish(&perf, &t);
    sw_read(&sw);
    /* Every process of the tree, reaped by its parent or by us (the subreaper), is in
     * our RUSAGE_CHILDREN, its threads and waited-for children included; a process only
     * ptrace-reaped by us is not (its real parent counts it). getrusage(2), and
     * wait_task_zombie() in kernel/exit.c. Less what the child did before execve. */
    struct usage used = {0, 0, 0, 0};
    struct rusage ruc;
    getrusage(RUSAGE_CHILDREN, &ruc);
    usage_add(&used, &ruc, 1);
    usage_add(&used, &ru0, -1);

    json_begin();
    json_string("kernel", "tracer");
    json_string("mechanism", mech_names[o.mech]);
    if (o.mech == M_BPF)
        json_string("program", bpf.program); /* bpf.c: tp_btf or raw_tp */
    json_string("path", o.path);
    json_key("argv");
    putchar('[');
    for (char **a = o.argv; *a; a++) {
        if (a != o.argv)
            fputs(", ", stdout);
        json_string_value(*a);
    }
    putchar(']');
    if (exec_failed) {
        json_string("exec_error", strerror(e.err));
        json_int("exec_errno", e.err);
    } else {
        json_null("exec_error");
        json_null("exec_errno");
    }
    if (WIFSIGNALED(main_status)) {
        char name[32];
        snprintf(name, sizeof name, "SIG%s", sigabbrev_np(WTERMSIG(main_status)) ?: "?");
        json_int("exit_status", 128 + WTERMSIG(main_status));
        json_string("exit_signal", name);
    } else {
        json_int("exit_status", WEXITSTATUS(main_status));
        json_null("exit_signal");
    }
    json_int("elapsed_ns", (long long)elapsed);
    json_counts("syscalls", t.calls);
    json_int("other_abi", (long long)t.other_arch);
    if (t.marker_nr >= 0) {
        json_obj_begin("region");
        json_string("marker", o.marker);
        json_int("markers", (long long)t.markers);
        json_counts("syscalls", t.region);
        json_obj_end();
    } else {
        json_null("region");
    }
    json_clones(&t);
    json_int("clone_kinds_lost", (long long)t.clones_lost);
    if (o.mech == M_PERF)
        json_int("lost_samples", (long long)perf.lost);
    else if (o.mech == M_BPF)
        json_int("lost_samples", (long long)bpf.missed); /* runs the kernel skipped */
    else
        json_int("lost_samples", 0);

    /* Software counters: perf when it opened, else rusage net of the child's
     * pre-exec snapshot. Under ptrace every syscall stop switches to the tracer and back,
     * so context switches and migrations would count the tracer, not the command. */
    int have_perf = !sw.unavailable[0];
    const char *src = have_perf ? "perf" : "rusage";
    char why[512];
    uint64_t rusage_v[SW_N] = {used.minflt, used.majflt, used.csw, 0, used.cpu_ns};
    json_obj_begin("counters");
    for (int i = 0; i < SW_N; i++) {
        int ok = have_perf || i != SW_MIGRATIONS;
        const char *reason = why;
        snprintf(why, sizeof why, "%s; rusage has no migration count", sw.unavailable);
        if (o.mech == M_PTRACE && (i == SW_CSW || i == SW_MIGRATIONS)) {
            ok = 0;
            reason = "the ptrace mechanism stops the command at every system call: these "
                     "would count the tracer's own switches";
        }
        json_counter(sw_events[i].name, ok, have_perf ? sw.value[i] : rusage_v[i], src, reason);
    }
    json_obj_end();
    if (!have_perf) {
        json_string("counters_note", sw.unavailable);
    } else {
        json_null("counters_note");
    }
    json_end();
    return 0;
}
