"""Block prices of one core profile, shared by every CPU and run of the process that uses the profile."""
import json

from capstone import Cs, CS_ARCH_X86, CS_MODE_64

from faultlab.core.uarch.decode import Decoder
from faultlab.core.uarch.pricer import Model, block_cycles, spread

_DECODER = Decoder()        # instruction descriptions by encoding (every profile)
_SHARED = {}                # profile (as JSON) -> (Model, {(address, bytes): prices})


class BlockPricer:
    """[(insn address, cycles)] of a block under one profile: the model's cycles per execution rounded to
    whole cycles (at least 1, but 0 for the one-element blocks of a rep-string instruction), spread over
    the instructions by their dispatch slots."""

    LIMIT = 1 << 16         # blocks remembered per profile

    def __init__(self, profile):
        key = json.dumps(profile, sort_keys=True)
        entry = _SHARED.get(key)
        if entry is None:
            entry = _SHARED[key] = (Model(profile), {})
        self.model, self._blocks = entry
        self._lite = Cs(CS_ARCH_X86, CS_MODE_64)

    def price(self, code, addr):
        """The prices of the block `code` placed at `addr` (a shared list: callers only read it)."""
        key = (addr, bytes(code))
        out = self._blocks.get(key)
        if out is None:
            if len(self._blocks) >= self.LIMIT:
                self._blocks.clear()
            out = self._blocks[key] = self._price(key[1], addr)
        return out

    def _price(self, code, addr):
        describe = _DECODER.describe
        insns = [(a, describe(code[a - addr:a - addr + size]))
                 for a, size, _m, _o in self._lite.disasm_lite(code, addr)]
        if not insns:
            return []
        cycles, slots = block_cycles(self.model, insns, addr)
        least = 0 if len(insns) == 1 and insns[0][1].cls == 'rep_string' else 1
        return list(zip([a for a, _ in insns], spread(max(least, int(cycles + 0.5)), slots)))
