"""Resource limits that keep hostile or mistaken specs from hanging or exhausting the machine.

Every limit is a field of :class:`Limits`; the CLI exposes each as ``--max-…`` and the API takes a
``limits=`` argument, so a genuinely huge network can raise them knowingly. Each one, when
exceeded, is a diagnostic at the span that caused it, found in well under a second:

- ``max_file_chars``, ``max_line_chars``: checked on the text before parsing (the parser spends
  ~0.1 ms per token, so a multi-megabyte file would take minutes).
- ``max_nesting``: depth of the syntax tree (nested brackets, long operator chains), checked
  before the tree is converted, so Python's recursion limit is never reached.
- ``max_import_depth``: files importing files; cycles are always errors.
- ``max_repeat``: one repeat count; ``max_steps``: evaluation steps in all (nested repeats).
- ``max_call_depth``: nested block instantiations (a block instantiating itself).
- ``max_nodes``: IR nodes; ``max_tensor_elements``: elements of any one tensor per sample, and
  parameters of any one layer (a module that large could not be built).
- ``max_int_bits``: magnitude of any integer (``2 ** 2 ** 64``); ``max_list_len``: list length.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Limits:
    max_file_chars: int = 1_000_000  # ~90x the largest zoo spec
    max_line_chars: int = 20_000  # a stage-table row or a call fits in far less
    max_nesting: int = 100  # syntax-tree depth: brackets, operator chains (the zoo needs < 20)
    max_repeat: int = 10_000
    max_nodes: int = 5_000  # the zoo: at most ~1 000; elaborate + analyze + codegen ~0.2 ms a node
    max_tensor_elements: int = 2**34  # per sample; ~17 G elements (64 GiB in fp32)
    max_int_bits: int = 256  # magnitude of any integer an expression produces
    max_call_depth: int = 64  # nested block instantiations (catches self-recursion)
    max_import_depth: int = 32
    max_list_len: int = 100_000
    max_steps: int = 250_000  # expressions evaluated and repeat iterations, per network (the zoo: < 10 000)

    def with_(self, **changes: int) -> Limits:
        return replace(self, **changes)


LIMITS = Limits()
