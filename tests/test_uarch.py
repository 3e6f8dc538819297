"""The per-block core model (emu/core/uarch): hand-computed blocks, exact counts, profile files."""
import json
import os
import subprocess
import sys

import pytest
from keystone import Ks, KS_ARCH_X86, KS_MODE_64

from faultlab.calibrate import build_profile
from faultlab.core.cycles import CostTable, InsnCoster
from faultlab.core.uarch.profiles import PROFILES, check_profile

BASE = 0x401000
KS = Ks(KS_ARCH_X86, KS_MODE_64)


def block(src):
    """The machine code of `src` assembled at BASE."""
    enc, _ = KS.asm(src, BASE)
    return bytes(enc)


def cycles(src, platform='generic'):
    """The cycles the model charges per execution of the block `src`."""
    priced = InsnCoster(CostTable(platform=platform)).price(block(src), BASE)
    return sum(c for _, c in priced)


@pytest.mark.parametrize('platform', list(PROFILES))
def test_dependency_chain_costs_its_latencies(platform):
    # a loop body: 4 imul, each waiting for the one before, carried through rax to the next iteration
    lat = PROFILES[platform]['latency']['imul']
    src = 'l: imul rax, rax; imul rax, rax; imul rax, rax; imul rax, rax; dec rcx; jnz l'
    assert cycles(src, platform) == 4 * lat
    # the same four multiplies on four registers: no chain, one multiplier port bound them
    muls = len(PROFILES[platform]['ports']['mul'])
    src = 'l: imul rax, rax; imul rbx, rbx; imul rdx, rdx; imul rsi, rsi; dec rcx; jnz l'
    assert cycles(src, platform) == max(lat, 4 / muls, 5 / PROFILES[platform]['dispatch_width'])


def test_independent_adds_are_dispatch_bound():
    # 8 independent adds on a 4-wide core with 4 ALUs, then an add + jne to elsewhere (macro-fused): 9 slots
    p = PROFILES['generic']
    assert p['dispatch_width'] == 4 and len(p['ports']['alu']) == 4
    src = ('add rax, 1; add rbx, 1; add rdx, 1; add rsi, 1; add rdi, 1; add r8, 1; add r9, 1; add r10, 1;'
           'add r11, 1; jne 0x500000')
    assert cycles(src) == round(9 / 4)          # 2.25 cycles, whole cycles per block
    assert cycles('add rax, 1; add rbx, 1; add rdx, 1; add rsi, 1; add rdi, 1; add r8, 1; add r9, 1; '
                  'add r10, 1; jmp 0x500000') == round(9 / 4)


@pytest.mark.parametrize('platform', list(PROFILES))
def test_port_bound_blocks(platform):
    p = PROFILES[platform]
    # six independent loads per iteration: the load ports bound the loop
    src = ('l: mov rax, [rsi]; mov rbx, [rsi+8]; mov rdx, [rsi+16]; mov r8, [rsi+24]; mov r9, [rsi+32]; '
           'mov r10, [rsi+40]; dec rcx; jnz l')
    expect = max(6 / len(p['ports']['load']), 7 / p['dispatch_width'], 1)
    assert cycles(src, platform) == round(expect)
    # four independent divisions: the divider is busy for its reciprocal throughput each
    src = 'l: divsd xmm0, xmm8; divsd xmm1, xmm8; divsd xmm2, xmm8; divsd xmm3, xmm8; dec rcx; jnz l'
    busy = 4 * p['throughput']['fp_div'] / len(p['ports']['fp_div'])
    assert cycles(src, platform) == round(max(busy, p['latency']['fp_div']))


def test_store_to_load_chain_and_pointer_chase():
    p = PROFILES['skylake']
    lat = p['latency']
    # a counter in memory (-O0 code): load, add, store, and the next iteration's load of the same address
    src = 'l: mov eax, [rbp-4]; add eax, 1; mov [rbp-4], eax; cmp dword ptr [rbp-4], 1000; jl l'
    assert cycles(src, 'skylake') == lat['store_forward'] + lat['alu']
    # the address register changes every iteration: no store-to-load chain, the loop is not latency bound
    src = 'l: mov eax, [rdi]; add eax, 1; mov [rdi], eax; add rdi, 4; dec rcx; jnz l'
    assert cycles(src, 'skylake') < lat['store_forward']
    # a pointer chase: one load latency per step
    assert cycles('l: mov rsi, [rsi]; dec rcx; jnz l', 'skylake') == lat['load']


def test_prices_are_spread_over_the_instructions():
    coster = InsnCoster(CostTable(platform='generic'))
    code = block('l: imul rax, rax; imul rax, rax; imul rax, rax; imul rax, rax; dec rcx; jnz l')
    priced = coster.price(code, BASE)
    assert len(priced) == 6 and priced[0][0] == BASE and all(c >= 0 for _, c in priced)
    assert all(isinstance(c, int) for _, c in priced)
    # the same bytes at another address: the same prices (a loop is a loop wherever it is)
    assert [c for _, c in coster.price(code, 0x700000)] == [c for _, c in priced]
    # the flat prices of bare-metal are unchanged by the model's existence
    flat = InsnCoster(CostTable()).price(code, BASE)
    c = CostTable()
    assert [x for _, x in flat] == [c.insn + c.insn_mul] * 4 + [c.insn] * 2


