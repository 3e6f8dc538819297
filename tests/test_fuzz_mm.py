"""mm-call sequence fuzz: seeded mmap/munmap/mprotect/mremap/madvise sequences (userland/src/mmfuzz.c)
checked step by step against an independent model of the VMA list, and against the same program run
natively.

The model is Linux's (6.17+) behaviour for anonymous private memory that is never touched (so no VMA
has an anon_vma and neighbours merge exactly when their flags agree): page numbers inside the
128-page arena, each VMA with its protection and the madvise flags /proc/self/maps does not show.
"""
import os
import re

import pytest

from conftest import run_guest, run_native

PROT_W = 2
MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK = \
    0, 1, 2, 3, 4, 10, 11
ENOMEM, EFAULT, EINVAL = 12, 14, 22
_ADV = {MADV_NORMAL: ('seq', 'rand', None), MADV_RANDOM: ('seq', 'rand', 'rand'),
        MADV_SEQUENTIAL: ('seq', 'rand', 'seq'), MADV_DONTFORK: (None, None, 'dontcopy'),
        MADV_DOFORK: ('dontcopy', None, None)}


class VmaModel:
    """The VMA list as page ranges: {page: (prot, frozenset(flags))}, normalized into runs."""

    def __init__(self):
        self.pages = {}

    def runs(self):
        """[(start, end, prot, flags)]: maximal runs of pages with equal attributes (merged VMAs)."""
        out = []
        for p in sorted(self.pages):
            a = self.pages[p]
            if out and out[-1][1] == p and out[-1][2:] == a:
                out[-1] = (out[-1][0], p + 1) + a
            else:
                out.append((p, p + 1) + a)
        return out

    def vma_at(self, p):
        for r in self.runs():
            if r[0] <= p < r[1]:
                return r
        return None

    def maps(self):
        return ['%x-%x %s' % (s << 12, e << 12, ('r' if prot & 1 else '-') + ('w' if prot & 2 else '-')
                              + ('x' if prot & 4 else '-') + 'p') for s, e, prot, _f in self.runs()]

    def unmap(self, p, n):
        for q in range(p, p + n):
            self.pages.pop(q, None)

    # ---- the calls ---------------------------------------------------------------------------------
    def mmap(self, p, n, prot):
        self.unmap(p, n)
        for q in range(p, p + n):
            self.pages[q] = (prot, frozenset())
        return 1

    def munmap(self, p, n):
        self.unmap(p, n)
        return 0

    def mprotect(self, p, n, prot):
        if p not in self.pages:
            return -ENOMEM
        for q in range(p, p + n):
            if q not in self.pages:
                return -ENOMEM            # the part before the hole keeps its new protection
            self.pages[q] = (prot, self.pages[q][1])
        return 0

    def madvise(self, p, n, adv):
        hole = False
        for q in range(p, p + n):
            if q not in self.pages:
                hole = True
                continue
            if adv in _ADV:
                clear1, clear2, add = _ADV[adv]
                prot, flags = self.pages[q]
                flags = set(flags) - {clear1, clear2}
                if add:
                    flags.add(add)
                self.pages[q] = (prot, frozenset(flags))
        return -ENOMEM if hole else 0

    def _move(self, src, n, dst, grow_to=None):
        attrs = [self.pages.pop(q) for q in range(src, src + n)]
        self.unmap(dst, grow_to or n)
        for i in range(grow_to or n):
            self.pages[dst + i] = attrs[min(i, n - 1)]

    def mremap(self, p, n, newn, move, q):
        if move and p < q + newn and q < p + n:
            return -EINVAL
        v = self.vma_at(p)
        if v is None:
            return -EFAULT
        if not move and newn <= n:
            self.unmap(p + newn, n - newn)
            return p
        if move and n == newn and p + n > v[1]:
            # several VMAs and gaps move together, each to the same offset
            for s, e, *_ in [r for r in self.runs() if r[1] > p and r[0] < p + n]:
                s, e = max(s, p), min(e, p + n)
                self._move(s, e - s, q + (s - p))
            return q
        if p + (min(n, newn) if move else n) > v[1]:
            return -EFAULT
        if move:
            if n > newn:
                self.unmap(p + newn, n - newn)
                n = newn
            self._move(p, n, q, newn)
            return q
        # grow in place: the old range must end the VMA and the room after it be free
        if p + n == v[1] and all(x not in self.pages for x in range(p + n, p + newn)):
            for x in range(p + n, p + newn):
                self.pages[x] = self.pages[p + n - 1]
            return p
        return -ENOMEM


_LINE = re.compile(r'^(mmap|munmap|mprotect|mremap|madvise) ([\d ]+) = (-?\d+)$')


def check_against_model(text):
    """Replay the printed calls in the model; compare results and maps after every step."""
    model = VmaModel()
    lines = text.splitlines()
    assert lines and lines[-1] == 'mmfuzz done', lines[-3:]
    steps = 0
    i = 0
    while i < len(lines) - 1:
        m = _LINE.match(lines[i])
        assert m, lines[i]
        op, args, ret = m.group(1), [int(x) for x in m.group(2).split()], int(m.group(3))
        want = getattr(model, op)(*args)
        i += 1
        got_maps = []
        while i < len(lines) - 1 and lines[i].startswith('  '):
            got_maps.append(lines[i].strip())
            i += 1
        assert ret == want, 'step %d: %s returned %d, the model says %d' % (steps, lines[i - 1 - len(got_maps)],
                                                                             ret, want)
        assert got_maps == model.maps(), 'step %d (%s): maps differ from the model:\n%s\nmodel:\n%s' % (
            steps, m.group(0), '\n'.join(got_maps), '\n'.join(model.maps()))
        steps += 1
    return steps


def _native_is_617():
    rel = os.uname().release.split('.')
    try:
        return (int(rel[0]), int(re.match(r'\d+', rel[1]).group())) >= (6, 17)
    except (ValueError, IndexError, AttributeError):
        return False


@pytest.mark.parametrize('seed', [1, 2, 3])
def test_mm_sequences_match_the_model_and_native(userland, seed):
    prog = os.path.join(userland, 'mmfuzz')
    r = run_guest(prog, [str(seed), '150'])
    assert r.exit_code == 0, r.result.report
    out = r.stdout.decode()
    assert check_against_model(out) == 150
    if _native_is_617():
        rc, nout, _ = run_native(prog, [str(seed), '150'])
        assert rc == 0 and nout.decode() == out


def test_model_catches_a_wrong_merge():
    """The checker is able to fail: a maps dump that merged two VMAs the model keeps apart."""
    text = 'mmap 0 2 1 = 1\n  0-2000 r--p\nmadvise 0 1 1 = 0\n  0-2000 r--p\nmmfuzz done\n'
    with pytest.raises(AssertionError, match='maps differ'):
        check_against_model(text)


@pytest.mark.slow
@pytest.mark.parametrize('seed', range(100, 140))
def test_mm_sequences_long(userland, seed):
    prog = os.path.join(userland, 'mmfuzz')
    r = run_guest(prog, [str(seed), '1000'])
    assert r.exit_code == 0
    assert check_against_model(r.stdout.decode()) == 1000
    if _native_is_617():
        assert run_native(prog, [str(seed), '1000'])[1] == r.stdout
