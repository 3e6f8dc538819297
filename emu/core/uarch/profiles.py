"""Named models of an out-of-order x86-64 core for the block pricer, and profile files.

A profile is a dict (the JSON of `faultlab calibrate`): the core's clock, its dispatch width, its execution
ports grouped by what they execute, the latency of each instruction class, the reciprocal throughput of
the units that are not pipelined (dividers), and where every figure comes from ('sources').

Port groups (each a list of port numbers of that core): alu, shift, branch, mul, div, lea3 (3-component
LEA), load, store_addr, store_data, fp_add, fp_mul, fp_div, vec (vector integer), shuf (shuffles), cvt.
"""
import json

# The keys every profile has (a file may leave some out: they come from its `base` profile).
LATENCY_KEYS = ('alu', 'imul', 'mul_wide', 'div32', 'div64', 'lea3', 'load', 'store_forward', 'fp_add', 'fp_mul',
                'fp_fma', 'fp_div', 'fp_sqrt', 'vec', 'vec_mul', 'shuf', 'cvt', 'cmov', 'atomic')
PORT_KEYS = ('alu', 'shift', 'branch', 'mul', 'div', 'lea3', 'load', 'store_addr', 'store_data', 'fp_add', 'fp_mul',
             'fp_div', 'vec', 'shuf', 'cvt')

SKYLAKE = {
    'name': 'skylake',
    'description': 'Intel Skylake client core (Core i7-6700K class)',
    'freq_hz': 3_000_000_000,
    'dispatch_width': 4,
    'taken_branches_per_cycle': 1,
    'move_elimination': True,
    'macro_fusion': True,
    # ports 0 1 5 6: integer ALU; 2 3: load (and store address); 4: store data; 7: store address
    'ports': {'alu': [0, 1, 5, 6], 'shift': [0, 6], 'branch': [0, 6], 'mul': [1], 'div': [0], 'lea3': [1],
              'load': [2, 3], 'store_addr': [2, 3, 7], 'store_data': [4], 'fp_add': [0, 1], 'fp_mul': [0, 1],
              'fp_div': [0], 'vec': [0, 1, 5], 'shuf': [5], 'cvt': [0, 1]},
    'latency': {'alu': 1, 'imul': 3, 'mul_wide': 4, 'div32': 26, 'div64': 42, 'lea3': 3, 'load': 5,
                'store_forward': 5, 'fp_add': 4, 'fp_mul': 4, 'fp_fma': 4, 'fp_div': 14, 'fp_sqrt': 18,
                'vec': 1, 'vec_mul': 5, 'shuf': 1, 'cvt': 4, 'cmov': 1, 'atomic': 18},
    'throughput': {'div32': 6, 'div64': 24, 'fp_div': 4, 'fp_sqrt': 6},
    'rep_string': 35,
    'serialize': 30,
    'sources': {
        'dispatch_width': "Intel 64 and IA-32 Architectures Optimization Reference Manual, Skylake: 4 fused uops "
                       "per cycle from the IDQ to the back end (rename/allocate)",
        'ports': "uops.info port usage on SKL (ADD r64: 1*p0156, IMUL r64: 1*p1, SHL r64 imm: 1*p06, "
                 "MOV r64 m64: 1*p23, MOV m64 r64: p237+p4, ADDSD/MULSD/VFMADD: p01, DIVSD: p0, PADDD: p015, "
                 "PSHUFD: p5); Agner Fog, The microarchitecture of Intel, AMD and VIA CPUs, section 11",
        'latency': "uops.info / Agner Fog instruction tables (Skylake): IMUL r64 3, MUL r64 3-4, DIV r32 26, "
                   "IDIV/DIV r64 35-88 (42 taken: small operands), LEA 3 components 3, load-to-use 4-5 "
                   "(5: indexed), store forwarding 4-5, ADDSD/MULSD/FMA 4, DIVSD 13-14, SQRTSD 15-16, PMULLD 10 "
                   "(PMULUDQ 5 taken), CVTSI2SD 4, LOCK ADD m r 18",
        'throughput': "Agner Fog instruction tables (Skylake): DIV r32 recip. throughput 6, DIV r64 21-83, "
                      "DIVSD 4, SQRTSD 4-6",
        'rep_string': "Agner Fog, microarchitecture guide: REP MOVS/STOS start-up overhead ~35 cycles "
                      "(per execution: faultlab prices a block once, not per element)",
        'taken_branches_per_cycle': "Agner Fog, microarchitecture guide (Skylake): one taken branch per "
                                    "clock (port 6)",
    },
}

