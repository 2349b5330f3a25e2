"""archdsl's compiler: analysis passes over the IR and backends (PyTorch code, graphviz).

Installed as ``archdsl.compiler``; importing it never imports torch or graphviz.
"""
