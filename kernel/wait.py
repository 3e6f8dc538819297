"""Wait queues (include/linux/wait.h, kernel/sched/wait.c): tasks sleeping until an object changes.

A sleeper leaves its CPU with its system call unfinished; a wake-up makes it return -ERESTARTSYS,
so the call runs again from the start and finds the new state (and a signal handler with SA_RESTART
restarts it the same way). Pipes, sockets and poll/select sleep on these queues.
"""
from faultlab.kernel.futex import BLOCKED
from faultlab.kernel.signal import ERESTARTSYS


class WaitQueue:
    """wait_queue_head_t: the tasks sleeping on one object (stale entries are skipped at wake-up)."""

    def __init__(self):
        self.sleepers = []
        self.entries = []          # wait_queue_entry with a wake function (epoll's ep_poll_callback)

    def add_wait_queue(self, func):
        """add_wait_queue with a custom wake function: func(k, key) runs at every wake-up until removed
        (key: the poll bits the wake-up is about, 0 when unknown)."""
        self.entries.append(func)

    def remove_wait_queue(self, func):
        """remove_wait_queue: func is no longer called."""
        if func in self.entries:
            self.entries.remove(func)

    def wake_all(self, k, key=0):
        """wake_up_interruptible_all (wake_up_interruptible_poll with a key): every sleeper runs its
        system call again, and each wake function is called with the key."""
        for func in list(self.entries):
            func(k, key)
        sleepers, self.sleepers = self.sleepers, []
        for t in sleepers:
            if t.state == 'S' and t.wait_obj is not None and self in t.wait_obj:
                t.wait_obj = None
                k.sched.wake(t, -ERESTARTSYS, k.now())

    def sleep(self, k, t, what):
        """prepare_to_wait + schedule: the current task sleeps here until wake_all (or a signal)."""
        t.waiting_on = what
        t.wait_obj = (self,)
        t.restartable = True
        self.sleepers.append(t)
        k.sched.block(t)
        return BLOCKED
