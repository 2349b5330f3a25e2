"""Reference implementations that no installable package ships, ported into the tests so the specs
can be compared with them live (parameters, MACs, outputs after `load_weights`).

Each module names the file and commit it ports. The layer definitions are kept as upstream writes
them (same modules, order, names and arguments) so their state dicts are the upstream ones; only
what the tests cannot run is left out (argument parsing, data loading, multi-GPU dispatch, weight
initialisation where the spec declares none — the parity tests fill every tensor with random values
anyway; tests/test_init.py compares the ones ported).
"""
