"""The `fsmcluster` command line, one module per command group (`cluster.__main__` wires them).

`node` and `up` run nodes, `schema` checks and draws definitions offline, `client` holds the
commands that talk to a running cluster, `snapshot` is the disaster-recovery tool, `bench`
measures.
"""
