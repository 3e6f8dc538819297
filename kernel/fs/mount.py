"""Mount records: which superblock is attached where in the guest namespace."""
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(eq=False)
class Mount:
    """struct mount: sb's root covers `mountpoint` (the inode at guest path `path`)."""
    sb: Any
    path: str
    mountpoint: Optional[Any] = None     # covered inode (None for the root mount)
    mp_parent: Optional[Any] = None      # directory holding the mount point
    mp_name: Optional[str] = None        # name of the mount point in mp_parent

    @property
    def root(self):
        """The root inode of the mounted filesystem."""
        return self.sb.root

    @property
    def readonly(self):
        """True if the filesystem refuses modifications."""
        return self.sb.readonly
