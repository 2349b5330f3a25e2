"""Diagrams: the DOT structure (clusters, node counts per depth, shape labels), real rendering with
`dot`, the `archdsl diagram` command with and without graphviz, and the notebook display."""

from __future__ import annotations

import re
import shutil
import struct
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

import archdsl.api as api
from archdsl.cli import main
from archdsl.compiler.backends.graphviz_backend import NODE_BUDGET, default_depth, label, quote, to_dot

from .conftest import SPECS, zoo

DATA = Path(__file__).resolve().parent / "data"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="graphviz `dot` not installed")


# ---------------------------------------------------------------------------------------------
# A small reader for the DOT the backend writes (one statement per line)


@dataclass
class Cluster:
    id: str
    label: str = ""
    nodes: list[str] = field(default_factory=list)  # direct members
    clusters: list[Cluster] = field(default_factory=list)

    def all_nodes(self) -> list[str]:
        return self.nodes + [n for c in self.clusters for n in c.all_nodes()]


@dataclass
class Dot:
    root: Cluster
    labels: dict[str, str]  # node id → label (lines joined by "\n")
    attrs: dict[str, str]  # node id → raw attribute text
    edges: list[tuple[str, str, str]]
    clusters: dict[str, Cluster]

    def nodes_labelled(self, pattern: str) -> list[str]:
        return [n for n, text in self.labels.items() if re.search(pattern, text)]

    def into(self, node: str) -> list[tuple[str, str, str]]:
        return [e for e in self.edges if e[1] == node]

    def out_of(self, node: str) -> list[tuple[str, str, str]]:
        return [e for e in self.edges if e[0] == node]


_STR = r'"((?:[^"\\]|\\.)*)"'
_NODE = re.compile(rf"^\s*(n\d+) \[label={_STR}(.*)\];$")
_EDGE = re.compile(rf"^\s*(n\d+) -> (n\d+) \[label={_STR}\];$")
_CLUSTER = re.compile(r"^\s*subgraph (cluster_\d+) \{$")
_CLUSTER_LABEL = re.compile(rf"^\s*graph \[label={_STR}")


def parse_dot(text: str) -> Dot:
    root = Cluster("root")
    stack = [root]
    labels: dict[str, str] = {}
    attrs: dict[str, str] = {}
    edges = []
    clusters: dict[str, Cluster] = {}
    for line in text.splitlines()[1:-1]:
        if m := _CLUSTER.match(line):
            c = Cluster(m[1])
            stack[-1].clusters.append(c)
            clusters[c.id] = c
            stack.append(c)
        elif line.strip() == "}":
            stack.pop()
        elif m := _NODE.match(line):
            stack[-1].nodes.append(m[1])
            labels[m[1]] = m[2].replace("\\n", "\n")
            attrs[m[1]] = m[3]
        elif m := _EDGE.match(line):
            edges.append((m[1], m[2], m[3]))
        elif (m := _CLUSTER_LABEL.match(line)) and len(stack) > 1:
            stack[-1].label = m[1].replace("\\l", "\n").strip()
        else:
            assert line.strip().startswith(("graph [", "node [", "edge [")), line
    assert stack == [root]
    return Dot(root, labels, attrs, edges, clusters)


def dot_of(file: str | Path, net: str | None = None, depth: int | None = None, direction: str = "TB") -> Dot:
    path = file if isinstance(file, Path) else SPECS / file
    return parse_dot(to_dot(api.load(path).network(net), depth, direction))


# ---------------------------------------------------------------------------------------------
# Structure


