/* pagecache.c: a 4 KiB read served by the page cache vs by the device; stat() with the
 * dentry and inode caches warm vs just dropped; a 4 KiB GET from a cache server on
 * loopback. Protocol: docs/kernels.md (common options, output, exit codes);
 * variants and fields: docs/claims/cache.md, "Kernels".
 *
 * Files live in the scratch directory: $PERFLAB_SCRATCH_DIR, else
 * $XDG_CACHE_HOME/perflab, else $HOME/.cache/perflab. It must be on a disk filesystem
 * (not tmpfs/ramfs, which have no device behind them and refuse O_DIRECT): exit 77
 * otherwise. The test file is created with O_TMPFILE (open(2)): it has no name, so it
 * disappears with the process however the process ends.
 */
#include "lib/common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>

enum { V_CACHED, V_COLD, V_DIRECT, V_DENTRY_CACHED, V_DENTRY_COLD, V_MEMCACHED, V_REDIS,
       V_CACHED_RANDOM, V_CACHED_HOT };
static const char *const variants[] = {"cached",       "cold",          "direct",
                                       "dentry-cached", "dentry-cold",  "memcached-get",
                                       "redis-get",     "cached-random", "cached-hot", NULL};

#define BLOCK 4096
#define N_OFFSETS 4096

static uint64_t rng_state;
static inline uint64_t next_rand(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- scratch directory ---------------------------------------------------------- */
static char scratch[4096];
static const char *scratch_source;
static long fs_magic;

static void mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            die_unsupported("cannot create %s: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        die_unsupported("cannot create %s: %s", path, strerror(errno));
}

static void find_scratch(void)
{
    const char *env = getenv("PERFLAB_SCRATCH_DIR"), *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (env && *env) {
        snprintf(scratch, sizeof scratch, "%s", env);
        scratch_source = "PERFLAB_SCRATCH_DIR";
    } else if (xdg && *xdg == '/') {
        snprintf(scratch, sizeof scratch, "%s/perflab", xdg);
        scratch_source = "XDG_CACHE_HOME";
    } else {
        if (!home || !*home) {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : NULL;
        }
        if (!home)
            die_unsupported("no home directory: set PERFLAB_SCRATCH_DIR to a directory on a disk");
        snprintf(scratch, sizeof scratch, "%s/.cache/perflab", home);
        scratch_source = "default (~/.cache/perflab)";
    }
    if (strcmp(scratch_source, "PERFLAB_SCRATCH_DIR") == 0) {
        /* the user's own directory: use it, never create it (a typo would leave one behind) */
        struct stat st;
        if (stat(scratch, &st) != 0 || !S_ISDIR(st.st_mode))
            die_unsupported("PERFLAB_SCRATCH_DIR=%s is not an existing directory: create it on a disk "
                            "filesystem, or unset it to use ~/.cache/perflab", scratch);
    } else {
        mkdir_p(scratch); /* the documented cache directory */
    }
    struct statfs sf;
    if (statfs(scratch, &sf) != 0)
        die_unsupported("statfs(%s): %s", scratch, strerror(errno));
    fs_magic = (long)sf.f_type;
    /* statfs(2): tmpfs and ramfs keep files in memory only; there is no device to read */
    if (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC)
        die_unsupported("scratch directory %s is on %s, not on a disk: set "
                        "PERFLAB_SCRATCH_DIR to a directory on a disk filesystem",
                        scratch, sf.f_type == TMPFS_MAGIC ? "tmpfs" : "ramfs");
}

/* ---- the test file -------------------------------------------------------------- */
static const char *file_kind;

static int make_file(long long kib, int writeback)
{
    int fd = open(scratch, O_TMPFILE | O_RDWR, 0600);
    file_kind = "O_TMPFILE";
    if (fd < 0) { /* a filesystem without O_TMPFILE: a named file, unlinked at once */
        char path[4200];
        snprintf(path, sizeof path, "%s/perflab-file-XXXXXX", scratch);
        fd = mkstemp(path);
        if (fd < 0)
            die_unsupported("cannot create a file in %s: %s", scratch, strerror(errno));
        unlink(path);
        file_kind = "unlinked after mkstemp";
    }
    enum { CHUNK = 64 * 1024 };
    uint64_t *buf = malloc(CHUNK);
    if (!buf)
        die("out of memory");
    for (long long done = 0; done < kib * 1024; done += CHUNK) {
        for (size_t i = 0; i < CHUNK / sizeof *buf; i++) /* data, not holes: every block */
            buf[i] = next_rand();                        /* is allocated on the device */
        size_t len = kib * 1024 - done < CHUNK ? (size_t)(kib * 1024 - done) : CHUNK;
        if (pwrite(fd, buf, len, done) != (ssize_t)len)
            die_unsupported("writing the %lld KiB test file in %s: %s", kib, scratch,
                            strerror(errno));
    }
    free(buf);
    if (writeback && fsync(fd) != 0) /* written back: clean pages can be evicted */
        die("fsync: %s", strerror(errno));
    return fd;
}

struct file {
    int fd, dfd;
    long long pages;
    unsigned char *vec;
    void *map;
    char *buf;
    uint64_t off[N_OFFSETS];
    unsigned idx;
};

/* Pages of the file in the page cache: mincore(2) on a mapping that is never touched
 * (so no page is mapped, and none is kept from eviction by being mapped). */
static long long resident(struct file *f)
{
    if (mincore(f->map, (size_t)f->pages * BLOCK, f->vec) != 0)
        die("mincore: %s", strerror(errno));
    long long n = 0;
    for (long long i = 0; i < f->pages; i++)
        n += f->vec[i] & 1;
    return n;
}

/* posix_fadvise(2) POSIX_FADV_DONTNEED drops the file's clean pages from the page cache
 * (mm/fadvise.c: invalidate_mapping_pages); dirty pages would stay, hence the fsync.
 * Verified with mincore; returns the number of attempts it took. */
static int evict(struct file *f)
{
    for (int attempt = 1; attempt <= 5; attempt++) {
        if (fdatasync(f->fd) != 0)
            die("fdatasync: %s", strerror(errno));
        int e = posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED);
        if (e)
            die("posix_fadvise(DONTNEED): %s", strerror(e));
        if (resident(f) == 0)
            return attempt;
        usleep(1000);
    }
    die("the test file stays in the page cache after 5 evictions (%lld pages resident)",
        resident(f));
}

