"""Reading a process through /proc: pure parsers (parse), live readers behind an
overridable proc root (read), mapping classification (classify), kcmp(2) grouping
(kcmp), physical pages (pagemap), and one whole look at a process (snapshot).
"""

from perflab.observe.procfs.snapshot import collect

__all__ = ["collect"]
