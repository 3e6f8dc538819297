"""Disk performance parameters (the knobs of the simulated block device)."""
import dataclasses
import math
from dataclasses import dataclass

_INT_FIELDS = ('queue_depth', 'block_size', 'size_mb')
_FLOAT_FIELDS = ('read_latency_us', 'write_latency_us', 'read_bw_mbps', 'write_bw_mbps')


@dataclass(frozen=True)
class DiskParams:
    """Latency/bandwidth/queue model of one disk; defaults are a datacenter NVMe SSD.

    Bandwidths are in MB/s with 1 MB = 10**6 bytes (as disk vendors quote them).
    """
    read_latency_us: float = 80.0
    write_latency_us: float = 20.0
    read_bw_mbps: float = 3200.0
    write_bw_mbps: float = 2000.0
    queue_depth: int = 64
    block_size: int = 4096
    size_mb: int = 4096                 # capacity of the guest's root filesystem (MiB)

    def __post_init__(self):
        """Check every field; raise ValueError naming the bad one."""
        for name in _FLOAT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f'disk parameter {name!r} must be a finite number, got {v!r}')
            object.__setattr__(self, name, float(v))
        for name in ('read_latency_us', 'write_latency_us'):
            if getattr(self, name) < 0:
                raise ValueError(f'disk parameter {name!r} must be >= 0, got {getattr(self, name)!r}')
        for name in ('read_bw_mbps', 'write_bw_mbps'):
            if getattr(self, name) <= 0:
                raise ValueError(f'disk parameter {name!r} must be > 0, got {getattr(self, name)!r}')
        for name in _INT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f'disk parameter {name!r} must be an integer, got {v!r}')
        if self.queue_depth < 1:
            raise ValueError(f"disk parameter 'queue_depth' must be >= 1, got {self.queue_depth}")
        if self.size_mb < 1:
            raise ValueError(f"disk parameter 'size_mb' must be >= 1, got {self.size_mb}")
        bs = self.block_size
        if bs < 512 or bs & (bs - 1):
            raise ValueError(f"disk parameter 'block_size' must be a power of two >= 512, got {bs}")

    @classmethod
    def from_dict(cls, overrides, base=None):
        """A copy of `base` (default: the NVMe defaults) with fields replaced from a dict.

        Values may be numbers or strings (as typed on a command line).
        """
        base = base if base is not None else cls()
        known = [f.name for f in dataclasses.fields(cls)]
        changes = {}
        for key, raw in dict(overrides).items():
            if key not in known:
                raise ValueError(f'unknown disk parameter {key!r} (known: {", ".join(known)})')
            changes[key] = _convert(key, raw)
        return dataclasses.replace(base, **changes)

    @classmethod
    def parse(cls, spec, base=None):
        """Parse a CLI string like 'read_latency_us=100,queue_depth=8' into DiskParams."""
        overrides = {}
        for item in (spec or '').split(','):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition('=')
            key, value = key.strip(), value.strip()
            if not sep or not key or not value:
                raise ValueError(f'bad disk parameter {item!r} (expected NAME=VALUE)')
            if key in overrides:
                raise ValueError(f'disk parameter {key!r} given twice')
            overrides[key] = value
        return cls.from_dict(overrides, base)


def _convert(key, raw):
    """Convert one override value to the field's type, or raise ValueError."""
    if isinstance(raw, bool):
        raise ValueError(f'bad value for disk parameter {key!r}: {raw!r}')
    if key in _INT_FIELDS:
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        try:
            return int(str(raw).strip(), 0)
        except ValueError:
            raise ValueError(f'bad value for disk parameter {key!r}: {raw!r} (expected an integer)') from None
    if isinstance(raw, (int, float)):
        return float(raw)
    try:
        return float(str(raw).strip())
    except ValueError:
        raise ValueError(f'bad value for disk parameter {key!r}: {raw!r} (expected a number)') from None