def test_googlenet_clusters_and_depths() -> None:
    full = dot_of("googlenet.arch", "googlenet", depth=0)
    assert len(full.labels) == len(api.load(SPECS / "googlenet.arch").network("googlenet").ir)  # one node per op

    d2 = dot_of("googlenet.arch", "googlenet", depth=2)
    tops = [c.label.split(":")[0] for c in d2.root.clusters]
    assert tops == ["conv1", "conv2", "conv3"] + [f"inception{s}" for s in
                                                  ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
    assert len(d2.labels) == 91
    for c in d2.root.clusters[3:]:
        assert not c.clusters  # the inception's branches are collapsed basic_convs
        assert len(c.nodes) == 8  # 6 basic_convs, the pool branch's maxpool, the concat
        (concat,) = [n for n in c.nodes if d2.labels[n] == "concat"]
        assert len(d2.into(concat)) == 4  # four branches meet
        assert "invtrapezium" in d2.attrs[concat]
    # inception3a's branches reach the concat with the shapes of Table 1
    c3a = d2.root.clusters[3]
    (concat,) = [n for n in c3a.nodes if d2.labels[n] == "concat"]
    assert sorted(e[2] for e in d2.into(concat)) == sorted(["64×28×28", "128×28×28", "32×28×28", "32×28×28"])
    assert [e[2] for e in d2.out_of(concat)] == ["256×28×28"] * 4  # feeds inception3b's four branches
    assert d2.nodes_labelled(r"^basic_conv\(c=64, k=1\)\ninception3a\.branch1\n12\.4K params")

    d1 = dot_of("googlenet.arch", "googlenet", depth=1)
    assert not d1.clusters and len(d1.labels) == 22
    assert d1.nodes_labelled(r"^inception\(c1=64, c3r=96, c3=128, c5r=16, c5=32, pool_proj=32\)\ninception3a\n")


def test_googlenet_aux_shows_every_output() -> None:
    d = dot_of("googlenet.arch", "googlenet_aux")
    outs = [n for n, a in d.attrs.items() if 'shape="house"' in a]
    assert sorted(d.labels[n] for n in outs) == ["aux1\n1000", "aux2\n1000", "logits\n1000"]


def test_mobilenet_v2_runs_of_blocks_are_counted() -> None:
    # torchvision's flat `features` (the stem, Table 2's 17 inverted residuals, the head): each run of
    # alike blocks that feed only one another is one node, counted.
    d = dot_of("mobilenet_v2.arch", depth=1)
    assert len(d.labels) == 19  # image, 13 nodes for the 19 entries of features, pool, flatten, dropout, linear, logits
    (run,) = d.nodes_labelled(r"^inverted_residual\(c=64, stride=1, expand=6\) ×3\n")  # Table 2, row 4
    assert d.labels[run].split("\n")[1] == "features.8 … features.10"
    (e,) = d.into(run)
    assert e[2] == "64×14×14"

    full = dot_of("mobilenet_v2.arch", depth=0)
    adds = [n for n, text in full.labels.items() if text == "add"]
    assert len(adds) == 10  # the residual connections: stride 1 and equal channels
    assert all(len(full.into(n)) == 2 for n in adds)
    d2 = dot_of("mobilenet_v2.arch", depth=2)
    # Depth 2 opens every inverted residual (Table 2: 17 of them, t = 1 only in the first, so 16 have
    # an expansion): its conv_bn_act calls are one node each, its projection a conv and a bn, plus the
    # 10 adds; the stem and head open to conv, bn, relu6; the root holds the image, pool, flatten,
    # dropout, classifier, output.
    assert len(d2.labels) == (16 * 4 + 1 * 3) + 10 + 2 * 3 + 6
    assert len(d2.clusters) == 1 + 17 + 1  # stem, inverted residuals, head
    assert default_depth(api.load(SPECS / "mobilenet_v2.arch").network().ir) is None  # 155 nodes: all drawn


def test_shufflenet_v2_splits_and_stages() -> None:
    d = dot_of("shufflenet_v2.arch", "shufflenet_v2_x1_0")  # default depth: every op (200 nodes)
    assert len(d.labels) == 200
    assert [c.label.split(":")[0] for c in d.root.clusters] == ["stage2", "stage3", "stage4"]  # Table 5's
    assert [len(c.clusters) for c in d.root.clusters] == [4, 8, 4]
    splits = [n for n, a in d.attrs.items() if 'shape="trapezium"' in a]
    assert len(splits) == 13  # every unit but the three downsampling ones
    first = d.clusters[d.root.clusters[0].clusters[1].id]
    (split,) = [n for n in first.nodes if n in splits]
    assert [e[2] for e in d.out_of(split)] == ["58×28×28", "58×28×28"]  # the two halves
    assert len([n for n, t in d.labels.items() if t == "concat"]) == 16
    assert len(d.nodes_labelled("^shuffle")) == 16

    d1 = dot_of("shufflenet_v2.arch", "shufflenet_v2_x1_0", depth=1)
    assert len(d1.labels) == 15
    (stage3,) = d1.nodes_labelled("^stage3: ")
    assert d1.labels[stage3].split("\n")[1:3] == ["shuffle_unit(c=232, stride=2)", "shuffle_unit(c=232, stride=1) ×7"]
    assert [e[2] for e in d1.into(stage3)] == ["116×28×28"]


def test_bifpn_multi_input_block_and_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(DATA / "bifpn.arch")]) == 0
    out = capsys.readouterr().out
    for name, shape in [("p3_out", "64×32×32"), ("p4_out", "64×16×16"), ("p5_out", "64×8×8"),
                        ("p6_out", "64×4×4"), ("p7_out", "64×2×2")]:
        assert re.search(rf"output\s+{name}\s+{shape}", out)

    d1 = dot_of(DATA / "bifpn.arch", depth=1)
    (layers,) = d1.nodes_labelled(r"^bifpn_layer\(w=64\) ×2\n")
    assert sorted(e[2] for e in d1.out_of(layers)) == sorted(
        ["64×32×32", "64×16×16", "64×8×8", "64×4×4", "64×2×2"])
    assert len(d1.into(layers)) == 5
    assert len(d1.labels) == 19

    full = dot_of(DATA / "bifpn.arch", depth=0)
    assert [c.label.split(":")[0] for c in full.root.clusters][-2:] == ["bifpn_layer", "bifpn_layer_1"]
    fuses = [n for n, t in full.labels.items() if t == "fuse"]
    assert len(fuses) == 16
    assert sorted(len(full.into(n)) for n in fuses) == [2] * 10 + [3] * 6  # 3 inputs: the bottom-up skips
    outs = [full.labels[n] for n, a in full.attrs.items() if 'shape="house"' in a]
    assert outs == ["p3_out\n64×32×32", "p4_out\n64×16×16", "p5_out\n64×8×8", "p6_out\n64×4×4", "p7_out\n64×2×2"]


