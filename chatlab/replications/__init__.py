"""Replications: many independent simulations run on every core or on a Dask cluster (``engine``)."""

from chatlab.replications.engine import Replication, ReplicationError, check_jobs, default_jobs, run_replications

__all__ = ["Replication", "ReplicationError", "check_jobs", "default_jobs", "run_replications"]
