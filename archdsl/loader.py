"""Files and imports: reading specs, resolving `import`, and finding bundled zoo networks by name.

`import "x.arch"` is relative to the importing file; `import name` looks for `name.arch` beside
the importing file, then in the bundled zoo. Each file gets :class:`Definitions`: its own
definitions plus what it imports (its own definitions win). Cycles and runaway depth are errors.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .diagnostics import SOURCES, ArchError, Diagnostic, Span, error
from .limits import LIMITS, Limits
from .parser import parse
from .syntax import BlockDef, Import, Module, NetworkDef, VariantDef

ZOO_PACKAGE = "archdsl.specs"


@dataclass
class Definitions:
    """Everything visible from one file: blocks and networks, each with the namespace it lives in."""

    file: str
    module: Module
    blocks: dict[str, tuple[BlockDef, Definitions]] = field(default_factory=dict)
    networks: dict[str, tuple[NetworkDef | VariantDef, Definitions]] = field(default_factory=dict)
    own_networks: list[str] = field(default_factory=list)

    def network_def(self, name: str) -> tuple[NetworkDef | VariantDef, Definitions] | None:
        return self.networks.get(name)


def read_text(path: str | os.PathLike[str]) -> str:
    """Read a spec leniently: BOM stripped, CRLF normalized, invalid UTF-8 replaced (and reported)."""
    data = Path(path).read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8", errors="replace")
        line = prefix.count("\n") + 1
        col = len(prefix) - (prefix.rfind("\n") + 1) + 1
        SOURCES.add(str(path), data.decode("utf-8", errors="replace").replace("\r\n", "\n"))
        raise error("E0004", f"invalid UTF-8 byte 0x{data[exc.start]:02x}", Span(str(path), line, col, line, col + 1),
                    "save the file as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


@functools.cache
def zoo_dir() -> Path:
    """Where the bundled specs are installed (found once per process: the package does not move)."""
    return Path(str(resources.files(ZOO_PACKAGE)))


def zoo_files() -> list[Path]:
    return sorted(p for p in zoo_dir().glob("*.arch"))


_NETWORK_RE = re.compile(r"^\s*network\s+([A-Za-z_][A-Za-z_0-9]*)", re.MULTILINE)


def find_in_zoo(name: str) -> Path | None:
    """The bundled file defining network `name` (a cheap text scan; only that file is parsed). One
    directory listing, one stat per file; a file is read again only when it changed."""
    folder = zoo_dir()
    with os.scandir(folder) as listing:
        entries = sorted((e.name, e.path, e) for e in listing if e.name.endswith(".arch") and e.is_file())
    for file_name, file, entry in entries:
        if name in _names_in(file, entry.stat()):
            return folder / file_name
    return None


def zoo_network_names() -> list[str]:
    names: list[str] = []
    for path in zoo_files():
        names += _networks_in(path)
    return names


def _networks_in(path: Path) -> list[str]:
    return _names_in(str(path), path.stat())


def _names_in(file: str, stat: os.stat_result) -> list[str]:
    """The networks a zoo file defines, by a text scan; rescanned whenever the file's modification
    time or size changes (looking a name up would otherwise read every file of the zoo each time)."""
    key = (stat.st_mtime_ns, stat.st_size)
    known = _ZOO_NAMES.get(file)
    if known is None or known[0] != key:
        with open(file, encoding="utf-8") as handle:
            known = _ZOO_NAMES[file] = (key, _NETWORK_RE.findall(handle.read()))
    return known[1]


_ZOO_NAMES: dict[str, tuple[tuple[int, int], list[str]]] = {}


class Loader:
    def __init__(self, limits: Limits = LIMITS) -> None:
        self.limits = limits
        self.cache: dict[str, Definitions] = {}
        self.stack: list[str] = []

    def load_file(self, path: str | os.PathLike[str], span: Span | None = None) -> Definitions:
        key = os.path.normpath(os.path.abspath(path))
        if key in self.cache:
            return self.cache[key]
        display = str(path)
        try:
            size = os.path.getsize(path)
            if size > 4 * self.limits.max_file_chars:  # refused unread: UTF-8 takes at most 4 bytes a character
                raise error("E0001", f"file is too large ({size:,} bytes; the limit is {self.limits.max_file_chars:,} "
                            "characters)", Span(display, 1, 1, 1, 2),
                            "split the file, or raise the limit (--max-file-chars)")
            text = read_text(path)
        except OSError as exc:
            where = span or Span.unknown(display)
            raise error("E0005", f"cannot read `{display}`: {exc.strerror or exc}", where,
                        "check the path (imports are relative to the importing file)") from None
        return self.load_text(text, display, key)

    def load_text(self, text: str, display: str, key: str | None = None) -> Definitions:
        key = key or display
        SOURCES.add(display, text)
        module = parse(text, display, limits=self.limits)
        ns = Definitions(display, module)
        self.stack.append(key)
        try:
            self._resolve_imports(ns, module, display)
        finally:
            self.stack.pop()
        self._add_own(ns, module)
        self.cache[key] = ns
        return ns

    def _resolve_imports(self, ns: Definitions, module: Module, display: str) -> None:
        base = Path(display).parent if not display.startswith("<") else Path.cwd()
        problems: list[Diagnostic] = []
        for item in module.items:
            if not isinstance(item, Import):
                continue
            target = self._locate(item, base)
            if target is None:
                problems.append(Diagnostic("E0201", f"cannot find the import `{item.target}`", item.span,
                                           "import a file by path (\"x.arch\") or a bundled network file by name"))
                continue
            key = os.path.normpath(os.path.abspath(target))
            if key in self.stack:
                chain = " → ".join(Path(k).name for k in [*self.stack[self.stack.index(key):], key])
                raise error("E0202", f"import cycle: {chain}", item.span, "remove one of the imports in the cycle")
            if len(self.stack) >= self.limits.max_import_depth:
                raise error("E0203", f"imports nested deeper than {self.limits.max_import_depth} files", item.span,
                            "flatten the import chain")
            imported = self.load_file(target, item.span)
            for name, entry in imported.blocks.items():
                ns.blocks.setdefault(name, entry)
            for name, net in imported.networks.items():
                ns.networks.setdefault(name, net)
        if problems:
            raise ArchError(problems)

    def _locate(self, item: Import, base: Path) -> Path | None:
        if item.is_path:
            path = base / item.target
            return path if path.is_file() else None
        rel = Path(*item.target.split("."))
        for candidate in (base / rel.with_suffix(".arch"), zoo_dir() / rel.with_suffix(".arch")):
            if candidate.is_file():
                return candidate
        return None

    def _add_own(self, ns: Definitions, module: Module) -> None:
        problems: list[Diagnostic] = []
        seen: dict[str, Span] = {}
        for item in module.items:
            if isinstance(item, BlockDef | NetworkDef | VariantDef):
                if item.name in seen:
                    problems.append(Diagnostic("E0204", f"`{item.name}` is defined twice in this file", item.span,
                                               f"the first definition is at {seen[item.name].where()}; rename one"))
                    continue
                seen[item.name] = item.span
            if isinstance(item, BlockDef):
                ns.blocks[item.name] = (item, ns)
            elif isinstance(item, NetworkDef | VariantDef):
                ns.networks[item.name] = (item, ns)
                ns.own_networks.append(item.name)
        if problems:
            raise ArchError(problems)
