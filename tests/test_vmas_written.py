"""mmap_lock's vmas_written (the VMAs a writer changed, removed or made, from two snapshots) gives the
same VMAs as comparing every VMA of the two snapshots (a host-speed change only)."""
import random

from faultlab.kernel.mm.mmap_lock import vmas_written


class _Vma:
    __slots__ = ('vm_start', 'vm_end', 'vm_flags', 'vm_pgoff')

    def __init__(self, start, end, flags=0x73, pgoff=0):
        self.vm_start, self.vm_end, self.vm_flags, self.vm_pgoff = start, end, flags, pgoff


def _snap(vmas):
    return list(vmas), [(v.vm_start, v.vm_end, v.vm_flags, v.vm_pgoff) for v in vmas]


def _every_vma(before, after):
    b = dict(zip(*before))
    a = dict(zip(*after))
    return {v for v in b if a.get(v) != b[v]}, {v for v in a if v not in b}


def _writer(rng, vmas):
    """What mmap, munmap, mprotect and mremap do to the sorted list: insert, remove, split, change."""
    vmas = list(vmas)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(5)
        i = rng.randrange(len(vmas) + 1) if op == 0 or not vmas else rng.randrange(len(vmas))
        if op == 0:
            vmas.insert(i, _Vma(rng.randrange(1 << 30), rng.randrange(1 << 30)))
        elif op == 1 and len(vmas) > 1:
            del vmas[i]
        elif op == 2:                        # split: the VMA shrinks, a new piece follows it
            v = vmas[i]
            v.vm_end -= 4096
            vmas.insert(i + 1, _Vma(v.vm_end, v.vm_end + 4096))
        elif op == 3:
            vmas[i].vm_flags ^= 0x2
        # op 4: nothing changes
    return vmas


def test_same_vmas_as_comparing_every_one():
    rng = random.Random(3)
    for _ in range(3000):
        vmas = [_Vma(i << 20, (i << 20) + 4096) for i in range(rng.randrange(0, 12))]
        before = _snap(vmas)
        after = _snap(_writer(rng, vmas) if vmas else vmas)
        changed, made = vmas_written(before, after)
        assert len(changed) == len(set(changed))
        assert (set(changed), set(made)) == _every_vma(before, after)


def test_nothing_written():
    vmas = [_Vma(i << 20, (i << 20) + 4096) for i in range(5)]
    changed, made = vmas_written(_snap(vmas), _snap(vmas))
    assert not changed and not made
