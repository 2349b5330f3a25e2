"""Every op's `torch_class`, the class a generated init loop's `isinstance` test names for its
layers: the module the generated code builds for the op is an instance of it, for every op of the
registry (at the attributes of the torch-domain sweep) and for the layers TensorFlow's "same"
padding builds through helpers (`conv2d_same`, `MaxPool2dSame`)."""

from __future__ import annotations

import pytest

from archdsl import load_string

from .test_ops_torch_domain import BASE, OPS, TWO_INPUTS

torch = pytest.importorskip("torch")

SAME = [("conv", "out=4, kernel=3, stride=2, pad=same"), ("conv", "out=4, kernel=3, pad=same"),
        ("dwconv", "kernel=3, stride=2, pad=same"), ("maxpool", "kernel=3, stride=2, pad=same"),
        ("avgpool", "kernel=3, stride=2, pad=same")]
CASES = [(op.name, ", ".join(f"{k}={v}" for k, v in BASE[op.name].items())) for op in OPS
         if op.name not in TWO_INPUTS and op.name != "split"] + SAME


@pytest.mark.parametrize(("op", "attributes"), CASES, ids=[f"{op}({a})" for op, a in CASES])
def test_the_module_built_is_an_instance_of_the_op_s_torch_class(op: str, attributes: str) -> None:
    from archdsl.compiler.backends.torch_codegen import build_module

    net = load_string(f"network n {{\n    input image: 4x8x8\n    image -> {op}({attributes}) as layer -> output y\n}}"
                      ).network()
    node = net.ir.node("layer")
    declared = node.op_class.torch_class(node.attrs, net.ir.in_shapes(node))
    if declared is None:  # a function, or a class of the file's own: no init loop names it
        return
    module = build_module(net)
    assert declared.startswith("nn.")
    assert isinstance(module.get_submodule("layer"), getattr(torch.nn, declared[len("nn."):]))
