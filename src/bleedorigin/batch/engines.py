"""Where the videos of a batch run: thin adapters over existing engines, one job function.

- local: one single-process `concurrent.futures.ProcessPoolExecutor` per worker (spawned, each with
  its share of the cores). A worker that dies breaks only its own executor: its video is counted
  one attempt and a fresh executor takes it up again while attempts remain.
- ray: one Ray task per video with its CPU/GPU resources; Ray retries tasks whose worker died
  (`max_retries`) and unexpected errors (`retry_exceptions`). Results go to the batch folder, which
  must be on a file system every node sees.

Both yield one `Outcome` per video as it ends; bad input never reaches a retry (job.run_job).
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import signal
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from bleedorigin.batch.job import Job, Outcome, run_job
from bleedorigin.errors import InputError
from bleedorigin.utils.threads import available_cores, set_threads

log = logging.getLogger(__name__)

JobFn = Callable[[Job], Outcome]


def _init_worker(threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an idle worker leaves Ctrl-C to the batch
    set_threads(threads)


def _interruptible(job_fn: JobFn, job: Job) -> Outcome:
    """Ctrl-C stops the video being worked on (its folder says "complete": false)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return job_fn(job)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _lost(job: Job, error: str, attempts: int) -> Outcome:
    return Outcome(job.name, job.video, "failed", error=f"{error} (after {attempts} attempt(s))",
                   attempts=attempts)


class LocalEngine:
    """`workers` processes on this machine, each with `threads` compute threads for torch, OpenCV
    and decoding (default: the cores shared out evenly)."""

    def __init__(self, workers: int = 1, threads: int | None = None, job_fn: JobFn = run_job):
        if workers < 1:
            raise InputError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self.threads = threads or max(1, available_cores() // workers)
        self.job_fn = job_fn

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                   initargs=(self.threads,))

    def run(self, jobs: list[Job], retries: int) -> Iterator[Outcome]:
        pending = deque(jobs)
        attempts = {job.name: 0 for job in jobs}
        # one single-process pool per worker: a worker that dies breaks only its own pool, so
        # the video it was running is the only one charged an attempt
        slots = [self._pool() for _ in range(min(self.workers, len(jobs)))]
        running: dict[Future, tuple[int, Job]] = {}
        try:
            while pending or running:
                busy = {slot for slot, _ in running.values()}
                for slot in range(len(slots)):
                    if pending and slot not in busy:
                        job = pending.popleft()
                        attempts[job.name] += 1
                        running[slots[slot].submit(_interruptible, self.job_fn, job)] = (slot, job)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    slot, job = running.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        error = "worker process died"
                        slots[slot].shutdown(wait=False)
                        slots[slot] = self._pool()
                    except Exception as e:  # noqa: BLE001 - unexpected in the job: may pass on a retry
                        error = f"{type(e).__name__}: {e}"
                    else:
                        outcome.attempts = attempts[job.name]
                        yield outcome
                        continue
                    if attempts[job.name] <= retries:
                        log.warning("%s: %s; retrying", job.name, error)
                        pending.appendleft(job)
                    else:
                        yield _lost(job, error, attempts[job.name])
        except BaseException:
            for pool in slots:  # Ctrl-C: the workers end their video or stop
                pool.shutdown(wait=True, cancel_futures=True)
            raise
        for pool in slots:
            pool.shutdown(wait=True)


def _ray_task(job_fn: JobFn, job: Job, threads: int) -> Outcome:
    set_threads(threads)
    return job_fn(job)


class RayEngine:
    """One Ray task per video on the cluster at `address` (None: a running local instance or a
    new one)."""

    def __init__(self, address: str | None = None, cpus_per_task: float = 1.0,
                 gpus_per_task: float = 0.0, job_fn: JobFn = run_job):
        try:
            import ray  # optional extra: bleedorigin[cluster]
        except ImportError:
            raise InputError("--engine ray needs Ray: pip install 'bleedorigin[cluster]'") from None
        self.ray = ray
        self.address = address
        self.cpus, self.gpus = cpus_per_task, gpus_per_task
        self.job_fn = job_fn

    def run(self, jobs: list[Job], retries: int) -> Iterator[Outcome]:
        ray = self.ray
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING)
        task = ray.remote(_ray_task).options(num_cpus=self.cpus, num_gpus=self.gpus,
                                             max_retries=retries, retry_exceptions=True)
        threads = max(1, int(self.cpus))
        refs = {task.remote(self.job_fn, job, threads): job for job in jobs}
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    job = refs.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayError as e:  # retries used up: a dead worker or an error
                        yield _lost(job, _first_line(e), retries + 1)
                    else:
                        yield outcome
        except BaseException:
            for ref in refs:
                ray.cancel(ref)
            raise
        finally:
            if started:
                ray.shutdown()


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"
