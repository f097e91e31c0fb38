/* bpf.c: count system calls with a hand-assembled BPF program on the
 * raw_syscalls:sys_enter raw tracepoint, filtered by cgroup-v2 id. No LLVM, no kernel
 * headers at run time: the program is assembled here from struct bpf_insn (bpf(2),
 * Documentation/bpf/standardization/instruction-set.rst) and loaded with bpf(2).
 *
 * Why this mechanism first (docs/trace.md): one program for every task in the cgroup,
 * so creating a thread costs nothing extra (perf counting events with inherit=1 clone
 * one event per tracepoint into every new task), and it sees the system call number
 * and arguments (clone flags). Cost: one program run per system call on the machine;
 * tasks outside the cgroup leave after the cgroup-id compare.
 *
 * The program, per sys_enter (ctx = struct bpf_raw_tracepoint_args: args[0] = struct
 * pt_regs *, args[1] = syscall id; include/trace/events/syscalls.h):
 *   if bpf_get_current_cgroup_id() != CGID: return
 *   calls[min(id, NR_OTHER)] += 1
 *   if id == MARKER: state[0] += 1                     (markers are not in the region)
 *   elif state[0] == 1: region[id] += 1; in_region = 1
 *   if id == clone:  flags = regs->di; exit_signal = flags & CSIGNAL
 *   if id == clone3: flags, exit_signal = clone_args at regs->di (bpf_probe_read_user)
 *   if clone or clone3: clones[{flags, exit_signal, id, status}] += 1
 * Maps: ARRAY calls, ARRAY region, ARRAY state[2] (0: markers seen, 1: clone kinds
 * lost), HASH clones. Counters use BPF_ATOMIC add, so two CPUs do not lose updates.
 * A task that moves itself to another cgroup leaves the count (exact-id match).
 */

#include "tracer.h"

#include <linux/bpf.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* struct pt_regs (arch/x86/include/asm/ptrace.h, x86_64): r15 r14 r13 r12 bp bx r11 r10
 * r9 r8 ax cx dx si di ..., 8 bytes each: di (the first argument) is at 14 * 8. */
#define PT_REGS_DI_OFF 112

/* ---- a tiny assembler with labels (the kernel's include/linux/filter.h macros) ---- */
#define BPF_MAX_INSNS 256
#define BPF_MAX_LABELS 16

struct bpf_asm {
    struct bpf_insn insn[BPF_MAX_INSNS];
    int n;
    int label_at[BPF_MAX_LABELS];
    struct {
        int insn, label;
    } fix[BPF_MAX_INSNS];
    int nfix;
};

static void emit(struct bpf_asm *a, uint8_t code, uint8_t dst, uint8_t src, int16_t off,
                 int32_t imm)
{
    if (a->n == BPF_MAX_INSNS)
        die("BPF program too long");
    a->insn[a->n++] = (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src,
                                        .off = off, .imm = imm};
}

#define MOV_REG(a, d, s) emit(a, BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(a, d, i) emit(a, BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD_IMM(a, d, i) emit(a, BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define AND_IMM(a, d, i) emit(a, BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, i)
#define OR_IMM(a, d, i) emit(a, BPF_ALU64 | BPF_OR | BPF_K, d, 0, 0, i)
#define LDX(a, sz, d, s, off) emit(a, BPF_LDX | (sz) | BPF_MEM, d, s, off, 0)
#define STX(a, sz, d, s, off) emit(a, BPF_STX | (sz) | BPF_MEM, d, s, off, 0)
#define ST_IMM(a, sz, d, off, i) emit(a, BPF_ST | (sz) | BPF_MEM, d, 0, off, i)
/* lock *(u64 *)(d + off) += s */
#define ATOMIC_ADD(a, d, s, off) emit(a, BPF_STX | BPF_DW | BPF_ATOMIC, d, s, off, BPF_ADD)
#define CALL(a, fn) emit(a, BPF_JMP | BPF_CALL, 0, 0, 0, fn)
#define EXIT(a) emit(a, BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static void ld_imm64(struct bpf_asm *a, uint8_t dst, uint8_t src, uint64_t v)
{
    emit(a, BPF_LD | BPF_DW | BPF_IMM, dst, src, 0, (int32_t)(uint32_t)v);
    emit(a, 0, 0, 0, 0, (int32_t)(uint32_t)(v >> 32));
}
#define LD_MAP_FD(a, d, fd) ld_imm64(a, d, BPF_PSEUDO_MAP_FD, (uint64_t)(fd))

