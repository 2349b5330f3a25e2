"""One generated block class (`_Class`): its members, the constructor parameters its constants become,
its flags for optional parts, and its text (`__init__`, ending in the block's own `init` statement where
every network of the file gives it the same code; `forward`). `_difference` says why two classes of
one block are two."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import cast

from archdsl.diagnostics import Span
from archdsl.ir import IR
from archdsl.ops import py_number

from ..python_source import (
    Namespace,
)
from ..torch_init import MARK, ClassInit, class_init_statements
from .constants import (
    _PAIR_KEYWORD,
    Argument,
    Constant,
    KeywordDefaults,
    ModuleClass,
    SizePair,
    SpecValue,
    _fill,
    _Holes,
    _Instance,
    _keywords,
    _scalar_pairs,
    _sizes_are_torch_s,
)
from .expressions import _IN_CHANNELS, _evaluate, _python_expression, _same
from .parameters import _coincidental, _express, _fitting, _input_channels, _line_of, _preference, _written_name
from .structures import _Part
from .text import (
    _ASSIGNED_ATTRIBUTE,
    _INSTANCE_REF,
    _LIST_START,
    _SELF_ATTRIBUTE,
    _attributes,
    _called,
    _hole_call,
    _name_all,
    _rename_all,
    _rewrite_calls,
    _split_target,
)

_PADDING = re.compile(r"\(\w+ - 1\) // 2")  # a convolution's default padding (see _multiple)
# A 2-d layer's size as a pair of two names (`kernel_size=(k, k_2)`; see merge_pairs).
_NAMED_PAIR = re.compile(_PAIR_KEYWORD.pattern + r"(\w+), (\w+)\)")


@dataclass
class _Class:
    """One generated block class: its template (constructor statements with holes), its members
    (instance index, each statement's constants, None for an optional statement it lacks, and which
    optional parts it has) and its parameters. `optional` maps a statement to its part in `parts`."""

    block: str
    template: list[str]
    args: list[str]
    forward: list[str]
    parts: list[_Part] = field(default_factory=list)
    optional: dict[int, int] = field(default_factory=dict)
    members: list[tuple[int, list[list[Constant] | None], tuple[bool, ...]]] = field(default_factory=list)
    name: str = ""
    params: list[str] = field(default_factory=list)
    init: list[str] = field(default_factory=list)
    arguments: list[list[Argument]] = field(default_factory=list)  # per member, each param's value
    unnamed: bool = False  # some parameter is named after nothing in the spec
    named: dict[str, str] = field(default_factory=dict)  # the spec's names the constructor has → their names there
    spec_params: list[str | None] = field(default_factory=list)  # each parameter's spec name, if any
    defaults: dict[str, Constant] = field(default_factory=dict)  # parameters with a default (the last) → it
    # The statements only the second side of an alternative part builds (its first side's are `optional`
    # only), and each alternative part's test as the forward writes it (`self.stride != 1`), if found.
    otherwise: frozenset[int] = frozenset()
    tests: dict[int, str] = field(default_factory=dict)

    def parameterize(self, instances: list[_Instance], class_names: set[str],
                     signatures: dict[str, list[str]], defaults: KeywordDefaults,
                     spec_params: dict[str, list[str | None]] | None = None) -> None:
        """Name the constants that differ between members and fill the template's holes with them;
        the names shadow no class (`class_names`). A constant named after nothing in the spec takes
        the name of what it is passed to (`signatures`: the parameters of the classes made so far).
        Members without an optional statement pass None for such a name; the first of an in-place
        part's stands for its flag (`activation=None`, as torchvision's `activation_layer`). What the
        spec computes, the constructor computes: an argument of a child block as its call writes it
        (`SqueezeExcite(hidden, max(1, in_channels // 4))`; `spec_params`: each class's parameters'
        spec names), and a part's flag as the condition that builds it (`if hidden != in_channels:`),
        where that gives every member's value. A constant that several of the block's parameters
        give in every member is the one the layer's call writes, where that tells
        (`nn.Conv2d(s1x1, e3x3, …)` though e1x1 equals e3x3 in every instance)."""
        candidates = [instances[i].values for i, _, _ in self.members]
        shared = [n for n in sorted(candidates[0], key=lambda n: n == _IN_CHANNELS)
                  if all(n in c for c in candidates)]
        # A class that builds its appended entries in lists (`layers`: `init_statements`, `sequence`)
        # names no parameter or local after them.
        lists = {m[1] for i, _, _ in self.members for line in instances[i].init
                 if (m := _LIST_START.fullmatch(line))}
        names = Namespace(class_names | lists)
        spec_names: dict[str, str] = {}  # spec name → argument name
        # Constants named after nothing in the spec, per member (None: a member without the statement).
        unnamed: dict[int, tuple[tuple[Constant | None, ...], int, int | None]] = {}  # expr → (key, hole, part)
        exprs: list[str] = []
        bounds: set[str] = set()  # list elements that bound a loop so far (each stage its own)
        holes = _Holes(self.template)
        hole = 0
        conditions = self._conditions(instances, candidates, shared)
        constants: list[tuple[int, int, int, list[int]]] = []  # a constant's hole: its expr, statement, place, members
        for s in range(len(self.template)):
            having = [m for m, (_, consts, _) in enumerate(self.members) if consts[s] is not None]
            for q, column in enumerate(zip(*(self.members[m][1][s] or [] for m in having), strict=True)):
                # A loop's bound is the parameter that gives it even where the members agree.
                count = holes.in_range(hole) and _express(
                    column, [candidates[m] for m in having], shared, spec_names, names, taken=bounds)
                if count:
                    bounds.add(count)
                    exprs.append(count)
                elif len({(type(v), v) for v in column}) == 1:
                    constants.append((len(exprs), s, q, having))
                    exprs.append(repr(column[0]))
                else:
                    expr = self._column(instances, (s, q), column, having, candidates, shared, spec_names, names,
                                        spec_params or {}, defaults, conditions)
                    if expr is None:
                        values = dict(zip(having, column, strict=True))
                        key = tuple(values.get(m) for m in range(len(self.members)))
                        unnamed[len(exprs)] = (key, hole, self.optional.get(s))
                    exprs.append(expr or "")
                hole += 1
        derived = self._derived(exprs, names, signatures, holes)
        fresh, part_args = self._unnamed_arguments(unnamed, exprs, holes, signatures, names)
        conditions = {k: found for k, found in conditions.items() if k not in part_args}
        tests = {k: _rename_all(text, _name_all(read, spec_names, names)) for k, (text, read) in conditions.items()}
        if not self._alternative_tests(conditions, spec_names):
            return  # no test tells the sides apart: no class (see TorchCodegen._alternative_classes)
        computed = self._computed(instances, spec_names, shared, names)
        part_args.update(self._flags_named(candidates, shared, spec_names, names))
        for pos, s, q, having in constants:  # after every name the class takes or computes is known
            exprs[pos] = self._named_constant(instances, having, (s, q), spec_names, spec_params or {},
                                              defaults, names) or exprs[pos]
        order = [n for n in _preference(candidates[0]) if n in spec_names and n not in computed]
        flags = ["" if k in self.tests else part_args.get(k) or names.create(
                     "residual" if part.tail else part.name if part.appended is None
                                                  else _entry_name(self.template[part.appended]))
                 for k, part in enumerate(self.parts)]
        taken = set(part_args) | set(tests)  # flags that are no parameter
        self.params = ([spec_names[n] for n in order] + list(fresh.values())
                       + [f for k, f in enumerate(flags) if k not in taken])
        self.spec_params = [*order, *(None for _ in range(len(self.params) - len(order)))]
        self.arguments = [[*(cand[n] for n in order), *(key[m] for key in fresh),
                           *(has for k, has in enumerate(self.members[m][2]) if k not in taken)]
                          for m, cand in enumerate(candidates)]
        self.init = [*computed.values(), *(f"{name} = {expr}" for expr, name in derived.items()),
                     *self._statements(flags, iter(exprs), defaults, set(part_args), tests)]
        self.forward = [ALTERNATIVE_TEST.sub(self._forward_test, re.sub(r"\x00(\d+)\x00", lambda m: flags[int(m[1])],
                                                                       line)) for line in self.forward]
        self.unnamed = bool(fresh)
        self.named = dict(spec_names)

    def _unnamed_arguments(self, unnamed: dict[int, tuple[tuple[Constant | None, ...], int, int | None]],
                           exprs: list[str], holes: _Holes, signatures: dict[str, list[str]], names: Namespace
                           ) -> tuple[dict[tuple[Constant | None, ...], str], dict[int, str]]:
        """The constants named after nothing in the spec (`unnamed`: by their place in `exprs`, the
        members' values, their hole and optional part) as arguments, their names written into
        `exprs`: one argument per column; a column with gaps joins a full one it agrees with, else its
        gaps pass None, and the first such of an in-place part stands for the part's flag (by part)."""
        full = [key for key, _, _ in unnamed.values() if None not in key]
        fresh: dict[tuple[Constant | None, ...], str] = {}
        part_args: dict[int, str] = {}
        for pos, (key, at, k) in unnamed.items():
            key = next((f for f in full if all(a is None or (type(a), a) == (type(b), b)
                                               for a, b in zip(key, f, strict=True))), key)
            if key not in fresh:
                fresh[key] = names.create(holes.argument_name(at, signatures))
            exprs[pos] = fresh[key]
            if None in key and k is not None and not self.parts[k].kept:
                part_args.setdefault(k, fresh[key])
        return fresh, part_args

    def _column(self, instances: list[_Instance], at: tuple[int, int], column: tuple[Constant, ...],
                having: list[int], candidates: list[dict[str, SpecValue]], shared: list[str],
                spec_names: dict[str, str], names: Namespace, spec_params: dict[str, list[str | None]],
                defaults: KeywordDefaults, conditions: dict[int, tuple[str, list[str]]]) -> str | None:
        """The expression of the spec's names that gives the constants `column` (statement and place
        `at`) in the members `having`, or None (see _one_column). In a class of two alternatives
        (whose test is among the spec's `conditions`), each side's own, and where those differ the
        choice between them (`in_channels if stride != 1 else half`, as torchvision writes ShuffleNet's
        branch2): a name that gives both sides' constants may do so by chance (at 0.5×, where a
        downsampling unit's input is half its width)."""
        k = next((k for k in conditions if self.parts[k].alternative), None)
        sides = [] if k is None else [[m for m in having if self.members[m][2][k] is first] for first in (True, False)]
        if k is not None and all(sides):
            values = dict(zip(having, column, strict=True))

            def side(members: list[int], spec_names: dict[str, str], names: Namespace) -> str | None:
                return self._one_column(instances, at, tuple(values[m] for m in members), members, candidates,
                                        shared, spec_names, names, spec_params, defaults)

            # Tried first on copies: a side that finds no name must name nothing (a parameter it would add).
            if all(side(members, dict(spec_names), copy.deepcopy(names)) is not None for members in sides):
                first, second = (cast(str, side(members, spec_names, names)) for members in sides)
                if first == second:
                    return first
                first, second = (f"({e})" if " if " in e else e for e in (first, second))
                text, read = conditions[k]
                return f"{first} if {_rename_all(text, _name_all(read, spec_names, names))} else {second}"
        return self._one_column(instances, at, column, having, candidates, shared, spec_names, names, spec_params,
                                defaults)

    def _one_column(self, instances: list[_Instance], at: tuple[int, int], column: tuple[Constant, ...],
                    having: list[int], candidates: list[dict[str, SpecValue]], shared: list[str],
                    spec_names: dict[str, str], names: Namespace, spec_params: dict[str, list[str | None]],
                    defaults: KeywordDefaults) -> str | None:
        """`_column` for members of one side: a child block's argument as its call writes it (`c //
        2`), before any name whose value merely agrees in every member (`in_channels`)."""
        passed = self._passed(instances, at, spec_params, shared,
                              {m: (candidates[m], v) for m, v in zip(having, column, strict=True)})
        if passed is not None:
            return _rename_all(passed[0], _name_all(passed[1], spec_names, names))
        fits = _fitting(column, [candidates[m] for m in having], shared)
        chosen = self._written(instances, having, at, fits, defaults) if fits else None
        # A name as large by chance is no candidate (see _coincidental).
        by_chance = set() if chosen else self._by_chance(instances, having, at, fits, defaults)
        return _express(column, [candidates[m] for m in having],
                        [chosen] if chosen else [n for n in shared if n not in by_chance], spec_names, names)

    def _alternative_tests(self, conditions: dict[int, tuple[str, list[str]]], spec_names: dict[str, str]) -> bool:
        """Set each alternative part's test as the forward writes it, and say whether every one has
        one. The forward tests the parameters the condition reads, kept as they are named (`self.stride
        = stride`, as torchvision's ShuffleNet unit), where no submodule has the name."""
        attributes = set(_attributes(self.template))
        self.tests = {k: re.sub("\x01(\\w+)\x01", lambda m: "self." + spec_names[m[1]], text)
                      for k, (text, read) in conditions.items()
                      if self.parts[k].alternative and not attributes & {spec_names[r] for r in read}}
        return all(k in self.tests for k, part in enumerate(self.parts) if part.alternative)

    def _flags_named(self, candidates: list[dict[str, SpecValue]], shared: list[str], spec_names: dict[str, str],
                     names: Namespace) -> dict[int, str]:
        """The flags of optional outputs named after the spec's boolean that is true exactly where the
        outputs are (`aux`), by part. The class keeps a flag as an attribute of that name, so a
        boolean that names a submodule too is passed over (the flag is then named after the output)."""
        found: dict[int, str] = {}
        attrs = set(_attributes(self.template))
        for k, part in enumerate(self.parts):
            if not part.outputs:
                continue
            for a in attrs:
                names.reserve(a)
            present = [has[k] for _, _, has in self.members]
            n = next((n for n in shared if n not in attrs and all(
                type(c[n]) is bool and c[n] == p for c, p in zip(candidates, present, strict=True))), None)
            if n is not None:
                if n not in spec_names:
                    spec_names[n] = names.create(n)
                found[k] = spec_names[n]
        return found

    def _derived(self, exprs: list[str], names: Namespace, signatures: dict[str, list[str]],
                 holes: _Holes) -> dict[str, str]:
        """A size computed from an argument (a convolution's padding) is a local named for what it is
        passed as, computed once however many holes take it (`padding = (k - 1) // 2`): each such
        expression's local, the holes (`exprs`) reading it."""
        derived: dict[str, str] = {}
        for pos, expr in enumerate(exprs):
            if _PADDING.fullmatch(expr):
                if expr not in derived:
                    derived[expr] = names.create(holes.argument_name(pos, signatures))
                exprs[pos] = derived[expr]
        return derived

    def _named_constant(self, instances: list[_Instance], having: list[int], at: tuple[int, int],
                        spec_names: dict[str, str], spec_params: dict[str, list[str | None]],
                        defaults: KeywordDefaults, names: Namespace) -> str | None:
        """A number equal in every member having statement s (`at`: its q-th constant) where the call
        making it writes a name the class takes or computes anyway: that name, or the child's
        argument as written over such names (`nn.Conv2d(in_channels, c, …, stride=(stride, stride))`
        in the downsampling of a basic block, whose instances with one all have stride 2); None
        where nothing written gives it, so that no name comes in for a number alone."""
        s, q = at
        value = self.members[having[0]][1][s][q]  # type: ignore[index]
        if type(value) is not int:
            return None
        values = {m: instances[self.members[m][0]].values for m in having}
        passed = self._passed(instances, at, spec_params, list(spec_names), {m: (v, value) for m, v in values.items()})
        if passed is not None:
            return _rename_all(passed[0], _name_all(passed[1], spec_names, names))
        known = _fitting([value] * len(having), list(values.values()), spec_names)
        chosen = self._written(instances, having, at, known, defaults, fitting=1) if known else None
        return spec_names[chosen] if chosen is not None else None

    def written_init(self, made: ClassInit, checks: list[tuple[int, dict[str, SpecValue], object]]) -> list[str] | None:
        """The class's own init statements (`made`), each number its instances differ in computed
        from the class's names as the spec writes it (`std=1 / (in_channels // first_groups)`); a
        name every instance gives the same value is that value. None where an expression reads
        anything else, or does not give every instance's number (`checks`: the mark, an
        instance's values, its number)."""
        constants = {n: v for n, v in checks[0][1].items()
                     if n not in self.named and isinstance(v, int | float) and not isinstance(v, bool)
                     and all(_same(values.get(n), v) for _, values, _ in checks)} if checks else {}
        texts: list[str] = []
        for w in made.written:
            text = _python_expression(w.expression, {*self.named, *constants}, [])
            if text is None:
                return None
            texts.append(text)
        if any(not _same(_evaluate(texts[k], values), value) for k, values, value in checks):
            return None
        names = {**self.named, **{n: py_number(v) for n, v in constants.items()}}
        return [MARK.sub(lambda m: _rename_all(texts[int(m[1])], names), line) for line in made.lines]

    def _written(self, instances: list[_Instance], having: list[int], at: tuple[int, int], fits: list[str],
                 defaults: KeywordDefaults, fitting: int = 2) -> str | None:
        """Of the names `fits`, each the q-th constant of statement s (`at`) in every member having
        it, the one its layer's call writes (see _written_name), where `fitting` or more fit (two:
        one needs no telling apart); else None."""
        s, q = at
        members = [self.members[m] for m in having]
        # A parameter or the input's channels: a local the constructor would compute from more than
        # the class takes now (ResNet's `width` from `base_width` and `groups`).
        named = [n for n in fits if n in instances[members[0][0]].params or n == _IN_CHANNELS]
        if len(fits) < fitting or not named:
            return None
        chosen = _written_name(self._statements_of(instances, having, s), q, fits, defaults)
        return chosen if chosen in named else None

    def _by_chance(self, instances: list[_Instance], having: list[int], at: tuple[int, int], fits: list[str],
                   defaults: KeywordDefaults) -> set[str]:
        """The names of `fits` as large as the q-th constant of statement s (`at`) only by chance in
        some member having it (see _coincidental)."""
        if not fits:
            return set()
        s, q = at
        statements = self._statements_of(instances, having, s)
        return {n for n in fits if _coincidental(statements, q, n, defaults)}

    def _statements_of(self, instances: list[_Instance], having: list[int],
                       s: int) -> list[tuple[_Instance, str, list[Constant]]]:
        """Each member having statement s: its instance, its statement and that statement's constants."""
        return [(instances[i], _line_of(instances[i], consts, s), consts[s] or [])
                for i, consts, _ in (self.members[m] for m in having)]

    def _passed(self, instances: list[_Instance], at: tuple[int, int], spec_params: dict[str, list[str | None]],
                shared: list[str], column: dict[int, tuple[dict[str, SpecValue], Constant]],
                ) -> tuple[str, list[str]] | None:
        """The expression (and the names it reads) that the spec passes for the q-th hole of statement
        s (`at`) where that hole is an argument of a generated class named after its block's parameter:
        the child's call as written, the same in every member having the statement and giving its
        constant there (`column`: member → its values and the constant)."""
        s, q = at
        statement = self.template[s]
        found = _hole_call(statement, q, spec_params) if not _called(statement).isdisjoint(spec_params) else None
        if found is None:
            return None
        callee, position, occurrence = found
        param = spec_params[callee][position]
        texts: set[str | None] = set()
        read: list[str] = []
        known = set(shared)
        for i, consts, _ in self.members:
            if consts[s] is None:
                continue
            refs = _INSTANCE_REF.findall(_line_of(instances[i], consts, s))
            child = instances[int(refs[occurrence])] if param and occurrence < len(refs) else None
            if child is not None and param == _IN_CHANNELS:  # not written in the call: what makes the input's
                children = [instances[int(r)] for line in instances[i].init for r in _INSTANCE_REF.findall(line)]
                texts.add(_input_channels(instances[i], child, children, known, read))
            else:
                node = child.argument(param) if child is not None and param else None
                texts.add(None if node is None else _python_expression(node, known, read))
            if None in texts or len(texts) > 1:  # no one expression: the other members need not be read
                return None
        text = texts.pop() if len(texts) == 1 else None
        if text is None or not all(_same(_evaluate(text, values), v) for values, v in column.values()):
            return None
        return text, read

    def _conditions(self, instances: list[_Instance], candidates: list[dict[str, SpecValue]],
                    shared: list[str]) -> dict[int, tuple[str, list[str]]]:
        """Each part whose flag is a condition the block's body tests, the same in every member and
        true (or false, then negated) exactly where the member has the part: the test as Python,
        and the names it reads. A part two conditions could give is left a parameter."""
        out: dict[int, tuple[str, list[str]]] = {}
        for k, part in enumerate(self.parts):
            if part.outputs:  # a network's optional outputs: its flag (_flags_named)
                continue
            found: dict[str, list[str]] = {}
            for node, _ in dict.fromkeys(instances[self.members[0][0]].conditions):
                outcomes = [{t for c, t in instances[i].conditions if c == node} for i, _, _ in self.members]
                if any(len(o) != 1 for o in outcomes):
                    continue
                read: list[str] = []
                text = _python_expression(node, set(shared), read)
                flips = {next(iter(o)) != has[k] for o, (_, _, has) in zip(outcomes, self.members, strict=True)}
                if text is None or len(flips) != 1:
                    continue
                text = _negation(text) if flips.pop() else text
                if all(_same(_evaluate(text, c), has[k]) for c, (_, _, has) in zip(candidates, self.members,
                                                                                 strict=True)):
                    found.setdefault(text, read)
            if len(found) == 1:
                out[k] = next(iter(found.items()))
        return out

    def _computed(self, instances: list[_Instance], spec_names: dict[str, str], shared: list[str],
                  names: Namespace) -> dict[str, str]:
        """The spec's locals used here that the constructor computes from the parameters their
        definitions read (`width = int(c * (base_width / 64)) * groups`), rather than take: each
        local's statement, by spec name. A definition is used only if it is the same in every member
        and reads only parameters every member has (and `in.channels`), through known functions."""
        definitions = [instances[i].definitions for i, _, _ in self.members]
        out: dict[str, str] = {}
        for n in list(spec_names):
            node = definitions[0].get(n)
            if node is None or any(d.get(n) != node for d in definitions):
                continue
            read: list[str] = []
            expr = _python_expression(node, set(shared) - set(definitions[0]), read)
            if expr is None:
                continue
            for r in read:
                if r not in spec_names:
                    spec_names[r] = names.create(r)
            out[n] = f"{spec_names[n]} = {_rename_all(expr, spec_names)}"
        return out

    def _statements(self, flags: list[str], holes: Iterator[str], defaults: KeywordDefaults,
                    by_class: set[int], tests: dict[int, str]) -> list[str]:
        """The constructor's statements: the template filled, each optional part's under its flag
        (`by_class`: the parts whose flag is their module class argument, None when not built;
        `tests`: the parts whose flag the constructor computes, and how)."""
        out = [f"self.{flags[k]} = {tests.get(k, flags[k])}" for k, part in enumerate(self.parts)
               if part.kept and k not in self.tests]
        out += [f"self.{a} = {a}" for k in sorted(self.tests)
                for a in dict.fromkeys(_SELF_ATTRIBUTE.findall(self.tests[k]))]
        unwritten: dict[str, str] = {}  # each distinct constructor call's, once (see _Templates)
        for s, statement in enumerate(self.template):
            head, rest = _split_target(_fill(statement, holes))
            if rest not in unwritten:
                unwritten[rest] = _scalar_pairs(_keywords(rest, defaults, write=False))
            filled = head + unwritten[rest]
            k = self.optional.get(s)
            if k is None:
                out.append(filled)
            elif self.parts[k].appended is not None:  # an entry the spec builds under an `if`
                out += [f"if {f'{flags[k]} is not None' if k in by_class else tests.get(k, flags[k])}:", "\t" + filled]
            elif self.parts[k].alternative:  # `if test:` the first side's, `else:` the second's
                other = s in self.otherwise
                if self.optional.get(s - 1) != k or (s - 1 in self.otherwise and not other):
                    out.append(f"if {_negation(tests[k]) if other else tests[k]}:")
                elif other and s - 1 not in self.otherwise:
                    out.append("else:")
                out.append("\t" + filled)
            elif not self.parts[k].kept:  # built only when asked for; None otherwise, which forward tests
                test = f"{flags[k]} is not None" if k in by_class else tests.get(k, flags[k])
                out += [f"self.{self.parts[k].name} = None", f"if {test}:", "\t" + filled]
            else:
                if self.optional.get(s - 1) != k:
                    out.append(f"if self.{flags[k]}:" if k in tests else f"if {flags[k]}:")
                out.append("\t" + filled)
        return out

    def _forward_test(self, m: re.Match[str]) -> str:
        """An alternative part's test in the forward (`ALTERNATIVE_TEST`: the test or its negation)."""
        test = self.tests[int(m[2])]
        return test if m[1] == "\x02" else _negation(test)

    def merge_pairs(self) -> None:
        """Two parameters that the constructor reads only together, as the pair `(a, b)` of a layer's
        size (Inception's 1×7 and 7×1 kernels: `kernel_size=(kernel_size, kernel_size_2)`), become
        one, `a`, that takes a number where the pair's two agree and the pair where they do not, as
        torch's 2-d layers take either (`BasicConv(c7, c7, (1, 7), (0, 3))`, `BasicConv(64, 96, 3, 0)`)."""
        text = "\n".join([*self.init, *self.forward])
        pairs = [m for line in self.init if _sizes_are_torch_s(line) for m in _NAMED_PAIR.finditer(line)]
        for m in pairs:
            first, second = m[2], m[3]
            if first == second or not {first, second} <= set(self.params) or any(
                    len(re.findall(rf"(?<![\w.]){name}(?!\w|=(?!=))", text)) != 1 for name in (first, second)):
                continue
            a, b = self.params.index(first), self.params.index(second)
            if not all(type(v[a]) is int and type(v[b]) is int for v in self.arguments):
                continue
            for values in self.arguments:
                pair = cast(tuple[int, int], (values[a], values[b]))
                values[a] = pair[0] if pair[0] == pair[1] else SizePair(pair)
                del values[b]
            del self.params[b], self.spec_params[b]
            self.init = [line.replace(m[0], f"{m[1]}={first}") for line in self.init]

    def take_defaults(self, members: list[_Instance]) -> None:
        """Give each parameter named after one of the block's that has a literal default in the spec
        (`stride=1`) that default, where every member's block declares it alike and it is of the
        parameter's type; those parameters move after the others, as defaults must. The file's text
        then passes them by keyword, or not at all where they hold the default (`_by_keyword`)."""
        declared = [dict(m.defaults) for m in members]
        found: dict[int, Constant] = {}
        for j, (spec, kind) in enumerate(zip(self.spec_params, self.types(), strict=True)):
            value = declared[0].get(spec) if spec is not None else None
            if spec is not None and value is not None and _of_type(value, kind) and all(
                    type(d.get(spec)) is type(value) and d.get(spec) == value for d in declared):
                found[j] = value
        if not found:
            return
        order = [j for j in range(len(self.params)) if j not in found] + list(found)
        self.params = [self.params[j] for j in order]
        self.spec_params = [self.spec_params[j] for j in order]
        self.arguments = [[values[j] for j in order] for values in self.arguments]
        self.defaults = {self.params[len(order) - len(found) + k]: v for k, v in enumerate(found.values())}

    def types(self) -> list[str]:
        """Each parameter's annotation, from the values the members pass."""
        return [_annotation([values[j] for values in self.arguments]) for j in range(len(self.params))]

    def calls(self) -> list[tuple[int, str]]:
        """(instance index, its construction) for every member, every argument by position (the form
        templates compare; `_by_keyword` writes the file's)."""
        return [(i, f"{self.name}({', '.join(map(_source, values))})")
                for (i, _, _), values in zip(self.members, self.arguments, strict=True)]


def _by_keyword(statement: str, classes: dict[str, _Class]) -> str:
    """`statement` as the file writes it: each construction of a class with defaults (`classes`)
    passing those by keyword, and leaving out the ones that hold their default (`ConvBnAct(c, 1280,
    1)`, `Bottleneck(256, 128, stride=2)`, as torchvision writes its constructions).

    >>> cls = _Class("conv", [], [], [], params=["c", "stride", "groups"], defaults={"stride": 1, "groups": 1})
    >>> cls.name = "Conv"
    >>> _by_keyword("self.a = Conv(channels, 1, g)", {"Conv": cls})
    'self.a = Conv(channels, groups=g)'
    """

    def rewrite(callee: str, args: list[str]) -> str:
        cls = classes[callee]
        first = len(cls.params) - len(cls.defaults)  # the defaulted parameters are the last
        kept = args[:first]
        for param, arg in zip(cls.params[first:], args[first:], strict=False):
            if arg != _source(cls.defaults[param]):
                kept.append(f"{param}={arg}")
        return ", ".join(kept + args[len(cls.params):])

    return _rewrite_calls(statement, lambda callee: callee in classes, rewrite)


def _entry_name(statement: str) -> str:
    """What an entry appended to a list is called (a flag building it): its module's class in
    snake case (`layers.append(nn.ReLU6(…))`: `relu6`; `ConvBnAct(…)`: `conv_bn_act`).

    >>> _entry_name("layers.append(nn.SiLU(inplace=True))"), _entry_name("layers.append(ConvBnAct(8, 16))")
    ('silu', 'conv_bn_act')
    """
    m = re.match(r"\w+\.append\((?:nn\.)?(\w+)\(", statement)
    if m is None:  # its class is an argument (an activation's, as torchvision's `activation_layer`)
        return "activation"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", m[1]).lower()


def _source(value: Argument) -> str:
    """A constructor argument's source: a list of integers as a list, else its repr (a size pair's
    is the tuple)."""
    return f"[{', '.join(map(str, value))}]" if isinstance(value, tuple) and type(value) is not SizePair \
        else repr(value)


def _of_type(value: Constant, kind: str) -> bool:
    """Whether a default `value` is one of a parameter annotated `kind` (an int is a float, as in mypy)."""
    return {"int": type(value) is int, "float": type(value) in (int, float),
            "bool": type(value) is bool}.get(kind, False)


def _annotation(values: list[Argument]) -> str:
    """The type of a constructor parameter that takes `values` (None: the member leaves a part out)."""
    present = [v for v in values if v is not None]
    if any(type(v) is SizePair for v in present):
        kind = "int | tuple[int, int]" if any(type(v) is int for v in present) else "tuple[int, int]"
    elif all(isinstance(v, tuple) for v in present):
        kind = "list[int]"
    elif all(isinstance(v, bool) for v in present):
        kind = "bool"
    elif all(isinstance(v, ModuleClass) for v in present):
        kind = "type[nn.Module]"
    elif all(type(v) is int for v in present):
        kind = "int"
    else:
        kind = "float"
    return f"{kind} | None" if len(present) < len(values) else kind


def _returns(forward: list[str]) -> str:
    """A forward's return annotation, from its return lines (a network whose outputs a flag
    governs returns a tensor or a dict: `torch.Tensor | dict[str, torch.Tensor]`)."""
    kinds: dict[str, None] = {}
    for line in forward:
        line = line.lstrip("\t")
        if not line.startswith("return "):
            continue
        if line.startswith("return {"):
            kinds["dict[str, torch.Tensor]"] = None
        else:
            count = line.count(",") + 1 if "," in line else 1
            kinds["torch.Tensor" if count == 1 else f"tuple[{', '.join(['torch.Tensor'] * count)}]"] = None
    return " | ".join(kinds) or "None"


def _difference(cls: _Class, other: _Class) -> str:
    """Why two classes of one block are two: the submodules one has and the other lacks, else their code."""
    mine, theirs = _attributes(cls.template), _attributes(other.template)
    added = [a for a in mine if a not in theirs]
    lacking = [a for a in theirs if a not in mine]
    if not added and not lacking:
        return f"its layers differ from those of {other.name} in more than numbers"
    said = [f"it has {', '.join(added)}"] if added else []
    said += [f"lacks {', '.join(lacking)}"] if lacking else []
    return f"unlike {other.name}, {' and '.join(said)} (the spec builds them only in some instances)"


_Hosts = tuple[IR, dict[tuple[str, ...], str], dict[tuple[str, ...], _Instance]]  # a network, its classes, instances


def _own_inits(classes: list[_Class], networks: list[_Hosts]) -> frozenset[str]:
    """The block classes that initialize themselves (torch_init.class_init_statements): those whose
    statements every network (its IR, each block instance's class and each one's instance) that has
    the class gives alike, and whose numbers that differ between instances the class computes as the
    spec writes them; appended to their constructors; their names, which the networks' init
    statements leave out."""
    found: dict[str, ClassInit] = {}
    checks: dict[str, list[tuple[int, dict[str, SpecValue], object]]] = {}  # class → (mark, instance's values, value)
    refused: set[str] = set()
    for ir, class_of, instance_of in networks:
        own = class_init_statements(ir, class_of)
        for name in set(class_of.values()):
            made = own.get(name)
            if (made is None or found.setdefault(name, made).lines != made.lines
                    or any(path not in instance_of for w in made.written for path in w.values)):
                refused.add(name)
                continue
            checks.setdefault(name, []).extend((k, instance_of[path].values, value) for k, w in enumerate(made.written)
                                               for path, value in w.values.items() if class_of[path] == name)
    owned = set()
    for cls in classes:
        made = found.get(cls.name)
        lines = None if made is None or cls.name in refused else cls.written_init(made, checks.get(cls.name, []))
        if lines is not None:
            cls.init = [*cls.init, *lines]
            owned.add(cls.name)
    return frozenset(owned)


def _alternatives(first: _Class, second: _Class, first_origins: dict[str, tuple[Span, ...]],
                  second_origins: dict[str, tuple[Span, ...]]) -> _Class | None:
    """One class for two classes of one block, not yet parameterized: `first`'s code where the
    alternative part's test holds, `second`'s where it does not (ShuffleNet's unit: `if stride == 1:`
    split the input and transform one half, else transform two copies). Their constructor statements
    in one sequence (those both make alike once), the forward's lines that only one side runs under
    the test (`ALTERNATIVE_TEST`): each side runs exactly its own statements and lines, in their own
    order, so it computes what it did. A statement is both sides' only where its text and where it
    comes from in the spec (`origins`: see TorchCodegen._origins) are the same. Or None: the two must
    take the same inputs and have the same optional parts, none of them only one side's, and no block
    (`if …:`) may span the two."""
    if first.block != second.block or first.args != second.args or first.parts != second.parts or any(
            part.outputs or part.appended is not None for part in first.parts):
        return None
    k = len(first.parts)
    forward = _merged_lines(first.forward, second.forward, k, (_line_origins(first.forward, first_origins),
                                                                _line_origins(second.forward, second_origins)))
    if forward is None:
        return None
    cls = _Class(first.block, [], list(first.args), forward, [*first.parts, _Part("alternative", alternative=True)])
    places = _merged_statements(first, second, cls, (_statement_origins(first.template, first_origins),
                                                     _statement_origins(second.template, second_origins)))
    if places is None:
        return None
    for side, source in enumerate((first, second)):
        own = {place: s for s, place in places[side].items()}
        for index, spread, present in source.members:
            cls.members.append((index, [spread[own[s]] if s in own else None for s in range(len(cls.template))],
                                (*present, side == 0)))
    cls.members.sort(key=lambda m: m[0])
    return cls


def _merged_statements(first: _Class, second: _Class, cls: _Class,
                       origins: tuple[list[tuple[Span, ...]], list[tuple[Span, ...]]]
                       ) -> tuple[dict[int, int], dict[int, int]] | None:
    """The constructor statements of `first` and `second` as `cls`'s (see _alternatives), and where
    each side's statements went; None where a statement only one side makes is in an optional part,
    or one both make is in different parts on the two sides."""
    k = len(first.parts)
    places: tuple[dict[int, int], dict[int, int]] = ({}, {})
    otherwise: set[int] = set()
    keyed = [list(zip(c.template, o, strict=True)) for c, o in zip((first, second), origins, strict=True)]
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, keyed[0], keyed[1], autojunk=False).get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                if first.optional.get(i) != second.optional.get(j):
                    return None
                places[0][i] = places[1][j] = len(cls.template)
                if i in first.optional:
                    cls.optional[len(cls.template)] = first.optional[i]
                cls.template.append(first.template[i])
            continue
        for side, source, statements in ((0, first, range(i1, i2)), (1, second, range(j1, j2))):
            for s in statements:
                if s in source.optional:
                    return None
                places[side][s] = len(cls.template)
                cls.optional[len(cls.template)] = k
                if side:
                    otherwise.add(len(cls.template))
                cls.template.append(source.template[s])
    cls.otherwise = frozenset(otherwise)
    return places


