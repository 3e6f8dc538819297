/* elftiny: a minimal static x86-64 program with no libc (text, data and bss segments), the base
 * the ELF-loader fuzzer mutates. It writes "tiny\n", checks that its bss is zero, and exits 0. */
        .text
        .globl _start
_start:
        mov     $1, %eax                /* write(1, msg, 5) */
        mov     $1, %edi
        lea     msg(%rip), %rsi
        mov     $5, %edx
        syscall
        mov     bss_word(%rip), %rdi    /* exit status: the bss word (0) */
        incq    counter(%rip)           /* a write to .data */
        mov     $60, %eax
        syscall
        hlt

        .data
msg:    .ascii  "tiny\n"
counter: .quad  41

        .bss
bss_word: .quad 0
        .space  8192