static void label(struct bpf_asm *a, int l) { a->label_at[l] = a->n; }

/* A jump to a label: op is BPF_JA, or BPF_JEQ/JNE/JLT/JSGE... against imm or src. */
static void jmp(struct bpf_asm *a, uint8_t op, uint8_t src_kind, uint8_t d, uint8_t s,
                int32_t imm, int l)
{
    a->fix[a->nfix].insn = a->n;
    a->fix[a->nfix++].label = l;
    emit(a, BPF_JMP | op | src_kind, d, s, 0, imm);
}
#define JMP_IMM(a, op, d, i, l) jmp(a, op, BPF_K, d, 0, i, l)
#define JMP_REG(a, op, d, s, l) jmp(a, op, BPF_X, d, s, 0, l)
#define GOTO(a, l) jmp(a, BPF_JA, 0, 0, 0, 0, l)

static void resolve_labels(struct bpf_asm *a)
{
    for (int i = 0; i < a->nfix; i++)
        a->insn[a->fix[i].insn].off = (int16_t)(a->label_at[a->fix[i].label] - a->fix[i].insn - 1);
}

/* ---- bpf(2) --------------------------------------------------------------------- */
static long sys_bpf(int cmd, union bpf_attr *attr)
{
    return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

static int bpf_map(uint32_t type, uint32_t key_size, uint32_t max_entries, const char *what)
{
    union bpf_attr at;
    memset(&at, 0, sizeof at);
    at.map_type = type;
    at.key_size = key_size;
    at.value_size = sizeof(uint64_t);
    at.max_entries = max_entries;
    int fd = (int)sys_bpf(BPF_MAP_CREATE, &at);
    if (fd < 0)
        die_unsupported("bpf(BPF_MAP_CREATE, %s): %s (loading tracing BPF needs CAP_BPF and "
                        "CAP_PERFMON, or root)", what, strerror(errno));
    return fd;
}

static int bpf_lookup(int fd, const void *key, uint64_t *value)
{
    union bpf_attr at;
    memset(&at, 0, sizeof at);
    at.map_fd = (uint32_t)fd;
    at.key = (uint64_t)(uintptr_t)key;
    at.value = (uint64_t)(uintptr_t)value;
    return (int)sys_bpf(BPF_MAP_LOOKUP_ELEM, &at);
}

static int bpf_next_key(int fd, const void *key, void *next)
{
    union bpf_attr at;
    memset(&at, 0, sizeof at);
    at.map_fd = (uint32_t)fd;
    at.key = (uint64_t)(uintptr_t)key;
    at.next_key = (uint64_t)(uintptr_t)next;
    return (int)sys_bpf(BPF_MAP_GET_NEXT_KEY, &at);
}

/* The clones map's key, as the program lays it out on its stack at r10 - 32. */
struct bpf_clone_key {
    uint64_t flags, exit_signal;
    uint32_t nr, status;
};

enum { L_OUT, L_IN_RANGE, L_COUNTED, L_NOT_MARKER, L_CLONE_CHECK, L_CLONE, L_CLONE3,
       L_READ1, L_READ2, L_RECORD, L_ADD, L_COUNT };

static void assemble(struct bpf_asm *a, const struct bpf_tracer *b, uint64_t cgid,
                     long marker)
{
    /* Registers: r6 ctx, r7 scratch/status, r8 syscall slot, r9 in_region (r6-r9
     * survive helper calls). Stack: -4 u32 array key; -32..-9 clone key; -40 u64 zero
     * value; -48 u64 clone_args pointer. */
    int32_t mark = marker >= 0 && marker < NR_OTHER ? (int32_t)marker : NR_SLOTS + 1;
    memset(a, 0, sizeof *a);
    MOV_REG(a, BPF_REG_6, BPF_REG_1);
    CALL(a, BPF_FUNC_get_current_cgroup_id);
    ld_imm64(a, BPF_REG_1, 0, cgid);
    JMP_REG(a, BPF_JNE, BPF_REG_0, BPF_REG_1, L_OUT);
    LDX(a, BPF_DW, BPF_REG_8, BPF_REG_6, 8); /* args[1]: the syscall id */
    JMP_IMM(a, BPF_JLT, BPF_REG_8, NR_OTHER, L_IN_RANGE);
    MOV_IMM(a, BPF_REG_8, NR_OTHER);
    label(a, L_IN_RANGE);
    /* calls[id] += 1 */
    STX(a, BPF_W, BPF_REG_10, BPF_REG_8, -4);
    LD_MAP_FD(a, BPF_REG_1, b->calls);
    MOV_REG(a, BPF_REG_2, BPF_REG_10);
    ADD_IMM(a, BPF_REG_2, -4);
    CALL(a, BPF_FUNC_map_lookup_elem);
    JMP_IMM(a, BPF_JEQ, BPF_REG_0, 0, L_COUNTED);
    MOV_IMM(a, BPF_REG_1, 1);
    ATOMIC_ADD(a, BPF_REG_0, BPF_REG_1, 0);
    label(a, L_COUNTED);
    /* markers and the region */
    MOV_IMM(a, BPF_REG_9, 0);
    ST_IMM(a, BPF_W, BPF_REG_10, -4, 0);
    LD_MAP_FD(a, BPF_REG_1, b->state);
    MOV_REG(a, BPF_REG_2, BPF_REG_10);
    ADD_IMM(a, BPF_REG_2, -4);
    CALL(a, BPF_FUNC_map_lookup_elem);
    JMP_IMM(a, BPF_JEQ, BPF_REG_0, 0, L_OUT);
    JMP_IMM(a, BPF_JNE, BPF_REG_8, mark, L_NOT_MARKER);
    MOV_IMM(a, BPF_REG_1, 1);
    ATOMIC_ADD(a, BPF_REG_0, BPF_REG_1, 0);
    GOTO(a, L_CLONE_CHECK);
    label(a, L_NOT_MARKER);
    LDX(a, BPF_DW, BPF_REG_1, BPF_REG_0, 0);
    JMP_IMM(a, BPF_JNE, BPF_REG_1, 1, L_CLONE_CHECK);
    MOV_IMM(a, BPF_REG_9, CLONE_IN_REGION);
    STX(a, BPF_W, BPF_REG_10, BPF_REG_8, -4);
    LD_MAP_FD(a, BPF_REG_1, b->region);
    MOV_REG(a, BPF_REG_2, BPF_REG_10);
    ADD_IMM(a, BPF_REG_2, -4);
    CALL(a, BPF_FUNC_map_lookup_elem);
    JMP_IMM(a, BPF_JEQ, BPF_REG_0, 0, L_CLONE_CHECK);
    MOV_IMM(a, BPF_REG_1, 1);
    ATOMIC_ADD(a, BPF_REG_0, BPF_REG_1, 0);
    label(a, L_CLONE_CHECK);
    JMP_IMM(a, BPF_JEQ, BPF_REG_8, NR_CLONE, L_CLONE);
    JMP_IMM(a, BPF_JEQ, BPF_REG_8, NR_CLONE3, L_CLONE3);
    GOTO(a, L_OUT);

    /* clone(2): flags = regs->di; its low byte is the exit signal */
    label(a, L_CLONE);
    ST_IMM(a, BPF_DW, BPF_REG_10, -32, 0);
    ST_IMM(a, BPF_DW, BPF_REG_10, -24, 0);
    ST_IMM(a, BPF_DW, BPF_REG_10, -16, 0);
    LDX(a, BPF_DW, BPF_REG_3, BPF_REG_6, 0); /* args[0]: struct pt_regs * */
    ADD_IMM(a, BPF_REG_3, PT_REGS_DI_OFF);
    MOV_REG(a, BPF_REG_1, BPF_REG_10);
    ADD_IMM(a, BPF_REG_1, -32);
    MOV_IMM(a, BPF_REG_2, 8);
    CALL(a, BPF_FUNC_probe_read_kernel);
    LDX(a, BPF_DW, BPF_REG_1, BPF_REG_10, -32);
    AND_IMM(a, BPF_REG_1, CSIGNAL_MASK);
    STX(a, BPF_DW, BPF_REG_10, BPF_REG_1, -24);
    MOV_IMM(a, BPF_REG_7, 0);
    GOTO(a, L_RECORD);

    /* clone3(2): regs->di points at struct clone_args in the caller's memory */
    label(a, L_CLONE3);
    ST_IMM(a, BPF_DW, BPF_REG_10, -32, 0);
    ST_IMM(a, BPF_DW, BPF_REG_10, -24, 0);
    ST_IMM(a, BPF_DW, BPF_REG_10, -16, 0);
    ST_IMM(a, BPF_DW, BPF_REG_10, -48, 0);
    LDX(a, BPF_DW, BPF_REG_3, BPF_REG_6, 0);
    ADD_IMM(a, BPF_REG_3, PT_REGS_DI_OFF);
    MOV_REG(a, BPF_REG_1, BPF_REG_10);
    ADD_IMM(a, BPF_REG_1, -48);
    MOV_IMM(a, BPF_REG_2, 8);
    CALL(a, BPF_FUNC_probe_read_kernel);
    MOV_IMM(a, BPF_REG_7, 0);
    LDX(a, BPF_DW, BPF_REG_3, BPF_REG_10, -48);
    ADD_IMM(a, BPF_REG_3, CLONE_ARGS_FLAGS_OFF);
    MOV_REG(a, BPF_REG_1, BPF_REG_10);
    ADD_IMM(a, BPF_REG_1, -32);
    MOV_IMM(a, BPF_REG_2, 8);
    CALL(a, BPF_FUNC_probe_read_user); /* fails (< 0) on a page not present */
    JMP_IMM(a, BPF_JSGE, BPF_REG_0, 0, L_READ1);
    MOV_IMM(a, BPF_REG_7, CLONE_UNREADABLE);
    label(a, L_READ1);
    LDX(a, BPF_DW, BPF_REG_3, BPF_REG_10, -48);
    ADD_IMM(a, BPF_REG_3, CLONE_ARGS_EXIT_SIGNAL_OFF);
    MOV_REG(a, BPF_REG_1, BPF_REG_10);
    ADD_IMM(a, BPF_REG_1, -24);
    MOV_IMM(a, BPF_REG_2, 8);
    CALL(a, BPF_FUNC_probe_read_user);
    JMP_IMM(a, BPF_JSGE, BPF_REG_0, 0, L_READ2);
    MOV_IMM(a, BPF_REG_7, CLONE_UNREADABLE);
    label(a, L_READ2);

    /* clones[key] += 1, inserting the key first if it is new */
    label(a, L_RECORD);
    emit(a, BPF_ALU64 | BPF_OR | BPF_X, BPF_REG_7, BPF_REG_9, 0, 0);
    STX(a, BPF_W, BPF_REG_10, BPF_REG_8, -16);
    STX(a, BPF_W, BPF_REG_10, BPF_REG_7, -12);
    LD_MAP_FD(a, BPF_REG_1, b->clones);
    MOV_REG(a, BPF_REG_2, BPF_REG_10);
    ADD_IMM(a, BPF_REG_2, -32);
    CALL(a, BPF_FUNC_map_lookup_elem);
    JMP_IMM(a, BPF_JNE, BPF_REG_0, 0, L_ADD);
    ST_IMM(a, BPF_DW, BPF_REG_10, -40, 0);
    LD_MAP_FD(a, BPF_REG_1, b->clones);
    MOV_REG(a, BPF_REG_2, BPF_REG_10);
    ADD_IMM(a, BPF_REG_2, -32);
    MOV_REG(a, BPF_REG_3, BPF_REG_10);
    ADD_IMM(a, BPF_REG_3, -40);
    MOV_IMM(a, BPF_REG_4, BPF_NOEXIST); /* another CPU may have inserted it: fine */
    CALL(a, BPF_FUNC_map_update_elem);
    LD_MAP_FD(a, BPF_REG_1, b->clones);
    MOV_REG(a, BPF_REG_2, BPF_REG_10);
    ADD_IMM(a, BPF_REG_2, -32);
    CALL(a, BPF_FUNC_map_lookup_elem);
    JMP_IMM(a, BPF_JNE, BPF_REG_0, 0, L_ADD);
    /* the map is full: state[1] += 1 */
    ST_IMM(a, BPF_W, BPF_REG_10, -4, 1);
    LD_MAP_FD(a, BPF_REG_1, b->state);
    MOV_REG(a, BPF_REG_2, BPF_REG_10);
    ADD_IMM(a, BPF_REG_2, -4);
    CALL(a, BPF_FUNC_map_lookup_elem);
    JMP_IMM(a, BPF_JEQ, BPF_REG_0, 0, L_OUT);
    label(a, L_ADD);
    MOV_IMM(a, BPF_REG_1, 1);
    ATOMIC_ADD(a, BPF_REG_0, BPF_REG_1, 0);
    label(a, L_OUT);
    MOV_IMM(a, BPF_REG_0, 0);
    EXIT(a);
    resolve_labels(a);
}

/* Create the maps, load the program for cgroup `cgroup_dir`, attach it. Any refusal
 * exits 77 with the kernel's reason (and the verifier's last line for a rejected
 * program). The program is detached when the tracer exits (its fds close). */
void bpf_start(struct bpf_tracer *b, const char *cgroup_dir, long marker)
{
    struct stat st;
    /* The cgroup id bpf_get_current_cgroup_id() returns is the cgroup directory's
     * kernfs node id, which is its inode number on 64-bit (include/linux/kernfs.h,
     * kernfs_ino()). */
    if (stat(cgroup_dir, &st) != 0)
        die_unsupported("cgroup %s: %s", cgroup_dir, strerror(errno));
    b->calls = bpf_map(BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), NR_SLOTS, "calls");
    b->region = bpf_map(BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), NR_SLOTS, "region");
    b->state = bpf_map(BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), 2, "state");
    b->clones = bpf_map(BPF_MAP_TYPE_HASH, sizeof(struct bpf_clone_key), MAX_CLONE_KINDS,
                        "clones");
    static struct bpf_asm a;
    assemble(&a, b, (uint64_t)st.st_ino, marker);

    static char log[65536];
    union bpf_attr at;
    memset(&at, 0, sizeof at);
    at.prog_type = BPF_PROG_TYPE_RAW_TRACEPOINT;
    at.insns = (uint64_t)(uintptr_t)a.insn;
    at.insn_cnt = (uint32_t)a.n;
    at.license = (uint64_t)(uintptr_t)"GPL"; /* bpf_probe_read_user is GPL-only */
    at.log_buf = (uint64_t)(uintptr_t)log;
    at.log_size = sizeof log;
    at.log_level = 1;
    b->prog = (int)sys_bpf(BPF_PROG_LOAD, &at);
    if (b->prog < 0) {
        int e = errno;
        char *last = log;
        for (char *p = strtok(log, "\n"); p; p = strtok(NULL, "\n"))
            last = p;
        die_unsupported("bpf(BPF_PROG_LOAD, raw_tracepoint): %s%s%s", strerror(e),
                        *last ? "; verifier: " : "", last);
    }
    memset(&at, 0, sizeof at);
    at.raw_tracepoint.name = (uint64_t)(uintptr_t)"sys_enter";
    at.raw_tracepoint.prog_fd = (uint32_t)b->prog;
    b->link = (int)sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &at);
    if (b->link < 0)
        die_unsupported("bpf(BPF_RAW_TRACEPOINT_OPEN, sys_enter): %s", strerror(errno));
}

