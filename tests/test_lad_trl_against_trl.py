"""The tutorial's losses against TRL 1.16's own code (the installed package, called, not copied):
on a batch that TRL's GRPOTrainer samples and scores itself, grpo_loss is TRL's GRPO loss, with and
without its KL term, and LADTrainer's loss is lad_loss; and on an enumerable case, the direction
that TRL's k3 penalty pulls in, with and without its default use_bias_correction_kl=True.

Skipped only where TRL is not installed (`pip install -r requirements-trl.txt`); CI installs it.
"""
import pytest

import trl_or_skip  # noqa: F401  (skips this module where TRL is not installed)

import torch
from trl import GRPOConfig, GRPOTrainer

import lad_trl
from grpo_loss import grpo_loss, reduce_loss
from kl_penalty import GRADIENT_FOLLOWS, k3_penalty
from lad_loss import lad_loss
from reasoning.arithmetic import SumTask
from test_lad_trl import TEMPERATURE, cpu_config, reference_logp, with_counts
from trl_demo.model import char_tokenizer, tiny_model
from trl_demo.task import TINY_PROMPT, sum_dataset

TASK = SumTask()
BETA = 0.04  # TRL's weight of the KL penalty (grpo_loss's kl_coef)
CLIP_EPS = 0.2  # TRL's default epsilon, grpo_loss's default clip_eps
# Two-digit prompts only: one prompt length, so no left padding (reference_logp assumes none).
PROMPTS = [37, 52, 64, 81]


def varied_reward(completion_ids, **kwargs):
    """A reward that varies within each group (an untrained model never writes a correct sum, and
    all-equal rewards would make every advantage 0)."""
    return [float(sum(ids) % 5) for ids in completion_ids]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """The tiny model in a folder: TRL builds its reference model from the policy's path."""
    path = tmp_path_factory.mktemp("tiny")
    tokenizer = char_tokenizer(TASK)
    tiny_model(len(tokenizer), tokenizer.eos_token_id, seed=0).save_pretrained(path)
    return str(path)


def trl_trainer(path, tmp_path, config_class=GRPOConfig, trainer_class=GRPOTrainer, **settings):
    settings = {"per_device_train_batch_size": 16, "num_generations": 4, "beta": BETA,
                "temperature": TEMPERATURE, "max_completion_length": TASK.MAX_COMPLETION,
                **settings}
    return trainer_class(
        model=path, reward_funcs=varied_reward,
        args=cpu_config(tmp_path, config_class, **settings),
        train_dataset=sum_dataset(TASK.train_n, TINY_PROMPT),
        processing_class=char_tokenizer(TASK),
    )


@pytest.fixture(scope="module")
def sampled_batch(saved_model, tmp_path_factory):
    """A generation batch as TRL builds it: its sampling, rewards, group advantages, log pi_old
    (num_iterations=2 keeps them) and log pi_ref from its reference model (moved away from the
    policy first, as after training); then the policy's weights move, as after an optimiser step,
    so that the ratios leave 1 and some leave the clip range."""
    trainer = trl_trainer(saved_model, tmp_path_factory.mktemp("sample"), num_iterations=2)
    generator = torch.Generator().manual_seed(0)

    def move(model):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=generator))

    move(trainer.ref_model)
    trainer.model.train()
    batch = trainer._generate_and_score_completions(
        [{"prompt": f"{n}=", "n": n} for n in PROMPTS for _ in range(4)])
    move(trainer.model)
    return with_counts(batch), trainer.model.state_dict()


def trained_on(trainer, state):
    """The trainer's model, at the batch's moved weights, in eval mode: one batch, nothing
    accumulated."""
    trainer.model.load_state_dict(state)
    trainer.model.zero_grad()
    return trainer.model.eval()


def loss_and_gradient(loss, model):
    loss.backward()
    grad = torch.cat([p.grad.flatten() for p in model.parameters()])
    model.zero_grad()
    return loss.detach(), grad


