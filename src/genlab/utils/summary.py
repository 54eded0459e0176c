"""The end-of-run summary printed to the terminal: key figures and where the files went."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from rich.console import Console
from rich.table import Table

from genlab.callbacks.pictures import ImageGrids


def run_files(output_dir: Path, trainer: Trainer) -> dict[str, str]:
    """Paths a user wants after a run: metrics, checkpoint, sample grids, logger folders."""
    files = {"metrics": str(output_dir / "metrics.json")}
    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.last_model_path:
            files["checkpoint"] = callback.last_model_path
        if isinstance(callback, ImageGrids):
            files.update({f"picture: {k}": str(v) for k, v in callback.saved.items()})
    for logger in trainer.loggers:
        if logger.log_dir or logger.save_dir:
            files[f"logger: {type(logger).__name__}"] = str(logger.log_dir or logger.save_dir)
    return files


def metrics_table(title: str, record: dict[str, Any]) -> Table:
    """The numeric entries of a metrics record (metrics.json, eval.json) as a table."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in record.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4g}")
        elif isinstance(value, int) and not isinstance(value, bool):
            table.add_row(key, str(value))
    return table


def print_run_summary(output_dir: Path, record: dict[str, Any], trainer: Trainer) -> None:
    console = Console()
    console.print(metrics_table(f"genlab run '{record.get('name')}': {record['status']}", record))
    console.print("[bold]outputs[/bold]")
    for key, value in run_files(output_dir, trainer).items():
        console.print(f"  {key}: {value}", soft_wrap=True, highlight=False)