static void file_init(struct file *f, long long kib, int writeback)
{
    f->pages = kib * 1024 / BLOCK;
    f->fd = make_file(kib, writeback);
    f->dfd = -1;
    f->vec = malloc((size_t)f->pages);
    f->map = mmap(NULL, (size_t)f->pages * BLOCK, PROT_READ, MAP_SHARED, f->fd, 0);
    if (!f->vec || f->map == MAP_FAILED)
        die("mmap of the test file: %s", strerror(errno));
    if (posix_memalign((void **)&f->buf, BLOCK, BLOCK)) /* O_DIRECT wants alignment */
        die("out of memory");
    for (int i = 0; i < N_OFFSETS; i++)
        f->off[i] = (next_rand() % (uint64_t)f->pages) * BLOCK;
    f->idx = 0;
}

static uint64_t b_pread(void *p, uint64_t iters)
{
    struct file *f = p;
    int fd = f->dfd >= 0 ? f->dfd : f->fd;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        if (pread(fd, f->buf, BLOCK, (off_t)f->off[f->idx++ % N_OFFSETS]) != BLOCK)
            die("pread: %s", strerror(errno));
    }
    return now_ns() - t0;
}

/* A page-cache hit where the page lives in DRAM (cache.ladder, CLAIMS.md revision 2): each
 * read goes to a page drawn afresh over the whole file, which is larger than twice the
 * last CPU cache, so the page and its struct page come from memory, not from a cache that
 * re-reading a few pages would warm. The draw (splitmix64, a few ns) is inside the loop. */
static uint64_t b_pread_random(void *p, uint64_t iters)
{
    struct file *f = p;
    uint64_t pages = (uint64_t)f->pages;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        if (pread(f->fd, f->buf, BLOCK, (off_t)((next_rand() % pages) * BLOCK)) != BLOCK)
            die("pread: %s", strerror(errno));
    }
    return now_ns() - t0;
}

/* The same page again and again: what a hot page costs (L1/L2 plus the system call). */
static uint64_t b_pread_hot(void *p, uint64_t iters)
{
    struct file *f = p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        if (pread(f->fd, f->buf, BLOCK, 0) != BLOCK)
            die("pread: %s", strerror(errno));
    }
    return now_ns() - t0;
}

/* ---- dentry: a path whose components are all ours --------------------------------- */
static char dtree[4300], dpath[4400];
static int dtree_made;

static void remove_tree(const char *root)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/a/b/c/f", root);
    unlink(p);
    snprintf(p, sizeof p, "%s/a/b/c", root);
    rmdir(p);
    snprintf(p, sizeof p, "%s/a/b", root);
    rmdir(p);
    snprintf(p, sizeof p, "%s/a", root);
    rmdir(p);
    rmdir(root);
}

