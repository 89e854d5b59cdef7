"""The bandit's ablations: which runs each one compares, and why (`python bandit.py --ablation NAME`).

bandit.py trains and draws; this file only says what an ablation runs, as (key, method, settings)
triples whose settings differ from the command line's in the one thing the ablation varies. Each
ablation writes plots/ablation_NAME.png and .json in under a minute.

  divergences     LAD with each of the six f-divergences, with Z = 1 and with centred advantages
  eta             1/eta from 0.5 to 16: the target sharpens; does LAD follow?
  pi-old          pi_old fixed vs refreshed, for LAD and for GRPO
  entropy-bonus   GRPO + beta * entropy for several beta, against LAD
  animation       an animated GIF of both policies over training (the main comparison's runs)
  baselines       the paper's other baselines beside LAD and GRPO

The baselines run against the same pi*, with GRPO's sampling (on-policy, group-normalised
advantages) and the same steps, lr, group and seed. A response is one arm here, so a "token" is an
arm and its entropy is the entropy of the whole softmax.
  * FlowRL (flowrl_loss.py): reference pi_0, log Z one learned scalar trained with the logits. With
    its reward normalised over the group, as published, its target pi_0 exp(beta r_hat) / Z has the
    temperature std / beta, std being the spread of A in the group. Near pi* that spread is
    std_{pi*}(A) = 0.193, so beta = std_{pi*}(A) / eta = 0.77 makes pi* its fixed point in the
    large-group limit (the same std as the entropy bonus's beta = eta / std). A group of 64 is not that
    limit: an arm far from the mean inflates the std of the very group it is drawn in, so its r_hat is
    pulled towards 0 and FlowRL's fixed point is flatter than pi*. So FlowRL runs a second time on the
    raw A that LAD sees, with beta = 1/eta: then its optimum is exactly pi*.
  * EntAdv (entadv_loss.py): alpha = 0.4, kappa = 2, as published.
  * Clip-Cov, KL-Cov (cov_loss.py): the authors' shares, band and coefficient; their rounding keeps
    one sample of the 64 per step. With one update per step KL-Cov's penalty has zero gradient.
"""
from dataclasses import replace

ABLATIONS = ["divergences", "eta", "pi-old", "entropy-bonus", "animation", "baselines"]


def ablation_runs(name: str, args, std_at_target: float) -> list[tuple]:
    """The runs of ablation `name`: (key, method, settings) with settings = dataclasses.replace(args, ...).
    std_at_target: the std of A under pi* (bandit.std_at_target), from which the entropy bonus takes
    the beta that makes its optimum LAD's target."""
    if name == "animation":
        return [("lad", "lad", args), ("grpo", "grpo", args)]
    if name == "baselines":  # FlowRL as published, then on the raw A that LAD sees
        return [("lad", "lad", args), ("grpo", "grpo", args), ("flowrl", "flowrl", args),
                ("flowrl, raw A", "flowrl", replace(args, flowrl_reward="raw"))] + [
            (method, method, args) for method in ("entadv", "clip-cov", "kl-cov")]
    if name == "divergences":  # each divergence with Z = 1, then with centred advantages
        return [
            (d + (", centred A" if center else ""), "lad", replace(args, divergence=d, center_advantages=center))
            for center in (False, True) for d in ["kl", "rkl", "jf", "tv", "hd", "js"]
        ]
    if name == "eta":
        return [(f"1/eta={k:g}", "lad", replace(args, eta=1 / k)) for k in [0.5, 1, 2, 4, 8, 16]]
    if name == "pi-old":
        return [
            ("LAD fixed", "lad", replace(args, pi_old="fixed")),
            ("LAD refresh", "lad", replace(args, pi_old="refresh")),
            ("GRPO fixed", "grpo", replace(args, grpo_pi_old="fixed")),
            ("GRPO refresh", "grpo", replace(args, grpo_pi_old="refresh")),
        ]
    if name == "entropy-bonus":
        # Maximising E_pi[A_hat] + beta * H(pi), with A_hat = (A - mean) / std, has the optimum
        # pi ~ exp(A_hat / beta) = exp(A / (beta * std)): LAD's target (pi_0 is uniform here) when
        # beta = eta / std, with std taken under the target, where the policy ends. We run that value
        # among a log grid.
        betas = sorted([0, 0.1, 0.3, 1, 3, round(args.eta / std_at_target, 2)])
        return [("LAD", "lad", args)] + [
            (f"GRPO beta={beta:g}", "grpo", replace(args, grpo_entropy_coef=beta)) for beta in betas
        ]
    raise ValueError(f"ablation must be one of {ABLATIONS}, got {name!r}")
