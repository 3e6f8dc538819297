"""ELF-loader fuzzing: mutate a real executable's headers, program headers and length, then load and
run each mutant for a bounded number of instructions.

Every mutant must end in one of two ways: a one-line ExecError (execve's refusal), or a run that
ends (exit, a fatal signal with a one-line report, or the instruction limit). Anything else, a Python
exception from the loader, the kernel or the CPU, is a finding.

`faultlab bench elf-fuzz --count N --seed S` runs the long mode; the test suite runs a fixed budget.
"""
import os
import random
import struct
import sys
import tempfile
import time

from faultlab.core.cycles import CostTable
from faultlab.kernel.kernel import KernelConfig
from faultlab.kernel.loader import ExecError, parse_elf
from faultlab.machine import Machine
from faultlab.srctree import userland_build

EHDR_FIELDS = [  # (name, offset, size) of the ELF header fields
    ('ei_class', 4, 1), ('ei_data', 5, 1), ('ei_version', 6, 1), ('ei_osabi', 7, 1), ('e_type', 16, 2),
    ('e_machine', 18, 2), ('e_version', 20, 4), ('e_entry', 24, 8), ('e_phoff', 32, 8), ('e_shoff', 40, 8),
    ('e_flags', 48, 4), ('e_ehsize', 52, 2), ('e_phentsize', 54, 2), ('e_phnum', 56, 2),
    ('e_shentsize', 58, 2), ('e_shnum', 60, 2), ('e_shstrndx', 62, 2)]
PHDR_FIELDS = [('p_type', 0, 4), ('p_flags', 4, 4), ('p_offset', 8, 8), ('p_vaddr', 16, 8), ('p_paddr', 24, 8),
               ('p_filesz', 32, 8), ('p_memsz', 40, 8), ('p_align', 48, 8)]
INTERESTING = [0, 1, 2, 3, 6, 0x38, 0x40, 0x7F, 0x80, 0xFF, 0xFFF, 0x1000, 0x1001, 0x10000, 0x400000,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 0x555555554000, 0x7FFFFFFFE000, 0x7FFFFFFFF000,
               1 << 47, 0xFFFF800000000000, 1 << 63, (1 << 64) - 0x1000, (1 << 64) - 1, 0x6474E551, 0x6474E552]
KINDS = ('ehdr', 'phdr', 'phdr', 'phdr', 'truncate', 'bytes', 'extend')


def _field_value(rng, old, size):
    """A new value for a field: an interesting constant, the old one nudged, or random bits."""
    mask = (1 << (8 * size)) - 1
    r = rng.random()
    if r < 0.45:
        v = rng.choice(INTERESTING)
    elif r < 0.75:
        v = old + rng.choice([-0x1000, -8, -1, 1, 8, 0x1000, 0x10000, rng.randrange(-1 << 20, 1 << 20)])
    elif r < 0.85:
        v = old ^ (1 << rng.randrange(8 * size))
    else:
        v = rng.getrandbits(8 * size)
    return v & mask


def random_mutation(rng, data):
    """One mutation as a tuple (kind, ...) that apply_mutation understands."""
    kind = rng.choice(KINDS)
    if kind == 'ehdr':
        name, off, size = rng.choice(EHDR_FIELDS)
        old = int.from_bytes(data[off:off + size], 'little') if len(data) >= off + size else 0
        return ('ehdr', name, _field_value(rng, old, size))
    if kind == 'phdr':
        phnum = struct.unpack_from('<H', data, 56)[0] if len(data) >= 64 else 0
        i = rng.randrange(max(phnum, 1) + 1)
        name, off, size = rng.choice(PHDR_FIELDS)
        return ('phdr', i, name, rng.random())
    if kind == 'truncate':
        return ('truncate', rng.choice([rng.randrange(len(data) + 1), rng.randrange(min(len(data), 4096) + 1)]))
    if kind == 'extend':
        return ('extend', rng.randrange(1, 1 << 14))
    return ('bytes', rng.randrange(len(data)) if data else 0, rng.getrandbits(8))


