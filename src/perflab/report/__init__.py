"""Views of verdicts: the JSON record (report.record) and the terminal (report.terminal)."""
