/* sysfuzz: issue N random system calls with random arguments from a seed, and check that the
 * program's own memory that no call was given stayed intact.
 *
 *   sysfuzz SEED N [VERBOSE]
 *   sysfuzz SEED N compare [NR,...]
 *                            print every call's outcome ("NR ERRNO (ARGS)", ERRNO 0 for success) for a
 *                            comparison with the same seed run natively (tests/test_fuzz_sys.py); the calls
 *                            of nocompare[] and the numbers NR,... are not issued, the paths page is
 *                            read-only and the scratch buffer gets its first contents back before each
 *                            call, so that no result can steer a later call
 *
 * Numbers: every number 0..463 plus unknown ones (500..1023, huge, negative), except the few that would
 * end the run (exit, exit_group, kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo, rt_sigreturn,
 * execve, execveat, fork, vfork, clone, clone3), change the thread itself (arch_prctl, set_tid_address, rseq, sigaltstack, rt_sigaction with
 * a handler) or legitimately block (pause, nanosleep, clock_nanosleep, futex, wait4, waitid,
 * rt_sigsuspend, rt_sigtimedwait, poll, ppoll, select, pselect6, epoll_wait, epoll_pwait(2), alarm,
 * setitimer, timer_settime, msgrcv, semop, semtimedop, accept, accept4, recvfrom, recvmsg, recvmmsg,
 * io_getevents, flock, pidfd_*, pipe and pipe2 whose empty pipe a later read would wait on ...);
 * files that could make a later read wait are made non-blocking (eventfd2, userfaultfd, socket,
 * socketpair; F_SETFL keeps O_NONBLOCK, FIONBIO becomes FIONCLEX, F_SETLKW becomes F_SETLK); the
 * signals the kernel may send by itself are ignored and F_SETSIG becomes F_GETSIG.
 * Arguments: pointers into mapped read-write memory (a scratch buffer followed by an unmapped guard
 * page), read-only memory (the program text and a read-only page), unmapped memory, the kernel half,
 * non-canonical addresses, an arena for the memory calls; lengths from 0 to huge; fds valid, closed,
 * negative and huge; paths from a table; random integers.
 * Memory calls (mmap, munmap, mprotect, mremap, madvise, mlock, msync, mincore, brk ...) get addresses
 * inside the arena, or bad ones (kernel half, unaligned, non-canonical) that cannot touch the rest.
 *
 * Checks: every return value is >= 0 or a Linux errno (-4095..-1); the text, a read-only page, a .bss
 * block, a heap block and a stack block keep their checksums. Output goes to a saved fd (200) that no
 * call may close or replace; it ends with "sysfuzz done" and exit status 0 when every check passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define OUT_FD 200
#define SCRATCH_SIZE (64 << 10)
#define ARENA_BASE 0x100000000000UL
#define ARENA_SIZE (16UL << 20)
#define NR_MAX 464

extern char __executable_start[], etext[];

static uint64_t rng;
static unsigned char bss_block[64 << 10];
static unsigned char *scratch, *ro_page, *heap_block, *paths_page;
static unsigned long counts[4096 + 2];   /* by errno; [0] = success; [4096] = bad returns */
static int verbose, compare;
static unsigned char *scratch_init;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

