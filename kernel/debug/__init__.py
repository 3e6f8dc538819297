"""Kernel debugging aids (like Linux's CONFIG_DEBUG_VM): invariant checks run after each trap."""
