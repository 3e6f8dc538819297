"""The kernel's tid -> Task table (the pid hash) and its live tasks at hand: a thread that exited
stays in the table (its tid still answers lookups), but walks over the running ones (how many
tasks live, which address spaces are in use) must not grow with every thread ever created."""
from bisect import bisect_left


class TaskTable(dict):
    """A dict of tid -> Task whose live() is [t for t in values() if not t.exited], in the same order,
    computed from the tasks live at the last call and those stored since (a task never un-exits)."""

    def __init__(self):
        super().__init__()
        self._seq = {}           # tid -> when the key entered the dict (its position in the dict's order)
        self._next = 0
        self._live = []          # sorted [(seq, tid)]: the entries that may be live

    def __setitem__(self, tid, task):
        if tid not in self:
            self._seq[tid] = self._next
            self._next += 1
        super().__setitem__(tid, task)
        entry = (self._seq[tid], tid)
        i = bisect_left(self._live, entry)
        if i == len(self._live) or self._live[i] != entry:
            self._live.insert(i, entry)

    def __delitem__(self, tid):
        super().__delitem__(tid)
        del self._seq[tid]

    def pop(self, tid, *default):
        self._seq.pop(tid, None)
        return super().pop(tid, *default)

    def live(self):
        """The tasks that have not exited, in the table's order."""
        keep, out = [], []
        for seq, tid in self._live:
            if self._seq.get(tid) != seq:
                continue
            t = dict.get(self, tid)
            if t is None or t.exited:
                continue
            keep.append((seq, tid))
            out.append(t)
        self._live = keep
        return out


def find_task_by_vpid(k, pid):
    """find_task_by_vpid: a live task with this id, or None."""
    task = k.tasks.get(pid)
    return task if task is not None and not task.exited else None
