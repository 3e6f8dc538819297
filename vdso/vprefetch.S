# faultlab x86-64 vDSO: prefetch_page() and the time/cpu calls.
#
# Intel syntax, assembled by keystone through vdso/image.py, which also reads the
# ELF-level directives below itself (keystone does not know them) and removes them:
#   .globl NAME / .weak NAME     export NAME as a dynamic symbol (version LINUX_2.6)
#   .type NAME, @function        the symbol is STT_FUNC
#   .size NAME, .-NAME           symbol size = distance from NAME to here
#   .set ALIAS, NAME             (kept for keystone) ALIAS has NAME's address and size
#   .vdso_extable INSN, FIXUP, MASK, FLAGS
#                                one __ex_table entry: a trap whose number has its bit
#                                set in MASK, raised at INSN, resumes at FIXUP
# The builder also defines, before this text:
#   VVAR_SEQ, VVAR_CPU, VVAR_NODE, VVAR_CLOCK_NS, VVAR_NR_CLOCKS, VVAR_CLOCK_MASK
#                                the vvar layout (vdso/vvar.py)
#   vvar_page                    address of the vvar page, one page before the image;
#                                use it RIP-relative: [rip + vvar_page + FIELD]
#   X86_TRAP_PF, VDSO_EX_ASYNC   trap number of #PF, the ASYNC extable flag
#   NR_clock_gettime, NR_clock_getres   system call numbers for the fallbacks
#
# Only '#' comments; no sections: everything here is .text.
#
# Numbers of two or more digits are written as 0x literals: keystone's radix is not
# reliable, so a bare 1000 might be read as 0x1000 (emu/core/asm.py refuses such a source and
# checks every assembled instruction against this text with capstone).

# ---------------------------------------------------------------------------------
# long __vdso_prefetch_page(const void *p)
#
# Touches one byte at p.  Returns 0 if the page is accessible after the call.  If the
# access faults, the kernel finds the load in the exception table; when it cannot (or
# will not) make the page present without waiting it resumes at the fixup, which
# returns -1.
# ---------------------------------------------------------------------------------
    .globl __vdso_prefetch_page
    .type __vdso_prefetch_page, @function
__vdso_prefetch_page:
    push rbp
    mov rbp, rsp
    xor eax, eax
.Lprefetch_load:
    movzx ecx, byte ptr [rdi]
.Lprefetch_out:
    pop rbp
    ret
.Lprefetch_fixup:
    mov rax, -1
    jmp .Lprefetch_out
    .size __vdso_prefetch_page, .-__vdso_prefetch_page
    .vdso_extable .Lprefetch_load, .Lprefetch_fixup, 1 << X86_TRAP_PF, VDSO_EX_ASYNC

    .p2align 4, 0xcc

# ---------------------------------------------------------------------------------
# int __vdso_clock_gettime(clockid_t clk, struct timespec *ts)
#
# Clocks with their bit in VVAR_CLOCK_MASK are read from the vvar page; any other id
# (CPU-time clocks, negative per-process/thread ids, invalid ids) goes to the system
# call, whose result (0 or -errno) is returned unchanged.
# ---------------------------------------------------------------------------------
    .globl __vdso_clock_gettime
    .type __vdso_clock_gettime, @function
__vdso_clock_gettime:
    cmp edi, VVAR_NR_CLOCKS - 1
    ja .Lgettime_syscall
    mov eax, VVAR_CLOCK_MASK
    bt eax, edi
    jnc .Lgettime_syscall
    mov r9d, edi
    call .Lread_clock_ns
    call .Lsplit_ns
    mov qword ptr [rsi], rax
    mov qword ptr [rsi + 8], rdx
    xor eax, eax
    ret
.Lgettime_syscall:
    mov eax, NR_clock_gettime
    syscall
    ret
    .size __vdso_clock_gettime, .-__vdso_clock_gettime

    .p2align 4, 0xcc

# ---------------------------------------------------------------------------------
# int __vdso_clock_getres(clockid_t clk, struct timespec *res)
#
# The vvar clocks have a resolution of 1 ns (res may be NULL); others use the syscall.
# ---------------------------------------------------------------------------------
    .globl __vdso_clock_getres
    .type __vdso_clock_getres, @function
__vdso_clock_getres:
    cmp edi, VVAR_NR_CLOCKS - 1
    ja .Lgetres_syscall
    mov eax, VVAR_CLOCK_MASK
    bt eax, edi
    jnc .Lgetres_syscall
    test rsi, rsi
    jz .Lgetres_done
    mov qword ptr [rsi], 0
    mov qword ptr [rsi + 8], 1
.Lgetres_done:
    xor eax, eax
    ret
.Lgetres_syscall:
    mov eax, NR_clock_getres
    syscall
    ret
    .size __vdso_clock_getres, .-__vdso_clock_getres

    .p2align 4, 0xcc

