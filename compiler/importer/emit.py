"""Writing the spec: blocks and the network as a person would write them.

A value used once, by the next step of a chain, is not named: it becomes the left side of `->`. A
value used several times, or as an operand of `+`/`*`, gets a name (the model's own variable name
where its source assigned one). Runs of calls of one block under one container (`layer1.0`,
`layer1.1`, …) become a `repeat`, with the arguments that change written with the index (`stride=(i
== 0 ? 2 : 1)`); consecutive repeats named `L1`, `L2`, … become a stage table. Output is
deterministic: it depends only on the traced graph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .structure import NO_DEFAULT, BlockDef, Key, Ref, Structure, TItem
from .values import COMPARE, Expr, equals, literal, name, reserved_names, ternary

WIDTH = 110
INDENT = "    "


@dataclass
class Step:
    """One step of a chain: lines of text (more than one for a stage table), under a condition."""

    lines: list[str]
    cond: str | None = None


@dataclass
class Chain:
    head: str
    steps: list[Step] = field(default_factory=list)
    refs: list[tuple[Key, int]] = field(default_factory=list)  # named values it reads

    @property
    def bare(self) -> bool:
        return not self.steps


# ---------------------------------------------------------------------------------------------
# repeats and stage tables


# `layer1.0`, or `block1-0` as torchvision's RegNet names the blocks of a stage (add_module)
_INDEXED = re.compile(r"(.+)([.-])(0|[1-9][0-9]*)\Z")
_ROW = re.compile(r"([A-Za-z][A-Za-z_]*?)([1-9][0-9]*)\Z")


@dataclass
class Pattern:
    """How one argument varies over a repeat's iterations: the same in all, or another in the first."""

    first: Expr
    rest: Expr

    @property
    def const(self) -> bool:
        return self.first.text == self.rest.text


def _arg_exprs(item: TItem) -> dict[str, Expr]:
    """A call's arguments by parameter name, defaults filled in."""
    assert item.block is not None
    out: dict[str, Expr] = {}
    given = list(item.args)
    for k, p in enumerate(item.block.params):
        match = [e for n, e in given if n == p.name]
        if match:
            out[p.name] = match[0]
        elif k == 0 and given and given[0][0] is None:
            out[p.name] = given[0][1]
        else:
            out[p.name] = literal(p.default)
    return out


def _index_expr(pat: Pattern, first: Expr, rest: Expr) -> Expr:
    """`i == 0 ? first : rest`, simplified for booleans."""
    if pat.const:
        return first
    i0 = equals(name("i"), literal(0))
    if first.text == "true" and rest.text == "false":
        return i0
    if first.text == "false" and rest.text == "true":
        return equals(name("i"), literal(0), "!=")
    if rest.text == "false":
        return Expr(f"{i0.text} and {first.at(3)}", 2)
    return ternary(i0, first, rest)


def _call_args(block: BlockDef, values: dict[str, Expr]) -> str:
    parts = []
    for k, p in enumerate(block.params):
        e = values[p.name]
        if p.default is not NO_DEFAULT and e.text == literal(p.default).text:
            continue
        if k == 0 and p.default is NO_DEFAULT:
            parts.append(e.text)
        else:
            parts.append(f"{p.name}={_kw(e)}")
    return ", ".join(parts)


def _kw(e: Expr) -> str:
    """A keyword argument's value; comparisons and conditionals in parentheses, as people write them."""
    return e.at(COMPARE + 1)


@dataclass
class Run:
    """A `repeat` over consecutive calls of one block: its label, count and argument patterns."""

    label: str
    items: list[TItem]
    patterns: dict[str, Pattern]
    sep: str = "."  # "-": the items are `label-0`, `label-1`, … (labelled by the index, not nested)

    @property
    def block(self) -> BlockDef:
        assert self.items[0].block is not None
        return self.items[0].block


