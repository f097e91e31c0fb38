"""Claim files, one per topic of CLAIMS.md. Each module defines ``CLAIMS``; the registry
imports every module here (names starting with '_' are helpers, not claim files)."""
