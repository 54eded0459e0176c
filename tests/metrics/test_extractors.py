"""The Inception extractor: real features where torch-fidelity works, a clear error otherwise."""

import importlib.util

import pytest
import torch

from genlab.metrics.extractors import InceptionExtractor


def fidelity_usable() -> bool:
    if importlib.util.find_spec("torch_fidelity") is None:
        return False
    try:
        InceptionExtractor()
    except Exception:  # installed but unusable here (e.g. torchvision broken, no weights)
        return False
    return True


@pytest.mark.skipif(fidelity_usable(), reason="torch-fidelity is usable here")
def test_missing_inception_extra_names_the_fix():
    with pytest.raises(ModuleNotFoundError) as error:
        InceptionExtractor()
    assert "pip install -e '.[inception]'" in str(error.value)
    assert "eval/extractor=evaluator" in str(error.value)


@pytest.mark.skipif(not fidelity_usable(), reason="needs the inception extra and its weights")
def test_inception_features_and_logits_for_gray_and_rgb():
    extractor = InceptionExtractor(batch_size=4)
    for channels in (1, 3):
        x = torch.rand(5, channels, 32, 32)
        assert extractor.features(x).shape == (5, 2048)
        assert extractor.logits(x).shape == (5, 1008)