# The test of an alternative part in a merged forward, until it is written (`\x02k\x02`: the
# condition under which the first side's lines run; `\x03k\x03`: its negation).
ALTERNATIVE_TEST = re.compile(r"([\x02\x03])(\d+)[\x02\x03]")


def _statement_origins(template: list[str], origins: dict[str, tuple[Span, ...]]) -> list[tuple[Span, ...]]:
    """Where in the spec what each constructor statement builds comes from (see TorchCodegen._origins)."""
    return [origins.get(m[1], ()) if (m := _ASSIGNED_ATTRIBUTE.match(statement)) else () for statement in template]


# A submodule a forward line calls or reads: `self.conv_2`, `self.extra[0]["1"]`, `self.conv.bn`.
_SUBMODULE = re.compile(r"self\.(\w+)((?:\[\d+\]|\[\"\w+\"\]|\.\w+)*)")


def _line_origins(lines: list[str], origins: dict[str, tuple[Span, ...]]) -> list[tuple[tuple[Span, ...], ...]]:
    """Where in the spec the submodules each forward line calls come from (see TorchCodegen._origins)."""
    return [tuple(origins.get(".".join([m[1], *re.findall(r"\w+", m[2])]), ()) for m in _SUBMODULE.finditer(line))
            for line in lines]


