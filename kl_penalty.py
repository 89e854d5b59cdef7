"""The KL anchor: which divergence a KL estimator follows when it is used as a loss.

Many RL trainers keep the policy near a reference pi_ref (the SFT model) with a penalty
beta * KL, estimated from the sampled responses. The objective usually written down is

    maximise  E_{y~pi}[A(y)] - beta * KL(pi || pi_ref),

whose optimum is pi_ref(y) exp(A(y)/beta) / Z: with beta = eta and pi_ref = pi_old that is Lemma
3.1's pi*, the same target LAD matches (lad_loss.py). But a penalty is applied as a *loss* on
samples y ~ pi, with the samples held fixed (no gradient flows through the sampling), and then what
matters is not which KL its value estimates but which KL its gradient follows. For log r = log
pi_ref(y) - log pi(y):

    estimator  value per sample  its value estimates  its expected gradient, as a loss, is that of
    k1         -log r            KL(pi || pi_ref)     nothing: E_pi[grad log pi] = 0
    k2         (log r)^2 / 2     ~ KL(pi || pi_ref)   KL(pi || pi_ref), optimum pi_ref exp(A/beta)/Z
    k3         r - 1 - log r     KL(pi || pi_ref)     KL(pi_ref || pi), optimum beta pi_ref/(mu - A)
    rho k3     (pi/pi_old) k3    KL(pi || pi_ref)     KL(pi || pi_ref), on samples of pi_old

Why. As a loss on fixed samples, k2's gradient is (log pi - log pi_ref) grad log pi, and
E_pi[(log pi - log pi_ref) grad log pi] = grad sum_y pi (log pi - log pi_ref), the gradient of
KL(pi || pi_ref) (its other term, E_pi[grad log pi], is zero). k3's gradient is (1 - pi_ref/pi) grad
log pi, and E_pi[(1 - pi_ref/pi) grad log pi] = sum_y (pi - pi_ref) grad log pi = -sum_y pi_ref grad
log pi, the gradient of KL(pi_ref || pi): the mass-covering direction, whose optimum with E[A] is
beta pi_ref / (mu - A) (mu a Lagrange multiplier), not an exponential tilt. k3 is the estimator
GRPO's paper and most trainers use: an unbiased, low-variance estimate of the *value*
KL(pi || pi_ref), which is what one wants for a reward term or a logged number, but as a loss it
pulls the other way. Weighted by the ratio rho = pi/pi_old to the policy that sampled y, with
rho's gradient kept (on fresh samples rho is 1 in value, not in gradient), it pulls the right way:
E_{pi_old}[grad(rho k3)] = grad sum_y pi k3 = grad KL(pi || pi_ref). Which form runs is a
trainer's setting: verl's kl_loss_type "low_var_kl" adds k3 as it is (clipped), its "k3+" keeps
k3's value and takes k2's gradient; TRL 1.16 multiplies k3 by the ratio by default
(use_bias_correction_kl=True; False gives plain k3). Names such as "forward" and "reverse" differ
between fields, so we write the arguments. tests/test_kl_penalty.py checks the last column exactly,
on an enumerable softmax and on enumerable two-token sequences; tests/test_lad_trl_against_trl.py
checks TRL's own loss in both settings.

Sequences. For a completion the ratio is a product over tokens. Applied to the summed log-ratio
log pi(y) - log pi_ref(y), the statements above hold for whole completions: sequence-level k2
follows KL(pi || pi_ref) over completions. Applied per token and summed (what TRL and verl do with
k3), each token's term sees only its own factor, and the gradient follows the sum over the sampled
prefixes of a per-step divergence, with the prefix distribution held fixed: sum_t E_{prefix}[
KL(pi_ref(.|prefix) || pi(.|prefix))] for k3 as verl runs it, sum_t E_{prefix}[KL(pi(.|prefix) ||
pi_ref(.|prefix))] for TRL's default rho k3 (rho the token's ratio). Either misses the credit
that later tokens give the earlier ones.

So train_reasoning.py anchors with k2 on the summed log-ratio (`--kl-estimator k2`) and keeps
per-token k3 (`--kl-estimator k3`, verl's form) as a named choice. Beside E[A] (GRPO's
term), k2 at beta = eta is aimed at pi*. Beside LAD's term at ratio 1, which is REINFORCE with the
weight w(A) = -f'(exp(-A/eta)), the balance is E[w(A)] - beta KL and the optimum pi_sft
exp(w(A)/beta) / Z, which is pi* only for f = kl at beta = 1 (reasoning/methods.py's table,
tests/test_fixed_points.py).

These functions are elementwise: pass per-token log-probabilities for a per-token penalty, or their
sums over each completion for a sequence-level one; the caller masks and reduces
(grpo_loss.reduce_loss). The reference is a fixed anchor, so it is detached: a gradient into pi_ref
would move the anchor towards the policy.
"""
import torch


def k2_penalty(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """(log pi - log pi_ref)^2 / 2, elementwise. As a loss on samples of pi its gradient is
    (logp - logp_ref) grad logp, whose expectation is the gradient of KL(pi || pi_ref)."""
    return 0.5 * (logp - logp_ref.detach()) ** 2


def k3_penalty(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """exp(r) - r - 1 with r = logp_ref - logp, elementwise: >= 0, and 0 exactly where the policies
    agree. Its value is an unbiased estimate of KL(pi || pi_ref) on samples of pi; as a loss its
    gradient is (1 - exp(logp_ref - logp)) grad logp, whose expectation is the gradient of
    KL(pi_ref || pi)."""
    log_ref_ratio = logp_ref.detach() - logp
    return torch.exp(log_ref_ratio) - log_ref_ratio - 1


KL_ESTIMATORS = {"k2": k2_penalty, "k3": k3_penalty}
# The divergence each estimator's gradient follows, as a loss on samples of pi (the table above).
GRADIENT_FOLLOWS = {"k2": "KL(pi || pi_ref)", "k3": "KL(pi_ref || pi)"}


def kl_penalty(logp: torch.Tensor, logp_ref: torch.Tensor, estimator: str = "k2") -> torch.Tensor:
    """The elementwise penalty of one of KL_ESTIMATORS ("k2" or "k3"); logp and logp_ref of one
    shape."""
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"estimator must be one of {sorted(KL_ESTIMATORS)}, got {estimator!r}")
    if logp_ref.shape != logp.shape:
        raise ValueError(
            f"logp_ref must have the shape of logp {tuple(logp.shape)}, got {tuple(logp_ref.shape)}"
        )
    return KL_ESTIMATORS[estimator](logp, logp_ref)
