/* btf.c: the few facts of the running kernel's BTF (/sys/kernel/btf/vmlinux, the raw
 * format of Documentation/bpf/btf.rst and include/uapi/linux/btf.h) that the bpf
 * mechanism's tp_btf program needs: the id of a type and the offsets of members. */

#include "tracer.h"

#include <linux/btf.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* Bytes that follow a struct btf_type of this kind (btf.rst, "Type encoding"). */
static long trailing(const struct btf_type *t)
{
    uint32_t vlen = BTF_INFO_VLEN(t->info);
    switch (BTF_INFO_KIND(t->info)) {
    case BTF_KIND_INT:
    case BTF_KIND_VAR:
    case BTF_KIND_DECL_TAG:
        return 4;
    case BTF_KIND_ARRAY:
        return sizeof(struct btf_array);
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
        return (long)vlen * (long)sizeof(struct btf_member);
    case BTF_KIND_ENUM:
        return (long)vlen * (long)sizeof(struct btf_enum);
    case BTF_KIND_FUNC_PROTO:
        return (long)vlen * (long)sizeof(struct btf_param);
    case BTF_KIND_DATASEC:
        return (long)vlen * (long)sizeof(struct btf_var_secinfo);
    case BTF_KIND_ENUM64:
        return (long)vlen * 12; /* struct btf_enum64: name_off, val_lo32, val_hi32 */
    case BTF_KIND_PTR:
    case BTF_KIND_FWD:
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_FUNC:
    case BTF_KIND_FLOAT:
    case BTF_KIND_TYPE_TAG:
        return 0;
    default:
        return -1; /* a kind newer than these headers: give up */
    }
}

int btf_load(struct kernel_btf *b)
{
    memset(b, 0, sizeof *b);
    int fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    /* mapped where the kernel allows it (Linux 6.16+, kernel/bpf/sysfs_btf.c
     * btf_sysfs_vmlinux_mmap), read where it does not: sysfs hands a binary attribute
     * out a page per read(2), ~1,400 calls for 5 MB */
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            b->data = m;
            b->len = b->mapped = (size_t)st.st_size;
        }
    }
    size_t cap = 8 << 20;
    ssize_t n;
    if (!b->mapped && (b->data = malloc(cap)))
        while ((n = read(fd, b->data + b->len, cap - b->len)) > 0) {
            b->len += (size_t)n;
            if (b->len == cap && !(b->data = realloc(b->data, cap *= 2)))
                break;
        }
    close(fd);
    const struct btf_header *h = (const void *)b->data;
    if (!b->data || b->len < sizeof *h || h->magic != BTF_MAGIC || h->hdr_len + (size_t)h->type_off
        + h->type_len > b->len || h->hdr_len + (size_t)h->str_off + h->str_len > b->len)
        return -1;
    b->types = b->data + h->hdr_len + h->type_off;
    b->types_len = h->type_len;
    b->strs = b->data + h->hdr_len + h->str_off;
    b->strs_len = h->str_len;
    /* index the types by id (ids start at 1) */
    size_t cap_ids = 1 << 17;
    b->by_id = malloc(cap_ids * sizeof *b->by_id);
    b->ntypes = 1;
    for (size_t off = 0; b->by_id && off + sizeof(struct btf_type) <= b->types_len;) {
        const struct btf_type *t = (const void *)(b->types + off);
        long extra = trailing(t);
        if (extra < 0)
            return -1;
        if (b->ntypes == cap_ids)
            b->by_id = realloc(b->by_id, (cap_ids *= 2) * sizeof *b->by_id);
        if (b->by_id)
            b->by_id[b->ntypes++] = t;
        off += sizeof *t + (size_t)extra;
    }
    return b->by_id ? 0 : -1;
}

static const char *name_of(const struct kernel_btf *b, uint32_t off)
{
    return off < b->strs_len ? b->strs + off : "";
}

int btf_find(const struct kernel_btf *b, const char *name, int kind)
{
    for (uint32_t id = 1; id < b->ntypes; id++)
        if ((int)BTF_INFO_KIND(b->by_id[id]->info) == kind && !strcmp(name_of(b, b->by_id[id]->name_off), name))
            return (int)id;
    return -1;
}

/* The byte offset of `member` in the struct or union `id`, looking into its anonymous
 * struct and union members too; -1 if it has none, or not on a byte boundary. */
long btf_member_offset(const struct kernel_btf *b, int id, const char *member)
{
    const struct btf_type *t = b->by_id[id];
    int kind = BTF_INFO_KIND(t->info);
    if (kind != BTF_KIND_STRUCT && kind != BTF_KIND_UNION)
        return -1;
    const struct btf_member *m = (const void *)(t + 1);
    for (uint32_t i = 0; i < BTF_INFO_VLEN(t->info); i++) {
        uint32_t bits = BTF_INFO_KFLAG(t->info) ? BTF_MEMBER_BIT_OFFSET(m[i].offset) : m[i].offset;
        if (bits % 8)
            continue;
        if (!strcmp(name_of(b, m[i].name_off), member))
            return bits / 8;
        if (m[i].name_off == 0 && m[i].type < b->ntypes) { /* an anonymous struct or union */
            long inner = btf_member_offset(b, (int)m[i].type, member);
            if (inner >= 0)
                return bits / 8 + inner;
        }
    }
    return -1;
}

void btf_free(struct kernel_btf *b)
{
    if (b->mapped)
        munmap(b->data, b->mapped);
    else
        free(b->data);
    free(b->by_id);
    memset(b, 0, sizeof *b);
}
