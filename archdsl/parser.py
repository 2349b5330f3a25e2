"""The front end's entry point: :func:`parse`, text → :class:`~archdsl.syntax.Module`.

Parsing itself (Lark, the grammar, the tree → AST transformer) lives in
:mod:`archdsl.lark_boundary` and is imported only when a text is not in a small on-disk cache of
parsed files: importing Lark and loading its tables costs more than analyzing a whole network
(see benchmarks/cli_latency.py).

The cache key covers everything that shapes an AST: the text, the file name (spans carry it), the
nesting limit, and a fingerprint of the front end — the bytes of every module that builds or
defines the tree (:data:`FRONT_END_FILES`, the grammar included), the package version,
:data:`AST_FORMAT` and the installed Lark's version. An upgraded archdsl therefore never reads an
AST its predecessor cached; an entry that cannot be read back as this key's module (damaged,
truncated, written by other code) is ignored and overwritten.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import pickle
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from .diagnostics import ArchError, Diagnostic, Span, error
from .limits import LIMITS, Limits
from .syntax import Module, Node, StagesStep
from .version import __version__

# Bump when the meaning of a cached AST changes in a way no front-end file's bytes show.
AST_FORMAT = 2
# The package data and modules whose source decides what `parse` returns.
FRONT_END_FILES = ("grammar.lark", "syntax.py", "parser.py", "lark_boundary.py", "vocabulary.py", "diagnostics.py",
                   "version.py")


@functools.cache
def front_end_fingerprint() -> str:
    """A digest of everything but the input that decides an AST (computed once per process)."""
    digest = hashlib.sha256(f"archdsl {__version__} format {AST_FORMAT}\0".encode())
    package = resources.files("archdsl")
    for name in FRONT_END_FILES:
        digest.update(name.encode() + b"\0" + package.joinpath(name).read_bytes() + b"\0")
    lark = importlib.util.find_spec("lark")  # its version line, without importing it
    if lark is not None and lark.origin is not None:
        digest.update(Path(lark.origin).read_bytes())
    return digest.hexdigest()


def _cache_dir() -> Path | None:
    if os.environ.get("ARCHDSL_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "archdsl"


def cache_key(text: str, file: str, max_nesting: int) -> str:
    digest = hashlib.sha256()
    for part in (front_end_fingerprint(), str(max_nesting), file, text):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


# What unpickling a damaged or foreign entry can raise; anything else is a bug and propagates.
_UNREADABLE = (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, IndexError, KeyError,
               TypeError, ValueError, RecursionError, MemoryError)


def _read_cached(path: Path, key: str) -> Module | None:
    """The module cached under `key`, or None when the entry is missing or not exactly that. An
    entry read before is not unpickled again while its file is unchanged (same inode, modification
    time and size): unpickling a zoo file costs more than elaborating its network, and the AST is
    immutable, so every load may share it."""
    try:
        stat = os.stat(path)
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        held = _DECODED.get(key)
        if held is not None and held[0] == stamp:
            return held[1]
        entry = pickle.loads(path.read_bytes())
    except _UNREADABLE:
        return None
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == key and isinstance(entry[1], Module):
        if len(_DECODED) >= _DECODED_MAX:
            del _DECODED[next(iter(_DECODED))]  # the oldest
        _DECODED[key] = (stamp, entry[1])
        return entry[1]
    return None


# Cache entries already unpickled in this process, by key: (the file's stamp when read, the module).
_DECODED: dict[str, tuple[tuple[int, int, int], Module]] = {}
_DECODED_MAX = 64


def _write_cached(path: Path, key: str, module: Module) -> None:
    try:
        from .fileio import write_atomic

        write_atomic(path, pickle.dumps((key, module), protocol=pickle.HIGHEST_PROTOCOL))
    except (OSError, RecursionError):
        pass  # a read-only home directory only costs speed


def parse(text: str, file: str = "<string>", use_cache: bool = True, limits: Limits = LIMITS) -> Module:
    """Parse one source text into a :class:`Module`; raises :class:`ArchError` on any syntax error."""
    check_text(text, file, limits)
    cache = _cache_dir() if use_cache else None
    key = cache_key(text, file, limits.max_nesting) if cache is not None else ""
    path = cache / f"{key}.pickle" if cache is not None else None
    if path is not None:
        cached = _read_cached(path, key)
        if cached is not None:
            return cached
    from .lark_boundary import lark_parse  # Lark is imported only when a text is not in the cache

    module = lark_parse(text, file, limits.max_nesting)
    _check_table_rows(module)
    if path is not None:
        _write_cached(path, key, module)
    return module


def check_text(text: str, file: str, limits: Limits = LIMITS) -> None:
    """What can be refused before parsing, in linear time: size, over-long lines, NUL bytes."""
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        col = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise error("E0002", "NUL byte in source", Span(file, line, col, line, col + 1),
                    "the file looks binary; .arch files are UTF-8 text")
    if len(text) > limits.max_line_chars:
        for number, line_text in enumerate(text.split("\n"), start=1):
            if len(line_text) > limits.max_line_chars:
                col = limits.max_line_chars + 1
                raise error("E0006", f"line {number} is {len(line_text):,} characters long "
                            f"(the limit is {limits.max_line_chars:,})", Span(file, number, col, number, col + 1),
                            "break it into several lines, or raise the limit (--max-line-chars)")
    if len(text) > limits.max_file_chars:
        raise error(
            "E0001", f"file is too large ({len(text):,} characters; the limit is {limits.max_file_chars:,})",
            Span(file, 1, 1, 1, 2), "split the file, or raise the limit (--max-file-chars)",
        )


def _check_table_rows(module: Module) -> None:
    """Rows of a stage table are separated only by line breaks; insist that each row is one line."""
    problems = [p for node in _walk(module) if isinstance(node, StagesStep) for p in _row_problems(node)]
    if problems:
        raise ArchError(problems)


def _row_problems(table: StagesStep) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    for row in table.rows:
        if row.span.line != row.span.end_line:
            problems.append(Diagnostic(
                "E0101", "a stage-table row spans several lines", row.span,
                "write one row per line; a row starting with `-`, `(` or `[` joins the previous one",
            ))
        elif len(row.cells) != len(table.columns):
            problems.append(Diagnostic(
                "E0102", f"this row has {len(row.cells)} cells but the table has "
                f"{len(table.columns)} columns ({', '.join(table.columns)})", row.span,
                "give every row one value per column",
            ))
    return problems


def _walk(node: object) -> Iterator[Node]:
    """Every AST node under `node`, in source order (parents first)."""
    if isinstance(node, Node):
        yield node
        for value in vars(node).values():
            yield from _walk(value)
    elif isinstance(node, tuple):
        for item in node:
            yield from _walk(item)
