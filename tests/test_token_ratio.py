"""What the token-level ratio optimises, enumerated (the GPT chapter runs both ratio levels).

A tabular two-token policy pi(y1, y2) = pi1(y1) pi2(y2 | y1) is small enough to minimise the exact
expected loss of lad_loss itself, over every completion weighted by pi_old. The sequence form (one
ratio per completion, [batch] inputs) is Lemma 3.2 and its minimiser is pi* = pi_old exp(A/eta) / Z.
The token form ([batch, tokens] inputs, each token its own ratio and the completion's A) is another
objective: at the last token it agrees with pi*, but at the first one f' is averaged over the
continuations pi_old samples, and its minimiser is neither pi* (except for reverse KL) nor the
"exp(length * A / eta)" one might guess. A 0/1 verifier shows which way it leans: away from a first
token after which pi_old often goes wrong, towards one after which every answer is right.
"""
import math

import pytest
import torch

from lad_loss import lad_loss

V = 3
D = torch.float64
# after SAFE every second token is correct, after RISKY only 0, after WRONG none
SAFE, RISKY, WRONG = 0, 1, 2
CORRECT = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
OLD_LOGITS = torch.tensor([0.2, 0.5, -0.1, 0.3, -0.2, 0.1, 0.0, 0.4, -0.3, 0.2, 0.1, -0.4], dtype=D)
ETA = 0.25


def token_logps(logits):
    """[V * V, 2]: log pi1(y1) and log pi2(y2 | y1) of every completion, row y1 * V + y2."""
    first = torch.log_softmax(logits[:V], -1)[:, None].expand(V, V)
    second = torch.log_softmax(logits[V:].view(V, V), -1)
    return torch.stack([first, second], -1).reshape(V * V, 2)


OLD = token_logps(OLD_LOGITS)
P_OLD = OLD.sum(1).exp()
P_CORRECT = float(P_OLD[CORRECT.reshape(-1)].sum())
# the large-group group-normalised 0/1 advantage, as the GPT chapter's pi* uses it
A = torch.where(CORRECT.reshape(-1), math.sqrt((1 - P_CORRECT) / P_CORRECT),
                -math.sqrt(P_CORRECT / (1 - P_CORRECT))).to(D)
PI_STAR = torch.softmax(OLD.sum(1) + A / ETA, 0)


def expected_loss(logits, divergence, level):
    logp = token_logps(logits)
    if level == "sequence":
        per = lad_loss(logp.sum(1), OLD.sum(1), A, eta=ETA, divergence=divergence, reduction="none")
    else:
        per = lad_loss(logp, OLD, A, eta=ETA, divergence=divergence, reduction="none").sum(1)
    return (P_OLD * per).sum()


def minimiser(divergence, level):
    logits = OLD_LOGITS.clone().requires_grad_(True)
    for _ in range(10):  # fresh L-BFGS rounds: a stale curvature history can stall it
        opt = torch.optim.LBFGS([logits], max_iter=200, tolerance_grad=1e-11, tolerance_change=0,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = expected_loss(logits, divergence, level)
            loss.backward()
            return loss

        opt.step(closure)
        if logits.grad.abs().max() < 1e-10:
            break
    return token_logps(logits.detach()).sum(1).exp()


def tv(p, q):
    return 0.5 * float((p - q).abs().sum())


@pytest.mark.parametrize("divergence", ["js", "kl", "hd"])
def test_the_sequence_ratio_minimiser_is_pi_star(divergence):
    assert tv(minimiser(divergence, "sequence"), PI_STAR) < 1e-6


def test_the_token_ratio_minimiser_is_pi_star_for_reverse_kl_only():
    assert tv(minimiser("rkl", "token"), PI_STAR) < 1e-6
    for divergence in ["js", "kl", "hd"]:
        assert tv(minimiser(divergence, "token"), PI_STAR) > 1e-3, divergence


def test_the_token_form_is_not_an_exp_length_times_a_target_and_leans_away_from_the_risky_prefix():
    token_js = minimiser("js", "token")
    # pi_old exp(length * A / eta) / Z, length 2
    two_steps = torch.softmax(OLD.sum(1) + 2 * A / ETA, 0)
    assert tv(token_js, two_steps) > 1e-2
    # Both keep P(correct) near 1; the difference is the shape among the correct answers.
    correct = CORRECT.reshape(-1)
    assert float(token_js[correct].sum()) > 0.99 and float(PI_STAR[correct].sum()) > 0.99
    risky_answer = RISKY * V + 0
    assert float(token_js[risky_answer]) < 0.5 * float(PI_STAR[risky_answer])
