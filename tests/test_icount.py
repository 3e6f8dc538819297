"""Instruction counts from the native block hook equal a per-instruction count."""
import os

import faultlab.machine
from faultlab.bench.speed import single_step_check


def _count_both(path, quantum, monkeypatch):
    monkeypatch.setattr(faultlab.machine, 'QUANTUM_INSNS', quantum)
    return single_step_check(path)


def test_counts_exact_without_preemption(userland, monkeypatch):
    native, single = _count_both(os.path.join(userland, 'hello'), 10**9, monkeypatch)
    assert native == single


def test_counts_exact_across_quantum_stops(userland, monkeypatch):
    native, single = _count_both(os.path.join(userland, 'stackgrow'), 5_000, monkeypatch)
    assert native == single


def test_counts_exact_with_threads_on_several_cpus(userland, monkeypatch):
    """Context switches between tasks and CPUs keep every instruction counted once."""
    native, single = _count_both_args(os.path.join(userland, 'threads'), ['3', '200'], monkeypatch)
    assert native == single


def _count_both_args(path, args, monkeypatch):
    monkeypatch.setattr(faultlab.machine, 'QUANTUM_INSNS', 10**9)
    return single_step_check(path, args, cpus=3)


def test_counts_exact_when_the_kernel_rewrites_code(userland):
    """codereuse has read(2) replace a 2-instruction function by a 3-instruction one at the same
    address: the counter must forget the old block's cost along with the translated code."""
    native, single = single_step_check(os.path.join(userland, 'codereuse'), ['/tmp'])
    assert native == single
