"""Call-frame information (.eh_frame) of a guest program, for exact stack unwinding.

gcc emits .eh_frame for every function on x86-64 (-fasynchronous-unwind-tables is the default), so
at any instruction the table says where the caller's frame is: CFA = rsp or rbp + offset, the return
address at CFA + offset (-8), a saved rbp at CFA + offset. Parsed with pyelftools; each FDE's rule
table is decoded the first time its function is met.
"""
import bisect
import io

from elftools.common.exceptions import ELFError, DWARFError
from elftools.dwarf.callframe import FDE
from elftools.elf.elffile import ELFFile

DW_RBP, DW_RSP, DW_RA = 6, 7, 16


class Rule:
    """What one table row says: CFA = reg + off; RA at CFA + ra (None: outermost frame); rbp at CFA + rbp."""
    __slots__ = ('cfa_reg', 'cfa_off', 'ra', 'rbp')

    def __init__(self, cfa_reg, cfa_off, ra, rbp):
        self.cfa_reg, self.cfa_off, self.ra, self.rbp = cfa_reg, cfa_off, ra, rbp


OUTERMOST = object()


class CfiTable:
    """The FDEs of one ELF image loaded at `bias`."""

    def __init__(self, data, bias=0):
        self.bias = bias
        self._starts, self._fdes, self._decoded = [], [], {}
        try:
            elf = ELFFile(io.BytesIO(data))
            if elf.get_section_by_name('.eh_frame') is None:
                return
            dwarf = elf.get_dwarf_info()
            if not dwarf.has_EH_CFI():
                return
            fdes = sorted((e.header['initial_location'], e.header['address_range'], e)
                          for e in dwarf.EH_CFI_entries() if isinstance(e, FDE))
        except (ELFError, DWARFError, ValueError, KeyError, AttributeError, TypeError, IndexError,
                AssertionError, UnicodeDecodeError, OSError):
            return
        except Exception:           # pyelftools raises construct errors on damaged tables
            return
        for start, size, fde in fdes:
            self._starts.append(start + bias)
            self._fdes.append((start + bias, size, fde))

    def __len__(self):
        return len(self._fdes)

    def rule(self, pc):
        """The Rule at pc, OUTERMOST if pc's frame has no caller, None if there is no usable CFI."""
        i = bisect.bisect_right(self._starts, pc) - 1
        if i < 0:
            return None
        start, size, fde = self._fdes[i]
        if pc >= start + size:
            return None
        rows = self._decoded.get(i)
        if rows is None:
            rows = self._decoded[i] = self._decode(fde)
        j = bisect.bisect_right(rows[0], pc - self.bias) - 1
        return rows[1][j] if j >= 0 else None

    def _decode(self, fde):
        try:
            table = fde.get_decoded().table
        except Exception:           # a damaged FDE: treat the function as having no CFI
            return [], []
        pcs, rules = [], []
        for row in table:
            cfa = row.get('cfa')
            rule = None
            if cfa is not None and cfa.expr is None and cfa.reg in (DW_RSP, DW_RBP):
                ra = row.get(DW_RA)
                if ra is not None and ra.type == 'UNDEFINED':
                    rule = OUTERMOST
                elif ra is not None and ra.type == 'OFFSET':
                    rbp = row.get(DW_RBP)
                    rule = Rule(cfa.reg, cfa.offset, ra.arg,
                                rbp.arg if rbp is not None and rbp.type == 'OFFSET' else None)
            pcs.append(row['pc'])
            rules.append(rule)
        return pcs, rules
