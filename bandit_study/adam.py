"""Adam, written out for the bandit's 50 logits: torch.optim.Adam's update, operation for operation.

bandit.py trains with this class rather than torch.optim.Adam. The numbers are the same, bit for bit
(tests/test_bandit.py trains both ways and compares), and so is the interface: zero_grad(),
loss.backward(), step(). What it leaves out is the machinery around the update, which on 50 numbers
costs more than the update itself: building the first torch.optim optimiser imports torch._dynamo
(over a second on a 2-core CPU, where the whole figure takes a few), and every step of it passes
through hooks and profiler records. The update, in the order torch's single-tensor path computes it,
for a parameter theta with gradient g at its t-th step:

    m     <- m + (1 - beta1) (g - m)                              the running mean of g
    v     <- beta2 v + (1 - beta2) g^2                            ... and of g^2
    theta <- theta - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

The two bias corrections undo the zeros m and v start from. Adam divides each parameter's step by
that parameter's own running gradient scale, so every logit moves by about lr per step at first,
however small its gradient.
"""
import torch


class Adam:
    """Adam(params, lr): the parameters it updates (tensors with requires_grad), and its rate."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        # Per parameter, as torch keeps it: its step count t and the running moments m and v.
        self.state = [{"t": 0, "m": torch.zeros_like(p), "v": torch.zeros_like(p)}
                      for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for p, state in zip(self.params, self.state):
            if p.grad is None:  # no gradient this step: torch leaves such a parameter alone too
                continue
            state["t"] += 1
            t, m, v, g = state["t"], state["m"], state["v"], p.grad
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v.sqrt() / (1 - beta2 ** t) ** 0.5).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / (1 - beta1 ** t))
