/* cmdtime: the wall time of a user's command, each run a fresh process, or a number the
 * command prints (claim files, perflab.userclaims; protocol: docs/kernels.md, "cmdtime").
 *
 *   cmdtime [--cpu=C] [--runs=R] [--timeout-ms=T] [--regex=ERE] [--chdir=DIR]
 *           [--label=TEXT] -- COMMAND [ARG...]
 *   cmdtime --check-regex=ERE
 *
 * Each of the R runs: fork(2), execv(2) of COMMAND (looked up in PATH once, before any
 * timing, as execvp(3) would), wait4(2). Its wall time is CLOCK_MONOTONIC from just
 * before fork to just after wait4 returns, net of one clock read (the median of
 * back-to-back reads, as every kernel measures it): what starting and running the
 * command costs, process creation, exec and dynamic linking included. Timing it here,
 * not from Python, keeps the interpreter's own fork (subprocess forks a large process)
 * and its scheduling out of the figure. CPU time and peak RSS come from wait4's rusage.
 *
 * The command's stdin is ours (perflab gives /dev/null); its stderr is ours, so perflab
 * keeps it when a run fails; its stdout goes to /dev/null, or, with --regex, to a
 * memfd_create(2) file read back after the run (nothing reads it while the command runs,
 * and a command that prints much never blocks on a full pipe). With --regex the first
 * match of the POSIX extended regular expression (regex(7), REG_NEWLINE: ^ and $ match at
 * each line) gives the run's value: its first group, or the whole match without one,
 * read by strtod(3), which must consume all of it.
 *
 * Exit codes: 0 and one JSON record on stdout; 2 bad arguments or a regular expression
 * regcomp(3) refuses; 77 the CPU cannot be used here; 1 the command failed: it cannot be
 * found or executed, exited non-zero (77 included: the command's "skipped" is not ours),
 * was killed by a signal, ran past --timeout-ms (killed with SIGKILL), or printed no match
 * or no number for the regex. Every failure names the run and ends stderr with one line.
 *
 * Like launch.c, the parent-death signal is SIGTERM, caught: when perflab dies, kill(2)
 * of our process group (0) takes the command and every descendant that stayed in it. */
#include "lib/common.h"
#include "lib/command.h"

#include <regex.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>

#define MAX_RUNS 1000
#define MAX_STDOUT (64u << 20) /* bytes of stdout searched by --regex */
#define TAIL 600               /* bytes of stdout shown when nothing matches */

struct options {
    long long cpu, runs, timeout_ms;
    const char *regex, *chdir, *label;
    char **argv;
};

static pid_t parent_pid;
static volatile sig_atomic_t expired;

static void usage(const char *msg, const char *arg)
{
    die_badargs("%s%s%s (usage: cmdtime [--cpu=C] [--runs=R] [--timeout-ms=T] [--regex=ERE] "
                "[--chdir=DIR] [--label=TEXT] -- COMMAND [ARG...], or cmdtime --check-regex=ERE)",
                msg, arg ? ": " : "", arg ? arg : "");
}

static long long number(const char *v, long long lo, long long hi, const char *name)
{
    long long x;
    if (parse_ll(v, &x) || x < lo || x > hi)
        die_badargs("--%s must be an integer in [%lld, %lld], got '%s'", name, lo, hi, v);
    return x;
}

/* kill(2) is async-signal-safe (signal-safety(7)): SIGTERM (our parent-death signal),
 * SIGINT, SIGHUP, SIGQUIT end the whole group, the command's processes and us. */
static void on_stop(int sig)
{
    (void)sig;
    kill(0, SIGKILL);
}

static void on_alarm(int sig)
{
    (void)sig;
    expired = 1;
}

static void catch(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn; /* no SA_RESTART: SIGALRM interrupts wait4 (signal(7)) */
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static regex_t compile(const char *pattern)
{
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE);
    if (rc) {
        char msg[256];
        regerror(rc, &re, msg, sizeof msg);
        die_badargs("bad regular expression '%s': %s", pattern, msg);
    }
    return re;
}

