"""The demo of lad_trl.py: LAD and TRL's GRPO on the arithmetic task, offline, with a tiny model.

lad_trl.py holds the trainer (LADConfig, LADTrainer: what a real TRL run needs). The command line,
`python -m trl_demo`, is __main__.py: its Settings, build_trainer and `main` compose the pieces
below, and only it imports lad_trl.py.

    __main__.py                            the command line (python -m trl_demo --help)
               Settings                    every option, its default, bounds and help
               build_trainer(...)          LADConfig and LADTrainer for one method and seed
               main(argv)                  each seed's start, each method from it, the metrics

    model.py   the policy a run starts from
               char_tokenizer(task)        SumTask's characters as a Hugging Face tokenizer
               tiny_model(...)             a 2-layer Qwen2-style model with random weights
               tiny_sft_model(...)         pi_sft: the tiny model after reasoning.sft.sft_warm_start
               hub_tokenizer(name)         a hub model's own tokenizer
    task.py    what TRL trains on
               TINY_PROMPT, HUB_PROMPT     the prompt of N, for the tiny model and for a hub model
               sum_dataset(ns, prompt)     one row per prompt, with the column `n`
               verifier_reward(task, tok)  1.0 when SumTask's verifier accepts the answer, else 0.0
    runs.py    what a run measures and the metrics file holds
               heldout_reward(trainer, k)  the verifier's mean on the held-out prompts, and its SE
               train_and_evaluate(...)     held-out reward, training, held-out reward again
               summarise_seeds(runs, ms)   per method, mean and sample std over seeds
               machine()                   the library versions and CPU kernels behind the numbers
"""
