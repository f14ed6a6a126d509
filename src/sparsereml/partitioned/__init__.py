"""Fits to data that stays in partitions (a directory or glob of Parquet or CSV files, or a Dask
DataFrame): the data pass runs over the partitions with Dask, the equations and iterations on
this node (docs/DESIGN.md, "The data pass")."""
from .design import PartitionedDesign, build_partitioned_design
from .sources import is_partitioned

__all__ = ["PartitionedDesign", "build_partitioned_design", "is_partitioned"]
