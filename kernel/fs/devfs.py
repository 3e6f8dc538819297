"""devtmpfs: a tmpfs holding the standard memory character devices."""
from faultlab.kernel.fs.chrdev import DeterministicRandom, FullDevice, NullDevice, RandomDevice, ZeroDevice
from faultlab.kernel.fs.stat import S_IFDIR
from faultlab.kernel.fs.tmpfs import TmpFs
from faultlab.kernel.fs.userfaultfd_dev import UserfaultfdDevice


class DevFs(TmpFs):
    """/dev: null, zero, full, random, urandom (+ an empty shm directory); more can be added."""
    fstype = 'devtmpfs'

    def __init__(self, clock=None, seed=0, dev=None):
        """Build the device nodes; random/urandom share one pool seeded with `seed`."""
        super().__init__(clock, False, dev, mode=0o755)
        self.pool = DeterministicRandom(seed)
        root = self.root
        for name, cls in (('null', NullDevice), ('zero', ZeroDevice), ('full', FullDevice)):
            root.add_entry(name, cls(self, self.alloc_ino()))
        root.add_entry('random', RandomDevice(self, self.alloc_ino(), self.pool, minor=8))
        root.add_entry('urandom', RandomDevice(self, self.alloc_ino(), self.pool, minor=9))
        root.add_entry('userfaultfd', UserfaultfdDevice(self, self.alloc_ino()))
        root.mkdir('shm', S_IFDIR | 0o1777)
