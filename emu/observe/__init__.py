"""Observability tools of a run: perf-stat counters, the sampling profiler, Perfetto traces, symbols and unwinding."""