# ---------------------------------------------------------------------------------
# int __vdso_gettimeofday(struct timeval *tv, struct timezone *tz)
#
# tv (if not NULL) gets CLOCK_REALTIME in seconds and microseconds; tz (if not NULL)
# is zeroed (minutes west 0, no DST).
# ---------------------------------------------------------------------------------
    .globl __vdso_gettimeofday
    .type __vdso_gettimeofday, @function
__vdso_gettimeofday:
    test rdi, rdi
    jz .Lgtod_tz
    xor r9d, r9d
    call .Lread_clock_ns
    call .Lsplit_ns
    mov qword ptr [rdi], rax
    mov rax, rdx
    xor edx, edx
    mov ecx, 0x3e8                       # 1000: ns per us
    div rcx
    mov qword ptr [rdi + 8], rax
.Lgtod_tz:
    test rsi, rsi
    jz .Lgtod_done
    mov qword ptr [rsi], 0
.Lgtod_done:
    xor eax, eax
    ret
    .size __vdso_gettimeofday, .-__vdso_gettimeofday

    .p2align 4, 0xcc

# ---------------------------------------------------------------------------------
# time_t __vdso_time(time_t *t)
#
# Seconds of CLOCK_REALTIME, also stored to *t when t is not NULL.
# ---------------------------------------------------------------------------------
    .globl __vdso_time
    .type __vdso_time, @function
__vdso_time:
    xor r9d, r9d
    call .Lread_clock_ns
    call .Lsplit_ns
    test rdi, rdi
    jz .Ltime_done
    mov qword ptr [rdi], rax
.Ltime_done:
    ret
    .size __vdso_time, .-__vdso_time

    .p2align 4, 0xcc

# ---------------------------------------------------------------------------------
# long __vdso_getcpu(unsigned *cpu, unsigned *node, void *cache)
#
# cpu and node from the vvar page; either pointer may be NULL; cache is unused.
# ---------------------------------------------------------------------------------
    .globl __vdso_getcpu
    .type __vdso_getcpu, @function
__vdso_getcpu:
    lea rcx, [rip + vvar_page]
    test rdi, rdi
    jz .Lgetcpu_node
    mov eax, dword ptr [rcx + VVAR_CPU]
    mov dword ptr [rdi], eax
.Lgetcpu_node:
    test rsi, rsi
    jz .Lgetcpu_done
    mov eax, dword ptr [rcx + VVAR_NODE]
    mov dword ptr [rsi], eax
.Lgetcpu_done:
    xor eax, eax
    ret
    .size __vdso_getcpu, .-__vdso_getcpu

    .p2align 4, 0xcc

# ---------------------------------------------------------------------------------
# Local helpers (not exported).
#
# .Lread_clock_ns: r9 = clock id (zero-extended, must be < VVAR_NR_CLOCKS)
#   -> rax = clock_ns[r9] (+ rdtsc * tsc_mult >> 32 when tsc_mult is set), read consistently
#   under the vvar sequence count. Clobbers rcx, r8, r10, r11 (rdx is preserved).
# .Lsplit_ns: rax = nanoseconds -> rax = seconds, rdx = remaining nanoseconds.
#   Clobbers rcx.
# ---------------------------------------------------------------------------------
.Lread_clock_ns:
    lea rcx, [rip + vvar_page]
.Lread_clock_retry:
    mov r8, qword ptr [rcx + VVAR_SEQ]
    test r8d, 1
    jnz .Lread_clock_busy
    mov rax, qword ptr [rcx + VVAR_TSC_MULT]
    test rax, rax
    jz .Lread_clock_static
    mov r10, rdx
    mov r11, rax
    rdtsc
    shl rdx, 0x20
    or rax, rdx
    mul r11
    shrd rax, rdx, 0x20
    mov rdx, r10
    add rax, qword ptr [rcx + r9*8 + VVAR_CLOCK_NS]
    jmp .Lread_clock_check
.Lread_clock_static:
    mov rax, qword ptr [rcx + r9*8 + VVAR_CLOCK_NS]
.Lread_clock_check:
    cmp r8, qword ptr [rcx + VVAR_SEQ]
    jne .Lread_clock_retry
    ret
.Lread_clock_busy:
    pause
    jmp .Lread_clock_retry

.Lsplit_ns:
    xor edx, edx
    mov ecx, 0x3b9aca00                  # 1000000000: ns per s
    div rcx
    ret

# ---------------------------------------------------------------------------------
# Unprefixed names, as the Linux vDSO exports them (weak aliases).
# ---------------------------------------------------------------------------------
    .weak prefetch_page
    .type prefetch_page, @function
    .set prefetch_page, __vdso_prefetch_page
    .weak clock_gettime
    .type clock_gettime, @function
    .set clock_gettime, __vdso_clock_gettime
    .weak clock_getres
    .type clock_getres, @function
    .set clock_getres, __vdso_clock_getres
    .weak gettimeofday
    .type gettimeofday, @function
    .set gettimeofday, __vdso_gettimeofday
    .weak time
    .type time, @function
    .set time, __vdso_time
    .weak getcpu
    .type getcpu, @function
    .set getcpu, __vdso_getcpu
