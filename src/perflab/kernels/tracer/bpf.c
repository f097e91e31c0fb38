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
 * The program, per sys_enter (ctx: args[0] = struct pt_regs *, args[1] = syscall id;
 * include/trace/events/syscalls.h):
 *   if current's cgroup id != CGID: return
 *   slot = min(id, NR_OTHER)
 *   with a marker:  if id == MARKER: state.markers += 1 (atomic; markers are not in the
 *                   region)  elif state.markers == 1: slot += NR_SLOTS (in the region)
 *   counts[slot] += 1                                   (this CPU's copy: no atomic)
 *   if id == clone:  flags = regs->di; exit_signal = flags & CSIGNAL
 *   if id == clone3: flags, exit_signal = clone_args at regs->di (bpf_probe_read_user)
 *   if clone or clone3: clones[{flags, exit_signal, id, status}] += 1 (atomic)
 * Maps: PERCPU_ARRAY counts[2 * NR_SLOTS] (calls outside, then inside the region; the
 * read-out sums the CPUs), ARRAY state[1] = {markers, clone kinds lost} read and
 * written through its address (BPF_PSEUDO_MAP_VALUE: no lookup call), HASH clones.
 *
 * Two forms of it (`program` in the record). "tp_btf" (preferred): a BTF-typed program
 * on the same tracepoint (BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP) reads the id as
 * bpf_get_current_cgroup_id() computes it (kernel/bpf/helpers.c: task_dfl_cgroup(current)
 * ->kn->id, include/linux/cgroup.h) but as four loads from current: task_struct.cgroups
 * -> css_set.dfl_cgrp -> cgroup.kn -> kernfs_node.id, at the offsets the running kernel's
 * BTF gives (btf.c). The helper call costs ~30 ns here (benchmarks/README.md, "perflab
 * trace"), a third of the whole per-call cost. "raw_tp": BPF_PROG_TYPE_RAW_TRACEPOINT
 * calling the helper, where the kernel has no BTF or refuses the first form
 * (PERFLAB_BPF_PROGRAM=raw_tp in the environment forces it).
 *
 * The per-call cost is what this path costs (benchmarks/README.md, "perflab trace"):
 * the counter is this CPU's, so the increment is a plain load, add and store, with no
 * lock prefix and no cache line shared between CPUs; the percpu lookup is inlined by the
 * verifier (percpu_array_map_gen_lookup, kernel/bpf/arraymap.c, Linux 6.10+). That is
 * exact because a program on sys_enter runs with preemption disabled and is never
 * nested on one CPU: the BPF probe of the syscall tracepoints (which may fault since
 * Linux 6.14) disables preemption around the run (include/trace/bpf_probe.h; before,
 * every tracepoint probe ran so), and __bpf_trace_run() (kernel/trace/bpf_trace.c)
 * skips a nested run rather than interleave, counting it in the program's
 * recursion_misses, which the read-out reports as lost (the trace then fails rather
 * than under-count).
 * A task that moves itself to another cgroup leaves the count (exact-id match).
 */

#include "tracer.h"

#include <linux/bpf.h>
#include <linux/btf.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* struct pt_regs (arch/x86/include/asm/ptrace.h, x86_64): r15 r14 r13 r12 bp bx r11 r10
 * r9 r8 ax cx dx si di ..., 8 bytes each: di (the first argument) is at 14 * 8. */
#define PT_REGS_DI_OFF 112

/* ---- a tiny assembler with labels (the kernel's include/linux/filter.h macros) ---- */
#define BPF_MAX_INSNS 256
#define BPF_MAX_LABELS 16 /* >= L_COUNT_LABELS */

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
/* d = the address of byte `off` of the value of a one-element ARRAY map (bpf(2):
 * BPF_PSEUDO_MAP_VALUE, the map fd in the first imm, the offset in the second) */
#define LD_MAP_VALUE(a, d, fd, off) \
    ld_imm64(a, d, BPF_PSEUDO_MAP_VALUE, (uint64_t)(uint32_t)(fd) | (uint64_t)(off) << 32)

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

static int bpf_map(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
                   const char *what)
{
    union bpf_attr at;
    memset(&at, 0, sizeof at);
    at.map_type = type;
    at.key_size = key_size;
    at.value_size = value_size;
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

enum { L_OUT, L_IN_RANGE, L_COUNT, L_MARKER, L_CLONE_CHECK, L_CLONE, L_CLONE3,
       L_READ1, L_READ2, L_RECORD, L_ADD, L_COUNT_LABELS };

/* the state map's one value */
#define STATE_MARKERS 0
#define STATE_CLONES_LOST 8

/* Where current's cgroup id is, for the tp_btf form: byte offsets from the running
 * kernel's BTF, and the BTF id of the tracepoint's type (btf_trace_sys_enter). */
struct cgroup_path {
    long task_cgroups, css_dfl_cgrp, cgroup_kn, kn_id;
    int attach_btf_id;
};

static bool find_cgroup_path(struct cgroup_path *p)
{
    struct kernel_btf btf;
    bool ok = false;
    if (btf_load(&btf) == 0) {
        int task = btf_find(&btf, "task_struct", BTF_KIND_STRUCT);
        int css = btf_find(&btf, "css_set", BTF_KIND_STRUCT);
        int cg = btf_find(&btf, "cgroup", BTF_KIND_STRUCT);
        int kn = btf_find(&btf, "kernfs_node", BTF_KIND_STRUCT);
        p->attach_btf_id = btf_find(&btf, "btf_trace_sys_enter", BTF_KIND_TYPEDEF);
        if (task > 0 && css > 0 && cg > 0 && kn > 0 && p->attach_btf_id > 0) {
            p->task_cgroups = btf_member_offset(&btf, task, "cgroups");
            p->css_dfl_cgrp = btf_member_offset(&btf, css, "dfl_cgrp");
            p->cgroup_kn = btf_member_offset(&btf, cg, "kn");
            p->kn_id = btf_member_offset(&btf, kn, "id");
            ok = p->task_cgroups >= 0 && p->css_dfl_cgrp >= 0 && p->cgroup_kn >= 0 && p->kn_id >= 0
                 && p->task_cgroups < 32768 && p->css_dfl_cgrp < 32768 && p->cgroup_kn < 32768
                 && p->kn_id < 32768;
        }
    }
    btf_free(&btf);
    return ok;
}

static void assemble(struct bpf_asm *a, const struct bpf_tracer *b, uint64_t cgid,
                     long marker, const struct cgroup_path *btf)
{
    /* Registers: r6 ctx, r7 the counts slot, r8 the syscall slot, r9 in-region flag of
     * a clone (r6-r9 survive helper calls). Stack: -4 u32 counts key; -32..-9 clone key;
     * -40 u64 zero value; -48 u64 clone_args pointer. */
    memset(a, 0, sizeof *a);
    MOV_REG(a, BPF_REG_6, BPF_REG_1);
    if (btf) { /* r0 = current->cgroups->dfl_cgrp->kn->id, loads the verifier checks by BTF */
        CALL(a, BPF_FUNC_get_current_task_btf);
        LDX(a, BPF_DW, BPF_REG_0, BPF_REG_0, (int16_t)btf->task_cgroups);
        LDX(a, BPF_DW, BPF_REG_0, BPF_REG_0, (int16_t)btf->css_dfl_cgrp);
        LDX(a, BPF_DW, BPF_REG_0, BPF_REG_0, (int16_t)btf->cgroup_kn);
        LDX(a, BPF_DW, BPF_REG_0, BPF_REG_0, (int16_t)btf->kn_id);
    } else {
        CALL(a, BPF_FUNC_get_current_cgroup_id);
    }
    ld_imm64(a, BPF_REG_1, 0, cgid);
    JMP_REG(a, BPF_JNE, BPF_REG_0, BPF_REG_1, L_OUT);
    LDX(a, BPF_DW, BPF_REG_8, BPF_REG_6, 8); /* args[1]: the syscall id */
    JMP_IMM(a, BPF_JLT, BPF_REG_8, NR_OTHER, L_IN_RANGE);
    MOV_IMM(a, BPF_REG_8, NR_OTHER);
    label(a, L_IN_RANGE);
    MOV_IMM(a, BPF_REG_9, 0);
    MOV_REG(a, BPF_REG_7, BPF_REG_8);
    if (marker >= 0 && marker < NR_OTHER) { /* markers and the region */
        JMP_IMM(a, BPF_JEQ, BPF_REG_8, (int32_t)marker, L_MARKER);
        LD_MAP_VALUE(a, BPF_REG_1, b->state, STATE_MARKERS);
        LDX(a, BPF_DW, BPF_REG_1, BPF_REG_1, 0);
        JMP_IMM(a, BPF_JNE, BPF_REG_1, 1, L_COUNT);
        ADD_IMM(a, BPF_REG_7, NR_SLOTS);
        MOV_IMM(a, BPF_REG_9, CLONE_IN_REGION);
        GOTO(a, L_COUNT);
        label(a, L_MARKER);
        LD_MAP_VALUE(a, BPF_REG_1, b->state, STATE_MARKERS);
        MOV_IMM(a, BPF_REG_2, 1);
        ATOMIC_ADD(a, BPF_REG_1, BPF_REG_2, 0); /* seen by every CPU */
    }
    /* counts[slot] += 1, on this CPU's copy */
    label(a, L_COUNT);
    STX(a, BPF_W, BPF_REG_10, BPF_REG_7, -4);
    LD_MAP_FD(a, BPF_REG_1, b->counts);
    MOV_REG(a, BPF_REG_2, BPF_REG_10);
    ADD_IMM(a, BPF_REG_2, -4);
    CALL(a, BPF_FUNC_map_lookup_elem);
    JMP_IMM(a, BPF_JEQ, BPF_REG_0, 0, L_CLONE_CHECK);
    LDX(a, BPF_DW, BPF_REG_1, BPF_REG_0, 0);
    ADD_IMM(a, BPF_REG_1, 1);
    STX(a, BPF_DW, BPF_REG_0, BPF_REG_1, 0);
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
    /* the map is full: state.clone_kinds_lost += 1 */
    LD_MAP_VALUE(a, BPF_REG_0, b->state, STATE_CLONES_LOST);
    label(a, L_ADD);
    MOV_IMM(a, BPF_REG_1, 1);
    ATOMIC_ADD(a, BPF_REG_0, BPF_REG_1, 0);
    label(a, L_OUT);
    MOV_IMM(a, BPF_REG_0, 0);
    EXIT(a);
    resolve_labels(a);
}

/* Load the program (the tp_btf form with `btf`, else raw_tp) and attach it: 0, or -1
 * with the kernel's reason (and the verifier's last line) in b->error. */
static int load_and_attach(struct bpf_tracer *b, uint64_t cgid, long marker, const struct cgroup_path *btf)
{
    static struct bpf_asm a;
    static char log[65536];
    assemble(&a, b, cgid, marker, btf);
    union bpf_attr at;
    memset(&at, 0, sizeof at);
    at.prog_type = btf ? BPF_PROG_TYPE_TRACING : BPF_PROG_TYPE_RAW_TRACEPOINT;
    if (btf) {
        at.expected_attach_type = BPF_TRACE_RAW_TP;
        at.attach_btf_id = (uint32_t)btf->attach_btf_id; /* in vmlinux: attach_btf_obj_fd 0 */
    }
    at.insns = (uint64_t)(uintptr_t)a.insn;
    at.insn_cnt = (uint32_t)a.n;
    at.license = (uint64_t)(uintptr_t)"GPL"; /* bpf_probe_read_user is GPL-only */
    at.log_buf = (uint64_t)(uintptr_t)log;
    at.log_size = sizeof log;
    at.log_level = 1;
    log[0] = 0;
    b->prog = (int)sys_bpf(BPF_PROG_LOAD, &at);
    if (b->prog < 0) {
        int e = errno;
        char *last = log;
        for (char *p = strtok(log, "\n"); p; p = strtok(NULL, "\n"))
            last = p;
        snprintf(b->error, sizeof b->error, "bpf(BPF_PROG_LOAD, %s): %s%s%s", btf ? "tp_btf" : "raw_tracepoint",
                 strerror(e), *last ? "; verifier: " : "", last);
        return -1;
    }
    memset(&at, 0, sizeof at);
    /* the tp_btf form is attached where its attach_btf_id says (name NULL) */
    at.raw_tracepoint.name = btf ? 0 : (uint64_t)(uintptr_t)"sys_enter";
    at.raw_tracepoint.prog_fd = (uint32_t)b->prog;
    b->link = (int)sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &at);
    if (b->link < 0) {
        snprintf(b->error, sizeof b->error, "bpf(BPF_RAW_TRACEPOINT_OPEN, sys_enter): %s", strerror(errno));
        close(b->prog);
        return -1;
    }
    return 0;
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
    b->counts = bpf_map(BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(uint32_t), sizeof(uint64_t),
                        2 * NR_SLOTS, "counts");
    b->state = bpf_map(BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), 2 * sizeof(uint64_t), 1, "state");
    b->clones = bpf_map(BPF_MAP_TYPE_HASH, sizeof(struct bpf_clone_key), sizeof(uint64_t),
                        MAX_CLONE_KINDS, "clones");
    struct cgroup_path path;
    const char *want = getenv("PERFLAB_BPF_PROGRAM");
    bool btf = !(want && !strcmp(want, "raw_tp")) && find_cgroup_path(&path);
    if (btf && load_and_attach(b, (uint64_t)st.st_ino, marker, &path) == 0) {
        b->program = "tp_btf";
        return;
    }
    const char *why = load_and_attach(b, (uint64_t)st.st_ino, marker, NULL) == 0 ? NULL : b->error;
    if (why)
        die_unsupported("%s", why);
    b->program = "raw_tp";
}

/* CPUs a per-CPU map holds a value for: the possible ones (the kernel copies one per
 * possible CPU, bpf_percpu_array_copy() in kernel/bpf/arraymap.c), from
 * /sys/devices/system/cpu/possible ("0-1", "0,2-5": Documentation/admin-guide/cputopology.rst). */
static int possible_cpus(void)
{
    char buf[256];
    int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        die("cannot read /sys/devices/system/cpu/possible: %s", n < 0 ? strerror(errno) : "empty");
    buf[n] = 0;
    int count = 0;
    for (char *p = buf; *p && *p != '\n';) {
        long lo = strtol(p, &p, 10), hi = lo;
        if (*p == '-')
            hi = strtol(p + 1, &p, 10);
        count += (int)(hi - lo + 1);
        if (*p == ',')
            p++;
    }
    if (count <= 0 || count > 8192)
        die("cannot parse /sys/devices/system/cpu/possible: %s", buf);
    return count;
}

/* Read the maps into `t` once every traced task has exited, then detach. */
void bpf_finish(struct bpf_tracer *b, struct tally *t)
{
    close(b->link); /* detach first: nothing counts while we read */
    int ncpu = possible_cpus();
    static uint32_t keys[2 * NR_SLOTS];
    uint64_t *v = calloc((size_t)ncpu * 2 * NR_SLOTS, sizeof *v);
    if (!v)
        die("out of memory");
    /* every slot of every CPU in one call (BPF_MAP_LOOKUP_BATCH, Linux 5.6+: bpf(2),
     * kernel/bpf/syscall.c generic_map_lookup_batch); slot by slot where it is refused */
    union bpf_attr at;
    uint32_t out_batch = 0;
    memset(&at, 0, sizeof at);
    at.batch.out_batch = (uint64_t)(uintptr_t)&out_batch;
    at.batch.keys = (uint64_t)(uintptr_t)keys;
    at.batch.values = (uint64_t)(uintptr_t)v;
    at.batch.count = 2 * NR_SLOTS;
    at.batch.map_fd = (uint32_t)b->counts;
    int r = (int)sys_bpf(BPF_MAP_LOOKUP_BATCH, &at);
    bool batched = (r == 0 || errno == ENOENT) && at.batch.count == 2 * NR_SLOTS;
    for (uint32_t k = 0; k < 2 * NR_SLOTS; k++) {
        uint64_t *cpus = v + (size_t)k * (size_t)ncpu;
        if (!batched)
            keys[k] = k;
        if (!batched && bpf_lookup(b->counts, &k, cpus))
            die("bpf(BPF_MAP_LOOKUP_ELEM, counts): %s", strerror(errno));
        if (keys[k] >= 2 * NR_SLOTS)
            die("bpf(BPF_MAP_LOOKUP_BATCH, counts): key %u", keys[k]);
        uint64_t sum = 0;
        for (int c = 0; c < ncpu; c++)
            sum += cpus[c];
        t->calls[keys[k] % NR_SLOTS] += sum;
        if (keys[k] >= NR_SLOTS)
            t->region[keys[k] - NR_SLOTS] = sum;
    }
    free(v);
    uint32_t k0 = 0;
    uint64_t state[2];
    if (bpf_lookup(b->state, &k0, state))
        die("bpf(BPF_MAP_LOOKUP_ELEM, state): %s", strerror(errno));
    t->markers = state[0];
    t->clones_lost = state[1];
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
    /* Runs the kernel skipped (a nested run on one CPU: see the top): calls not counted */
    struct bpf_prog_info info;
    memset(&info, 0, sizeof info);
    memset(&at, 0, sizeof at);
    at.info.bpf_fd = (uint32_t)b->prog;
    at.info.info_len = sizeof info;
    at.info.info = (uint64_t)(uintptr_t)&info;
    if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &at))
        die("bpf(BPF_OBJ_GET_INFO_BY_FD): %s", strerror(errno));
    b->missed = info.recursion_misses;
    close(b->prog);
    close(b->counts);
    close(b->state);
    close(b->clones);
}