def test_the_sampled_batch_can_tell_the_terms_apart(sampled_batch, saved_model, tmp_path):
    """Without this, the equalities below could hold by accident: some completions end early
    (padding to mask), the advantages are not all 0, some ratios leave the clip range, and
    pi_ref differs from pi_old."""
    batch, state = sampled_batch
    model = trained_on(trl_trainer(saved_model, tmp_path), state)
    mask = batch["completion_mask"].bool()
    assert not mask.all() and mask.any(-1).all()
    assert (batch["advantages"] != 0).any()
    with torch.no_grad():
        ratio = torch.exp(reference_logp(model, batch) - batch["old_per_token_logps"])[mask]
    assert ((ratio < 1 - CLIP_EPS) | (ratio > 1 + CLIP_EPS)).any()
    assert not torch.allclose(batch["ref_per_token_logps"], batch["old_per_token_logps"])


def ours(model, batch, kl_coef, ratio_times_k3):
    """grpo_loss on TRL's batch, with log pi_theta from the model's plain forward pass, plus the
    anchor its caller adds: kl_coef times per-token k3, or with ratio_times_k3 k3 weighted by
    pi_theta / pi_old, TRL's default."""
    logp = reference_logp(model, batch)
    mask = batch["completion_mask"].bool()
    old, ref = batch["old_per_token_logps"], batch["ref_per_token_logps"]
    # the caller adds the anchor (grpo_loss.py): per-token k3, or TRL's ratio * k3
    weight = torch.exp(logp - old) if ratio_times_k3 else torch.ones_like(logp)
    return (grpo_loss(logp, old, batch["advantages"], CLIP_EPS, mask)
            + kl_coef * reduce_loss(weight * k3_penalty(logp, ref), mask, "mean"))


