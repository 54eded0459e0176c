"""Lightning callbacks: picture grids, sample quality, throughput, resume state, periodic
checkpoints and the divergence guard."""

from genlab.callbacks.divergence import DivergenceError, DivergenceGuard
from genlab.callbacks.pictures import ImageGrids
from genlab.callbacks.resume import PeriodicCheckpoint, ResumeState
from genlab.callbacks.sample_quality import SampleQuality
from genlab.callbacks.throughput import Throughput

__all__ = [
    "DivergenceError",
    "DivergenceGuard",
    "ImageGrids",
    "PeriodicCheckpoint",
    "ResumeState",
    "SampleQuality",
    "Throughput",
]
