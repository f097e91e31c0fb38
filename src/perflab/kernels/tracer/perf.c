/* perf.c: perf_event_open(2) events on the held command.
 *
 * Every event is opened disabled on the stopped child with inherit=1: every thread and
 * child it creates gets a copy, whose count is added to ours when it exits
 * (kernel/events/core.c, perf_event_exit_event -> sync_child_event), and whose samples
 * go to our ring buffer ("For inherited events we send all the output towards the
 * parent", __perf_output_begin). Values are read after every traced task has exited.
 *
 * Two uses:
 * - software counters (all mechanisms): minor/major page faults, context switches, CPU
 *   migrations, task clock, with enable_on_exec=1 (counting starts as execve returns:
 *   the tracer's fork and the hold do not count). Kernel-context events are included,
 *   which needs perf_event_paranoid <= 1 or CAP_PERFMON (a user-only context-switch
 *   counter reads 0: the switch happens in the kernel).
 * - the "perf" mechanism: the raw_syscalls:sys_enter tracepoint sampled at every call
 *   (sample_period=1, PERF_SAMPLE_TIME|PERF_SAMPLE_RAW), one event and ring buffer per
 *   CPU (perf_mmap() refuses a per-task inherited event on cpu -1). Each sample carries
 *   the syscall id and its six arguments (format: tracefs
 *   events/raw_syscalls/sys_enter/format), so clone's flags are seen; clone3's are in
 *   the caller's memory, which a sample does not carry (recorded as unreadable). A
 *   reader thread drains the buffers while the command runs; samples the kernel had to
 *   drop are counted from PERF_RECORD_LOST and reported (the counts are then lower
 *   bounds). With a marker region the samples are kept and ordered by time.
 *   Why not one counting event per syscalls:sys_enter_<name> (perf stat -e
 *   'syscalls:sys_enter_*')? Closing the last event of a tracepoint waits for a grace
 *   period under event_mutex (kernel/trace/trace_event_perf.c, perf_trace_destroy ->
 *   tracepoint_synchronize_unregister): ~36 ms each, 13 s for the ~360 tracepoints here,
 *   on every run; and each new thread would clone ~360 inherited events.
 */

#include "tracer.h"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>