/* execvp(3)'s PATH search, once, before any timing (lib/command.h). */
static char *resolve(const char *name)
{
    char *path = path_search(name);
    if (!path)
        die("command not found: %s (searched PATH=%s)", name, getenv("PATH") ? getenv("PATH") : "");
    if (access(path, X_OK) != 0)
        die("cannot execute %s: %s", path, strerror(errno));
    return path;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    o->cpu = -1;
    o->runs = 1;
    o->timeout_ms = 0;
    o->regex = o->chdir = o->label = NULL;
    o->argv = NULL;
    int i = 1;
    struct cmd_option opt;
    while (next_cmd_option(argc, argv, &i, &opt, usage)) {
        const char *a = opt.arg, *v = opt.value;
#define KEY(s) cmd_option_is(&opt, s)
        if (KEY("--check-regex")) {
            regex_t re = compile(v);
            json_begin();
            json_string("kernel", "cmdtime");
            json_string("regex", v);
            json_int("groups", (long long)re.re_nsub);
            json_end();
            exit(0);
        } else if (KEY("--cpu"))
            o->cpu = number(v, -1, CPU_SETSIZE - 1, "cpu");
        else if (KEY("--runs"))
            o->runs = number(v, 1, MAX_RUNS, "runs");
        else if (KEY("--timeout-ms"))
            o->timeout_ms = number(v, 0, 7LL * 24 * 3600 * 1000, "timeout-ms");
        else if (KEY("--regex"))
            o->regex = v;
        else if (KEY("--chdir"))
            o->chdir = v;
        else if (KEY("--label"))
            o->label = v;
        else
            usage("unknown option", a);
#undef KEY
    }
    if (i + 1 >= argc)
        usage("no command after --", NULL);
    o->argv = argv + i + 1;
}