def test_ids_are_synthetic_and_output_deterministic() -> None:
    text = to_dot(api.load(SPECS / "googlenet.arch").network("googlenet_aux"))
    assert text == to_dot(api.load(SPECS / "googlenet.arch").network("googlenet_aux"))
    ids = re.findall(r"^\s*(?!graph )(\S+) \[label=", text, re.M) + re.findall(r"subgraph (\S+) \{", text)
    assert ids and all(re.fullmatch(r"n\d+|cluster_\d+", i) for i in ids)


def test_direction_and_labels_escaped() -> None:
    assert "rankdir=LR" in to_dot(api.load(SPECS / "alexnet.arch").network(), direction="LR")
    assert quote('<b>x</b>') == '"<b>x</b>"'  # quoted: never read as an HTML-like label
    assert quote('a"b\\n') == '"a\\"b\\\\n"'
    assert label("f(x)", 'say "hi"') == '"f(x)\\nsay \\"hi\\""'


def test_efficientnet_b7_default_depth_is_legible_and_fast() -> None:
    net = api.load(SPECS / "efficientnet.arch").network("efficientnet_b7")
    start = time.perf_counter()
    text = to_dot(net)
    d = parse_dot(text)
    assert len(d.labels) <= NODE_BUDGET
    assert len(net.ir) > NODE_BUDGET  # so something was collapsed
    assert d.nodes_labelled(r"^mbconv\(.*\) ×\d+\n")
    if HAS_DOT:
        from archdsl.compiler.backends.graphviz_backend import render

        svg = render(text, "svg")
        ET.fromstring(svg)
    assert time.perf_counter() - start < 5


# ---------------------------------------------------------------------------------------------
# Rendering for real, and the command


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@needs_dot
@pytest.mark.parametrize(("spec", "net"), [("googlenet.arch", None), ("mobilenet_v2.arch", None),
                                           ("shufflenet_v2.arch", "shufflenet_v2_x1_0"), ("bifpn", None)])
def test_render_svg_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, net: str | None) -> None:
    path = str(DATA / "bifpn.arch") if spec == "bifpn" else str(SPECS / spec)
    extra = ["--net", net] if net else []
    assert main(["diagram", path, *extra, "-o", str(tmp_path / "d.svg")]) == 0
    assert main(["diagram", path, *extra, "-o", str(tmp_path / "d.png"), "--direction", "LR"]) == 0
    root = ET.fromstring((tmp_path / "d.svg").read_bytes())
    assert root.tag.endswith("svg")
    width, height = png_size((tmp_path / "d.png").read_bytes())
    assert 100 <= width <= 50_000 and 100 <= height <= 50_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.png", "d.svg"]  # no temporary files left


