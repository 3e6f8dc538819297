"""`faultlab selftests`: the Linux mm selftests built from the distribution's kernel source, run natively and under faultlab."""
