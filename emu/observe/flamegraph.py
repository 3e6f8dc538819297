"""`faultlab profile --svg FILE`: a flame graph of folded stacks, as Brendan Gregg's flamegraph.pl draws
one: each frame a rectangle whose width is its share of the total, callers below their callees,
siblings in alphabetical order, warm colours chosen by the function's name (so the same function
has the same colour in every graph), and a tooltip (<title>) with the name, the count and the share.
Frames narrower than MIN_WIDTH pixels are left out, like flamegraph.pl's --minwidth.
"""
import hashlib

from faultlab.xmlescape import escape

WIDTH = 1200                # pixels
FRAME_H = 16
PAD_TOP = 40
PAD_BOTTOM = 20
PAD_SIDE = 10
MIN_WIDTH = 0.1
FONT = 12
CHAR_W = FONT * 0.59        # the width of one character of Verdana at FONT px, as flamegraph.pl assumes


class _Node:
    __slots__ = ('name', 'count', 'children')

    def __init__(self, name):
        self.name = name
        self.count = 0
        self.children = {}


def parse_folded(text):
    """[(frames tuple, count)] from `a;b;c 123` lines (blank and malformed lines skipped)."""
    out = []
    for line in text.splitlines():
        stack, _, n = line.rstrip().rpartition(' ')
        if stack and n.isdigit():
            out.append((tuple(stack.split(';')), int(n)))
    return out


def build_tree(stacks):
    """The merged call tree of [(frames, count)] under a root named 'all'."""
    root = _Node('all')
    for frames, n in stacks:
        if n <= 0:
            continue
        root.count += n
        node = root
        for name in frames:
            child = node.children.get(name)
            if child is None:
                child = node.children[name] = _Node(name)
            child.count += n
            node = child
    return root


def _colour(name):
    """flamegraph.pl's 'hot' palette, chosen from the name's hash; kernel frames (`_[k]`) orange."""
    h = hashlib.md5(name.encode('utf-8', 'replace')).digest()
    v1, v2, v3 = h[0] / 255, h[1] / 255, h[2] / 255
    if name.endswith('_[k]'):
        return 'rgb(%d,%d,%d)' % (200 + int(55 * v3), 110 + int(60 * v1), 0)
    return 'rgb(%d,%d,%d)' % (205 + int(50 * v3), int(230 * v1), int(55 * v2))


def render_svg(stacks, title='Flame Graph', unit='samples'):
    """An SVG document (text) of the flame graph of [(frames, count)]."""
    root = build_tree(stacks)
    total = root.count or 1
    scale = (WIDTH - 2 * PAD_SIDE) / total
    rects = []
    depth_max = 0

    def walk(node, x, depth):
        nonlocal depth_max
        w = node.count * scale
        if w < MIN_WIDTH:
            return
        depth_max = max(depth_max, depth)
        rects.append((node, x, depth, w))
        for name in sorted(node.children):
            child = node.children[name]
            walk(child, x, depth + 1)
            x += child.count * scale
    walk(root, PAD_SIDE, 0)
    height = PAD_TOP + (depth_max + 1) * FRAME_H + PAD_BOTTOM
    out = ['<?xml version="1.0" standalone="no"?>',
           '<svg version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg">'
           % (WIDTH, height, WIDTH, height),
           '<rect x="0" y="0" width="%d" height="%d" fill="#f8f8f8"/>' % (WIDTH, height),
           '<text x="%d" y="24" text-anchor="middle" font-family="Verdana" font-size="17">%s</text>'
           % (WIDTH // 2, escape(title))]
    for node, x, depth, w in rects:
        y = height - PAD_BOTTOM - (depth + 1) * FRAME_H
        tip = '%s (%s %s, %.2f%%)' % (node.name, '{:,}'.format(node.count), unit, 100.0 * node.count / total)
        fits = int((w - 6) // CHAR_W)
        label = node.name if len(node.name) <= fits else (node.name[:fits - 2] + '..' if fits >= 3 else '')
        out.append('<g><title>%s</title><rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s" rx="2" ry="2"/>'
                   '%s</g>' % (escape(tip), x, y, w, FRAME_H - 1, '#e0e0e0' if node is root else _colour(node.name),
                               '<text x="%.2f" y="%d" font-family="Verdana" font-size="%d">%s</text>'
                               % (x + 3, y + FRAME_H - 4, FONT, escape(label)) if label else ''))
    out.append('</svg>')
    return '\n'.join(out) + '\n'
