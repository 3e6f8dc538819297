"""Simulated block devices (disk timing model)."""
from kernel.block.device import BlockDevice
from kernel.block.params import DiskParams
from kernel.block.request import BlockStats, Request

__all__ = ['BlockDevice', 'BlockStats', 'DiskParams', 'Request']
