"""Solution to exercise 3: Lemma 3.2's stationarity condition.

The derivation. With r_y = pi(y)/pi_old(y) and a_y = A_y/eta, the objective over a finite set is

    L(r) = sum_y pi_old(y) exp(a_y) f(r_y exp(-a_y)),    subject to  sum_y pi_old(y) r_y = 1.

The Lagrangian L(r) - mu (sum_y pi_old(y) r_y - 1) has, for each y,

    d/dr_y = pi_old(y) exp(a_y) f'(r_y exp(-a_y)) exp(-a_y) - mu pi_old(y)
           = pi_old(y) [ f'(x_y) - mu ],

so a stationary point (with pi_old(y) > 0) satisfies f'(x_y) = mu for every y: the chain rule's
exp(-a_y) cancels the weight exp(a_y) exactly, which is the point of the weighting.

If f is strictly convex, f' is strictly increasing, hence invertible: x_y = (f')^{-1}(mu) = c
for every y, so r_y = c exp(a_y), and the constraint fixes c: sum_y pi_old(y) c exp(a_y) = c Z = 1,
c = 1/Z. That is pi = pi_old exp(A/eta)/Z = pi*, and every response sits at x_y = 1/Z, so
mu = f'(1/Z). (Not f'(1): x = 1 marks the optimum only when Z = 1. Exercise 6 builds on this.)
Convexity of L in r (a sum of perspectives of a convex function) makes the stationary point the
minimum.

Total variation. f'(x) = -1/2 for x < 1 and +1/2 for x > 1. With Z > 1 the target has x_y = 1/Z < 1
everywhere, so f'(x_y) = -1/2 = mu. Any policy with every x_y < 1, i.e. pi(y) < Z pi*(y) for
all y, satisfies the same condition, and there L = sum_y pi_old e^{a_y} (1 - x_y)/2 = (Z - 1)/2: the
same value. Since Z > 1 there is room: pi(y) may exceed pi*(y) by up to a factor Z. The set of
minimisers is a whole polytope, and sampling noise moves the policy around inside it (bandit.py's
divergence ablation with centred advantages shows the drift).
"""
import torch

from lad_loss import DIVERGENCES, lad_loss


def _log_x(pi, pi_old, advantages, eta):
    # log x_y = log(pi/pi_old) - A/eta: the form lad_loss uses, safe for large A/eta
    return torch.log(pi) - torch.log(pi_old) - advantages / eta


def stationarity_residual(pi, pi_old, advantages, eta: float, divergence: str) -> float:
    slopes = DIVERGENCES[divergence].f_prime(torch.exp(_log_x(pi, pi_old, advantages, eta)))
    return float(slopes.max() - slopes.min())


def lagrange_multiplier(pi_old, advantages, eta: float, divergence: str) -> float:
    # At pi* every x_y = 1/Z; log(1/Z) = -logsumexp(log pi_old + A/eta).
    log_z = torch.logsumexp(torch.log(pi_old) + advantages / eta, dim=-1)
    return float(DIVERGENCES[divergence].f_prime(torch.exp(-log_z)))


def minimise_exact_objective(pi_old, advantages, eta: float,
                             divergence: str) -> tuple[torch.Tensor, list[float]]:
    logp_old = torch.log(pi_old)
    theta = logp_old.clone().requires_grad_(True)  # start where training starts: pi = pi_old
    # max_iter=1: each step() call is one iteration, so the path has one entry per update
    optimizer = torch.optim.LBFGS([theta], max_iter=1, tolerance_grad=1e-12,
                                  tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def objective():
        # The exact expectation over y ~ pi_old: each response's loss weighted by pi_old(y).
        per_response = lad_loss(torch.log_softmax(theta, -1), logp_old, advantages, eta=eta,
                                divergence=divergence, reduction="none")
        return (pi_old * per_response).sum()

    def closure():
        optimizer.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    path = [float(objective().detach())]
    for _ in range(100):  # about 20 iterations reach float64's precision here; the rest stay put
        optimizer.step(closure)  # returns L from *before* its step: evaluate it again after
        path.append(float(objective().detach()))
    return torch.softmax(theta.detach(), -1), path


def tv_minimiser_other_than_target(pi_old, advantages, eta: float) -> torch.Tensor:
    # Any pi with pi < Z pi* everywhere keeps every x_y below 1. Reweighting pi* by w in [1, Z] and
    # renormalising does: pi = pi* w / sum(pi* w) <= pi* Z / 1. Take w = Z on the first half of the
    # responses and 1 on the rest, staying a hair inside the bound.
    log_weights = torch.log(pi_old) + advantages / eta
    log_z = torch.logsumexp(log_weights, dim=-1)
    pi_star = torch.softmax(log_weights, dim=-1)
    w = torch.ones_like(pi_star)
    w[: len(w) // 2] = 1 + 0.999 * (torch.exp(log_z) - 1)
    return pi_star * w / (pi_star * w).sum()