ZEN3 = {
    'name': 'zen3',
    'description': 'AMD Zen 3 core (EPYC 7003 / Ryzen 5000 class)',
    'freq_hz': 3_000_000_000,
    'dispatch_width': 6,
    'taken_branches_per_cycle': 1,
    'move_elimination': True,
    'macro_fusion': True,
    # ALU0-3 = 0-3, AGU0-2 = 4-6 (three loads per cycle, at most two stores), FP0-3 = 8-11, store data 7
    'ports': {'alu': [0, 1, 2, 3], 'shift': [1, 2], 'branch': [0, 3], 'mul': [1], 'div': [2], 'lea3': [0, 1, 2, 3],
              'load': [4, 5, 6], 'store_addr': [4, 5], 'store_data': [7], 'fp_add': [10, 11], 'fp_mul': [8, 9],
              'fp_div': [9], 'vec': [8, 9, 10, 11], 'shuf': [9, 10], 'cvt': [10, 11]},
    'latency': {'alu': 1, 'imul': 3, 'mul_wide': 3, 'div32': 10, 'div64': 14, 'lea3': 2, 'load': 4,
                'store_forward': 7, 'fp_add': 3, 'fp_mul': 3, 'fp_fma': 4, 'fp_div': 13, 'fp_sqrt': 20,
                'vec': 1, 'vec_mul': 3, 'shuf': 1, 'cvt': 4, 'cmov': 1, 'atomic': 8},
    'throughput': {'div32': 6, 'div64': 10, 'fp_div': 5, 'fp_sqrt': 9},
    'rep_string': 30,
    'serialize': 30,
    'sources': {
        'dispatch_width': "AMD Software Optimization Guide for AMD Family 19h Processors (56665), 2.1: dispatch "
                       "of up to 6 macro-ops per cycle, 4 integer ALUs, 3 AGUs (3 loads, up to 2 stores "
                       "per cycle), 4 FP pipes",
        'ports': "AMD 56665 section 2.10-2.11 and uops.info (ZEN3): IMUL r64 on ALU1, DIV on ALU2, FADD on "
                 "FP2/FP3, FMUL/FMA on FP0/FP1, FDIV on FP1, shuffles on FP1/FP2",
        'latency': "AMD 56665 latency tables / Agner Fog instruction tables (Zen 3): IMUL r64 3, DIV r32 "
                   "8-12, DIV r64 9-17, 3-component LEA 2, load-to-use 4, store-to-load forwarding 7-8 "
                   "(Agner Fog microarchitecture guide, Zen 3), ADDSD 3, MULSD 3, FMA 4, DIVSD 13.5, "
                   "SQRTSD 14-20, LOCK ADD m r ~8",
        'throughput': "Agner Fog instruction tables (Zen 3): DIV r32 6, DIV r64 7-12, DIVSD 4.5, SQRTSD 9",
        'rep_string': "estimate of the REP MOVS start-up on AMD cores (Agner Fog: tens of cycles)",
        'taken_branches_per_cycle': "AMD 56665 2.8: one taken branch per cycle sustained",
    },
}

