"""The image pool: fills first, then swaps with probability 1/2; conserves images; seeded,
checkpointed and independent of the global RNG, so a resumed run continues exactly."""

import pytest
import torch

from genlab.modules.image_pool import ImagePool

SHAPE = (1, 2, 2)


def tagged(first: int, n: int) -> torch.Tensor:
    """n constant images whose value (tag) is first, first + 1, ...: (n, 1, 2, 2)."""
    return torch.arange(first, first + n, dtype=torch.float32)[:, None, None, None].expand(
        n, *SHAPE
    )


def tags(images: torch.Tensor) -> list[int]:
    return [int(v) for v in images[:, 0, 0, 0]]


def test_the_pool_returns_and_stores_new_fakes_until_it_is_full():
    pool = ImagePool(5, SHAPE, seed=0)
    assert tags(pool.query(tagged(1, 3))) == [1, 2, 3]
    assert int(pool.count) == 3
    assert tags(pool.query(tagged(4, 2))) == [4, 5]
    assert tags(pool.images) == [1, 2, 3, 4, 5] and int(pool.count) == 5


def test_once_full_each_fake_is_swapped_with_probability_one_half_and_nothing_is_lost():
    pool = ImagePool(50, SHAPE, seed=1)
    pool.query(tagged(1000, 50))  # full
    swapped = total = 0
    for step in range(200):
        new = tagged(step * 4, 4)
        before = sorted(tags(pool.images))
        out = pool.query(new)
        # the multiset {pool} + {new fakes} is conserved: each swap moves one fake in, one out
        assert sorted(before + tags(new)) == sorted(tags(pool.images) + tags(out))
        for i, tag in enumerate(tags(out)):
            total += 1
            if tag != step * 4 + i:
                swapped += 1
                # a stored fake: from before, or one an earlier fake of this batch put in
                assert tag in before + tags(new)[:i]
    # 800 Bernoulli(1/2) draws: 5 standard deviations is +- 71
    assert abs(swapped - total / 2) < 5 * (total * 0.25) ** 0.5


def test_size_zero_is_no_pool():
    pool = ImagePool(0, SHAPE)
    fakes = torch.rand(3, *SHAPE, requires_grad=True)
    out = pool.query(fakes)
    assert torch.equal(out, fakes) and not out.requires_grad
    with pytest.raises(ValueError, match=r"model\.pool_size=-1"):
        ImagePool(-1, SHAPE)


def test_a_restored_pool_continues_exactly_and_the_global_rng_is_untouched():
    pool = ImagePool(4, SHAPE, seed=7)
    for _ in range(5):
        pool.query(torch.rand(2, *SHAPE))
    restored = ImagePool(4, SHAPE, seed=123)  # the checkpoint's seed wins
    restored.load_state_dict(pool.state_dict())
    batches = [torch.rand(2, *SHAPE) for _ in range(6)]
    rng = torch.get_rng_state()
    for batch in batches:
        torch.testing.assert_close(pool.query(batch), restored.query(batch), rtol=0, atol=0)
    assert torch.equal(torch.get_rng_state(), rng)
    torch.testing.assert_close(pool.images, restored.images, rtol=0, atol=0)


def test_pools_with_other_seeds_draw_differently():
    outs = []
    for seed in (0, 1):
        pool = ImagePool(10, SHAPE, seed=seed)
        pool.query(tagged(100, 10))
        outs.append([tags(pool.query(tagged(10 * s, 10))) for s in range(5)])
    assert outs[0] != outs[1]
