"""Lightning callbacks: picture grids, sample quality and throughput."""

from genlab.callbacks.pictures import ImageGrids
from genlab.callbacks.sample_quality import SampleQuality
from genlab.callbacks.throughput import Throughput

__all__ = ["ImageGrids", "SampleQuality", "Throughput"]
