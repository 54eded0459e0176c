"""Translation metrics on toy domains: a perfect translator scores FID ~ 0, KID ~ 0 and full
domain accuracy; the identity translator scores worse on all three; keys and direction means."""

import pytest
import torch
from torch import Tensor, nn

from genlab.metrics.quality import QualitySettings
from genlab.metrics.translation import (
    check_direction,
    evaluate_translation,
    translate_images,
)


def toy_domains(n: int = 200) -> dict[str, Tensor]:
    """A: dark noise images; B: independent bright ones distributed as 1 - A, so inverting is
    a perfect translation (in distribution)."""
    a, b = (
        (torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(s)) * 0.4 * 255).round()
        / 255
        for s in (0, 1)
    )
    return {"A": a, "B": 1 - b}


class Inverter(nn.Module):
    """Translates by inverting the image (perfect on the toy domains); ``identity`` does not."""

    def __init__(self, identity: bool = False):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.identity = identity

    def translate(self, images: Tensor, direction: str) -> Tensor:
        check_direction(direction)
        return images if self.identity else 1 - images


class ToyExtractor:
    """Features: a fixed random projection to 6 dims; logits: dark (A) vs bright (B)."""

    key = "toy"

    def __init__(self):
        self.projection = torch.randn(16, 6, generator=torch.Generator().manual_seed(1))

    def features(self, x: Tensor) -> Tensor:
        return x.flatten(1) @ self.projection

    def logits(self, x: Tensor) -> Tensor:
        brightness = x.flatten(1).mean(dim=1, keepdim=True) - 0.5
        return torch.cat([-brightness, brightness], dim=1)  # (N, 2)


SETTINGS = QualitySettings(kid_subsets=20, kid_subset_size=1000)


def evaluate(model) -> dict[str, float]:
    domains = toy_domains()
    toy = ToyExtractor()
    return evaluate_translation(model, domains.__getitem__, toy, toy, SETTINGS, batch_size=7)


def test_a_perfect_translation_scores_near_zero_and_the_identity_far_from_it():
    perfect, identity = evaluate(Inverter()), evaluate(Inverter(identity=True))
    for direction in ("AtoB", "BtoA"):
        assert perfect[f"fid_{direction}"] < 0.02 * identity[f"fid_{direction}"]
        assert abs(perfect[f"kid_mean_{direction}"]) < 0.01 * identity[f"kid_mean_{direction}"]
        assert perfect[f"domain_acc_{direction}"] == 1.0
        assert identity[f"domain_acc_{direction}"] == 0.0  # no image changes domain
    assert perfect["classifier_acc_real"] == identity["classifier_acc_real"] == 1.0


def test_summary_keys_are_the_means_of_the_two_directions():
    metrics = evaluate(Inverter(identity=True))
    for name in ("fid", "kid_mean", "kid_std", "domain_acc"):
        assert metrics[name] == pytest.approx(
            (metrics[f"{name}_AtoB"] + metrics[f"{name}_BtoA"]) / 2
        )


def test_translations_are_rounded_to_8_bit_levels_in_batches():
    images = torch.rand(10, 1, 4, 4)
    out = translate_images(Inverter(), images, "AtoB", batch_size=3)
    torch.testing.assert_close(out, ((1 - images) * 255).round() / 255)
    with pytest.raises(ValueError, match="direction='AB'"):
        translate_images(Inverter(), images, "AB", batch_size=3)
