/* out.c: growable buffers, and JSON text as CPython's json module writes it
 * (Modules/_json.c: the C encoder json.dumps uses; Python/pystrtod.c: float repr). */

#include "procsnap.h"

void buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        die("out of memory (%zu bytes)", cap);
    b->p = p;
    b->cap = cap;
}

void buf_add(struct buf *b, const void *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void buf_str(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

void buf_chr(struct buf *b, char c)
{
    buf_reserve(b, 1);
    b->p[b->len++] = c;
}

void buf_u64(struct buf *b, unsigned long long v)
{
    char tmp[24];
    int i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_add(b, tmp + i, sizeof tmp - (size_t)i);
}

void buf_i64(struct buf *b, long long v)
{
    if (v < 0) {
        buf_chr(b, '-');
        buf_u64(b, 0ull - (unsigned long long)v);
    } else {
        buf_u64(b, (unsigned long long)v);
    }
}

void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static const char hexdig[] = "0123456789abcdef"; /* Py_hexdigits: lower case */

void buf_jhex(struct buf *b, unsigned long long v)
{
    char tmp[20];
    int i = sizeof tmp;
    do {
        tmp[--i] = hexdig[v & 15];
        v >>= 4;
    } while (v);
    buf_add(b, "\"0x", 3);
    buf_add(b, tmp + i, sizeof tmp - (size_t)i);
    buf_chr(b, '"');
}

static void escape_unit(struct buf *b, unsigned c) /* "\uXXXX" of one UTF-16 unit */
{
    char e[6] = {'\\', 'u', hexdig[(c >> 12) & 15], hexdig[(c >> 8) & 15], hexdig[(c >> 4) & 15],
                 hexdig[c & 15]};
    buf_add(b, e, 6);
}

/* Length of the well-formed UTF-8 sequence at s (Unicode 15, table 3-7: what CPython's
 * decoder accepts), with its code point in *cp; 0 if none starts here. */
static int utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    if (c >= 0xc2 && c <= 0xdf && n >= 2 && (s[1] & 0xc0) == 0x80) {
        *cp = (c & 0x1f) << 6 | (s[1] & 0x3f);
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef && n >= 3) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        if (s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80) {
            *cp = (c & 0x0f) << 12 | (s[1] & 0x3f) << 6 | (s[2] & 0x3f);
            return 3;
        }
        return 0;
    }
    if (c >= 0xf0 && c <= 0xf4 && n >= 4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        if (s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80) {
            *cp = (c & 0x07) << 18 | (s[1] & 0x3f) << 12 | (s[2] & 0x3f) << 6 | (s[3] & 0x3f);
            return 4;
        }
    }
    return 0;
}

/* surrogateescape (PEP 383) stands every byte of an invalid sequence in for U+DC80 +
 * (byte - 0x80): a byte that starts no well-formed sequence becomes its own surrogate,
 * which is what the decoder's error ranges come to, byte by byte. ensure_ascii then
 * writes everything outside ' '..'~' as \uXXXX (a surrogate pair above U+FFFF), with
 * the short escapes of ascii_escape_unichar() in Modules/_json.c. */
void buf_jstr(struct buf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    buf_reserve(b, n + 2);
    buf_chr(b, '"');
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] >= ' ' && s[run] <= '~' && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            buf_add(b, s + i, run - i);
            i = run;
            if (i == n)
                break;
        }
        unsigned c = s[i];
        if (c < 0x80) {
            const char *short_esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b"
                                  : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                                  : c == '\t' ? "\\t" : NULL;
            if (short_esc)
                buf_add(b, short_esc, 2);
            else
                escape_unit(b, c);
            i++;
            continue;
        }
        unsigned cp;
        int len = utf8_seq(s + i, n - i, &cp);
        if (len == 0) {
            escape_unit(b, 0xdc00 + c);
            i++;
        } else if (cp >= 0x10000) {
            escape_unit(b, 0xd800 + ((cp - 0x10000) >> 10));
            escape_unit(b, 0xdc00 + ((cp - 0x10000) & 0x3ff));
            i += (size_t)len;
        } else {
            escape_unit(b, cp);
            i += (size_t)len;
        }
    }
    buf_chr(b, '"');
}

/* repr(float): the shortest digit string that reads back as x (David Gay's mode 0,
 * which CPython's float_repr uses), found as the fewest significant digits whose
 * correctly rounded %.*e reads back as x; laid out as Python/pystrtod.c
 * format_float_short() does for repr: exponent notation when the decimal point would sit
 * 4 or more places left of the first digit or more than 16 right of it ("1e-05",
 * "1e+16"), otherwise positional with ".0" for an integral value. */
void buf_jfloat(struct buf *b, double x)
{
    if (x == 0) {
        buf_str(b, signbit(x) ? "-0.0" : "0.0");
        return;
    }
    char e[40];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, x);
        if (strtod(e, NULL) == x)
            break;
    }
    /* e is [-]D[.DDD]e[+-]XX */
    const char *s = e;
    if (*s == '-') {
        buf_chr(b, '-');
        s++;
    }
    char digits[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.')
            digits[nd++] = *s;
    int exp10 = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0') /* %.*e pads; repr's digits never end in 0 */
        nd--;
    int decpt = exp10 + 1; /* digits[0] sits just left of the point when decpt == 1 */
    if (decpt <= -4 || decpt > 16) {
        buf_chr(b, digits[0]);
        if (nd > 1) {
            buf_chr(b, '.');
            buf_add(b, digits + 1, (size_t)nd - 1);
        }
        char t[16];
        snprintf(t, sizeof t, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
        buf_str(b, t);
    } else if (decpt <= 0) {
        buf_str(b, "0.");
        for (int i = 0; i < -decpt; i++)
            buf_chr(b, '0');
        buf_add(b, digits, (size_t)nd);
    } else if (decpt >= nd) {
        buf_add(b, digits, (size_t)nd);
        for (int i = nd; i < decpt; i++)
            buf_chr(b, '0');
        buf_str(b, ".0");
    } else {
        buf_add(b, digits, (size_t)decpt);
        buf_chr(b, '.');
        buf_add(b, digits + decpt, (size_t)(nd - decpt));
    }
}

