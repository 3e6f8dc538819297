"""`faultlab sweep`: one `faultlab run --stats-json` per point of a grid of run options and program
arguments, on a local pool of processes or on Dask, each point's record cached by what determines it."""
