"""Block pricing: the light-decoder rules give every instruction the same cycles as the full decode."""
import os

from capstone import Cs, CS_ARCH_X86, CS_MODE_64
from elftools.elf.elffile import ELFFile

from faultlab.core.cycles import InsnCoster, CostTable


def _text(path):
    with open(path, 'rb') as f:
        s = ELFFile(f).get_section_by_name('.text')
        return s.data(), s['sh_addr']


def test_light_pricing_equals_full_decode(userland):
    coster, lite = InsnCoster(CostTable()), Cs(CS_ARCH_X86, CS_MODE_64)
    checked = set()
    kinds = set()
    for prog in ('compute', 'pagetouch', 'populate_bench'):
        code, base = _text(os.path.join(userland, prog))
        off = 0
        while off < len(code):
            step = 0
            for a, size, mnemonic, ops in lite.disasm_lite(code[off:off + 4096], base + off):
                step += size
                enc = code[a - base:a - base + size]
                if enc in checked or mnemonic.startswith(('f', 'wait')):
                    continue
                checked.add(enc)
                full = coster._price_detailed(enc, a)
                assert coster._price_lite(enc, mnemonic, ops) == full, (enc.hex(), mnemonic, ops)
                kinds.add(full)
            off += step or 1
    # the corpus exercises plain, memory, multiply/divide and string (rep movs/stos) prices
    assert len(checked) > 5000 and len(kinds) >= 5


def test_block_price_is_cached_per_encoding():
    coster = InsnCoster(CostTable())
    code = bytes.fromhex('4801d8' '488b03' '48f7f1' 'f348a5' 'c3')   # add, load, div, rep movsq, ret
    first = coster.price(code, 0x401000)
    assert [a for a, _ in first] == [0x401000, 0x401003, 0x401006, 0x401009, 0x40100c]
    c = CostTable()
    assert [p for _, p in first] == [c.insn, c.insn + c.insn_mem, c.insn + c.insn_div,
                                     c.insn + c.insn_mem + c.insn_string, c.insn]      # ret: no explicit memory operand
    assert coster.price(code, 0x500000) == [(a - 0x401000 + 0x500000, p) for a, p in first]