def find_runs(items: list[TItem], uses: dict[tuple[Key, int], int]) -> list[Run]:
    runs: list[Run] = []
    k = 0
    while k < len(items):
        it = items[k]
        m = _INDEXED.match(it.label or "") if it.kind == "call" and it.cond is None else None
        if m is None or m.group(3) != "0" or len(it.inputs) != 1:
            k += 1
            continue
        prefix, sep, members = m.group(1), m.group(2), [it]
        j = k + 1
        while j < len(items):
            nxt, prev = items[j], members[-1]
            if (nxt.kind != "call" or nxt.block is not it.block or nxt.cond is not None
                    or nxt.label != f"{prefix}{sep}{len(members)}" or nxt.inputs != [Ref(prev.key, 0)]
                    or uses.get((prev.key, 0), 0) != 1):
                break
            members.append(nxt)
            j += 1
        patterns = _patterns(members)
        if len(members) >= 2 and patterns is not None:
            runs.append(Run(prefix, members, patterns, sep))
            k = j
        else:
            k += 1
    return runs


def _patterns(members: list[TItem]) -> dict[str, Pattern] | None:
    if len(members) < 2:
        return None
    args = [_arg_exprs(m) for m in members]
    out = {}
    for p in args[0]:
        first, rest = args[0][p], [a[p] for a in args[1:]]
        if any(r.text != rest[0].text for r in rest):
            return None
        out[p] = Pattern(first, rest[0])
    return out


# ---------------------------------------------------------------------------------------------
# a body: the statements of a block or of the network


