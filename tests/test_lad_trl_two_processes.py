"""LAD in TRL on two real processes: the gradient of one generation batch split over two processes
(torch.distributed, gloo, on this machine's CPU) is the gradient of the whole batch on one.

test_lad_trl.py simulates the processes in one (Accelerator.num_processes patched, the gradients
averaged by hand). Here two processes are started with torch.multiprocessing, each builds its own
LADTrainer, accelerate wraps the model in DistributedDataParallel, and Trainer.training_step runs as
in training: LADTrainer's count of completions is gathered over the processes, and the backward
pass all-reduces the gradients. Each process is handed its half of test_lad_trl.fixed_batch (the
rows TRL would give it: 15 tokens and 3 completions in the first half, 9 tokens and 2 completions in
the second, whose middle completion is masked out entirely), as TRL's sampling would hand it.

Skipped only where TRL is not installed (`pip install -r requirements-trl.txt`); CI installs it.
"""
import os
import signal
import socket
import subprocess
import sys

import pytest

import trl_or_skip  # noqa: F401  (skips this module where TRL is not installed)

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel
from trl import GRPOTrainer
from trl.trainer.utils import split_tensor_dict

import lad_trl
from test_lad_trl import expected_lad_loss, fixed_batch, gradient, make_trainer, reference_logp

PROCESSES = 2
COUNTS = ("num_items_in_batch", "num_completions_in_batch")  # fixed_batch's, for one process
DEADLINE_S = 300  # a process stuck in a collective would otherwise hang the suite (alone: ~10 s)


def free_port() -> int:
    """A port nobody listens on, on 127.0.0.1 only: the system's pick for port 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sampled_batch(processes: int, rank: int):
    """GRPOTrainer._generate_and_score_completions of one process, without the sampling: its
    share of fixed_batch, in order, and TRL's own count of the tokens that count, gathered over
    all processes. LADTrainer adds the completions' count itself."""
    def generate_and_score(trainer, inputs):
        shard = split_tensor_dict(fixed_batch(), processes)[rank]
        shard = {k: v for k, v in shard.items() if k not in COUNTS}
        tokens = lad_trl.loss_mask(shard).sum()
        return dict(shard, num_items_in_batch=trainer.accelerator.gather(tokens).sum())
    return generate_and_score


def training_step_gradient(trainer, processes: int, rank: int):
    """One Trainer.training_step on this process's share of the batch, as in training (the model
    prepared by accelerate: DistributedDataParallel when there are several processes)."""
    GRPOTrainer._generate_and_score_completions = sampled_batch(processes, rank)
    model = trainer.accelerator.prepare_model(trainer.model)
    trainer.current_gradient_accumulation_steps = 1  # as the training loop sets it
    model.zero_grad()
    trainer.training_step(model, None, num_items_in_batch=None)
    return gradient(model), model


def worker(rank: int, port: int, folder: str):
    """One of the two processes: its gradient at each ratio level, after DDP's all-reduce."""
    torch.set_num_threads(1)
    # what `accelerate launch --cpu --num_processes 2` tells each process
    os.environ.update(ACCELERATE_USE_CPU="true", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(PROCESSES),
                      LOCAL_WORLD_SIZE=str(PROCESSES))
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=PROCESSES)
    for lad_ratio in lad_trl.LAD_RATIOS:
        trainer = make_trainer(os.path.join(folder, f"{lad_ratio}-{rank}"), lad_ratio=lad_ratio,
                               per_device_train_batch_size=6 // PROCESSES)
        grad, model = training_step_gradient(trainer, PROCESSES, rank)
        assert trainer.accelerator.num_processes == PROCESSES and dist.get_backend() == "gloo"
        assert isinstance(model, DistributedDataParallel)
        torch.save(grad, os.path.join(folder, f"{lad_ratio}-rank{rank}.pt"))
    dist.destroy_process_group()


def test_two_real_processes_give_the_one_process_gradient_of_the_batch(tmp_path, monkeypatch):
    """At the token and the sequence level, the gradient after DDP's all-reduce, on each process,
    is the one-process gradient of the whole generation batch, which is the gradient of lad_loss's
    mean over it (to float32 rounding). Catches a normaliser that forgets the processes (DDP
    averages, so each process must divide by count / processes: the gradient would be halved), a
    count of tokens or completions taken on one process instead of gathered (a mean per process:
    the halves hold 15 and 9 tokens, 3 and 2 completions), and a fully masked completion
    counted."""
    # The two processes are started from a fresh interpreter, not from this one: after other tests
    # have run in the same pytest process, its state (threads, forked pools) could stall gloo.
    code = (f"import sys; sys.path[:0] = {sys.path!r}; import {__name__} as t; "
            f"t.mp.spawn(t.worker, args=(t.free_port(), {str(tmp_path)!r}), nprocs=t.PROCESSES)")
    launcher = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = launcher.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)  # the launcher and both processes it started
        pytest.fail(f"the two processes did not finish in {DEADLINE_S} s")
    assert launcher.returncode == 0, f"the two processes failed:\n{output[-4000:]}"

    for lad_ratio in lad_trl.LAD_RATIOS:
        trainer = make_trainer(tmp_path / lad_ratio, lad_ratio=lad_ratio)
        monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", sampled_batch(1, 0))
        one_process, model = training_step_gradient(trainer, 1, 0)
        model.zero_grad()
        batch = fixed_batch()
        expected_lad_loss(reference_logp(model, batch), batch, lad_ratio).backward()
        torch.testing.assert_close(one_process, gradient(model), rtol=1e-5, atol=1e-7,
                                   msg=f"{lad_ratio} ratio, one process against lad_loss")
        for rank in range(PROCESSES):
            two_processes = torch.load(tmp_path / f"{lad_ratio}-rank{rank}.pt")
            torch.testing.assert_close(two_processes, one_process, rtol=1e-5, atol=1e-7,
                                       msg=f"{lad_ratio} ratio, process {rank} of {PROCESSES}")