@needs_dot
def test_render_pdf(tmp_path: Path) -> None:
    assert main(["diagram", "resnet50", "--depth", "1", "-o", str(tmp_path / "r.pdf")]) == 0
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")


def test_without_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["diagram", "alexnet", "-o", str(tmp_path / "a.dot")]) == 0
    assert (tmp_path / "a.dot").read_text().startswith('digraph "alexnet" {')
    capsys.readouterr()
    assert main(["diagram", "alexnet", "-o", str(tmp_path / "a.svg")]) == 1
    err = capsys.readouterr().err
    assert "E1103" in err and "apt-get install graphviz" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.dot"]  # no partial file


def test_diagram_command_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram", "alexnet", "-o", str(tmp_path / "a.gif")]) == 1
    assert "E1102" in capsys.readouterr().err
    assert main(["diagram", "alexnet", "-o", "-", "--depth", "all"]) == 0
    assert capsys.readouterr().out.startswith('digraph "alexnet" {')
    with pytest.raises(SystemExit):
        main(["diagram", "alexnet", "--depth", "-1"])


# ---------------------------------------------------------------------------------------------
# Notebook display


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "table":
            self.tables += 1
        elif tag == "tr":
            self.rows.append([])

    def handle_data(self, data: str) -> None:
        if self.rows:
            self.rows[-1].append(data)


def test_report_repr_html_has_one_row_per_layer() -> None:
    report = api.load(SPECS / "mobilenet_v2.arch").network().analyze()
    parser = _Rows()
    parser.feed(report._repr_html_())
    assert parser.tables == 1
    header, *body = parser.rows
    assert header == ["layer", "op", "output", "params", "MACs"]
    assert [r[0] for r in body] == [x.name for x in report.layers]


@needs_dot
def test_network_repr_svg_shows_outputs() -> None:
    net = api.load(SPECS / "googlenet.arch").network("googlenet_aux")
    svg = net._repr_svg_()
    assert svg is not None
    root = ET.fromstring(svg)
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"logits", "aux1", "aux2"} <= texts


def test_network_repr_svg_without_dot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A notebook without graphviz shows what the CLI prints (E1103 and how to install `dot`), never nothing."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on it
    svg = api.load(SPECS / "alexnet.arch").network()._repr_svg_()
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    shown = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}tspan")]
    assert main(["diagram", str(SPECS / "alexnet.arch"), "-o", str(tmp_path / "alexnet.svg")]) == 1
    assert shown[0] == capsys.readouterr().err.splitlines()[0]
    assert shown[0].startswith("error[E1103]: cannot render the diagram: graphviz's `dot` program is not installed")
    assert "apt-get install graphviz" in " ".join(shown)


@pytest.mark.parametrize(("file", "name"), zoo())
def test_every_zoo_network_draws_legibly(file: str, name: str) -> None:
    d = parse_dot(to_dot(api.load(SPECS / file).network(name)))
    assert 0 < len(d.labels) <= NODE_BUDGET
    assert all(re.fullmatch(r"\d+(×\d+)*", shape) for _, _, shape in d.edges)


def test_a_run_folds_blocks_whose_calls_differ_in_no_layer() -> None:
    """EfficientNet's blocks each drop with their own probability: alike in every layer, they are
    still one run, labelled with the range; a block whose layers differ (a stride) is not in it."""
    src = """
    block unit(c, stride, p) { in -> conv(c, 3, stride=stride) -> drop_path(p) }
    network t {
        input x: 3x16x16
        x -> repeat 4 as i { unit(4, stride=(i == 0 ? 2 : 1), p=0.1 * i) } as blocks
    }
    """
    d = parse_dot(to_dot(api.load_string(src, "t.arch").network(), depth=2))
    assert d.nodes_labelled(r"^unit\(c=4, stride=2, p=0\)\nblocks\.0\n")
    assert d.nodes_labelled(r"^unit\(c=4, stride=1, p=0\.1…0\.3\) ×3\nblocks\.1 … blocks\.3\n")
    # two nodes: the stride-2 block and the run of three
    assert len(d.nodes_labelled(r"^unit\(")) == 2
