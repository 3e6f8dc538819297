"""The CPU core: Unicorn running user code at CPL 3 on real 4-level page tables in emulated physical memory.

Imports nothing of the kernel or the tools: only the standard library, unicorn, capstone and keystone.
The kernel is reached through the trap object a `Cpu` is given (`page_fault`, `syscall`, `exception`,
`invalid_opcode`); the kernel reaches the CPU through `faultlab.kernel.arch.cpu_interface`.
"""