static int perf_open(struct perf_event_attr *attr, pid_t pid, int cpu)
{
    /* cpu -1: follow the task on any CPU; no group; CLOEXEC so the command does not
     * inherit the fd. */
    return (int)syscall(SYS_perf_event_open, attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

/* Disabled, inherited; enable_on_exec or enabled by perf_enable() just before release. */
static void counting_attr(struct perf_event_attr *a, uint32_t type, uint64_t config,
                          int on_exec)
{
    memset(a, 0, sizeof *a);
    a->size = sizeof *a;
    a->type = type;
    a->config = config;
    a->disabled = 1;
    a->inherit = 1;
    a->enable_on_exec = (uint64_t)on_exec;
}

static uint64_t read_count(int fd, const char *what)
{
    uint64_t v;
    if (read(fd, &v, sizeof v) != (ssize_t)sizeof v)
        die("read(perf event %s): %s", what, strerror(errno));
    return v;
}

/* ---- software counters ---------------------------------------------------------- */
const struct sw_event sw_events[SW_N] = {
    {"faults_min", PERF_COUNT_SW_PAGE_FAULTS_MIN},
    {"faults_maj", PERF_COUNT_SW_PAGE_FAULTS_MAJ},
    {"context_switches", PERF_COUNT_SW_CONTEXT_SWITCHES},
    {"cpu_migrations", PERF_COUNT_SW_CPU_MIGRATIONS},
    {"task_clock_ns", PERF_COUNT_SW_TASK_CLOCK},
};

void sw_open(struct sw_counters *s, pid_t pid)
{
    for (int i = 0; i < SW_N; i++)
        s->fd[i] = -1;
    s->unavailable[0] = 0;
    for (int i = 0; i < SW_N; i++) {
        struct perf_event_attr a;
        counting_attr(&a, PERF_TYPE_SOFTWARE, sw_events[i].config, 1);
        s->fd[i] = perf_open(&a, pid, -1);
        if (s->fd[i] < 0) {
            snprintf(s->unavailable, sizeof s->unavailable,
                     "perf_event_open(software %s, kernel included): %s", sw_events[i].name,
                     strerror(errno));
            for (int j = 0; j < i; j++)
                close(s->fd[j]);
            for (int j = 0; j < SW_N; j++)
                s->fd[j] = -1;
            return;
        }
    }
}

void sw_read(struct sw_counters *s)
{
    for (int i = 0; i < SW_N && s->fd[i] >= 0; i++) {
        s->value[i] = read_count(s->fd[i], sw_events[i].name);
        close(s->fd[i]);
    }
}

/* ---- the perf mechanism: raw_syscalls:sys_enter, sampled at every call ------------ */
#define PERF_DATA_PAGES 1024 /* 4 MiB per CPU: ~45,000 samples; 1 MiB lost 2% of a getppid loop */

/* Offset of `field` in tracefs' format file ("field:long id;\toffset:8;..."). */
static long format_offset(const char *format, const char *path, const char *field)
{
    const char *p = strstr(format, field);
    if (!p || !(p = strstr(p, "offset:")))
        die_unsupported("%s: no field '%s'", path, field);
    return strtol(p + 7, NULL, 10);
}

void perf_start(struct perf_tracer *p, const char *tracefs, pid_t pid, struct tally *t)
{
    char path[512], format[4096];
    snprintf(path, sizeof path, "%s/events/raw_syscalls/sys_enter/format", tracefs);
    int ffd = open(path, O_RDONLY | O_CLOEXEC);
    if (ffd < 0)
        die_unsupported("%s: %s%s", path, strerror(errno),
                        errno == EACCES ? " (tracefs events are root-only here)" : "");
    ssize_t n = read(ffd, format, sizeof format - 1);
    close(ffd);
    if (n <= 0)
        die_unsupported("%s: unreadable", path);
    format[n] = 0;
    long tp_id = strtol(strstr(format, "ID:") ? strstr(format, "ID:") + 3 : "-1", NULL, 10);
    if (tp_id < 0)
        die_unsupported("%s: no ID line", path);
    p->id_off = format_offset(format, path, " id;");
    p->args_off = format_offset(format, path, " args[6];");
    p->t = t;
    p->map_len = (size_t)(PERF_DATA_PAGES + 1) * (size_t)sysconf(_SC_PAGESIZE);

    struct perf_event_attr a;
    counting_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)tp_id, 0);
    a.sample_period = 1;
    a.sample_type = PERF_SAMPLE_TIME | PERF_SAMPLE_RAW;
    a.watermark = 1; /* wake the reader when a quarter of the buffer is used */
    a.wakeup_watermark = (uint32_t)(p->map_len / 4);
    int ncpu = get_nprocs_conf();
    p->ncpu = 0;
    for (int cpu = 0; cpu < ncpu && cpu < PERF_MAX_CPUS; cpu++) {
        int fd = perf_open(&a, pid, cpu);
        if (fd < 0 && (errno == ENODEV || errno == EINVAL) && cpu > 0)
            continue; /* an offline CPU */
        if (fd < 0)
            die_unsupported("perf_event_open(raw_syscalls:sys_enter, cpu %d): %s (syscall "
                            "tracepoints need CAP_PERFMON, root or "
                            "kernel.perf_event_paranoid=-1)", cpu, strerror(errno));
        void *m = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
            die_unsupported("mmap(perf ring buffer, %zu bytes): %s", p->map_len, strerror(errno));
        p->fd[p->ncpu] = fd;
        p->page[p->ncpu++] = m;
    }
}

void perf_enable(struct perf_tracer *p)
{
    /* Enabled on the held child just before it is let go: its next call, the execve,
     * is the first sampled. (enable_on_exec would only enable them as execve returns.) */
    for (int i = 0; i < p->ncpu; i++)
        if (ioctl(p->fd[i], PERF_EVENT_IOC_ENABLE, 0) != 0)
            die("ioctl(PERF_EVENT_IOC_ENABLE): %s", strerror(errno));
}

