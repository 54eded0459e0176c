"""Lightning callbacks: picture grids and throughput."""

from genlab.callbacks.pictures import ImageGrids
from genlab.callbacks.throughput import Throughput

__all__ = ["ImageGrids", "Throughput"]