GENERIC = {
    'name': 'generic',
    'description': 'a generic modern x86-64 core: the figures Skylake and Zen 3 share, or between the two',
    'freq_hz': 3_000_000_000,
    'dispatch_width': 4,
    'taken_branches_per_cycle': 1,
    'move_elimination': True,
    'macro_fusion': True,
    'ports': {'alu': [0, 1, 2, 3], 'shift': [0, 3], 'branch': [0, 3], 'mul': [1], 'div': [2], 'lea3': [1],
              'load': [4, 5], 'store_addr': [4, 5], 'store_data': [6], 'fp_add': [7, 8], 'fp_mul': [7, 8],
              'fp_div': [7], 'vec': [7, 8, 9], 'shuf': [9], 'cvt': [7, 8]},
    'latency': {'alu': 1, 'imul': 3, 'mul_wide': 4, 'div32': 14, 'div64': 20, 'lea3': 3, 'load': 5,
                'store_forward': 5, 'fp_add': 4, 'fp_mul': 4, 'fp_fma': 4, 'fp_div': 13, 'fp_sqrt': 18,
                'vec': 1, 'vec_mul': 5, 'shuf': 1, 'cvt': 4, 'cmov': 1, 'atomic': 18},
    'throughput': {'div32': 6, 'div64': 12, 'fp_div': 4, 'fp_sqrt': 6},
    'rep_string': 35,
    'serialize': 30,
    'sources': {
        'dispatch_width': "4 fused uops/cycle: Skylake's rename width (Intel optimization manual); Zen 3 dispatches "
                       "6 macro-ops but has 4 integer ALUs (AMD 56665), so 4 bounds integer code on both",
        'ports': "4 integer ALUs, 1 multiplier, 1 divider, 2 loads + 1 store per cycle, 2 FP add/mul pipes: "
                 "the resources Skylake (uops.info SKL) and Zen 3 (AMD 56665) both have",
        'latency': "uops.info / Agner Fog: IMUL 3 on both; DIV r64 between Zen 3 (9-17) and Skylake (35-88) "
                   "and near Ice Lake's 15 (uops.info ICL); load-to-use 5 (Skylake indexed, Zen 3 FP-side "
                   "loads longer); ADDSD/MULSD 4 (Skylake; Zen 3: 3); DIVSD 13 (both), LOCK ADD 18 (Skylake)",
        'throughput': "Agner Fog instruction tables: DIV r64 recip. throughput 7-12 on Zen 3, 21+ on Skylake, "
                      "~10 on Ice Lake; DIVSD 4 on both",
        'rep_string': "Agner Fog, microarchitecture guide: REP MOVS/STOS start-up overhead ~35 cycles",
        'taken_branches_per_cycle': "one taken branch per cycle (Skylake port 6; Zen 3 AMD 56665 2.8)",
    },
}

PROFILES = {p['name']: p for p in (GENERIC, SKYLAKE, ZEN3)}


def merged(base, over):
    """A profile: `base` with the entries of `over` (a partial profile) replacing its own, per key."""
    out = json.loads(json.dumps(base))
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


def check_profile(p, where):
    """ValueError (one line, naming `where`) unless p is a complete, sensible profile."""
    def bad(msg):
        raise ValueError('%s: %s' % (where, msg))
    if not isinstance(p, dict):
        bad('expected a JSON object')
    for k in ('freq_hz', 'dispatch_width', 'taken_branches_per_cycle', 'rep_string', 'serialize'):
        v = p.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            bad('%s must be a number above 0, got %r' % (k, v))
    for k in LATENCY_KEYS:
        v = p.get('latency', {}).get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            bad('latency.%s must be a number of cycles (0 or more), got %r' % (k, v))
    for k in PORT_KEYS:
        v = p.get('ports', {}).get(k)
        if not (isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 64
                                                   for x in v)):
            bad('ports.%s must be a non-empty list of port numbers 0-63, got %r' % (k, v))
    for k, v in p.get('throughput', {}).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            bad('throughput.%s must be a number above 0, got %r' % (k, v))
    return p


def load_profile(path):
    """The profile a file describes: a JSON object, complete or with `base` naming the profile it changes."""
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise ValueError('%s: %s' % (path, e.strerror)) from None
    except ValueError as e:
        raise ValueError('%s: not a JSON profile (%s)' % (path, e)) from None
    if not isinstance(data, dict):
        raise ValueError('%s: expected a JSON object' % path)
    base = data.get('base', 'generic')
    if base not in PROFILES:
        raise ValueError('%s: unknown base profile %r (known: %s)' % (path, base, ', '.join(PROFILES)))
    return check_profile(merged(PROFILES[base], data), path)


def profile(name_or_path):
    """A named profile, or the one a file holds."""
    if name_or_path in PROFILES:
        return PROFILES[name_or_path]
    return load_profile(name_or_path)
