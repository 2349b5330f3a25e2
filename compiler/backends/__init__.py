"""Backends: turn an elaborated IR into something else (PyTorch source, weights, diagrams).

Importing this package imports neither torch nor graphviz; each backend module imports its own
heavy dependency lazily or only where it is unavoidable.
"""
