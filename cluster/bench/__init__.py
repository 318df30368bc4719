"""Cluster benchmarks: load generator, local clusters of fsmcluster and etcd, reports."""
