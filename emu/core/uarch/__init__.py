"""A per-block timing model of an out-of-order x86-64 core: profiles (profiles.py), instruction
descriptions (decode.py) and the block pricer (pricer.py)."""
