"""The GDB remote-serial-protocol stub (`run --gdb`) and the `faultlab gdb` command that drives gdb against it."""
