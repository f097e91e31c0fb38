/* fdshare.c: where a file's offset lives. Not a timing: one JSON record of exact
 * observations (docs/claims/space.md, space.fd-in-kernel).
 *
 *   fdshare --variant=offsets [--dir=PATH]
 *
 * A temporary file of 4096 bytes (O_TMPFILE in the directory given, default /tmp; if
 * the file system has no O_TMPFILE, mkstemp() and unlink() right after) is opened, and:
 *   dup:   fd2 = dup(fd); read 100 bytes through fd2; the offset seen through fd.
 *   fork:  a child reads 200 bytes through its inherited fd and then waits on a pipe;
 *          the parent reads its own offset, compares the two fds with kcmp(KCMP_FILE)
 *          while the child is alive, then lets it exit and reaps it.
 *   open:  fd3 = a second open() of the same file (/proc/self/fd/N reopens the inode,
 *          a new open file description); read 300 bytes through fd3; the offset seen
 *          through fd, and fd3's own.
 * Each case starts with lseek(fd, 0, SEEK_SET). kcmp(2) KCMP_FILE compares the struct
 * file the two fds point at: 0 = the same open file description.
 * Controls in the record: kcmp(fd, fd) in one process (must be 0, equal) and kcmp of fd
 * against stdin's file (must differ).
 * Exit 77: kcmp refused (CONFIG_KCMP=n, seccomp) or no temporary file can be made.
 */
#include "lib/common.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static const char *const variants[] = {"offsets", NULL};

static int kcmp_file(pid_t a, int fa, pid_t b, int fb)
{
    long r = syscall(SYS_kcmp, a, b, KCMP_FILE, fa, fb);
    if (r < 0)
        die_unsupported("kcmp(KCMP_FILE): %s", strerror(errno));
    return (int)r;
}

static off_t pos(int fd) { return lseek(fd, 0, SEEK_CUR); }

static void read_n(int fd, size_t n)
{
    char buf[512];
    if (read(fd, buf, n) != (ssize_t)n)
        die("read: %s", strerror(errno));
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp";
    /* --dir is a path, not an integer: take it out before the common parser sees it */
    char *args[16];
    int n = 0;
    for (int i = 0; i < argc && n < 15; i++) {
        if (!strncmp(argv[i], "--dir=", 6))
            dir = argv[i] + 6;
        else
            args[n++] = argv[i];
    }
    args[n] = NULL;
    struct common c;
    parse_args(n, args, &c, variants, NULL);
    kernel_init();

    const char *how = "O_TMPFILE";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/perflab-fdshare-XXXXXX", dir);
        fd = mkstemp(path);
        if (fd < 0)
            die_unsupported("cannot create a temporary file in %s: %s", dir, strerror(errno));
        unlink(path); /* nothing left behind, whatever happens next */
        how = "mkstemp+unlink";
    }
    char block[4096];
    memset(block, 'p', sizeof block);
    if (write(fd, block, sizeof block) != (ssize_t)sizeof block)
        die("write: %s", strerror(errno));
    pid_t me = getpid();

    /* controls: a file compared with itself; two different files */
    int ctl_same = kcmp_file(me, fd, me, fd);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0)
        die("open(/dev/null): %s", strerror(errno));
    int ctl_diff = kcmp_file(me, fd, me, devnull);

    /* dup */
    lseek(fd, 0, SEEK_SET);
    int fd2 = dup(fd);
    if (fd2 < 0)
        die("dup: %s", strerror(errno));
    read_n(fd2, 100);
    long long dup_parent = pos(fd), dup_other = pos(fd2);
    int dup_kcmp = kcmp_file(me, fd, me, fd2);
    close(fd2);

    /* fork */
    lseek(fd, 0, SEEK_SET);
    int go[2], ready[2];
    if (pipe(go) || pipe(ready))
        die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t child = fork();
    if (child < 0)
        die("fork: %s", strerror(errno));
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(go[1]);
        read_n(fd, 200);
        char ch = 'r';
        if (write(ready[1], &ch, 1) != 1)
            _exit(1);
        while (read(go[0], &ch, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    set_helper(child);
    char ch;
    if (read(ready[0], &ch, 1) != 1)
        die("the child did not report");
    long long fork_parent = pos(fd);
    int fork_kcmp = kcmp_file(me, fd, child, fd);
    close(go[1]); /* EOF: the child exits */
    int st;
    while (waitpid(child, &st, 0) < 0 && errno == EINTR)
        ;
    helper_pid = -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("the child failed (status 0x%x)", st);

    /* a second open() of the same file */
    lseek(fd, 0, SEEK_SET);
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    int fd3 = open(self, O_RDONLY | O_CLOEXEC);
    if (fd3 < 0)
        die("open(%s): %s", self, strerror(errno));
    struct stat s1, s3;
    fstat(fd, &s1);
    fstat(fd3, &s3);
    read_n(fd3, 300);
    long long open_parent = pos(fd), open_other = pos(fd3);
    int open_kcmp = kcmp_file(me, fd, me, fd3);
    int same_inode = s1.st_ino == s3.st_ino && s1.st_dev == s3.st_dev;
    close(fd3);

    json_begin();
    json_string("kernel", "fdshare");
    json_string("variant", c.variant);
    json_string("dir", dir);
    json_string("temp_file", how);
    json_int("file_bytes", (long long)sizeof block);
    json_obj_begin("dup");
    json_int("read_bytes", 100);
    json_int("offset_fd", dup_parent);
    json_int("offset_other", dup_other);
    json_int("kcmp", dup_kcmp);
    json_obj_end();
    json_obj_begin("fork");
    json_int("read_bytes", 200);
    json_int("offset_fd", fork_parent);
    json_int("kcmp", fork_kcmp);
    json_obj_end();
    json_obj_begin("open");
    json_int("read_bytes", 300);
    json_int("offset_fd", open_parent);
    json_int("offset_other", open_other);
    json_int("kcmp", open_kcmp);
    json_int("same_inode", same_inode);
    json_obj_end();
    json_obj_begin("controls");
    json_int("kcmp_self", ctl_same);
    json_int("kcmp_other_file", ctl_diff);
    json_obj_end();
    json_end();
    return 0;
}