/* Read the maps into `t` once every traced task has exited, then detach. */
void bpf_finish(struct bpf_tracer *b, struct tally *t)
{
    close(b->link); /* detach first: nothing counts while we read */
    for (uint32_t k = 0; k < NR_SLOTS; k++) {
        if (bpf_lookup(b->calls, &k, &t->calls[k]) || bpf_lookup(b->region, &k, &t->region[k]))
            die("bpf(BPF_MAP_LOOKUP_ELEM): %s", strerror(errno));
    }
    uint32_t k0 = 0, k1 = 1;
    if (bpf_lookup(b->state, &k0, &t->markers) || bpf_lookup(b->state, &k1, &t->clones_lost))
        die("bpf(BPF_MAP_LOOKUP_ELEM, state): %s", strerror(errno));
    struct bpf_clone_key key, next;
    const void *prev = NULL; /* NULL key: the first key (bpf(2), BPF_MAP_GET_NEXT_KEY) */
    while (bpf_next_key(b->clones, prev, &next) == 0) {
        uint64_t n;
        if (bpf_lookup(b->clones, &next, &n) == 0)
            tally_clone(t, next.nr, next.flags, next.exit_signal, next.status, n);
        key = next;
        prev = &key;
    }
    if (errno != ENOENT)
        die("bpf(BPF_MAP_GET_NEXT_KEY): %s", strerror(errno));
    close(b->prog);
    close(b->calls);
    close(b->region);
    close(b->state);
    close(b->clones);
}