def _merged_lines(first: list[str], second: list[str], k: int,
                  origins: tuple[list[tuple[tuple[Span, ...], ...]], list[tuple[tuple[Span, ...], ...]]]
                  ) -> list[str] | None:
    """Two forwards as one (see _alternatives): a line is both sides' only where its text and the
    submodules it calls (`origins`) are; None where a block (`if …:` and the lines it holds) would not
    be whole on one side or in the lines both share."""
    out: list[str] = []
    keyed = [list(zip(lines, o, strict=True)) for lines, o in zip((first, second), origins, strict=True)]
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, keyed[0], keyed[1], autojunk=False).get_opcodes():
        if tag == "equal":
            if first[i1].startswith("\t") or first[i2 - 1].endswith(":"):
                return None
            out += first[i1:i2]
            continue
        ours, theirs = first[i1:i2], second[j1:j2]
        if any(line.startswith("\t") or line.endswith(":") for line in (*ours, *theirs)):
            return None
        if not theirs:
            out += [f"if \x02{k}\x02:", *("\t" + line for line in ours)]
        elif not ours:
            out += [f"if \x03{k}\x03:", *("\t" + line for line in theirs)]
        else:
            out += [f"if \x02{k}\x02:", *("\t" + line for line in ours), "else:", *("\t" + line for line in theirs)]
    return out


_COMPARISON = re.compile(r"(\S+) (==|!=|<=|>=|<|>) (\S+)")
_NEGATED = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


def _negation(test: str) -> str:
    """`not test`, as one reads it: a comparison of two terms turned round (`stride != 1`).

    >>> _negation("self.stride == 1"), _negation("a < b + 1")
    ('self.stride != 1', 'not (a < b + 1)')
    """
    m = _COMPARISON.fullmatch(test)
    return f"{m[1]} {_NEGATED[m[2]]} {m[3]}" if m else f"not ({test})"