static void dtree_cleanup(void)
{
    if (dtree_made)
        remove_tree(dtree);
    dtree_made = 0;
}

static void on_signal(int sig)
{
    dtree_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The tree is named after the process; a process killed with SIGKILL leaves it
 * behind, and the next run removes every tree whose process is gone. */
static void remove_stale_trees(void)
{
    DIR *d = opendir(scratch);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int pid;
        if (sscanf(e->d_name, "perflab-dentry-%d", &pid) != 1 || pid == getpid())
            continue;
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        char p[sizeof scratch + 300];
        snprintf(p, sizeof p, "%s/%s", scratch, e->d_name);
        remove_tree(p);
    }
    closedir(d);
}

static void dtree_init(void)
{
    remove_stale_trees();
    snprintf(dtree, sizeof dtree, "%s/perflab-dentry-%d", scratch, (int)getpid());
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        signal(sigs[i], on_signal);
    atexit(dtree_cleanup); /* die() and exit_msg() exit through exit(3) */
    if (mkdir(dtree, 0700) != 0)
        die("mkdir %s: %s", dtree, strerror(errno));
    dtree_made = 1;
    char p[4400];
    const char *parts[] = {"/a", "/a/b", "/a/b/c"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", dtree, parts[i]);
        if (mkdir(p, 0700) != 0)
            die("mkdir %s: %s", p, strerror(errno));
    }
    snprintf(dpath, sizeof dpath, "%s/a/b/c/f", dtree);
    int fd = open(dpath, O_CREAT | O_WRONLY, 0600);
    if (fd < 0)
        die("creating %s: %s", dpath, strerror(errno));
    /* syncfs(2): the new inodes are written back, hence clean and droppable */
    if (syncfs(fd) != 0)
        die("syncfs: %s", strerror(errno));
    close(fd);
}

static uint64_t b_stat(void *p, uint64_t iters)
{
    (void)p;
    struct stat st;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        if (stat(dpath, &st) != 0)
            die("stat: %s", strerror(errno));
    return now_ns() - t0;
}

/* /proc/sys/fs/dentry-state: nr_dentry, nr_unused, ... (Documentation/admin-guide/sysctl/fs.rst) */
static void dentry_state(long long *nr, long long *unused)
{
    FILE *f = fopen("/proc/sys/fs/dentry-state", "r");
    if (!f || fscanf(f, "%lld %lld", nr, unused) != 2)
        die("reading /proc/sys/fs/dentry-state");
    fclose(f);
}

/* ---- loopback cache servers --------------------------------------------------------- */
struct conn {
    int fd;
    char *req;
    size_t req_len, reply_len;
    char *reply;
};

static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die_unsupported("no cache server on 127.0.0.1:%d: %s", port, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            die("write to the cache server: %s", w < 0 ? strerror(errno) : "closed");
        p += w;
        n -= (size_t)w;
    }
}

static void recv_exact(int fd, char *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            die("read from the cache server: %s", r < 0 ? strerror(errno) : "closed");
        p += r;
        n -= (size_t)r;
    }
}

static uint64_t b_get(void *p, uint64_t iters)
{
    struct conn *c = p;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        send_all(c->fd, c->req, c->req_len);
        recv_exact(c->fd, c->reply, c->reply_len);
    }
    return now_ns() - t0;
}

/* Store a 4 KiB value under a perflab key that expires after 60 s, then time GETs of
 * it: memcached's text protocol (doc/protocol.txt) or Redis's RESP. */
