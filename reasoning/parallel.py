"""The GPT chapter's worker pool: independent runs (one SFT start per seed, one RL run per seed and
method) side by side in processes.

    run_jobs(function, jobs, workers, threads, device)   function(*job) for every job, in job order

Each run has its own random streams (reasoning/rollout.RandomStreams), so its numbers do not depend
on how many run beside it, or in which process.
"""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import torch


def run_jobs(function, jobs: list, workers: int, threads: int = 1, device: str = "cpu") -> list:
    """function(*job) for every job, results in the order of `jobs`. With workers > 1, in that many
    processes, each on `threads` torch threads: the runs are independent, so this is the parallelism
    that scales on a small CPU (one process per core, none waiting for another). On a GPU, one
    process runs them all, one after the other."""
    if workers == 1 or len(jobs) == 1 or device != "cpu":
        return [function(*job) for job in jobs]
    context = multiprocessing.get_context("fork")  # the children inherit the task object as it is
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context,
                             initializer=torch.set_num_threads, initargs=(threads,)) as pool:
        return list(pool.map(function, *zip(*jobs)))  # map returns in submission order
