"""The reconstruction terms of CycleGAN (Zhu et al. 2017; see FORMULAS.md).

L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda_cyc (E |F(G(a)) - a| + E |G(F(b)) - b|)
    + lambda_cyc lambda_id (E |G(b) - b| + E |F(a) - a|)

E |x - y| is the mean absolute error over every pixel and channel (the reference's L1Loss),
measured in the reference's pixel range [-1, 1]: genlab's images are in [0, 1], so it is twice
their mean absolute difference, which keeps lambda_cyc = 10 and lambda_id = 0.5 weighing the
terms as in the paper. The identity weight is lambda_cyc * lambda_id, as the reference does.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


def l1_reconstruction(target: Tensor, output: Tensor) -> Tensor:
    """Mean |output - target| in the [-1, 1] range of images (B, C, H, W) given in [0, 1]."""
    return 2 * (output - target).abs().mean()


class CycleTerms(NamedTuple):
    """The reconstruction terms of one generator step (scalars)."""

    cycle_a: Tensor  # E |F(G(a)) - a|
    cycle_b: Tensor  # E |G(F(b)) - b|
    identity_a: Tensor  # E |F(a) - a|
    identity_b: Tensor  # E |G(b) - b|

    def weighted(self, lambda_cyc: float, lambda_id: float) -> Tensor:
        """lambda_cyc (cycle_a + cycle_b) + lambda_cyc lambda_id (identity_a + identity_b)."""
        cycle = self.cycle_a + self.cycle_b
        return lambda_cyc * cycle + lambda_cyc * lambda_id * (self.identity_a + self.identity_b)
