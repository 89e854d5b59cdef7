"""Tests of the small GPT: causality, log-probabilities, sampling, checkpoints."""
import pytest
import torch

from tiny_lm import GPT, GPTConfig

END = 12  # any token id can serve as the end marker in these tests


def make_model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=13, block_size=12, n_layer=2, n_head=2, n_embd=32))
    # A freshly initialised GPT is almost uniform, which would hide an off-by-one in the log-probs.
    # Scaling the (tied) embeddings gives it clear but still random preferences.
    with torch.no_grad():
        model.wte.weight.mul_(4)
    return model


def test_changing_a_later_token_leaves_earlier_logits_unchanged():
    model = make_model()
    idx = torch.randint(0, 13, (3, 10), generator=torch.Generator().manual_seed(1))
    t = 6
    changed = idx.clone()
    changed[:, t] = (idx[:, t] + 5) % 13
    before, after = model(idx), model(changed)
    assert torch.allclose(before[:, :t], after[:, :t], atol=1e-6)
    # ...and the model does read the token: positions from t on see the change.
    assert not torch.allclose(before[:, t:], after[:, t:], atol=1e-3)


def test_completion_logprobs_follow_the_chain_rule():
    ("""Sum of per-token log-probs = log p(y|x) built one prefix at a time; the prompt is not
    scored.""")
    model = make_model()
    gen = torch.Generator().manual_seed(2)
    prompts = torch.randint(0, 12, (4, 3), generator=gen)
    completions = torch.randint(0, 12, (4, 5), generator=gen)
    logp = model.completion_logprobs(prompts, completions)
    assert logp.shape == (4, 5)
    for b in range(4):
        expected = 0.0
        for j in range(5):
            prefix = torch.cat([prompts[b], completions[b, :j]]).unsqueeze(0)
            expected += torch.log_softmax(model(prefix)[0, -1], -1)[completions[b, j]]
        assert torch.allclose(logp[b].sum(), expected, atol=1e-4)


def test_mask_zeroes_padding_and_padding_does_not_leak_into_real_tokens():
    model = make_model()
    gen = torch.Generator().manual_seed(3)
    prompts = torch.randint(0, 12, (2, 3), generator=gen)
    completions = torch.randint(0, 12, (2, 6), generator=gen)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    logp = model.completion_logprobs(prompts, completions, mask)
    assert (logp[~mask] == 0).all() and (logp[mask] != 0).all()
    other_padding = torch.where(mask, completions, (completions + 3) % 12)
    assert torch.allclose(logp, model.completion_logprobs(prompts, other_padding, mask), atol=1e-6)


def test_sampled_logprobs_equal_recomputed_logprobs_and_groups_are_consecutive():
    model = make_model()
    prompts = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    G = 5
    tokens, logp, mask = model.sample(prompts, max_new_tokens=6, end_token=END, num_samples=G,
                                      generator=torch.Generator().manual_seed(0))
    assert tokens.shape == logp.shape == mask.shape == (3 * G, 6)
    # Recompute with row i belonging to prompt i // G: a wrong group layout would not match.
    recomputed = model.completion_logprobs(prompts.repeat_interleave(G, 0), tokens, mask)
    assert torch.allclose(logp, recomputed, atol=1e-5)
    assert (logp[~mask] == 0).all()


def test_sampling_stops_at_the_end_marker_and_pads_after_it():
    model = make_model()
    with torch.no_grad():  # make the end marker likely, so that most rows end early
        model.lm_head.weight[END] += 0.3 * model.lm_head.weight[END].sign()
    tokens, _, mask = model.sample(torch.zeros(8, 2, dtype=torch.long), 6, END, num_samples=4,
                                   generator=torch.Generator().manual_seed(0))
    ended_early = 0
    for row, m in zip(tokens.tolist(), mask.tolist()):
        if END in row:
            stop = row.index(END)
            assert all(m[: stop + 1]) and not any(m[stop + 1 :])  # the end marker itself counts
            assert all(t == END for t in row[stop:])
            ended_early += stop < 5
        else:
            assert all(m)  # cut off at max_new_tokens: every token counts
    assert ended_early > 0


def test_sampling_is_reproducible_with_a_seeded_generator():
    model = make_model()
    prompts = torch.tensor([[1, 2, 3], [4, 5, 6]])

    def draw(seed):
        return model.sample(prompts, 6, END, num_samples=8,
                            generator=torch.Generator().manual_seed(seed))[0]

    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))


def test_sample_returns_the_log_probabilities_of_the_tokens_it_drew():
    """They are log pi_old of the batch: the loop never runs a second forward pass to get them."""
    model = make_model()
    prompts = torch.tensor([[1, 2, 3]])
    tokens, logp, mask = model.sample(prompts, 4, END, num_samples=6,
                                      generator=torch.Generator().manual_seed(0))
    assert torch.allclose(logp, model.completion_logprobs(prompts.repeat(6, 1), tokens, mask),
                          atol=1e-5)


def test_save_and_load_restore_config_and_weights(tmp_path):
    model = make_model(seed=3)
    path = model.save(tmp_path / "ckpt" / "model.pt")
    loaded = GPT.load(path)
    assert loaded.config == model.config
    idx = torch.randint(0, 13, (2, 9))
    assert torch.equal(model(idx), loaded(idx))
    assert loaded.lm_head.weight is loaded.wte.weight  # the head is still tied after loading


def test_too_long_input_is_refused():
    model = make_model()
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 13, dtype=torch.long))


def test_completion_entropy_is_the_full_vocabulary_entropy_at_each_completion_position():
    """From the same forward pass as the log-probs: the entropy of the distribution that predicts
    each completion token (not the one after it), 0 on padding."""
    model = make_model()
    prompts, completions = torch.tensor([[1, 2, 3], [3, 2, 1]]), torch.tensor([[4, 5, 0], [6, 0,
                                                                                           0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    logp, entropy = model.completion_logprobs(prompts, completions, mask, entropy=True)
    assert torch.equal(logp, model.completion_logprobs(prompts, completions, mask))
    logits = model(torch.cat([prompts, completions], 1))[:, 2:-1]
    p = torch.softmax(logits, -1)
    want = -(p * p.log()).sum(-1).masked_fill(~mask, 0.0)
    assert torch.allclose(entropy, want, atol=1e-5)
    assert entropy[1, 2] == 0.0 and (entropy[mask] > 0).all()