static long raw_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5)
{
    long ret;
    register long r10 __asm__("r10") = a3;
    register long r8 __asm__("r8") = a4;
    register long r9 __asm__("r9") = a5;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = sizeof buf - 1;
    raw_syscall(1, OUT_FD, (long)buf, n, 0, 0, 0);
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* ---- argument generators ------------------------------------------------------------------ */
static long gen_ptr(void)
{
    switch (below(12)) {
    case 0: return 0;
    case 1: case 2: case 3: return (long)(scratch + below(SCRATCH_SIZE));
    case 4: return (long)(scratch + SCRATCH_SIZE - below(64));        /* runs into the guard page */
    case 5: return (long)(ro_page + below(4096));
    case 6: return (long)(__executable_start + below(etext - __executable_start));
    case 7: return (long)(scratch + SCRATCH_SIZE + below(4096));       /* the unmapped guard page */
    case 8: return (long)(0xffff800000000000UL + (below(1 << 20) << 12) + below(2) * below(4096));
    case 9: return (long)(0x0000800000000000UL + below(1UL << 40));   /* non-canonical */
    case 10: return (long)(ARENA_BASE + below(ARENA_SIZE));
    default: return (long)(paths_page + 64 * below(16));
    }
}

static long gen_len(void)
{
    switch (below(8)) {
    case 0: return 0;
    case 1: return 1 + below(16);
    case 2: return below(4096);
    case 3: return below(SCRATCH_SIZE + 8192);
    case 4: return 1L << (20 + below(43));
    case 5: return -1;
    case 6: return -(long)below(1 << 20);
    default: return 0x7ffff000;
    }
}

static long gen_fd(void)
{
    switch (below(8)) {
    case 0: return -1;
    case 1: return -100;              /* AT_FDCWD */
    case 2: return -(long)below(1L << 31);
    case 3: return 0xffffffffL;
    case 4: return 1000000;
    default: return below(12);
    }
}

static long gen_int(void)
{
    switch (below(8)) {
    case 0: return 0;
    case 1: return below(16);
    case 2: return below(1 << 16);
    case 3: return (long)(uint32_t)rnd();
    case 4: return (long)rnd();
    case 5: return -1;
    case 6: return 1L << below(64);
    default: return -(long)below(256);
    }
}

static long gen_any(void)
{
    switch (below(4)) {
    case 0: return gen_ptr();
    case 1: return gen_len();
    case 2: return gen_fd();
    default: return gen_int();
    }
}

/* an address for a memory call: inside the arena, or one that cannot reach anything else */
static long gen_mm_addr(void)
{
    switch (below(10)) {
    case 0: return 0xffff800000000000UL + (below(1 << 20) << 12);
    case 1: return ARENA_BASE + below(ARENA_SIZE);                      /* unaligned */
    case 2: return 0x0000800000000000UL;
    case 3: return 0;                                                   /* with a short length */
    default: return ARENA_BASE + (below(ARENA_SIZE >> 12) << 12);
    }
}

static long gen_mm_len(long addr)
{
    if (addr >= (long)ARENA_BASE && addr < (long)(ARENA_BASE + ARENA_SIZE)) {
        long room = ARENA_BASE + ARENA_SIZE - addr;
        switch (below(6)) {
        case 0: return 0;
        case 1: return -1;                      /* invalid */
        default: return below(room < (64 << 12) ? room : (64 << 12)) + 1;
        }
    }
    if (addr == 0)
        return below(0x10000);                  /* below mmap_min_addr: nothing is mapped there */
    return below(2) ? gen_len() : 1L << 47;
}

/* the calls ordinary programs make (most of the draws, so they get deep coverage) */
static const short common[] = {
    0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 16, 17, 18, 19, 20, 21, 24, 25, 26, 27, 28, 32, 33, 39,
    40, 63, 72, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 95, 96, 97, 99,
    102, 104, 107, 108, 110, 137, 138, 149, 150, 151, 152, 160, 161, 162, 186, 201, 204, 217, 221, 228,
    229, 257, 258, 262, 263, 264, 265, 266, 267, 268, 269, 273, 280, 285, 292, 295, 296, 302, 309, 316,
    318, 319, 325, 326, 332, 439,
};

static int skipped(long nr)
{
    switch (nr) {
    case 60: case 231:                          /* exit, exit_group */
    case 62: case 200: case 234:                /* kill, tkill, tgkill */
    case 129: case 297:                         /* rt_sigqueueinfo, rt_tgsigqueueinfo (pid 1 is us here) */
    case 22: case 293:                          /* pipe, pipe2: a read of our own empty pipe blocks */
    case 15: case 59: case 322:                 /* rt_sigreturn, execve, execveat */
    case 56: case 57: case 58: case 435:        /* clone, fork, vfork, clone3 */
    case 158: case 218: case 334: case 131:     /* arch_prctl, set_tid_address, rseq, sigaltstack */
    case 34: case 35: case 230: case 202:       /* pause, nanosleep, clock_nanosleep, futex */
    case 61: case 247: case 130: case 128:      /* wait4, waitid, rt_sigsuspend, rt_sigtimedwait */
    case 7: case 271: case 23: case 270:        /* poll, ppoll, select, pselect6 */
    case 232: case 281: case 441:               /* epoll_wait, epoll_pwait, epoll_pwait2 */
    case 37: case 38: case 223: case 286:       /* alarm, setitimer, timer_settime, timerfd_settime */
    case 69: case 70: case 65: case 220:        /* msgsnd, msgrcv, semop, semtimedop */
    case 43: case 288: case 45: case 47: case 299:  /* accept, accept4, recvfrom, recvmsg, recvmmsg */
    case 208: case 73: case 101: case 169:      /* io_getevents, flock, ptrace, reboot */
    case 424: case 434: case 438: case 448:     /* pidfd_send_signal, pidfd_open, pidfd_getfd, process_mrelease */
    case 310: case 311:                         /* process_vm_readv/writev (could target us) */
    case 160: case 302:                         /* setrlimit, prlimit64: new limits only as below */
    case 157: case 317:                         /* prctl, seccomp */
    case 13:                                    /* rt_sigaction: handlers only as below */
    case 335: case 336:                         /* uretprobe, uprobe: SIGILL outside the uprobe trampoline */
    case 284:                                   /* eventfd: a blocking file (eventfd2 is issued O_NONBLOCK) */
        return 1;
    }
    return 0;
}

/* compare mode: calls not issued, because their outcome legitimately differs between faultlab and the
 * host, or because natively (as root, in fresh namespaces, chrooted) they would change the host */
static const struct { short nr; const char *why; } nocompare[] = {
    {159, "adjtimex: sets the host's clock"}, {164, "settimeofday: sets the host's clock and timezone"},
    {227, "clock_settime: sets the host's clock"}, {305, "clock_adjtime: sets the host's clock"},
    {103, "syslog: reads or clears the host's kernel log"}, {153, "vhangup: hangs up the host terminal"},
    {163, "acct: process accounting of the host"}, {167, "swapon: host swap"}, {168, "swapoff: host swap"},
    {175, "init_module: host kernel"}, {176, "delete_module: host kernel"}, {313, "finit_module: host kernel"},
    {246, "kexec_load: host kernel"}, {320, "kexec_file_load: host kernel"},
    {172, "iopl: host I/O ports"}, {173, "ioperm: host I/O ports"}, {179, "quotactl: host quotas"},
    {443, "quotactl_fd: host quotas"}, {304, "open_by_handle_at: opens host files outside the chroot"},
    {298, "perf_event_open: host PMU"}, {321, "bpf: host kernel"},
    {248, "add_key: the keyrings of the host's root user"}, {249, "request_key: host keyrings"},
    {250, "keyctl: host keyrings"},
};

static char no_nr[NR_MAX];                  /* compare mode: the numbers given on the command line */

static const char *nocompare_why(long nr)
{
    if (nr >= 0 && nr < NR_MAX && no_nr[nr])
        return "excluded on the command line";
    for (size_t i = 0; i < sizeof nocompare / sizeof nocompare[0]; i++)
        if (nocompare[i].nr == nr)
            return nocompare[i].why;
    return 0;
}

/* calls whose arguments need shaping so they cannot end or corrupt the run */
static int shaped(long nr, long a[6])
{
    switch (nr) {
    case 9:                                     /* mmap */
        a[0] = gen_mm_addr();
        a[1] = gen_mm_len(a[0]);
        a[2] = below(8);
        a[3] = (below(4) ? 0 : rnd()) | (below(3) + 1) | 0x20 * below(2) |
               (below(3) ? 0x10 : 0) | 0x100000 * below(2) | (below(4) ? 0 : 0x8000);
        if (!(a[3] & 0x10) && !(a[3] & 0x100000))  /* non-fixed: the hint must stay in the arena */
            a[0] = ARENA_BASE + (below(ARENA_SIZE >> 12) << 12);
        a[4] = gen_fd();
        a[5] = below(4) ? 0 : gen_int();
        if (!(a[3] & 0x110))                    /* a non-fixed mapping lands anywhere: keep it small */
            a[1] = below(1 << 20) + 1;
        if (compare && ((a[3] >> 26) & 0x3f) == 30) /* MAP_HUGE_1GB: faultlab has 2 MiB huge pages only */
            a[3] = (a[3] & ~(0x3fL << 26)) | (21L << 26);
        return 1;
    case 10: case 11: case 26: case 27: case 28: case 149: case 150: case 325: case 329: case 216:
        /* mprotect, munmap, msync, mincore, madvise, mlock, munlock, mlock2, pkey_mprotect,
           remap_file_pages */
        a[0] = gen_mm_addr();
        a[1] = gen_mm_len(a[0]);
        a[2] = nr == 27 ? gen_ptr() : nr == 28 ? (below(2) ? below(26) : gen_int()) : gen_int();
        a[3] = gen_int();
        return 1;
    case 25:                                    /* mremap */
        a[0] = gen_mm_addr();
        a[1] = gen_mm_len(a[0]);
        a[2] = gen_mm_len(a[0]);
        a[3] = below(8);
        a[4] = ARENA_BASE + (below(ARENA_SIZE >> 12) << 12);
        if (below(4) == 0)
            a[4] = gen_mm_addr();
        if (a[3] & 2 && (a[4] < (long)ARENA_BASE || a[4] >= (long)(ARENA_BASE + ARENA_SIZE)))
            a[4] = 0xffff800000000000UL;
        return 1;
    case 133: case 259: {                       /* mknod, mknodat: no device nodes (natively: host devices) */
        if (!compare)
            return 0;
        int m = nr == 133 ? 1 : 2;              /* mknod(path, mode, dev), mknodat(dirfd, path, mode, dev) */
        if (nr == 259)
            a[0] = gen_fd();
        a[m - 1] = gen_ptr();
        long type = a[m] & 0170000;
        if (type == 0020000 || type == 0060000)
            a[m] = (a[m] & ~0170000L) | 0010000; /* a character or block device becomes a FIFO */
        return 1;
    }
    case 12:                                    /* brk: only values that cannot shrink the heap */
        a[0] = below(2) ? 0 : 0xffff800000000000UL + below(1 << 20);
        return 1;
    case 151: case 152:                         /* mlockall: MCL_FUTURE would populate everything */
        a[0] = below(2) ? 0 : 8 + below(8);
        return 1;
    case 3: case 436:                           /* close, close_range: never our output */
        a[0] = gen_fd();
        a[1] = a[0] + below(4);
        if (a[0] <= OUT_FD && a[1] >= OUT_FD)
            a[1] = OUT_FD - 1;
        return 1;
    case 160: case 302:                         /* setrlimit, prlimit64: query or bad pointers only */
        a[0] = nr == 160 ? gen_int() : below(2) ? 0 : gen_int();
        a[1] = nr == 160 ? (below(2) ? 0 : 0xffff800000000000UL) : gen_int();
        if (nr == 302) {
            a[2] = below(2) ? 0 : 0xffff800000000000UL;
            a[3] = gen_ptr();
        }
        return 1;
    case 72:                                    /* fcntl: F_SETLKW and F_OFD_SETLKW could wait for ever */
        if (((int)a[1] == 7 || (int)a[1] == 38))
            a[1] -= 1;                          /* F_SETLK, F_OFD_SETLK */
        if ((int)a[1] == 4)                     /* F_SETFL keeps O_NONBLOCK: a later read must not wait */
            a[2] |= O_NONBLOCK;
        if ((int)a[1] == 10)                    /* F_SETSIG: I/O and lease signals stay SIGIO (ignored) */
            a[1] = 11;
        return 0;
    case 16:                                    /* ioctl: FIONBIO could clear O_NONBLOCK; FIONCLEX instead */
        if ((int)a[1] == 0x5421)
            a[1] = 0x5450;
        return 0;
    case 290: case 323:                         /* eventfd2, userfaultfd: non-blocking files */
        a[nr == 290 ? 1 : 0] |= O_NONBLOCK;
        return 0;
    case 29:                                    /* shmget: no segment bigger than 16 MiB (natively, the */
        if ((unsigned long)a[1] > (16UL << 20) && a[1] > 0) /* host's memory limit killed the run) */
            a[1] &= (16UL << 20) - 1;
        return 0;
    case 41: case 53:                           /* socket, socketpair: SOCK_NONBLOCK */
        a[1] |= O_NONBLOCK;
        return 0;
    case 13:                                    /* rt_sigaction: query, or a bad new action */
        a[0] = gen_int();
        a[1] = below(2) ? 0 : below(2) ? 0xffff800000000000UL : (long)(scratch + SCRATCH_SIZE);
        a[2] = gen_ptr();
        a[3] = below(2) ? 8 : gen_int();
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned char stack_block[16 << 10];
    if (argc < 3) {
        fprintf(stderr, "usage: sysfuzz SEED N [VERBOSE]\n");
        return 2;
    }
    rng = strtoull(argv[1], 0, 0) * 0x9E3779B97F4A7C15ULL + 1;
    long n = strtol(argv[2], 0, 0);
    verbose = argc > 3 && atoi(argv[3]);
    compare = argc > 3 && !strcmp(argv[3], "compare");
    for (char *p = argc > 4 ? argv[4] : "", *end; *p; p = *end ? end + 1 : end) {
        long x = strtol(p, &end, 0);
        if (end != p && x >= 0 && x < NR_MAX)
            no_nr[x] = 1;
    }
    if (dup2(1, OUT_FD) != OUT_FD)
        return 3;
    /* signals the calls can make the kernel send by itself (SIGIO after F_SETOWN and O_ASYNC, SIGPIPE,
     * SIGXFSZ, timers) would end the run, natively at a moment the comparison cannot reproduce */
    static const int async_sigs[] = {SIGPIPE, SIGIO, SIGXFSZ, SIGXCPU, SIGALRM, SIGVTALRM, SIGPROF};
    for (size_t i = 0; i < sizeof async_sigs / sizeof async_sigs[0]; i++)
        signal(async_sigs[i], SIG_IGN);
    /* and in compare mode every signal but the synchronous ones, the real-time ones too (a native run
     * was ended by one at different calls from run to run: glibc's signal() refuses 32 and 33) */
    for (long sig = 1; compare && sig <= 64; sig++) {
        struct { long handler, flags, restorer, mask; } ign = {1 /* SIG_IGN */, 0, 0, 0};
        if (sig != SIGKILL && sig != SIGSTOP && sig != SIGSEGV && sig != SIGBUS && sig != SIGILL &&
                sig != SIGFPE && sig != SIGTRAP && sig != SIGABRT && sig != SIGSYS)
            raw_syscall(13, sig, (long)&ign, 0, 8, 0, 0);
    }

    /* the regions no call gets a pointer to, filled with a pattern */
    for (size_t i = 0; i < sizeof bss_block; i++)
        bss_block[i] = (unsigned char)(i * 7 + 3);
    heap_block = malloc(256 << 10);
    for (size_t i = 0; i < (256 << 10); i++)
        heap_block[i] = (unsigned char)(i * 13 + 1);
    for (size_t i = 0; i < sizeof stack_block; i++)
        stack_block[i] = (unsigned char)(i * 5 + 9);
    /* scratch: read-write, then an unmapped guard page */
    scratch = mmap(0, SCRATCH_SIZE + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ro_page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    paths_page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (scratch == MAP_FAILED || ro_page == MAP_FAILED || paths_page == MAP_FAILED)
        return 4;
    munmap(scratch + SCRATCH_SIZE, 4096);
    for (int i = 0; i < 4096; i++)
        ro_page[i] = (unsigned char)(i * 11 + 5);
    mprotect(ro_page, 4096, PROT_READ);
    /* the arena for memory calls: reserved, inaccessible */
    if (mmap((void *)ARENA_BASE, ARENA_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
            != (void *)ARENA_BASE)
        return 5;
    static const char *paths[16] = {
        "/tmp/fz0", "/tmp/fz1", "/tmp/fzdir", "/tmp/fzdir/x", "/proc/self/maps", "/dev/null", "/dev/zero",
        "/", ".", "..", "/nonexistent/x", "", "/tmp/../../../..", "/proc/self/status", "/etc/passwd",
        "/proc/self/mem",
    };
    for (int i = 0; i < 16; i++)
        strcpy((char *)paths_page + 64 * i, paths[i]);
    /* some open files for the fds 3.. to name */
    int fd0 = open("/dev/null", O_RDWR);
    open("/dev/zero", O_RDONLY);
    open("/tmp/fzfile", O_RDWR | O_CREAT | O_TRUNC, 0600);
    open("/proc/self/maps", O_RDONLY);
    open("/tmp", O_RDONLY | O_DIRECTORY);
    memfd_create("fz", 0);
    dup2(fd0, 0);
    dup2(fd0, 1);
    dup2(fd0, 2);
    for (int i = 0; i < SCRATCH_SIZE; i++)
        scratch[i] = (unsigned char)rnd();
    if (compare) {
        scratch_init = malloc(SCRATCH_SIZE);
        memcpy(scratch_init, scratch, SCRATCH_SIZE);
        mprotect(paths_page, 4096, PROT_READ);
    }

    uint64_t sum_text = fnv((unsigned char *)__executable_start, etext - __executable_start);
    uint64_t sum_ro = fnv(ro_page, 4096);
    uint64_t sum_bss = fnv(bss_block, sizeof bss_block);
    uint64_t sum_heap = fnv(heap_block, 256 << 10);
    uint64_t sum_stack = fnv(stack_block, sizeof stack_block);

    long done = 0, skips = 0, bad = 0;
    while (done < n) {
        long nr;
        switch (below(16)) {
        case 0: nr = 500 + below(524); break;                    /* unknown numbers */
        case 1: nr = below(2) ? (long)rnd() : 0x40000000L + below(NR_MAX); break;   /* huge, x32 bit */
        case 2: case 3: case 4: case 5: nr = below(NR_MAX); break;
        default: nr = common[below(sizeof common / sizeof common[0])]; break;
        }
        long a[6];
        for (int i = 0; i < 6; i++)
            a[i] = gen_any();
        /* compare mode: no MADV_COLLAPSE (25), transparent huge pages are not emulated */
        if ((!shaped(nr, a) && skipped(nr)) || (compare && (nocompare_why(nr) || (nr == 28 && a[2] == 25)))) {
            skips++;
            continue;
        }
        for (int i = 0; i < 6; i++)
            if (a[i] == OUT_FD)
                a[i] = -1;
        if (verbose)
            out("call %ld: nr %ld (%#lx, %#lx, %#lx, %#lx, %#lx, %#lx)\n", done, nr, a[0], a[1], a[2], a[3],
                a[4], a[5]);
        if (compare)
            memcpy(scratch, scratch_init, SCRATCH_SIZE);
        long r = raw_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        if (compare)
            out("%ld %ld (%#lx, %#lx, %#lx, %#lx, %#lx, %#lx)\n", nr,
                r >= 0 || nr == 12 ? 0 : -r, a[0], a[1], a[2], a[3],
                a[4], a[5]);
        if (verbose)
            out("  -> %ld\n", r);
        if (r >= 0 || nr == 12)
            counts[0]++;
        else if (r >= -4095)
            counts[-r]++;
        else {
            counts[4096]++;
            if (bad++ < 10)
                out("bad return: nr %ld returned %ld\n", nr, r);
        }
        done++;
    }

    int corrupt = 0;
#define CHECK(name, now, then) do { if ((now) != (then)) { out("region %s: CORRUPT\n", name); corrupt++; } \
                                    else out("region %s: ok\n", name); } while (0)
    CHECK("text", fnv((unsigned char *)__executable_start, etext - __executable_start), sum_text);
    CHECK("ro_page", fnv(ro_page, 4096), sum_ro);
    CHECK("bss", fnv(bss_block, sizeof bss_block), sum_bss);
    CHECK("heap", fnv(heap_block, 256 << 10), sum_heap);
    CHECK("stack", fnv(stack_block, sizeof stack_block), sum_stack);
    out("sysfuzz seed=%s calls=%ld skipped=%ld ok=%lu bad=%lu\n", argv[1], done, skips, counts[0], counts[4096]);
    for (int e = 1; e < 4096; e++)
        if (counts[e])
            out("errno %d: %lu\n", e, counts[e]);
    if (corrupt || bad)
        return 1;
    out("sysfuzz done\n");
    return 0;
}