@pytest.mark.parametrize("beta,bias_correction,ratio_times_k3", [
    (0.0, True, False),  # no KL term: the setting is inert
    (BETA, False, False),  # per-token k3, as grpo_loss (and verl) apply it
    (BETA, True, True),  # TRL's default: k3 weighted by the ratio pi_theta / pi_old
], ids=["no-kl", "k3", "ratio-k3"])
def test_grpo_loss_is_trls_own_grpo_loss_on_the_same_batch(sampled_batch, saved_model, tmp_path,
                                                           beta, bias_correction, ratio_times_k3):
    """TRL's loss_type="dapo" (its default, a mean over the batch's tokens) against grpo_loss's
    "mean": the same loss and gradient. Catches a flipped sign or a clip on the wrong side in
    grpo_loss, logp_old and logp_ref swapped, a mask left out, and a KL term of the wrong form;
    with use_bias_correction_kl=True TRL adds the ratio as a factor of k3, and the last case
    checks that this is the only difference."""
    batch, state = sampled_batch
    trainer = trl_trainer(saved_model, tmp_path, beta=beta,
                          use_bias_correction_kl=bias_correction)
    model = trained_on(trainer, state)
    theirs = loss_and_gradient(trainer.compute_loss(model, batch), model)
    expected = loss_and_gradient(ours(model, batch, beta, ratio_times_k3), model)
    torch.testing.assert_close(theirs[0], expected[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(theirs[1], expected[1], rtol=1e-4, atol=1e-6)
    if beta > 0:  # the two KL forms give different gradients on this batch
        other = loss_and_gradient(ours(model, batch, beta, not ratio_times_k3), model)
        assert not torch.allclose(theirs[1], other[1], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("lad_ratio", ["token", "sequence"])
def test_lad_trainer_is_lad_loss_on_the_batch_trl_sampled(sampled_batch, saved_model, tmp_path,
                                                          lad_ratio):
    """LADTrainer's loss and gradient on TRL's own batch (its sampling, advantages and log pi_old)
    equal lad_loss's mean over the batch's tokens (token ratio) or completions (sequence ratio).
    Catches what test_lad_trl.py's hand-made batch might not: a key TRL names otherwise, advantages
    of another shape, logp_old TRL computes at another temperature."""
    batch, state = sampled_batch
    trainer = trl_trainer(saved_model, tmp_path, lad_trl.LADConfig, lad_trl.LADTrainer, beta=0.0,
                          lad_ratio=lad_ratio)
    model = trained_on(trainer, state)
    theirs = loss_and_gradient(trainer.compute_loss(model, batch), model)
    logp, old = reference_logp(model, batch), batch["old_per_token_logps"]
    mask = batch["completion_mask"].bool()
    if lad_ratio == "sequence":  # Lemma 3.2's ratio: a completion's summed token log-ratios
        logp, old, mask = (logp * mask).sum(-1), (old * mask).sum(-1), None
    expected = loss_and_gradient(lad_loss(logp, old, batch["advantages"], 0.25, "js", mask=mask),
                                 model)
    torch.testing.assert_close(theirs[0], expected[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(theirs[1], expected[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("bias_correction,follows", [(True, "KL(pi || pi_ref)"),
                                                     (False, GRADIENT_FOLLOWS["k3"])])
def test_which_kl_trls_k3_penalty_follows(saved_model, tmp_path, bias_correction, follows):
    """The expected gradient of TRL's KL term, over completions sampled from pi: one token after
    the prompt "37=", every token of the vocabulary in turn, TRL's loss on each (advantage 0, so
    only the KL term has a gradient), weighted by its probability pi(y). With TRL's default
    use_bias_correction_kl=True (k3 times pi_theta/pi_old, both pi on-policy) it is beta times the
    gradient of KL(pi || pi_ref), whose optimum beside E[A] is pi_ref exp(A/beta)/Z; without the
    ratio (grpo_loss, verl) that of KL(pi_ref || pi). kl_penalty.py derives both."""
    trainer = trl_trainer(saved_model, tmp_path, use_bias_correction_kl=bias_correction)
    model = trainer.model.eval()
    prompt = TASK.prompts([37])
    vocabulary = model.config.vocab_size
    generator = torch.Generator().manual_seed(1)
    logp_ref = torch.log_softmax(torch.randn(vocabulary, generator=generator), -1)  # any pi_ref
    with torch.no_grad():
        logp = torch.log_softmax(model(prompt).logits[0, -1] / TEMPERATURE, -1)  # log pi(y | 37=)

    expected_gradient = torch.zeros_like(torch.nn.utils.parameters_to_vector(model.parameters()))
    for y in range(vocabulary):
        one = {"prompt_ids": prompt, "prompt_mask": torch.ones_like(prompt),
               "completion_ids": torch.tensor([[y]]), "completion_mask": torch.ones(1, 1).long(),
               "advantages": torch.zeros(1), "ref_per_token_logps": logp_ref[y].view(1, 1),
               "num_items_in_batch": torch.tensor(1)}  # on-policy: TRL's pi_old is pi_theta
        _, grad = loss_and_gradient(trainer.compute_loss(model, one), model)
        expected_gradient += logp[y].exp() * grad

    kls = {"KL(pi || pi_ref)": lambda logp: (logp.exp() * (logp - logp_ref)).sum(),
           "KL(pi_ref || pi)": lambda logp: (logp_ref.exp() * (logp_ref - logp)).sum()}
    grads = {}
    for name, kl in kls.items():
        logp = torch.log_softmax(model(prompt).logits[0, -1] / TEMPERATURE, -1)
        grads[name] = loss_and_gradient(BETA * kl(logp), model)[1]
    torch.testing.assert_close(expected_gradient, grads[follows], rtol=1e-4, atol=1e-7)
    other = next(name for name in grads if name != follows)
    assert not torch.allclose(expected_gradient, grads[other], rtol=1e-2, atol=1e-6)