static void perf_sample(struct perf_tracer *p, const unsigned char *rec, size_t len)
{
    /* PERF_RECORD_SAMPLE with TIME|RAW: header, u64 time, u32 size, raw data
     * (perf_event_open(2), "MMAP layout"). */
    uint64_t time;
    uint32_t size;
    long nr;
    uint64_t arg0;
    size_t raw = sizeof(struct perf_event_header) + 8 + 4;
    if (len < raw)
        return;
    memcpy(&time, rec + sizeof(struct perf_event_header), 8);
    memcpy(&size, rec + sizeof(struct perf_event_header) + 8, 4);
    if ((size_t)p->args_off + 8 > size || raw + size > len)
        return;
    memcpy(&nr, rec + raw + p->id_off, sizeof nr);
    memcpy(&arg0, rec + raw + p->args_off, sizeof arg0);
    p->samples++;
    if (!p->keep) {
        tally_syscall(p->t, nr, arg0, NULL, NULL);
        return;
    }
    if (p->nkept == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 65536;
        p->kept = realloc(p->kept, p->cap * sizeof *p->kept);
        if (!p->kept)
            die("out of memory for %zu samples", p->cap);
    }
    p->kept[p->nkept++] = (struct perf_sample){time, arg0, nr};
}

/* Consume everything between data_tail and data_head of one ring buffer. */
static void perf_drain(struct perf_tracer *p, struct perf_event_mmap_page *pg)
{
    static unsigned char rec[65536]; /* a record wrapping around the end is copied here */
    unsigned char *data = (unsigned char *)pg + pg->data_offset;
    uint64_t size = pg->data_size;
    uint64_t head = __atomic_load_n(&pg->data_head, __ATOMIC_ACQUIRE);
    uint64_t tail = pg->data_tail;
    while (tail < head) {
        struct perf_event_header h;
        for (size_t i = 0; i < sizeof h; i++)
            ((unsigned char *)&h)[i] = data[(tail + i) % size];
        if (h.size < sizeof h)
            break;
        for (size_t i = 0; i < h.size && i < sizeof rec; i++)
            rec[i] = data[(tail + i) % size];
        if (h.type == PERF_RECORD_SAMPLE) {
            perf_sample(p, rec, h.size);
        } else if (h.type == PERF_RECORD_LOST) { /* u64 id, u64 lost */
            uint64_t lost;
            memcpy(&lost, rec + sizeof h + 8, 8);
            p->lost += lost;
        }
        tail += h.size;
    }
    __atomic_store_n(&pg->data_tail, tail, __ATOMIC_RELEASE);
}

static void *perf_reader(void *arg)
{
    struct perf_tracer *p = arg;
    struct pollfd pfd[PERF_MAX_CPUS];
    for (int i = 0; i < p->ncpu; i++)
        pfd[i] = (struct pollfd){.fd = p->fd[i], .events = POLLIN};
    while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
        poll(pfd, (nfds_t)p->ncpu, 10);
        for (int i = 0; i < p->ncpu; i++)
            perf_drain(p, p->page[i]);
    }
    for (int i = 0; i < p->ncpu; i++) /* what the last tasks wrote before exiting */
        perf_drain(p, p->page[i]);
    return NULL;
}

void perf_run_reader(struct perf_tracer *p)
{
    int e = pthread_create(&p->reader, NULL, perf_reader, p);
    if (e)
        die("pthread_create: %s", strerror(e));
}

static int by_time(const void *a, const void *b)
{
    const struct perf_sample *x = a, *y = b;
    return (x->time > y->time) - (x->time < y->time);
}

void perf_finish(struct perf_tracer *p, struct tally *t)
{
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    pthread_join(p->reader, NULL);
    if (p->keep) { /* per-CPU buffers: merge by time, then tally in order */
        qsort(p->kept, p->nkept, sizeof *p->kept, by_time);
        for (size_t i = 0; i < p->nkept; i++)
            tally_syscall(t, p->kept[i].nr, p->kept[i].arg0, NULL, NULL);
        free(p->kept);
    }
    for (int i = 0; i < p->ncpu; i++) {
        munmap(p->page[i], p->map_len);
        close(p->fd[i]);
    }
}
