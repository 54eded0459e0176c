"""Likelihoods are computed in float32 whatever the training precision: a model trained in bf16
mixed precision (Lightning runs it on the CPU too) reports the float32 numbers."""

import lightning as L
import pytest
import torch

from genlab.utils.precision import full_precision
from tests.metrics import toys
from tests.modules.test_pixelcnn_module import make_model
from tests.modules.test_vae import make_vae

MODELS = {
    "vae": lambda: make_vae(image_shape=(1, 8, 8), iwae_samples=20, iwae_chunk=10),
    "pixelcnn": lambda: make_model(image_shape=(1, 8, 8)),
}


def trainer(precision: str, **kwargs: object) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def test_full_precision_turns_autocast_off():
    layer, x = torch.nn.Linear(3, 3), torch.randn(2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16
        with full_precision():
            assert layer(x).dtype == torch.float32
        assert layer(x).dtype == torch.bfloat16  # restored on exit

    @full_precision()
    def forward(t: torch.Tensor) -> torch.Tensor:
        return layer(t)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = forward(x)
    torch.testing.assert_close(inside, layer(x), rtol=0, atol=0)


@pytest.mark.parametrize("family", sorted(MODELS))
def test_val_and_test_metrics_of_a_bf16_trained_model_are_float32(family):
    torch.manual_seed(0)
    dm, model = toys.datamodule(), MODELS[family]()
    trainer("bf16-mixed", max_steps=3, limit_val_batches=0).fit(model, datamodule=dm)
    results = {}
    for precision in ("bf16-mixed", "32-true"):
        evaluation = trainer(precision)
        torch.manual_seed(1)  # the same IWAE draws in both
        (val,) = evaluation.validate(model, datamodule=dm, verbose=False)
        (test,) = evaluation.test(model, datamodule=dm, verbose=False)
        results[precision] = {**val, **test}
    expected = {"vae": "test/iwae_nll", "pixelcnn": "test/bits_per_dim"}[family]
    assert expected in results["32-true"] and "val/" in " ".join(results["32-true"])
    assert results["bf16-mixed"] == pytest.approx(results["32-true"], rel=1e-6)
