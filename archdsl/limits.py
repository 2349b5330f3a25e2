"""Resource limits that keep hostile or mistaken specs from hanging or exhausting the machine.

Every limit is a field of :class:`Limits`; the CLI exposes each as ``--max-…`` and the API takes a
``limits=`` argument, so a genuinely huge network can raise them knowingly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Limits:
    max_file_chars: int = 2_000_000
    max_repeat: int = 10_000
    max_nodes: int = 100_000
    max_tensor_elements: int = 2**34  # per sample; ~17 G elements (64 GiB in fp32)
    max_int_bits: int = 256  # magnitude of any integer an expression produces
    max_call_depth: int = 64  # nested block instantiations (catches self-recursion)
    max_import_depth: int = 32
    max_list_len: int = 100_000

    def with_(self, **changes: int) -> Limits:
        return replace(self, **changes)


LIMITS = Limits()