class BodyWriter:
    def __init__(self, block: BlockDef, input_names: list[str], taken: set[str], is_network: bool) -> None:
        self.block = block
        self.items = block.items
        self.by_key = {it.key: it for it in self.items}
        self.input_names = input_names
        self.taken = set(taken) | set(input_names)
        self.is_network = is_network
        self.uses: dict[tuple[Key, int], int] = {}
        self.consumers: dict[tuple[Key, int], list[tuple[TItem | None, int]]] = {}
        for it in self.items:
            for slot, r in enumerate(it.inputs):
                if r.key is not None:
                    self.uses[(r.key, r.index)] = self.uses.get((r.key, r.index), 0) + 1
                    self.consumers.setdefault((r.key, r.index), []).append((it, slot))
        out = block.output
        if out.key is not None:
            self.uses[(out.key, out.index)] = self.uses.get((out.key, out.index), 0) + 1
            self.consumers.setdefault((out.key, out.index), []).append((None, 0))
        self.names: dict[tuple[Key, int], str] = {}
        self.remaining = dict(self.uses)  # uses of each value not yet written
        self.bound: dict[str, tuple[Key, int]] = {}  # variable → the value it holds now
        self.pending: dict[tuple[Key, int], Chain] = {}
        self.lines: list[str] = []
        # runs become single steps; their last item stands for the whole run
        self.run_of: dict[Key, Run] = {}
        self.skip: set[Key] = set()
        runs = find_runs(self.items, self.uses)
        tables = self._tables(runs)
        self.table_of: dict[Key, list[Run]] = {}
        for table in tables:
            for row in table[:-1]:
                self.skip.update(m.key for m in row.items)
            self.skip.update(m.key for m in table[-1].items[:-1])
            self.table_of[table[-1].items[-1].key] = table
        for run in runs:
            if any(run in t for t in tables):
                continue
            if len(run.items) == 2 and not all(p.const for p in run.patterns.values()):
                continue  # two calls read better than a repeat of two whose arguments change with i
            self.skip.update(m.key for m in run.items[:-1])
            self.run_of[run.items[-1].key] = run

    # --- naming
    def fresh(self, hint: str | None, value: tuple[Key, int] | None = None, chain: Chain | None = None) -> str:
        """A variable for `value`: the hint itself when the value it holds now is read by nobody but
        `chain` (`features = concat(features, …)`, as the model's Python rebinds it), else a new one."""
        base = hint if hint and re.match(r"[A-Za-z][A-Za-z0-9_]*\Z", hint) else "x"
        old = self.bound.get(base)
        if value is not None and old is not None and chain is not None \
                and self.remaining.get(old, 0) == chain.refs.count(old):
            self.bound[base] = value
            return base
        if base in reserved_names():
            base += "_"
        candidate, k = base, 2
        while candidate in self.taken or candidate in reserved_names():
            candidate, k = f"{base}_{k}", k + 1
        self.taken.add(candidate)
        if value is not None:
            self.bound[candidate] = value
        return candidate

    def ref_chain(self, r: Ref) -> Chain:
        if r.key is None:
            return Chain(self.input_names[r.index])
        k = (r.key, r.index)
        if k in self.pending:
            return self.pending.pop(k)
        return Chain(self.names[k], refs=[k])

    def ref_name(self, r: Ref) -> Chain:
        """The value as a bare name (assigning it first if it is a pending chain)."""
        chain = self.ref_chain(r)
        if chain.bare:
            return chain
        k = (r.key, r.index)  # a pending chain is a value of an item
        var = self.fresh(self._var_hint(r), k, chain)  # type: ignore[arg-type]
        self.emit_assign(var, chain)
        self.names[k] = var  # type: ignore[index]
        return Chain(var, refs=[k])  # type: ignore[list-item]

    def _var_hint(self, r: Ref) -> str | None:
        if r.key is None:
            return None
        return self.by_key[r.key].var

    # --- statements
    def write(self) -> list[str]:
        for it in self.items:
            if it.key in self.skip:
                continue
            self.item(it)
        out = self.block.output
        final = Chain(self.input_names[out.index]) if out.key is None else self.ref_chain(out)
        if self.is_network:
            if final.bare and self.lines:
                self.lines.append(f"output logits = {final.head}")
            else:
                final.steps.append(Step(["output logits"]))
                self.emit(final, "")
        else:
            self.emit(final, "")
        return self.lines

    def item(self, it: TItem) -> None:
        key = it.key
        chain = self.expr(it)
        if it.n_out > 1:
            names = [self.fresh(f"{it.var or it.op or 'x'}_{i}", (key, i)) for i in range(it.n_out)]
            self.emit_assign(", ".join(names), chain)
            for i, n in enumerate(names):
                self.names[(key, i)] = n
            return
        k = (key, 0)
        consumers = self.consumers.get(k, [])
        if len(consumers) == 1:
            consumer, slot = consumers[0]
            if consumer is None or self._chainable(consumer, slot) or self._inline_arg(consumer):
                self.pending[k] = chain
                return
        if not consumers:
            self.emit(chain, "")
            return
        var = self.fresh(it.var, k, chain)
        self.emit_assign(var, chain)
        self.names[k] = var

    def _chainable(self, consumer: TItem, slot: int) -> bool:
        if slot != 0 or len(consumer.inputs) != 1:
            return False
        return consumer.kind in ("op", "call") and consumer.op not in ("add", "mul")

    @staticmethod
    def _inline_arg(consumer: TItem) -> bool:
        return consumer.kind == "op" and consumer.op == "concat" and consumer.cond is None

    def emit_assign(self, target: str, chain: Chain) -> None:
        self.emit(chain, f"{target} = ")

    def emit(self, chain: Chain, prefix: str) -> None:
        self.lines.extend(render_chain(chain, prefix))
        for k in chain.refs:
            self.remaining[k] = self.remaining.get(k, 1) - 1

    def step_text(self, it: TItem) -> str:
        label = f" as {it.label}" if it.label else ""
        if it.kind == "call":
            assert it.block is not None
            args = _call_args(it.block, _arg_exprs(it))
            return f"{it.block.name}({args}){label}"
        args = ", ".join(e.text if n is None else f"{n}={_kw(e)}" for n, e in it.args)
        return f"{it.op}({args}){label}" if args else f"{it.op}{label}"

    def expr(self, it: TItem) -> Chain:
        if it.key in self.table_of:
            return self.table_step(self.table_of[it.key])
        if it.key in self.run_of:
            return self.run_step(self.run_of[it.key])
        cond = it.cond.text if it.cond is not None else None
        if it.kind == "op" and it.op in ("add", "mul") and len(it.inputs) >= 2 and not it.op_valued:
            named = [self.ref_name(r) for r in it.inputs]
            operands = [c.head for c in named]
            refs = [k for c in named for k in c.refs]
            symbol = " + " if it.op == "add" else " * "
            text = symbol.join(operands) if not it.args else f"{it.op}({', '.join(operands)})"
            if cond is None:
                return Chain(text, refs=refs)
            return Chain(f"if {cond} {{ {text} }} else {{ {operands[it.passthrough]} }}", refs=refs)
        if len(it.inputs) == 1:
            head = self.ref_chain(it.inputs[0])
            head.steps.append(Step([self.step_text(it)], cond))
            return head
        # several inputs: the first is chained, the others come first in the call
        if cond is not None:
            named = [self.ref_name(r) for r in it.inputs]
            names = [c.head for c in named]
            inner = f"{names[0]} -> {self._call_text(it, names[1:])}"
            return Chain(f"if {cond} {{ {inner} }} else {{ {names[it.passthrough]} }}",
                         refs=[k for c in named for k in c.refs])
        branches = [self.ref_chain(r) for r in it.inputs]
        refs = [k for c in branches for k in c.refs]
        if it.kind == "op" and not it.label:
            return Chain(self._call_lines(it, branches), refs=refs)
        head = Chain(branches[0].head, branches[0].steps, refs)
        head.steps.append(Step([self._call_lines(it, branches[1:])]))
        return head

    def _call_lines(self, it: TItem, branches: list[Chain]) -> str:
        """`op(a, b, attrs)` on one line, or, when that is too long, one tensor argument per line."""
        flat = [" -> ".join([c.head, *(_flat_step(s) for s in c.steps)]) for c in branches]
        one_line = self._call_text(it, flat)
        if len(one_line) <= WIDTH - 20 or not branches:
            return one_line
        label = f" as {it.label}" if it.label else ""
        args = [e.text if n is None else f"{n}={_kw(e)}" for n, e in it.args] if it.kind == "op" else \
            ([_call_args(it.block, _arg_exprs(it))] if it.block is not None else [])
        callee = it.op if it.kind == "op" else it.block.name  # type: ignore[union-attr]
        lines = [f"{callee}("]
        for c in branches:
            rendered = render_chain(c, "", WIDTH - 2 * len(INDENT))
            rendered[-1] += ","
            lines.extend(INDENT + x for x in rendered)
        tail = ", ".join(a for a in args if a)
        lines.append(f"{tail}){label}" if tail else f"){label}")
        return "\n".join(lines)

    def _call_text(self, it: TItem, tensors: list[str]) -> str:
        label = f" as {it.label}" if it.label else ""
        if it.kind == "call":
            assert it.block is not None
            given = _call_args(it.block, _arg_exprs(it))
            return f"{it.block.name}({', '.join([*tensors, given] if given else tensors)}){label}"
        attrs = [e.text if n is None else f"{n}={_kw(e)}" for n, e in it.args]
        return f"{it.op}({', '.join([*tensors, *attrs])}){label}"

    def run_step(self, run: Run) -> Chain:
        head = self.ref_chain(run.items[0].inputs[0])
        values = {p: _index_expr(pat, pat.first, pat.rest) for p, pat in run.patterns.items()}
        uses_i = run.sep == "-" or any(not pat.const for pat in run.patterns.values())
        var = " as i" if uses_i else ""
        label = run.label if run.sep == "." else f"{run.label}-{{i}}"  # each iteration labelled by its index
        head.steps.append(Step([f"repeat {len(run.items)}{var} {{ {run.block.name}({_call_args(run.block, values)})"
                                f" }} as {label}"]))
        return head

    def _tables(self, runs: list[Run]) -> list[list[Run]]:
        tables: list[list[Run]] = []
        k = 0
        while k < len(runs):
            m = _ROW.match(runs[k].label)
            if m is None or m.group(2) != "1" or "." in runs[k].label or runs[k].sep != ".":
                k += 1
                continue
            prefix, table = m.group(1), [runs[k]]
            j = k + 1
            while j < len(runs):
                nxt, prev = runs[j], table[-1]
                if (nxt.label != f"{prefix}{len(table) + 1}" or nxt.block is not prev.block or nxt.sep != "."
                        or nxt.items[0].inputs != [Ref(prev.items[-1].key, 0)]
                        or self.uses.get((prev.items[-1].key, 0), 0) != 1):
                    break
                table.append(nxt)
                j += 1
            if len(table) >= 2:
                tables.append(table)
                k = j
            else:
                k += 1
        return tables

    def table_step(self, table: list[Run]) -> Chain:
        head = self.ref_chain(table[0].items[0].inputs[0])
        prefix = _ROW.match(table[0].label).group(1)  # type: ignore[union-attr]
        block = table[0].block
        count = "n" if "n" not in self.taken else self.fresh("repeats")
        self.taken.add(count)
        columns: list[tuple[str, list[Expr]]] = [(count, [literal(len(r.items)) for r in table])]
        values: dict[str, Expr] = {}
        used_names = self.taken
        for p in block.params:
            pats = [r.patterns[p.name] for r in table]
            firsts, rests = [x.first for x in pats], [x.rest for x in pats]
            varies_in_row = any(not x.const for x in pats)
            first_col = self._column(p.name, firsts, columns, used_names)
            if not varies_in_row:
                values[p.name] = first_col
                continue
            rest_col = self._column(f"{p.name}_rest", rests, columns, used_names)
            values[p.name] = _index_expr(Pattern(first_col, rest_col), first_col, rest_col)
        uses_i = any("i ==" in v.text or "i !=" in v.text for v in values.values())
        header = f"stages({', '.join(c for c, _ in columns)}) as {prefix} {{"
        cells = [[v[r].text for _, v in columns] for r in range(len(table))]
        widths = [max(len(row[c]) for row in cells) for c in range(len(columns))]
        rows = [", ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in cells]
        body = f"}} repeat {count}{' as i' if uses_i else ''}: {block.name}({_call_args(block, values)})"
        head.steps.append(Step([header, *rows, body]))
        return head

    @staticmethod
    def _column(pname: str, vals: list[Expr], columns: list[tuple[str, list[Expr]]], used: set[str]) -> Expr:
        if all(v.text == vals[0].text for v in vals):
            return vals[0]
        col, k = pname, 2
        while col in used or col in reserved_names():
            col, k = f"{pname}_{k}", k + 1
        used.add(col)
        columns.append((col, vals))
        return name(col)


def _flat_step(s: Step) -> str:
    text = " ".join(x.strip() for x in s.lines)
    return f"if {s.cond} {{ {text} }}" if s.cond else text


def render_chain(chain: Chain, prefix: str, width: int = WIDTH) -> list[str]:
    """`prefix head -> step -> …`, wrapped before `->` where a line would pass `width` (counted from
    the block's indentation); steps under the same condition are grouped into one `if`, itself
    spread over lines when it does not fit on one."""
    head = chain.head.split("\n")
    pad = " " * len(prefix)
    lines = [prefix + head[0], *(pad + x for x in head[1:])]
    # Continuation lines put `->` under the first one, unless the head is long (then a fixed indent).
    cont = " " * (len(lines[0]) + 1) if len(lines) == 1 and len(head[0]) <= 24 else pad + "  "
    writer = _Lines(lines, cont, width - len(INDENT))
    steps, k = chain.steps, 0
    while k < len(steps):
        s = steps[k]
        if s.cond is None:
            writer.step(s.lines)
            k += 1
            continue
        texts = []
        while k < len(steps) and steps[k].cond == s.cond:
            texts.append(_flat_step(Step(steps[k].lines)))
            k += 1
        writer.conditional(s.cond, texts)
    return lines


@dataclass
class _Lines:
    """The lines of one chain being written."""

    lines: list[str]
    cont: str  # the indentation of a continuation line's `->`
    limit: int

    def add(self, text: str) -> None:
        candidate = self.lines[-1] + " -> " + text
        if len(candidate) <= self.limit or (len(self.lines) == 1 and "->" not in self.lines[-1]):
            self.lines[-1] = candidate
        else:
            self.lines.append(self.cont + "-> " + text)

    def step(self, parts: list[str]) -> None:
        if len(parts) > 1:  # a stage table starts its own line
            self.lines.append(self.cont + "-> " + parts[0])
            self.lines.extend(self.cont + "   " + INDENT + x for x in parts[1:-1])
            self.lines.append(self.cont + "   " + parts[-1])
            return
        text = parts[0].split("\n")
        if len(text) == 1:
            self.add(text[0])
            return
        self.lines[-1] += " -> " + text[0]  # a call with one tensor argument per line
        indent = " " * (len(self.lines[-1]) - len(self.lines[-1].lstrip()))
        self.lines.extend(indent + x for x in text[1:])

    def conditional(self, cond: str, texts: list[str]) -> None:
        one_line = f"if {cond} {{ {' -> '.join(texts)} }}"
        if len(self.lines[-1] + " -> " + one_line) <= self.limit or len(self.cont) + 3 + len(one_line) <= self.limit:
            self.add(one_line)
            return
        opening = f"if {cond} {{"
        self.add(opening)
        close = " " * (len(self.lines[-1]) - len(opening))  # under the `if`
        inner = close + INDENT
        row = inner + texts[0]
        for t in texts[1:]:
            if len(row + " -> " + t) <= self.limit:
                row += " -> " + t
            else:
                self.lines.append(row)
                row = inner + "-> " + t
        self.lines += [row, close + "}"]


# ---------------------------------------------------------------------------------------------
# the file


def _param_list(block: BlockDef) -> str:
    parts = []
    for p in block.params:
        parts.append(p.name if p.default is NO_DEFAULT else f"{p.name}={literal(p.default).text}")
    return ", ".join(parts)


def emit(structure: Structure, header: list[str], input_shape: tuple[int, ...]) -> str:
    out: list[str] = [f"# {h}" if h else "#" for h in header]
    used_blocks = set()
    for block in structure.blocks:
        used_blocks.add(block.name)
    taken_global = set(used_blocks)
    for block in structure.blocks:
        inputs = ["in"] if block.n_inputs == 1 else [f"x{i + 1}" for i in range(block.n_inputs)]
        decl = f"block {block.name}({_param_list(block)})"
        if block.n_inputs > 1:
            decl += f" inputs({', '.join(inputs)})"
        taken = taken_global | {p.name for p in block.params}
        body = BodyWriter(block, inputs, taken, is_network=False).write()
        out += ["", decl + " {", *(INDENT + line for line in body), "}"]
    net = structure.network
    inputs = ["image"] if net.n_inputs == 1 else [f"image{i + 1}" for i in range(net.n_inputs)]
    body = BodyWriter(net, inputs, taken_global, is_network=True).write()
    shape = "x".join(str(d) for d in input_shape)
    decls = [f"input {n}: {shape}" for n in inputs]
    out += ["", f"network {net.name} {{", *(INDENT + d for d in decls), *(INDENT + line for line in body), "}", ""]
    return "\n".join(out)
