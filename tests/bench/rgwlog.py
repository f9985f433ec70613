"""radosgw's log as a request counter for the benches: one "beast:" line per
request, written asynchronously.

    pos = mark(log_path)          # before the measured part
    text = since(log_path, pos)   # after it: the lines logged meanwhile
"""
import time


def mark(path):
    """The log's size now (None when there is no log)."""
    try:
        return path.stat().st_size
    except OSError:
        return None


def since(path, pos):
    """The text logged since mark() returned `pos`, once the log has been
    quiet for 150 ms (radosgw writes it asynchronously); None without a mark."""
    if pos is None:
        return None
    size, quiet = mark(path), 0
    while quiet < 3:
        time.sleep(0.05)
        now = mark(path)
        quiet = quiet + 1 if now == size else 0
        size = now
    with open(path, "rb") as f:
        f.seek(pos)
        return f.read().decode("utf-8", "replace")