def apply_mutation(data, mut, rng=None):
    """Apply one mutation to a bytearray (in place, or a new one for length changes); returns it."""
    kind = mut[0]
    if kind == 'ehdr':
        _, name, value = mut
        off, size = next((o, s) for n, o, s in EHDR_FIELDS if n == name)
        if len(data) >= off + size:
            data[off:off + size] = value.to_bytes(size, 'little')
    elif kind == 'phdr':
        _, i, name, u = mut
        if len(data) < 64:
            return data
        phoff = struct.unpack_from('<Q', data, 32)[0]
        off, size = next((o, s) for n, o, s in PHDR_FIELDS if n == name)
        at = phoff + 56 * i + off
        if 0 <= at and at + size <= len(data):
            old = int.from_bytes(data[at:at + size], 'little')
            value = _field_value(random.Random(u), old, size)
            data[at:at + size] = value.to_bytes(size, 'little')
    elif kind == 'truncate':
        del data[mut[1]:]
    elif kind == 'extend':
        data += bytes(mut[1])
    elif kind == 'bytes':
        if mut[1] < len(data):
            data[mut[1]] = mut[2]
    return data


def mutate(base, rng, nmut=None):
    """A mutant of base with 1..4 mutations (biased to one), and the mutation list."""
    data = bytearray(base)
    muts = [random_mutation(rng, data) for _ in range(nmut or rng.choice([1, 1, 1, 2, 2, 3, 4]))]
    for m in muts:
        data = apply_mutation(data, m)
    return bytes(data), muts


def try_elf(data, path, max_insns=20000, ram=8 << 20):
    """Write the mutant to path, exec it and run it; ('refused', message) or ('ran', status, report).

    A Python exception other than the ExecError refusal propagates (that is the finding)."""
    try:
        parse_elf(data, path)
    except ExecError as e:
        return ('refused', str(e))
    with open(path, 'wb') as f:
        f.write(data)
    os.chmod(path, 0o755)
    sink = []
    m = Machine(ram=ram, costs=CostTable(), config=KernelConfig(stdout=sink.append, stderr=sink.append,
                                                                warn=sink.append, swap_bytes=0))
    try:
        res = m.run(path, [os.path.basename(path)], ['PATH=/bin'], max_insns=max_insns)
    except ExecError as e:
        return ('refused', str(e))
    return ('ran', res.exit_code, res.report)


def check_outcome(outcome):
    """The outcome must be a one-line refusal or a run that ended with at most a one-line report."""
    if outcome[0] == 'refused':
        msg = outcome[1]
        assert msg and '\n' not in msg, repr(msg)
    else:
        _, status, report = outcome
        assert 0 <= status <= 255
        assert report is None or (report and '\n' not in report), repr(report)


def main(count=10000, seed=1, base=None, out=sys.stdout, keep_dir=None):
    """Long mode: count mutants of the base program from seed; print a summary; 1 on a finding."""
    base = base or os.path.join(userland_build(), 'elftiny')
    data = open(base, 'rb').read()
    rng = random.Random(seed)
    tally = {'refused': 0, 'ran': 0}
    findings = 0
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'mutant')
        for i in range(count):
            mutant, muts = mutate(data, rng)
            try:
                outcome = try_elf(mutant, path)
                check_outcome(outcome)
                tally[outcome[0]] += 1
            except Exception as e:          # a finding: keep the mutant
                findings += 1
                dst = os.path.join(keep_dir or tmp, 'finding-%d-%d' % (seed, i))
                with open(dst, 'wb') as f:
                    f.write(mutant)
                out.write('finding %d (seed %d, mutant %d, %s): %s: %s\n' % (findings, seed, i, muts,
                                                                              type(e).__name__, e))
    out.write('elf-fuzz: %d mutants of %s from seed %d in %.0f s: %d refused with a one-line error, '
              '%d loaded and ran to an end, %d findings\n' % (count, os.path.basename(base), seed,
                                                             time.time() - t0, tally['refused'], tally['ran'],
                                                             findings))
    return 1 if findings else 0
