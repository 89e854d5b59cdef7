"""What one optimiser step of each bandit run costs, measured with the runs taking turns.

bandit.py writes each run's step time over another run's into its metrics file (`step/ref` in
its table), whenever it writes a metrics file; `--timing-rounds 0` leaves it out.

    step_time_side_by_side(learners, rounds)   seconds per step of each learner, {key: seconds}

Why side by side: the seconds each run took one after the other move with whatever else the machine
is doing; with the runs taking turns, one step each, a busy machine slows them alike, and the ratio
of two runs' step times stays put. Each run's time is the 10th percentile of its `rounds` steps: the
cost of a step that nothing else interrupted (the median moves with the load).

In the bandit a step is a loss on 64 numbers, where every elementwise operation costs a few
microseconds of overhead and almost no arithmetic: the ratios count operations. In a model, where
the forward and backward passes dominate, LAD's step and GRPO's cost about the same (the GPT chapter
measures its own).
"""
import time

STATISTIC = "10th percentile"


def step_time_side_by_side(learners: dict, rounds: int) -> dict:
    """learners: run key -> an object whose .step() takes one optimiser step (fresh ones: the
    training runs are left untouched). Returns run key -> seconds per step."""
    seconds = {key: [] for key in learners}
    for _ in range(rounds):
        for key, learner in learners.items():
            start = time.perf_counter()
            learner.step()
            seconds[key].append(time.perf_counter() - start)
    return {key: sorted(s)[len(s) // 10] for key, s in seconds.items()}
