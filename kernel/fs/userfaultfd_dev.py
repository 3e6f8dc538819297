"""/dev/userfaultfd (fs/userfaultfd.c userfaultfd_misc): the misc device whose USERFAULTFD_IOC_NEW ioctl
makes a userfaultfd context, whatever vm.unprivileged_userfaultfd says (access is the device's
permission, crw------- root). The context code registers its constructor here at boot (as
misc_register does), so devtmpfs does not depend on the memory-management side."""
import errno

from faultlab.kernel.fs.chrdev import CharDevice
from faultlab.kernel.fs.stat import makedev

MISC_MAJOR, USERFAULTFD_MINOR = 10, 257
USERFAULTFD_IOC_NEW = 0xAA << 8          # _IO(USERFAULTFD_IOC, 0x00)
_misc = {}


def userfaultfd_misc_register(new_userfaultfd):
    """Install new_userfaultfd(k, t, flags) -> fd or -errno as the device's constructor."""
    _misc['new'] = new_userfaultfd


class UserfaultfdDevice(CharDevice):
    """The /dev/userfaultfd node (misc 10:257)."""

    def __init__(self, sb, ino):
        super().__init__(sb, ino, mode=0o600, rdev=makedev(MISC_MAJOR, USERFAULTFD_MINOR))

    def unlocked_ioctl(self, k, t, f, cmd, arg):
        """userfaultfd_dev_ioctl: USERFAULTFD_IOC_NEW only (EINVAL otherwise)."""
        new = _misc.get('new')
        if cmd != USERFAULTFD_IOC_NEW or new is None:
            return -errno.EINVAL
        return new(k, t, arg & 0xFFFFFFFF)
