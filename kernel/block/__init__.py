"""Simulated block devices (disk timing model)."""
from faultlab.kernel.block.device import BlockDevice
from faultlab.kernel.block.params import DiskParams
from faultlab.kernel.block.request import BlockStats, Request

__all__ = ['BlockDevice', 'BlockStats', 'DiskParams', 'Request']
