/* strset.c: byte strings as Python's str operations see them (the paths of smaps are
 * compared, split and looked up as the Python path does with its str), and a set of
 * them. */

#include "procsnap.h"

bool starts(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && !memcmp(s, prefix, k);
}

bool same(const char *a, size_t an, const char *b, size_t bn) { return an == bn && !memcmp(a, b, an); }

const char *basename_of(const char *s, size_t n, size_t *len)
{
    const char *slash = memrchr(s, '/', n);
    const char *b = slash ? slash + 1 : s;
    *len = n - (size_t)(b - s);
    return b;
}

/* a set of strings: the library paths (open addressing, FNV-1a) */
static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

size_t strset_slot(struct strset *t, const char *s, size_t n)
{
    size_t i = fnv(s, n) & (t->cap - 1);
    while (t->s[i] && !same(t->s[i], t->n[i], s, n))
        i = (i + 1) & (t->cap - 1);
    return i;
}

bool strset_has(struct strset *t, const char *s, size_t n, bool add)
{
    size_t i = strset_slot(t, s, n);
    if (t->s[i])
        return true;
    if (add) {
        t->s[i] = s;
        t->n[i] = n;
    }
    return false;
}

void strset_init(struct strset *t, size_t items, bool values)
{
    t->cap = 64;
    while (t->cap < 2 * items + 2)
        t->cap *= 2;
    t->s = calloc(t->cap, sizeof *t->s);
    t->n = calloc(t->cap, sizeof *t->n);
    t->val = values ? calloc(t->cap, sizeof *t->val) : NULL;
    if (!t->s || !t->n || (values && !t->val))
        die("out of memory");
}

void strset_free(struct strset *t)
{
    free(t->s);
    free(t->n);
    free(t->val);
}
