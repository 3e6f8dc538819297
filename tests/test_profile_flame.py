"""`faultlab profile`: call stacks of a short run are real multi-frame stacks (the sampling period adapts
to the run's length), and `--svg` draws the flame graph of the folded stacks, widths by cycles."""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import ROOT
from faultlab.kernel.kernel import KernelConfig
from faultlab.machine import Machine
from faultlab.observe.flamegraph import PAD_SIDE, WIDTH, build_tree, parse_folded, render_svg
from faultlab.observe.profile import Profiler

BUILD = os.path.join(ROOT, 'userland', 'build')
SVG = '{http://www.w3.org/2000/svg}'


def profile(tmp_path, prog, *extra):
    tmp_path.mkdir(exist_ok=True)
    folded, svg = tmp_path / 'c.folded', tmp_path / 'c.svg'
    p = subprocess.run([sys.executable, '-m', 'faultlab', 'profile', '--no-progress', '--folded', str(folded),
                        '--svg', str(svg)] + list(extra) + [os.path.join(BUILD, prog)], cwd=ROOT,
                       capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return parse_folded(folded.read_text()), svg, p.stderr.decode()


def frames_of(svg_path):
    """[(name, x, width)] of the SVG's frames, from their tooltips."""
    out = []
    for g in ET.parse(svg_path).getroot().iter(SVG + 'g'):
        title, rect = g.find(SVG + 'title').text, g.find(SVG + 'rect')
        out.append((title.rsplit(' (', 1)[0], float(rect.get('x')), float(rect.get('width'))))
    return out


def test_short_run_has_multi_frame_stacks_and_a_flame_graph(tmp_path):
    """hello (about 19,000 instructions): every function but the entry point is called from
    somewhere, and nearly every folded line says from where, down to _start; the fixed period of
    100,000 instructions leaves most of them single frames. The SVG's frames are the folded stacks'
    tree, each as wide as its share of the cycles."""
    stacks, svg, err = profile(tmp_path, 'hello')
    assert 'flame graph written to %s' % svg in err
    called = [(s, n) for s, n in stacks if s[-1] != '_start']
    multi = [(s, n) for s, n in called if len(s) > 1]
    assert len(called) > 50 and len(multi) >= 0.95 * len(called), [s for s, _ in called if len(s) == 1]
    assert sum(n for s, n in multi) >= 0.97 * sum(n for s, n in called)
    assert sum(n for s, n in multi if s[0] == '_start') >= 0.9 * sum(n for s, n in multi)
    # the SVG: one frame per node of the call tree (all of them wide enough here), widths by cycles
    frames = frames_of(svg)
    root = build_tree(stacks)
    total = root.count

    def nodes(node):
        return 1 + sum(nodes(c) for c in node.children.values())
    full = WIDTH - 2 * PAD_SIDE
    assert frames[0][0] == 'all' and frames[0][2] == pytest.approx(full)
    assert len(frames) <= nodes(root)
    for name, node in root.children.items():            # the outermost frames, widths by their cycles
        drawn = [f for f in frames[1:] if f[0] == name][:1]
        if node.count * full / total >= 0.1:
            assert drawn and drawn[0][2] == pytest.approx(node.count * full / total, abs=0.01)
    start = root.children['_start']
    for name, node in start.children.items():
        drawn = [f for f in frames if f[0] == name]
        if node.count * full / total >= 0.1:
            assert any(w == pytest.approx(node.count * full / total, abs=0.01) for _, _, w in drawn), name
    old, _, _ = profile(tmp_path / 'fixed', 'hello', '--sample-insns', '100000')
    old_called = [s for s, n in old if s[-1] != '_start']
    assert sum(len(s) == 1 for s in old_called) > 4 * sum(len(s) == 1 for s, _ in called)


def test_render_svg_widths_order_and_nesting():
    """A small graph by hand: widths are shares of the total, siblings in name order side by side,
    callees above their caller and within its width; frames too narrow to see are left out."""
    stacks = [(('a', 'c'), 10), (('d',), 60), (('d', 'tiny'), 0), (('a', 'b', 'x'), 30)]
    svg = render_svg(stacks, 'test <graph>', 'cycles')
    root = ET.fromstring(svg)
    assert root.find(SVG + 'text').text == 'test <graph>'
    frames = {}
    for g in root.iter(SVG + 'g'):
        r = g.find(SVG + 'rect')
        frames[g.find(SVG + 'title').text.rsplit(' (', 1)[0]] = (float(r.get('x')), float(r.get('width')),
                                                                   float(r.get('y')), g.find(SVG + 'title').text)
    full = WIDTH - 2 * PAD_SIDE
    assert set(frames) == {'all', 'a', 'b', 'c', 'd', 'x'}
    assert frames['a'][1] == pytest.approx(0.4 * full) and frames['d'][1] == pytest.approx(0.6 * full)
    assert frames['b'][1] == frames['x'][1] == pytest.approx(0.3 * full)
    assert frames['a'][0] < frames['d'][0] and frames['b'][0] < frames['c'][0]      # alphabetical
    a_x, a_w = frames['a'][0], frames['a'][1]
    assert a_x <= frames['c'][0] and frames['c'][0] + frames['c'][1] <= a_x + a_w + 1e-6          # within its caller
    assert frames['x'][2] < frames['b'][2] < frames['a'][2] < frames['all'][2]      # callees above
    assert frames['b'][3] == 'b (30 cycles, 30.00%)'
    many = [(('f%d' % i,), 1) for i in range(20000)] + [(('big',), 20000)]
    names = [g.find(SVG + 'title').text for g in ET.fromstring(render_svg(many)).iter(SVG + 'g')]
    assert len(names) == 2                     # 'all' and 'big': 20,000 frames of 0.03 pixels are not drawn


def test_adaptive_sampling_changes_no_counter():
    """Sampling at every block (the adaptive period's start) stops and restarts the CPU thousands of
    times and changes no counter; the samples' weights add up to the instructions run."""
    prog = os.path.join(BUILD, 'hello')

    def machine():
        return Machine(ram=64 << 20, config=KernelConfig(stdout=lambda b: None, stderr=lambda b: None))
    plain = machine().run(prog, ['hello'], []).stats
    m = machine()
    prof = Profiler(m)
    m.kernel.set_tracer(prof)
    res = m.run(prog, ['hello'], [])
    prof.finish()
    assert res.stats == plain
    assert prof.adaptive and prof.nsamples > 1000 and prof.period >= 1
    assert sum(prof.sample_weights.values()) <= plain['instructions']
    assert sum(prof.sample_weights.values()) >= 0.9 * plain['instructions']
