"""Block pricing with a model of an out-of-order core (after uiCA and llvm-mca's scheduling models).

A translated block is priced once. A loop body (a block that ends in a branch back to its own start) is
priced as its cost per iteration in steady state (as uiCA predicts a loop's throughput): the largest of
  * the front end: fused-domain uops over the dispatch width (cmp/test/add/sub/and/inc/dec macro-fuse with
    a following conditional branch; a load-op micro-fuses),
  * the execution ports: each uop may go to a set of ports; the bound is the largest, over every union U
    of the port sets the block uses, of the busy cycles of the uops that must go to U divided by |U|
    (a divider is busy for its reciprocal throughput),
  * the dependency chains carried from one iteration to the next: a latency-only schedule of the block
    repeated (registers, flags and memory locations written by a store and read by a later load through
    store-to-load forwarding), its growth per repetition,
  * taken branches: at most `taken_branches_per_cycle` per cycle.
Any other block: the same front-end and port bounds, and a list schedule of one execution (its inputs
ready when it starts, unlimited ports) in place of the carried chains: the latency of its longest
dependency chain, which the next block cannot hide when it depends on it; a block that ends in jmp, call
or ret also redirects the fetch once.
Loads are L1 hits (the last-level cache and TLB misses are charged elsewhere, per page). Serializing
instructions add a fixed cost per execution, a rep-string instruction its start-up (its elements run as
blocks of their own, see block_cycles). No branch prediction: a branch costs nothing beyond its uop.
"""
_CLASS_UOPS = {
    # class: [(port group, busy cycles key or 1)], latency key
    'alu': ([('alu', None)], 'alu'),
    'shift': ([('shift', None)], 'alu'),
    'lea3': ([('lea3', None)], 'lea3'),
    'imul': ([('mul', None)], 'imul'),
    'mul_wide': ([('mul', None), ('alu', None)], 'mul_wide'),
    'div32': ([('div', 'div32')], 'div32'),
    'div64': ([('div', 'div64')], 'div64'),
    'branch': ([('branch', None)], None),
    'cmov': ([('alu', None)], 'cmov'),
    'nop': ([], None),
    'none': ([], None),
    'atomic': ([('alu', None)], 'atomic'),
    'fp_add': ([('fp_add', None)], 'fp_add'),
    'fp_mul': ([('fp_mul', None)], 'fp_mul'),
    'fp_fma': ([('fp_mul', None)], 'fp_fma'),
    'fp_div': ([('fp_div', 'fp_div')], 'fp_div'),
    'fp_sqrt': ([('fp_div', 'fp_sqrt')], 'fp_sqrt'),
    'vec': ([('vec', None)], 'vec'),
    'vec_mul': ([('fp_mul', None)], 'vec_mul'),
    'shuf': ([('shuf', None)], 'shuf'),
    'cvt': ([('cvt', None)], 'cvt'),
    'x87': ([('fp_add', None)], 'fp_add'),
    'serialize': ([('alu', None)], 'alu'),
    'rep_string': ([('load', None), ('store_addr', None), ('store_data', None)], 'alu'),
}
_REPEAT = 6         # repetitions of the latency-only schedule; the growth is measured over the last half


class Model:
    """A profile compiled for pricing: per class its uops [(ports, busy)] and latency."""

    def __init__(self, profile):
        p = profile
        self.profile = p
        lat = dict(p['latency'])
        ports = {k: frozenset(v) for k, v in p['ports'].items()}
        tp = p.get('throughput', {})
        self.width = float(p['dispatch_width'])
        self.taken = 1.0 / float(p['taken_branches_per_cycle'])
        self.fusion = bool(p.get('macro_fusion', True))
        self.load_lat = lat['load']
        self.sf_lat = lat['store_forward']
        self.load_uop = (ports['load'], 1)
        self.store_uops = ((ports['store_addr'], 1), (ports['store_data'], 1))
        self.fixed = {'rep_string': float(p['rep_string']), 'serialize': float(p['serialize'])}
        self.classes = {}
        for cls, (uops, lkey) in _CLASS_UOPS.items():
            self.classes[cls] = (tuple((ports[g], float(tp.get(b, 1)) if b else 1.0) for g, b in uops),
                                 float(lat[lkey]) if lkey else 0.0)
        move_lat = 0.0 if p.get('move_elimination', True) else float(lat['alu'])
        move_uops = () if p.get('move_elimination', True) else ((ports['alu'], 1.0),)
        vmove_uops = () if p.get('move_elimination', True) else ((ports['vec'], 1.0),)
        self.classes['mov'] = (move_uops, move_lat)
        self.classes['vmov'] = (vmove_uops, move_lat)