static void conn_init(struct conn *c, int redis, int port)
{
    static const char key[] = "perflab-ladder";
    char value[BLOCK], head[256];
    memset(value, 'p', sizeof value);
    c->fd = connect_loopback(port);
    c->req = malloc(512);
    c->reply = malloc(2 * BLOCK);
    if (!c->req || !c->reply)
        die("out of memory");
    char ack[16];
    size_t ack_len;
    if (redis) {
        int h = snprintf(head, sizeof head, "*5\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%d\r\n",
                         strlen(key), key, BLOCK);
        send_all(c->fd, head, (size_t)h);
        send_all(c->fd, value, BLOCK);
        send_all(c->fd, "\r\n$2\r\nEX\r\n$2\r\n60\r\n", 18);
        strcpy(ack, "+OK\r\n");
        c->req_len = (size_t)snprintf(c->req, 512, "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n",
                                      strlen(key), key);
        c->reply_len = (size_t)snprintf(head, sizeof head, "$%d\r\n", BLOCK) + BLOCK + 2;
    } else {
        int h = snprintf(head, sizeof head, "set %s 0 60 %d\r\n", key, BLOCK);
        send_all(c->fd, head, (size_t)h);
        send_all(c->fd, value, BLOCK);
        send_all(c->fd, "\r\n", 2);
        strcpy(ack, "STORED\r\n");
        c->req_len = (size_t)snprintf(c->req, 512, "get %s\r\n", key);
        c->reply_len = (size_t)snprintf(head, sizeof head, "VALUE %s 0 %d\r\n", key, BLOCK) +
                       BLOCK + strlen("\r\nEND\r\n");
    }
    ack_len = strlen(ack);
    char got[16] = {0};
    recv_exact(c->fd, got, ack_len);
    if (memcmp(got, ack, ack_len) != 0)
        die("the server on 127.0.0.1:%d did not answer as %s does (got '%.*s')", port,
            redis ? "Redis" : "memcached", (int)ack_len, got);
    send_all(c->fd, c->req, c->req_len); /* check the reply's shape once */
    recv_exact(c->fd, c->reply, c->reply_len);
    if (memcmp(c->reply, redis ? "$4096\r\n" : "VALUE ", redis ? 7 : 6) != 0)
        die("unexpected GET reply from 127.0.0.1:%d", port);
}