static void arm(long long ms)
{
    struct itimerval it = {{0, 0}, {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* The run's stdout (memfd), NUL-terminated; its length in *len. */
static char *read_back(int fd, size_t *len, int *cut)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        die("fstat of the captured stdout: %s", strerror(errno));
    size_t n = (size_t)st.st_size;
    *cut = n > MAX_STDOUT;
    if (*cut)
        n = MAX_STDOUT;
    char *buf = malloc(n + 1);
    if (!buf)
        die("out of memory");
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = 0;
    *len = (size_t)st.st_size;
    return buf;
}

/* The value the regex finds in one run's stdout; exits 1 when there is none. */
static double parse_value(const regex_t *re, const char *pattern, const char *out, size_t len,
                          int cut, long long run, long long runs, char **match)
{
    regmatch_t m[2];
    if (regexec(re, out, 2, m, 0) != 0) {
        size_t shown = strlen(out);
        const char *tail = shown > TAIL ? out + shown - TAIL : out;
        fprintf(stderr, "cmdtime: the command's stdout (%zu bytes%s), %s:\n%s%s\n", len,
                cut ? ", searched in its first 64 MiB" : "", shown > TAIL ? "its end" : "all of it",
                shown > TAIL ? "..." : "", tail);
        die("no match for the regular expression '%s' in the command's stdout (run %lld of %lld)",
            pattern, run, runs);
    }
    regmatch_t g = re->re_nsub >= 1 && m[1].rm_so >= 0 ? m[1] : m[0];
    size_t n = (size_t)(g.rm_eo - g.rm_so);
    free(*match);
    *match = strndup(out + m[0].rm_so, (size_t)(m[0].rm_eo - m[0].rm_so));
    char *text = strndup(out + g.rm_so, n), *end;
    errno = 0;
    double v = strtod(text, &end);
    if (n == 0 || *end || errno == ERANGE || !isfinite(v))
        die("the regular expression '%s' matched '%s', which is not a number (run %lld of %lld)",
            pattern, text, run, runs);
    free(text);
    return v;
}

static void json_strings(const char *k, char *const *v)
{
    json_key(k);
    putchar('[');
    for (int i = 0; v[i]; i++) {
        if (i)
            fputs(", ", stdout);
        json_string_value(v[i]);
    }
    putchar(']');
}

int main(int argc, char **argv)
{
    parent_pid = getppid();
    struct options o;
    parse_options(argc, argv, &o);
    static const int stops[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof stops / sizeof *stops; i++)
        catch(stops[i], on_stop);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        die("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
    if (getppid() != parent_pid) /* perflab died before prctl took effect (prctl(2)) */
        on_stop(SIGTERM);
    catch(SIGALRM, on_alarm);

    if (o.chdir && chdir(o.chdir) != 0)
        die("cannot change to directory %s: %s", o.chdir, strerror(errno));
    pin_or_exit(o.cpu);
    char *path = resolve(o.argv[0]);
    regex_t re;
    int out;
    if (o.regex) {
        re = compile(o.regex);
        out = memfd_create("cmdtime-stdout", MFD_CLOEXEC);
        if (out < 0)
            die("memfd_create: %s", strerror(errno));
    } else if ((out = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
        die("open /dev/null: %s", strerror(errno));
    }

    int R = (int)o.runs;
    double *wall = calloc((size_t)R, sizeof *wall), *user = calloc((size_t)R, sizeof *user);
    double *sys = calloc((size_t)R, sizeof *sys), *rss = calloc((size_t)R, sizeof *rss);
    double *values = calloc((size_t)R, sizeof *values), *bytes = calloc((size_t)R, sizeof *bytes);
    if (!wall || !user || !sys || !rss || !values || !bytes)
        die("out of memory");
    char *match = NULL;
    double timer_ns = timer_overhead_ns();

    for (int k = 0; k < R; k++) {
        if (o.regex && (ftruncate(out, 0) != 0 || lseek(out, 0, SEEK_SET) != 0))
            die("resetting the captured stdout: %s", strerror(errno));
        int errpipe[2];
        if (pipe2(errpipe, O_CLOEXEC) != 0)
            die("pipe2: %s", strerror(errno));
        int status = 0, exec_errno = 0;
        struct rusage ru;
        memset(&ru, 0, sizeof ru);
        expired = 0;
        fflush(NULL);
        if (o.timeout_ms)
            arm(o.timeout_ms);
        uint64_t t0 = now_ns();
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            /* the child: stdout, its own parent-death signal (SIGKILL), then the command
             * (execve(2) resets our handlers to the default); a failed execv reports its
             * errno on the close-on-exec pipe */
            int e = 0;
            if (dup2(out, STDOUT_FILENO) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
                e = errno;
            else
                execv(path, o.argv), e = errno;
            ssize_t w = write(errpipe[1], &e, sizeof e);
            (void)w;
            _exit(127);
        }
        pid_t r;
        while ((r = wait4(pid, &status, 0, &ru)) < 0 && errno == EINTR)
            if (expired)
                kill(pid, SIGKILL);
        uint64_t t1 = now_ns();
        if (o.timeout_ms)
            arm(0);
        if (r < 0)
            die("wait4: %s", strerror(errno));
        close(errpipe[1]);
        if (read(errpipe[0], &exec_errno, sizeof exec_errno) == (ssize_t)sizeof exec_errno)
            die("cannot execute %s: %s", path, strerror(exec_errno));
        close(errpipe[0]);
        if (expired)
            die("the command ran past its timeout of %lld ms and was killed (run %d of %d)",
                o.timeout_ms, k + 1, R);
        if (WIFSIGNALED(status))
            die("the command was killed by signal SIG%s (run %d of %d)",
                sigabbrev_np(WTERMSIG(status)) ?: "?", k + 1, R);
        if (WEXITSTATUS(status) != 0)
            die("the command exited %d (run %d of %d)", WEXITSTATUS(status), k + 1, R);
        wall[k] = (double)(t1 - t0) - timer_ns;
        user[k] = (double)ru.ru_utime.tv_sec * 1e9 + (double)ru.ru_utime.tv_usec * 1e3;
        sys[k] = (double)ru.ru_stime.tv_sec * 1e9 + (double)ru.ru_stime.tv_usec * 1e3;
        rss[k] = (double)ru.ru_maxrss; /* KiB (getrusage(2)) */
        if (o.regex) {
            size_t len;
            int cut;
            char *text = read_back(out, &len, &cut);
            values[k] = parse_value(&re, o.regex, text, len, cut, k + 1, R, &match);
            bytes[k] = (double)len;
            free(text);
        }
    }

    json_begin();
    json_string("kernel", "cmdtime");
    json_string("variant", o.regex ? "regex" : "wall");
    json_int("cpu", o.cpu);
    json_string("label", o.label);
    json_string("path", path);
    json_strings("argv", o.argv);
    json_int("runs", R);
    json_doubles("wall_ns", wall, R);
    json_doubles("user_ns", user, R);
    json_doubles("sys_ns", sys, R);
    json_doubles("maxrss_kib", rss, R);
    if (o.regex) {
        json_doubles("values", values, R);
        json_string("match", match);
        json_doubles("stdout_bytes", bytes, R);
    }
    json_double("timer_overhead_ns", timer_ns);
    json_end();
    return 0;
}
