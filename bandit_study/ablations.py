"""The bandit's ablations: which runs each one compares, and why.

`python bandit.py --ablation NAME` runs one.

bandit.py trains and draws; this file only says what an ablation runs, as (key, method, settings)
triples whose settings differ from the command line's in the one thing the ablation varies. Each
ablation writes plots/ablation_NAME.png (.gif for the animation) and .json.

  divergences     lad-fixed with each of the six f-divergences, with Z = 1 and with centred A
  eta             lad-fixed with 1/eta from 0.5 to 16: the target sharpens; does LAD follow?
  pi-old          pi_old frozen at pi_0 or refreshed every iteration, for LAD (lad-fixed, lad) and
                  for GRPO (grpo, and grpo with --grpo-pi-old fixed)
  entropy-bonus   GRPO + entropy_coef * H(pi) for several coefficients, against lad-fixed
  animation       an animated GIF of lad-fixed and grpo over training (the main figure's runs)
  baselines       the paper's other baselines beside lad-fixed and grpo (bandit_study/baselines.py)

GRPO with pi_old frozen at pi_0 keeps its clip (grpo means one thing in every chapter: the clipped
surrogate, clip_eps 0.2). On-policy the ratio is 1 when the gradient is taken and the clip never
acts; against a frozen pi_0 it does: a sample whose ratio pi / pi_0 is past 1 +- 0.2 in the
direction its advantage pushes gets no gradient, so the trust region is a fixed box around pi_0.
"""
from dataclasses import replace

ABLATIONS = ("divergences", "eta", "pi-old", "entropy-bonus", "animation", "baselines")
DIVERGENCE_ORDER = ("kl", "rkl", "jf", "tv", "hd", "js")


def entropy_bonus_coefs(eta: float, std_at_target: float) -> list[float]:
    """The entropy-bonus ablation's coefficients: a log grid, and the one that makes GRPO's optimum
    LAD's target. Maximising E_pi[A_hat] + c H(pi), A_hat = (A - mean) / std, has the optimum
    pi ~ exp(A_hat / c) = exp(A / (c std)): the target pi_0 exp(A/eta) / Z (pi_0 is uniform here)
    when c = eta / std, with std taken under the target, where the policy ends."""
    return sorted([0, 0.1, 0.3, 1, 3, round(eta / std_at_target, 2)])


def ablation_runs(name: str, settings, std_at_target: float) -> list[tuple]:
    """The runs of ablation `name`: (key, method, settings) with settings =
    dataclasses.replace(settings, ...). std_at_target: the std of A under pi*
    (bandit_study.task.std_at_target), from which the entropy bonus takes its coefficient."""
    s = settings
    if name == "animation":
        return [("lad-fixed", "lad-fixed", s), ("grpo", "grpo", s)]
    if name == "baselines":  # FlowRL as published, then on the raw A that LAD sees
        return [("lad-fixed", "lad-fixed", s), ("grpo", "grpo", s), ("flowrl", "flowrl", s),
                ("flowrl, raw A", "flowrl", replace(s, flowrl_reward="raw"))] + [
            (method, method, s) for method in ("entadv", "clip-cov", "kl-cov")]
    if name == "divergences":  # each divergence with Z = 1, then with centred advantages
        return [(d + (", centred A" if centre else ""), "lad-fixed",
                 replace(s, divergence=d, centre_advantages=centre))
                for centre in (False, True) for d in DIVERGENCE_ORDER]
    if name == "eta":
        return [(f"1/eta={k:g}", "lad-fixed", replace(s, eta=1 / k)) for k in [0.5, 1, 2, 4, 8, 16]]
    if name == "pi-old":
        return [("lad-fixed", "lad-fixed", s), ("lad", "lad", s),
                ("grpo", "grpo", replace(s, grpo_pi_old="refresh")),
                ("grpo, pi_old fixed", "grpo", replace(s, grpo_pi_old="fixed"))]
    if name == "entropy-bonus":  # the coefficient 0 is plain GRPO
        return [("lad-fixed", "lad-fixed", s)] + [
            ("grpo" if c == 0 else f"grpo, entropy_coef={c:g}", "grpo", replace(s, entropy_coef=c))
            for c in entropy_bonus_coefs(s.eta, std_at_target)]
    raise ValueError(f"ablation must be one of {ABLATIONS}, got {name!r}")