/* ---- main ----------------------------------------------------------------------- */
int main(int argc, char **argv)
{
    struct common c;
    long long kib = 4096, reads = 8, seed = 1, allow_drop = 0, port = 0;
    struct opt extra[] = {
        {"file-kib", &kib, 64, 1LL << 22, 0},
        {"reads", &reads, 1, 10000, 0},
        {"seed", &seed, 0, 1LL << 62, 0},
        {"allow-drop", &allow_drop, 0, 1, 0},
        {"port", &port, 1, 65535, 0},
        {NULL, NULL, 0, 0, 0},
    };
    parse_args(argc, argv, &c, variants, extra);
    kernel_init();
    pin_or_exit(c.cpu);
    rng_state = (uint64_t)seed;
    struct timing t;

    if (c.vidx == V_MEMCACHED || c.vidx == V_REDIS) {
        if (!port)
            port = c.vidx == V_REDIS ? 6379 : 11211;
        struct conn conn;
        conn_init(&conn, c.vidx == V_REDIS, (int)port);
        measure(&t, b_get, &conn, &c);
        json_timing("pagecache", &c, c.cpu, &t);
        json_int("port", port);
        json_int("value_bytes", BLOCK);
        json_end();
        return 0;
    }

    int drop_fd = -1;
    if (c.vidx == V_DENTRY_COLD) { /* the opt-in first: it is the reason that matters */
        if (!allow_drop)
            die_unsupported("dropping the dentry and inode caches affects the whole "
                            "machine: opt in with --param allow_drop_caches=1 (needs root)");
        drop_fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
        if (drop_fd < 0)
            die_unsupported("writing /proc/sys/vm/drop_caches needs root: %s", strerror(errno));
    }
    find_scratch();
    if (c.vidx == V_DENTRY_CACHED || c.vidx == V_DENTRY_COLD) {
        dtree_init();
        if (c.vidx == V_DENTRY_CACHED) {
            measure(&t, b_stat, NULL, &c);
            json_timing("pagecache", &c, c.cpu, &t);
        } else {
            /* Each timed stat follows a drop: "2" frees reclaimable slab objects, the
             * unused dentries and inodes among them (Documentation/admin-guide/sysctl/vm.rst,
             * drop_caches). It does not drop the page cache, so the directory and inode
             * blocks are still cached: the cost is that of the lookups themselves. */
            timing_init(&t, &c, (uint64_t)reads);
            long long before_min = -1, after_max = 0, freed_min = -1;
            b_stat(NULL, 1); /* warm: the first stat below must differ only by the drop */
            for (int b = 0; b < t.batches; b++) {
                double sum = 0;
                for (long long r = 0; r < reads; r++) {
                    long long nr0, un0, nr1, un1;
                    int ok = 0;
                    for (int attempt = 0; attempt < 3 && !ok; attempt++) {
                        dentry_state(&nr0, &un0);
                        if (pwrite(drop_fd, "2\n", 2, 0) != 2)
                            die("write /proc/sys/vm/drop_caches: %s", strerror(errno));
                        dentry_state(&nr1, &un1);
                        ok = nr1 < nr0;
                    }
                    if (!ok)
                        die("drop_caches had no effect on /proc/sys/fs/dentry-state "
                            "(%lld dentries before, %lld after)", nr0, nr1);
                    if (before_min < 0 || nr0 < before_min)
                        before_min = nr0;
                    if (nr1 > after_max)
                        after_max = nr1;
                    if (freed_min < 0 || nr0 - nr1 < freed_min)
                        freed_min = nr0 - nr1;
                    uint64_t t0 = now_ns();
                    struct stat st;
                    if (stat(dpath, &st) != 0)
                        die("stat: %s", strerror(errno));
                    sum += (double)(now_ns() - t0) - t.timer_ns;
                }
                t.per_op[b] = sum / (double)reads;
            }
            json_timing("pagecache", &c, c.cpu, &t);
            json_int("drops", (long long)t.batches * reads);
            json_int("dentries_before_drop_min", before_min);
            json_int("dentries_after_drop_max", after_max);
            json_int("dentries_freed_min", freed_min);
        }
        long long components = 0;
        for (const char *q = dpath; *q; q++)
            components += *q == '/';
        json_string("path", dpath);
        json_int("path_components", components);
        json_string("scratch_dir", scratch);
        json_string("scratch_source", scratch_source);
        json_key("fs_magic");
        printf("\"0x%lx\"", fs_magic);
        json_end();
        return 0;
    }

    struct file f;
    /* a cached-page test needs no write-back: a page just written is in the page cache */
    int cached_only = c.vidx == V_CACHED_RANDOM || c.vidx == V_CACHED_HOT;
    file_init(&f, kib, !cached_only);
    long long resident_before = -1, resident_after = -1;
    int evict_attempts_max = 0;
    if (c.vidx == V_CACHED || cached_only) {
        for (long long p = 0; p < f.pages; p++) /* bring every page in */
            if (pread(f.fd, f.buf, BLOCK, p * BLOCK) != BLOCK)
                die("pread: %s", strerror(errno));
        resident_before = resident(&f);
        if (resident_before != f.pages)
            die("only %lld of %lld pages stay in the page cache", resident_before, f.pages);
        measure(&t, c.vidx == V_CACHED_RANDOM ? b_pread_random : c.vidx == V_CACHED_HOT ? b_pread_hot : b_pread,
                &f, &c);
        resident_after = resident(&f);
    } else if (c.vidx == V_DIRECT) {
        char self[64];
        snprintf(self, sizeof self, "/proc/self/fd/%d", f.fd);
        f.dfd = open(self, O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (f.dfd < 0)
            die_unsupported("O_DIRECT is not supported in %s: %s", scratch, strerror(errno));
        evict_attempts_max = evict(&f);
        resident_before = 0;
        measure(&t, b_pread, &f, &c);
        resident_after = resident(&f); /* O_DIRECT bypasses the page cache: stays 0 */
    } else { /* V_COLD */
        /* POSIX_FADV_RANDOM: no readahead, so a read brings in the one page it needs
         * (mm/fadvise.c sets f_ra.ra_pages = 0) */
        int e = posix_fadvise(f.fd, 0, 0, POSIX_FADV_RANDOM);
        if (e)
            die("posix_fadvise(RANDOM): %s", strerror(e));
        timing_init(&t, &c, (uint64_t)reads);
        resident_before = 0;
        for (int b = 0; b < t.batches; b++) {
            double sum = 0;
            for (long long r = 0; r < reads; r++) {
                int attempts = evict(&f); /* verified: 0 pages resident */
                if (attempts > evict_attempts_max)
                    evict_attempts_max = attempts;
                uint64_t off = f.off[f.idx++ % N_OFFSETS];
                uint64_t t0 = now_ns();
                if (pread(f.fd, f.buf, BLOCK, (off_t)off) != BLOCK)
                    die("pread: %s", strerror(errno));
                sum += (double)(now_ns() - t0) - t.timer_ns;
                long long res = resident(&f);
                if (res > resident_after)
                    resident_after = res;
            }
            t.per_op[b] = sum / (double)reads;
        }
    }
    json_timing("pagecache", &c, c.cpu, &t);
    json_int("file_kib", kib);
    json_int("file_pages", f.pages);
    json_int("read_bytes", BLOCK);
    json_string("file", file_kind);
    json_string("scratch_dir", scratch);
    json_string("scratch_source", scratch_source);
    json_key("fs_magic");
    printf("\"0x%lx\"", fs_magic);
    json_int("resident_pages_before", resident_before);
    json_int(c.vidx == V_COLD ? "resident_pages_after_read_max" : "resident_pages_after",
             resident_after);
    json_int("evict_attempts_max", evict_attempts_max);
    if (c.vidx == V_COLD)
        json_int("cold_reads_verified", (long long)t.batches * reads);
    json_end();
    return 0;
}
