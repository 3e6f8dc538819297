"""emu/core/asm.py: keystone's radix is set, sources cannot depend on it, and capstone checks what was assembled.

keystone 0.9.2 reads an uninitialised MCAsmInfo::Radix on a fresh engine. Heap chunks of that object's
size freed with a value in them decide it: leaving 10 or 16 there makes a fresh engine lex decimals in
that radix, deterministically (the subprocess below does that before it opens the engine).
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, run_native
from faultlab.core import asm
from faultlab.core import blockcount
from faultlab.core import fastfault
from faultlab.core.asm import AsmMismatch, AsmSourceError, NativeCode, NativeStateError, assemble, lint, make_engine, verify
from faultlab.vdso.image import build_vdso_image

# Runs in a fresh interpreter: leave `radix` in freed chunks of the size keystone allocates its MCAsmInfo
# from (336 bytes), then assemble with a fresh engine, as keystone's own tutorial does.
_POISON = r'''
import ctypes, json, sys
import keystone
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def poison(value):
    chunks = [libc.malloc(336) for _ in range(8)]
    for p in chunks:
        (ctypes.c_uint32 * 84).from_address(p)[:] = [value] * 84
    for p in chunks:
        libc.free(p)
'''

_FRESH_ASM = _POISON + r'''
job = json.load(sys.stdin)
out = []
for radix in job['radixes']:
    poison(radix)
    ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)
    out.append(bytes(ks.asm(job['source'], job['address'])[0]).hex())
print(json.dumps(out))
'''

# the faultlab CLI with every keystone engine opened on a heap that says radix 16
_POISONED_CLI = _POISON + r'''
sys.path.insert(0, sys.argv[1])
_init = keystone.Ks.__init__
def init(self, *a, **k):
    poison(16)
    _init(self, *a, **k)
keystone.Ks.__init__ = init
from faultlab.cli import main
sys.exit(main(sys.argv[2:]))
'''

# the faultlab CLI with a keystone that misassembles one instruction of the block hook
_BROKEN_KEYSTONE_CLI = r'''
import sys
sys.path.insert(0, sys.argv[1])
import keystone
_asm = keystone.Ks.asm
def asm(self, src, addr=0, *a, **k):
    enc, n = _asm(self, src, addr, *a, **k)
    return list(bytes(enc).replace(bytes.fromhex('48897130'), bytes.fromhex('48897148'))), n
keystone.Ks.asm = asm
from faultlab.cli import main
sys.exit(main(sys.argv[2:]))
'''

DECIMAL = 'mov [rcx+48], rsi\nshl r9, 48\nmov ecx, 1000\n'


def fresh_engine_bytes(source, address, radixes):
    """What a fresh keystone engine makes of source on a heap left holding each radix."""
    p = subprocess.run([sys.executable, '-c', _FRESH_ASM], input=json.dumps(
        {'source': source, 'address': address, 'radixes': list(radixes)}), capture_output=True, text=True,
        timeout=60)
    assert p.returncode == 0, p.stderr
    return [bytes.fromhex(h) for h in json.loads(p.stdout)]


def real_sources():
    img = build_vdso_image()
    return {'blockcount': (blockcount._HOOK_ASM, 0), 'fastfault': (fastfault._HOOK_ASM, 0),
            'vdso': (img.assembly, img.text_offset)}


# ---- the bug, and the check catching it -------------------------------------------------------------

def test_a_fresh_engine_reads_decimals_in_the_heaps_radix_and_the_check_catches_it():
    as10, as16 = fresh_engine_bytes(DECIMAL, 0, (10, 16))
    assert as10 != as16                     # the poison decides the radix: the test can tell them apart
    assert verify(DECIMAL, as10)            # radix 10 means what the text says
    with pytest.raises(AsmMismatch, match=r'line 1 `mov \[rcx\+48\], rsi` as `mov qword ptr \[rcx \+ 0x48\]'):
        verify(DECIMAL, as16)


def test_the_forced_radix_is_16_so_decimals_are_refused_before_and_caught_after():
    code = bytes(make_engine().asm(DECIMAL, 0)[0])
    assert code == fresh_engine_bytes(DECIMAL, 0, (16,))[0]
    with pytest.raises(AsmMismatch, match='displacement 0x48, meant 0x30'):
        verify(DECIMAL, code)
    with pytest.raises(AsmSourceError, match="line 1: '48'"):
        lint(DECIMAL)
    with pytest.raises(AsmSourceError, match='0x literals'):
        assemble(DECIMAL, 0, 'test')


def test_the_lint_accepts_single_digits_hex_and_names_with_digits():
    lint('mov r10d, [r8 + r9*8 + 0x48]\nshr r11, 2\n.p2align 4, 0xcc\n.Lx_12:\njmp .Lx_12\n')
    for bad in ('mov eax, 10', 'shl rdx, 32', '.quad 1000000000', 'mov eax, 0b11', 'mov eax, 010'):
        with pytest.raises(AsmSourceError):
            lint(bad)


@pytest.mark.parametrize('which', ['blockcount', 'fastfault', 'vdso'])
def test_the_real_sources_are_the_same_bytes_in_either_radix_and_pass_the_check(which):
    source, address = real_sources()[which]
    lint(source)
    code = assemble(source, address, which)
    as10, as16 = fresh_engine_bytes(source, address, (10, 16))
    assert as10 == as16 == code
    assert verify(source, code, address, which)
    if which == 'vdso':
        img = build_vdso_image()
        assert img.data[img.text_offset:img.text_offset + img.text_size] == code[:img.text_size]


# ---- the check itself: each kind of difference is caught ---------------------------------------------

MEANT_VS_OTHER = [
    # (assembled, checked against, what the message names)
    ('jmp a\na: nop\nb: nop\n', 'jmp b\na: nop\nb: nop\n', 'jmp b'),
    ('lea rcx, [rip + x]\nnop\nx: nop\ny: nop\n', 'lea rcx, [rip + y]\nnop\nx: nop\ny: nop\n', 'rip \\+ y'),
    ('.set K, 0x10\nmov eax, K\n', '.set K, 0x11\nmov eax, K\n', 'mov eax, K'),
    ('mov rax, rbx\n', 'mov rax, rcx\n', 'mov rax, rcx'),
    ('mov rax, [rcx + r9*8 + 0x10]\n', 'mov rax, [rcx + r9*4 + 0x10]\n', 'scale'),
    ('mov rax, [rcx + r9*8 + 0x10]\n', 'mov rax, [rcx + r8*8 + 0x10]\n', 'registers'),
    ('mov qword ptr [rdi], 0\n', 'mov dword ptr [rdi], 0\n', 'size'),
    ('add rax, 1\n', 'sub rax, 1\n', 'mnemonic'),
    ('nop\n.p2align 4, 0xcc\nret\n', 'nop\n.p2align 4, 0xc3\nret\n', 'padded'),
    ('x: nop\n.quad x\n', 'x: nop\n.quad x + 1\n', 'quad'),
    ('jz a\na: ret\n', 'jnz a\na: ret\n', 'jnz'),
    ('mov eax, -1\n', 'mov eax, 0x7fffffff\n', 'operand 2'),
]


@pytest.mark.parametrize('built,checked,named', MEANT_VS_OTHER)
def test_the_check_finds_each_kind_of_difference(built, checked, named):
    code = assemble(built, 0x1000, 'test')
    assert verify(built, code, 0x1000)
    with pytest.raises(AsmMismatch, match=named):
        verify(checked, code, 0x1000, 'test')


def test_the_check_refuses_what_it_cannot_read():
    code = assemble('nop\n', 0, 'test')
    with pytest.raises(AsmSourceError, match='does not know'):
        verify('.ascii "x"\nnop\n', code)
    with pytest.raises(AsmSourceError, match='fill byte'):
        verify('.p2align 4\nnop\n', code)
    with pytest.raises(AsmSourceError, match='unknown symbol'):
        verify('jmp nowhere\n', bytes.fromhex('eb00'))


# ---- the host: the crash is gone, and a misassembled hook is refused in one line ------------------------

def test_the_cli_on_a_radix_16_heap_runs_pf23_as_on_a_clean_heap(userland, tmp_path):
    """The host SIGSEGV: every engine opened on a heap saying 16; before the fix this died (status 139)."""
    args = ['run', '--cpus', '2', '--no-spf', '--stats-json']
    runs = []
    for script in (_POISONED_CLI, _POISON + 'sys.path.insert(0, sys.argv[1])\nfrom faultlab.cli import main\n'
                   'sys.exit(main(sys.argv[2:]))\n'):
        out = tmp_path / ('%d.json' % len(runs))
        p = subprocess.run([sys.executable, '-c', script, ROOT] + args + [str(out), './pf23', 'private', '2', '5',
                                                                          '512'],
                           capture_output=True, cwd=userland, timeout=300)
        assert p.returncode == 0, (p.returncode, p.stderr[-500:])
        stats = json.loads(out.read_text())
        runs.append((p.stdout, stats['instructions'], stats['cycles'], stats['minor_faults']))
    assert runs[0] == runs[1]
    assert b'private threads 2 ops' in runs[0][0]


def test_the_cli_on_a_radix_16_heap_matches_native(userland):
    p = subprocess.run([sys.executable, '-c', _POISONED_CLI, ROOT, 'run', './hello'], capture_output=True,
                       cwd=userland, timeout=120)
    code, out, _err = run_native(os.path.join(userland, 'hello'))
    assert (p.returncode, p.stdout) == (code, out)


def test_a_misassembled_hook_is_refused_with_one_line(userland):
    p = subprocess.run([sys.executable, '-c', _BROKEN_KEYSTONE_CLI, ROOT, 'run', './hello'], capture_output=True,
                       text=True, cwd=userland, timeout=120)
    assert p.returncode == 70
    assert p.stdout == ''
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert 'AsmMismatch' in lines[0] and '`mov [rcx+0x30], rsi`' in lines[0] and 'refusing to run it' in lines[0]


# ---- native code and the hooks' state --------------------------------------------------------------------

def test_native_code_is_read_and_execute_only():
    code = NativeCode(assemble('ret\n', 0, 'test'))
    with open('/proc/self/maps') as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split('-'))
            if lo <= code.address < hi:
                assert line.split()[1] == 'r-xp'
                break
        else:
            pytest.fail('native code not mapped')
    assert code.intact()


def test_debug_checks_pass_on_a_run_and_catch_a_corrupted_state(userland, monkeypatch):
    from conftest import run_guest
    monkeypatch.setattr(blockcount, 'NATIVE_CHECKS', True)
    monkeypatch.setattr(fastfault, 'NATIVE_CHECKS', True)
    g = run_guest(os.path.join(userland, 'pagetouch'), ['8'])
    assert g.exit_code == 0 and g.machine.kernel.fastfaults.handled > 1000
    cpu = g.machine.cpu
    cpu.counter.check()
    cpu.fast.check()
    cpu.fast.arm(0x1000, 0x9000, 0x7, 0x1000, 0, 0, [5, 6, 7])
    with pytest.raises(NativeStateError, match='armed twice'):
        cpu.fast.arm(0x1000, 0x9000, 0x7, 0x1000, 0, 0, [5, 6, 7])
    cpu.fast.st[fastfault.S_USED] = 1            # a frame used without a logged fault
    with pytest.raises(NativeStateError, match='counts'):
        cpu.fast.disarm()
    cpu.counter.st[blockcount.ST_MASK] = 0
    with pytest.raises(NativeStateError, match='block hook'):
        cpu.counter.check()


def test_the_engine_option_is_the_one_that_forces_radix_16():
    assert asm.RADIX == 16 and asm.SYNTAX & 32
    # the option wins over the heap: a poisoned-10 heap still gives radix 16 once the option is set
    script = _POISON + r'''
sys.path.insert(0, sys.argv[1])
from faultlab.core.asm import make_engine
poison(10)
print(bytes(make_engine().asm('mov eax, 10', 0)[0]).hex())
'''
    p = subprocess.run([sys.executable, '-c', script, ROOT], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == 'b810000000', p.stderr
