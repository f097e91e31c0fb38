"""Subjects run as programs, not imported: ``pyswitch.py`` (run with the interpreter
perflab runs under) and ``green.go`` (built with the user's Go toolchain by
perflab.claims._subjects). See docs/claims/green.md, "Kernels"."""
