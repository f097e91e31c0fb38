/* read.c: reading files under an open /proc/PID, text as Python's parsers see it, and
 * the first failure of any worker thread. */

#include "procsnap.h"

#include <ctype.h>

/* ---- failures --------------------------------------------------------------------- */

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int fail_kind; /* 0 none, 'E' errno, 'X' deferred */
static int fail_err;
static char fail_text[512];

static void set_failure(int kind, int err, const char *fmt, va_list ap)
{
    pthread_mutex_lock(&fail_lock);
    if (!fail_kind) {
        vsnprintf(fail_text, sizeof fail_text, fmt, ap);
        fail_err = err;
        __atomic_store_n(&fail_kind, kind, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&fail_lock);
}

void fail_errno(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_failure('E', err, fmt, ap);
    va_end(ap);
}

void defer_all(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_failure('X', 0, fmt, ap);
    va_end(ap);
}

bool failed(void) { return __atomic_load_n(&fail_kind, __ATOMIC_ACQUIRE) != 0; }

/* The failure as the protocol's last line ("E errno what" or "X reason"); 0 if none. */
int write_failure(FILE *f)
{
    if (!fail_kind)
        return 0;
    if (fail_kind == 'E')
        fprintf(f, "E %d %s\n", fail_err, fail_text);
    else
        fprintf(f, "X %s\n", fail_text);
    return 1;
}

/* ---- files -------------------------------------------------------------------------- */

int read_file(int dirfd, const char *rel, struct buf *b, size_t first)
{
    b->len = 0;
    int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    size_t want = first ? first : 1 << 17;
    for (;;) {
        buf_reserve(b, want);
        ssize_t n = read(fd, b->p + b->len, want);
        if (n < 0) {
            int e = errno;
            close(fd);
            return e;
        }
        b->len += (size_t)n;
        if (n == 0 || (first && b->len < first))
            break;
        want = 1 << 17;
        first = 0;
    }
    close(fd);
    return 0;
}

/* ---- text as Python reads it ------------------------------------------------------- */

static bool blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

int split_ws(const char *s, size_t n, const char **tok, size_t *len, int max)
{
    int k = 0;
    size_t i = 0;
    while (i < n && k < max) {
        while (i < n && blank(s[i]))
            i++;
        if (i == n)
            break;
        size_t j = i;
        while (j < n && !blank(s[j]))
            j++;
        tok[k] = s + i;
        len[k++] = j - i;
        i = j;
    }
    return k;
}

bool plain_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t' && c != '\n') || c > 0x7e)
            return false;
    }
    return true;
}

static int digit(char c, int base)
{
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 99;
    return d < base ? d : -1;
}

/* magnitude and sign of Python's int(text, base); -1 where it would raise or overflow */
static int parse_mag(const char *s, size_t n, int base, unsigned long long *mag, bool *neg)
{
    while (n && blank(*s))
        s++, n--;
    while (n && blank(s[n - 1]))
        n--;
    *neg = false;
    if (n && (*s == '+' || *s == '-')) {
        *neg = *s == '-';
        s++, n--;
    }
    if (base == 16 && n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2, n -= 2;
    if (n == 0)
        return -1;
    unsigned long long v = 0;
    for (size_t i = 0; i < n; i++) {
        int d = digit(s[i], base);
        if (d < 0 || v > (~0ull - (unsigned)d) / (unsigned)base)
            return -1;
        v = v * (unsigned)base + (unsigned)d;
    }
    *mag = v;
    return 0;
}

int py_int(const char *s, size_t n, int base, long long *out)
{
    unsigned long long mag;
    bool neg;
    if (parse_mag(s, n, base, &mag, &neg) || mag > (neg ? 1ull << 63 : (1ull << 63) - 1))
        return -1;
    *out = neg ? (long long)(0ull - mag) : (long long)mag;
    return 0;
}

int py_uint(const char *s, size_t n, int base, unsigned long long *out)
{
    bool neg;
    if (parse_mag(s, n, base, out, &neg) || (neg && *out))
        return -1;
    return 0;
}
