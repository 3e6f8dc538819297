"""ELF-loader fuzz: mutated headers, program headers, segment sizes/offsets/alignments and truncations
of real executables always end in a one-line ExecError or a load and a bounded run that ends (exit,
signal report, or the instruction limit), never in a Python exception.

Property-based with hypothesis (derandomized: the same examples every run); the long mode is
`faultlab bench elf-fuzz --count 10000` (emu/bench/fuzz_elf.py).
"""
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from faultlab.bench.fuzz_elf import EHDR_FIELDS, PHDR_FIELDS, INTERESTING, apply_mutation, check_outcome, mutate, try_elf
from faultlab.kernel.loader import ExecError, parse_elf

_values = st.one_of(st.sampled_from(INTERESTING), st.integers(0, (1 << 64) - 1))
_mutation = st.one_of(
    st.tuples(st.just('ehdr'), st.sampled_from([n for n, _o, _s in EHDR_FIELDS]), _values),
    st.tuples(st.just('phdr'), st.integers(0, 5), st.sampled_from([n for n, _o, _s in PHDR_FIELDS]),
              st.floats(0, 1)),
    st.tuples(st.just('truncate'), st.integers(0, 12000)),
    st.tuples(st.just('bytes'), st.integers(0, 9000), st.integers(0, 255)),
)
_settings = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))


def _fit(mut, size):
    """Ehdr field values must fit their width."""
    if mut[0] == 'ehdr':
        width = next(s for n, _o, s in EHDR_FIELDS if n == mut[1])
        return (mut[0], mut[1], mut[2] & ((1 << (8 * width)) - 1))
    return mut


@pytest.fixture(scope='module')
def tiny(userland):
    return open(os.path.join(userland, 'elftiny'), 'rb').read()


def test_base_image_runs(userland, tiny, tmp_path):
    assert try_elf(tiny, str(tmp_path / 't')) == ('ran', 0, None)


@_settings
@given(muts=st.lists(_mutation, min_size=1, max_size=3))
def test_mutated_elf_is_refused_in_one_line_or_runs_to_an_end(tiny, tmp_path_factory, muts):
    data = bytearray(tiny)
    for m in muts:
        data = apply_mutation(data, _fit(m, 0))
    path = str(tmp_path_factory.mktemp('elf') / 'mutant')
    check_outcome(try_elf(bytes(data), path))


@_settings
@given(muts=st.lists(_mutation.filter(lambda m: m[0] in ('ehdr', 'phdr')), min_size=1, max_size=4))
def test_parse_elf_of_mutated_headers_only_raises_exec_error(tiny, muts):
    data = bytearray(tiny)
    for m in muts:
        data = apply_mutation(data, _fit(m, 0))
    try:
        parse_elf(bytes(data), 'mutant')
    except ExecError as e:
        assert str(e) and '\n' not in str(e)


def test_truncations_of_a_glibc_program(userland, tmp_path):
    """Every 1/40th cut of hello (a static glibc program): refused, or loaded and run to an end."""
    data = open(os.path.join(userland, 'hello'), 'rb').read()
    outcomes = set()
    for i in range(1, 40):
        cut = data[:len(data) * i // 40]
        out = try_elf(cut, str(tmp_path / ('cut%d' % i)), max_insns=50000)
        check_outcome(out)
        outcomes.add(out[0])
    assert outcomes == {'refused'} or 'refused' in outcomes


def test_seeded_mutants_of_both_programs(userland, tmp_path):
    """The long mode's generator on a fixed budget: 30 mutants of elftiny, 8 of hello."""
    for name, seed, n in (('elftiny', 11, 30), ('hello', 12, 8)):
        base = open(os.path.join(userland, name), 'rb').read()
        rng = random.Random(seed)
        for i in range(n):
            mutant, muts = mutate(base, rng)
            check_outcome(try_elf(mutant, str(tmp_path / ('%s%d' % (name, i))), max_insns=20000))


def test_interpreter_name_with_control_characters_stays_one_line(tiny):
    """Found by the fuzzer: a PT_INTERP string with a newline made a two-line refusal."""
    import struct
    data = bytearray(tiny)
    phoff = struct.unpack_from('<Q', data, 32)[0]
    i = next(i for i in range(struct.unpack_from('<H', data, 56)[0])
             if struct.unpack_from('<I', data, phoff + 56 * i)[0] == 4)          # the PT_NOTE
    struct.pack_into('<I', data, phoff + 56 * i, 3)                                # becomes PT_INTERP
    off = struct.unpack_from('<Q', data, phoff + 56 * i + 8)[0]
    data[off:off + 12] = b'/lib/ld\nx\r\0\0'
    with pytest.raises(ExecError) as ei:
        parse_elf(bytes(data), 'prog')
    assert '\n' not in str(ei.value) and '/lib/ld\\x0ax\\x0d' in str(ei.value)


def test_hostile_section_headers_only_cost_the_symbols(tiny, tmp_path):
    """Found by the fuzzer: e_shoff pointing into the file at an odd place made pyelftools raise
    OverflowError; section headers are optional for exec, so the program still runs."""
    import struct
    data = bytearray(tiny)
    struct.pack_into('<Q', data, 40, 4097)
    assert try_elf(bytes(data), str(tmp_path / 'p')) == ('ran', 0, None)
