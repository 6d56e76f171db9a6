"""Assay's benchmarks: raw Jobs (A0), JobSet (A1) and Assay (A2) on the same local cluster (see README.md)."""