def block_cycles(model, insns, start):
    """(cycles per execution, [fused slots per instruction]) of a block: insns is [(address, Insn)] in
    order, start the block's address."""
    if not insns:
        return 0.0, []
    if len(insns) == 1 and insns[0][1].cls == 'rep_string':
        # the CPU (QEMU's translation of REP) runs a rep-string instruction one element per execution of
        # a block holding only it: an element costs a fraction of a cycle (fast strings move 16-32 bytes
        # per cycle, Intel optimization manual, "Enhanced REP MOVSB and STOSB"), priced 0; the start-up
        # is charged where the instruction first runs after others (`rep_string` below); it dispatches
        # nothing new (no slots), which spread() prices 0
        return 0.0, [0]
    classes = model.classes
    slots = []
    uops = {}
    fixed = 0.0
    prev = None
    for _a, d in insns:
        s = d.slots
        cu, _lat = classes[d.cls]
        fused = model.fusion and d.jcc and prev is not None and prev.flagset
        if fused:
            s = 0                                   # the pair dispatches and executes as one branch uop
        for ports, busy in cu:
            uops[ports] = uops.get(ports, 0.0) + busy
        if fused:
            for ports, busy in classes[prev.cls][0]:
                uops[ports] -= busy
        if d.load:
            ports, busy = model.load_uop
            uops[ports] = uops.get(ports, 0.0) + busy
        if d.store:
            for ports, busy in model.store_uops:
                uops[ports] = uops.get(ports, 0.0) + busy
        fixed += model.fixed.get(d.cls, 0.0)
        slots.append(s)
        prev = d
    dispatch = sum(slots) / model.width
    port = _port_bound(uops)
    last_a, last = insns[-1]
    loop = last.branch and last.target is not None and last_a + last.target == start
    chain = _carried_chain(model, insns) if loop else _critical_path(model, insns)
    taken = 0.0
    if last.branch and (last.target is None and not last.jcc or last.target is not None and
                        (loop or not last.jcc)):
        taken = model.taken
    return max(dispatch, port, chain, taken) + fixed, slots


def _port_bound(uops):
    """Cycles the ports need at least: max over unions U of port sets of busy(sets inside U) / |U|."""
    sets = [(s, b) for s, b in uops.items() if b > 1e-9]
    unions = set()
    for s, _ in sets:                   # every union of some of the sets (few: the sets nest and overlap)
        unions |= {s | u for u in unions}
        unions.add(s)
    best = 0.0
    for u in unions:
        load = 0.0
        for s, b in sets:
            if s <= u:
                load += b
        if load / len(u) > best:
            best = load / len(u)
    return best


def _critical_path(model, insns):
    """The latency-only list schedule of one execution (inputs ready at its start): when its last result
    is ready."""
    return _latency_schedule(model, insns, 1)[-1]


def _carried_chain(model, insns):
    """Growth per execution of the latency-only schedule of the block run _REPEAT times in a row."""
    ends = _latency_schedule(model, insns, _REPEAT)
    half = _REPEAT // 2
    return max(0.0, (ends[-1] - ends[half - 1]) / (_REPEAT - half))


def _latency_schedule(model, insns, repeat):
    """[when the last result of repetition i is ready] of the block run `repeat` times in a row, with
    unlimited ports: each instruction starts when its inputs are ready."""
    classes = model.classes
    ready = {}
    memory = {}             # (base, index, scale, disp) -> when a load may take the stored value
    ends = []
    load_lat, sf_lat = model.load_lat, model.sf_lat
    for _ in range(repeat):
        end = 0.0
        for a, d in insns:
            lat = classes[d.cls][1]
            t = 0.0
            for r in d.reads:
                v = ready.get(r, 0.0)
                if v > t:
                    t = v
            key = None
            if d.mem is not None:
                key = d.mem if d.mem[0] != 'rip' else ('rip', None, 0, a + d.size + d.mem[3])
                at = 0.0
                for r in d.addr:
                    v = ready.get(r, 0.0)
                    if v > at:
                        at = v
                if d.load:
                    lt = max(at + load_lat, memory.get(key, 0.0))
                    if lt > t:
                        t = lt
            done = t + lat
            for r in d.writes:
                ready[r] = done
                if memory:
                    for k in [k for k in memory if k[0] == r or k[1] == r]:
                        del memory[k]
            if d.store and key is not None:
                memory[key] = done + sf_lat
            if done > end:
                end = done
        ends.append(end)
    return ends


def spread(total, slots):
    """Integer cycles per instruction summing to `total`, in proportion to their dispatch slots (at least a
    share of 1 each), largest remainders first; 0 each for a block that dispatches nothing (the further
    elements of a rep-string instruction: block_cycles), whatever the least price of a block is."""
    if not any(slots):
        return [0] * len(slots)
    w = [max(s, 1) for s in slots]
    tw = float(sum(w))
    shares = [total * x / tw for x in w]
    out = [int(s) for s in shares]
    left = total - sum(out)
    order = sorted(range(len(w)), key=lambda i: (out[i] - shares[i], i))
    for i in order[:left]:
        out[i] += 1
    return out