def _stat(platform, userland):
    out = subprocess.run([sys.executable, '-m', 'faultlab.cli', 'stat', '-x', ',', '-e', 'instructions,cycles',
                          '--platform', platform, os.path.join(userland, 'compute')],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    values = {}
    for line in out.stderr.splitlines():
        f = line.split(',')
        if len(f) >= 3 and f[0].isdigit():
            values[f[2]] = int(f[0])
    return values, out.stdout


def test_instruction_counts_stay_exact(userland):
    flat, flat_out = _stat('bare-metal', userland)
    model, model_out = _stat('generic', userland)
    native = subprocess.run([os.path.join(userland, 'compute')], capture_output=True, text=True, timeout=60)
    assert flat_out == model_out == native.stdout
    assert flat['instructions'] == model['instructions'] > 10**7
    assert model['cycles'] != flat['cycles']
    # the model finds the parallelism the flat prices (about 1 cycle per instruction and more) cannot
    assert model['cycles'] < flat['cycles']


def test_profile_files(tmp_path):
    good = tmp_path / 'p.json'
    good.write_text(json.dumps({'base': 'zen3', 'freq_hz': 2_000_000_000, 'latency': {'imul': 4}}))
    c = CostTable(platform=str(good))
    assert c.freq_hz == 2_000_000_000 and c.uarch['latency']['imul'] == 4
    assert c.uarch['latency']['load'] == PROFILES['zen3']['latency']['load']
    assert cycles('l: imul rax, rax; dec rcx; jnz l', str(good)) == 4
    for bad, what in (({'base': 'nosuch'}, 'unknown base'), ({'latency': {'load': -1}}, 'latency.load'),
                      ({'ports': {'alu': []}}, 'ports.alu'), ({'dispatch_width': 0}, 'dispatch_width'), ([1], 'object')):
        f = tmp_path / 'bad.json'
        f.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=what):
            CostTable(platform=str(f))
    f = tmp_path / 'text.json'
    f.write_text('not json')
    with pytest.raises(ValueError, match='not a JSON profile'):
        CostTable(platform=str(f))
    with pytest.raises(ValueError, match='unknown platform'):
        CostTable(platform='nosuch')


def test_platform_option_errors_are_one_line(tmp_path, userland):
    f = tmp_path / 'bad.json'
    f.write_text('{"latency": {"imul": "three"}}')
    for arg in (str(f), 'nosuch', str(tmp_path / 'missing.json')):
        r = subprocess.run([sys.executable, '-m', 'faultlab.cli', 'run', '--platform', arg,
                            os.path.join(userland, 'hello')], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) <= 2
        assert '--platform' in r.stderr


def test_build_profile_turns_ns_into_cycles():
    # a 4 GHz core: 0.25 ns per dependent add; the other figures in cycles of it
    ns = {'add_lat': 0.25, 'add_tput': 0.25 / 4, 'nop_tput': 0.25 / 6, 'imul_lat': 0.75, 'imul_tput': 0.25,
          'div64_lat': 0.25 * 15, 'div32_lat': 0.25 * 11, 'load_lat': 1.0, 'load_tput': 0.125,
          'store_forward': 1.25, 'fp_add_lat': 0.75, 'fp_add_tput': 0.125, 'fp_mul_lat': 0.75,
          'fp_mul_tput': 0.125, 'fp_mix_tput': 0.25 / 3, 'fp_fma_lat': 1.0, 'fp_div_lat': 3.25, 'fp_div_tput': 1.0,
          'fp_sqrt_lat': 5.0}
    # (ns, cycles): cycles -1 (no steady clock around the run) falls back to ns at the add chain's clock
    ns = {k: (v, -1.0) for k, v in ns.items()}
    ns['imul_lat'] = (5.0, 3.0)         # a run slowed by something else: its ratio to the add chain counts
    p = build_profile(ns, 'AuthenticAMD', 'test CPU')
    check_profile(p, 'built')
    assert p['freq_hz'] == 4_000_000_000 and p['base'] == 'zen3' and p['dispatch_width'] == 6
    assert len(p['ports']['alu']) == 4 and len(p['ports']['load']) == 2 and len(p['ports']['mul']) == 1
    assert len(p['ports']['fp_add']) == 2 and len(p['ports']['fp_mul']) == 2
    # 3 addsd/mulsd per cycle mixed: three pipes, one of which takes both
    assert len(set(p['ports']['fp_add']) | set(p['ports']['fp_mul'])) == 3
    lat = p['latency']
    assert (lat['imul'], lat['div64'], lat['div32'], lat['load'], lat['store_forward']) == (3, 14, 10, 4, 5)
    assert (lat['fp_add'], lat['fp_mul'], lat['fp_fma'], lat['fp_div'], lat['fp_sqrt']) == (3, 3, 4, 13, 20)
    assert p['throughput']['fp_div'] == 4
    # the port groups of a profile never mix an ALU with a load port
    assert not set(p['ports']['alu']) & set(p['ports']['load'])
