"""Where the runs of a study execute: in this process, in worker processes, or on Ray.

A study is a list of tasks ``(Scenario, seed, method)``.  :func:`execute` hands them to an
:class:`Executor` and gives back one :class:`~inl_sim.study.experiment.RunResult` per
task, in task order, whichever executor ran them.  Three facts hold for every executor,
so a study's tables and files do not depend on where it ran:

- each run derives every random number from its own seed, so a run's numbers are the
  same bit for bit in any process (tests hold ``process`` and ``ray`` equal to ``local``);
- workers never write files: ``on_result(task, result)`` is called in the driver as each
  run finishes (completion order), and the driver writes the run folders there;
- an error raised in a worker arrives in the driver as the same exception type (a
  ``ScenarioError`` stays a ``ScenarioError``); the first error, or a KeyboardInterrupt,
  cancels the work still pending and stops the workers.

Ray is an optional dependency (``pip install 'inl-sim[ray]'``), imported only when the
``ray`` executor runs.  To add an executor: subclass :class:`Executor`, implement
``stream`` and register the class in :data:`EXECUTORS`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import closing, suppress
from multiprocessing import get_context
from typing import Any, Callable, ClassVar, Iterator, Sequence

from inl_sim.errors import ExecutorError
from inl_sim.scenario import Scenario
from inl_sim.study.experiment import RunResult, run

__all__ = ["Task", "Executor", "LocalExecutor", "ProcessExecutor", "RayExecutor", "EXECUTORS",
           "execute", "resolve_executor", "run_task"]

log = logging.getLogger(__name__)

MAX_JOBS = 1024  # worker processes or Ray CPUs of one study: more is a typo, not a machine

#: One run of a study: the (already overridden) scenario, the seed and the method label.
Task = tuple[Scenario, int, str]

RAY_HINT = "install it with: pip install 'inl-sim[ray]' (or pip install 'ray>=2.9')"


def run_task(task: Task) -> RunResult:
    """One run, writing nothing (the driver writes); top level so workers can unpickle it."""
    sc, seed, method = task
    return run(sc, seed, method=method, out_dir=None, progress=False, threads=1)


def _worker_init(driver_pid: int) -> None:
    """Worker process start: one torch thread, Ctrl-C is the driver's to handle, and the
    worker exits when the driver is gone (a SIGKILLed study leaves no orphan training)."""
    import torch
    torch.set_num_threads(1)  # tiny modules: one thread per worker beats oversubscription
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver cancels us; no worker tracebacks
    threading.Thread(target=_exit_with_driver, args=(driver_pid,), name="inl-sim-driver-watch", daemon=True).start()


def _exit_with_driver(driver_pid: int, period_s: float = 1.0) -> None:
    while os.getppid() == driver_pid:
        time.sleep(period_s)
    os._exit(1)


class Executor(ABC):
    """Runs tasks and streams ``(task index, result)`` pairs as runs finish.

    ``stream`` is a generator: closing it (or an exception escaping it) cancels the tasks
    still pending and releases the workers, so :func:`execute` can stop a study at the
    first error or at Ctrl-C without leaving processes behind.
    """

    name: ClassVar[str]

    def __init__(self, jobs: int | None = None, ray_address: str | None = None) -> None:
        self.jobs = jobs
        self.ray_address = ray_address

    @abstractmethod
    def stream(self, tasks: Sequence[Task]) -> Iterator[tuple[int, RunResult]]:
        """Yield ``(index, result)`` for every task, in completion order."""


class LocalExecutor(Executor):
    """Runs tasks one after the other in this process (the reference the others equal)."""

    name = "local"

    def stream(self, tasks: Sequence[Task]) -> Iterator[tuple[int, RunResult]]:
        for index, task in enumerate(tasks):
            yield index, run_task(task)


class ProcessExecutor(Executor):
    """Runs tasks in ``jobs`` spawned worker processes (default: one per CPU core).

    Spawned, not forked: a forked child would inherit torch's thread pools and locks.
    """

    name = "process"

    def stream(self, tasks: Sequence[Task]) -> Iterator[tuple[int, RunResult]]:
        workers = min(self.jobs or os.cpu_count() or 1, max(1, len(tasks)))
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                   initializer=_worker_init, initargs=(os.getpid(),))
        finished = False
        try:
            index_of: dict[Future, int] = {pool.submit(run_task, t): i for i, t in enumerate(tasks)}
            pending = set(index_of)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=index_of.__getitem__):
                    yield index_of[future], future.result()  # a worker's exception re-raises here
            finished = True
        finally:
            if finished:
                pool.shutdown(wait=True)
            else:
                _stop_pool(pool)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel queued tasks and end the running ones now (a run can take hours).

    Workers are terminated first, so the pool's manager thread sees them gone, fails what
    was pending and releases its queues; ``shutdown`` then returns at once.
    """
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor(Executor):
    """Runs each task as a Ray task (``num_cpus=1``, one torch thread).

    ``ray_address`` None: the ``RAY_ADDRESS`` variable, else a fresh local instance with
    ``jobs`` CPUs (all cores when None); ``"auto"`` (the cluster this machine belongs to),
    ``"host:6379"`` or ``"ray://host:10001"`` (Ray Client): an existing cluster.  The
    inl_sim package travels to the workers with the job (``py_modules``), so a cluster
    needs only the same Python dependencies and runs the driver's code.  A Ray instance
    that was running before is left running; one we started is shut down at the end.
    """

    name = "ray"

    def stream(self, tasks: Sequence[Task]) -> Iterator[tuple[int, RunResult]]:
        ray = _import_ray()
        started = self._connect(ray)
        refs: dict[Any, int] = {}
        finished = False
        try:
            remote = ray.remote(num_cpus=1, max_retries=0)(_ray_run_task)
            refs = {remote.remote(t): i for i, t in enumerate(tasks)}
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield refs[done[0]], _ray_get(ray, done[0])
            finished = True
        finally:
            if not finished and not started:
                _cancel_unfinished(ray, list(refs))
            if started:
                ray.shutdown()   # ends this driver's job, and with it every task it still has

    def _connect(self, ray: Any) -> bool:
        """Attach to Ray; True when this call started (or attached) and must shut down."""
        if ray.is_initialized():
            return False
        import inl_sim
        env = {"py_modules": [os.path.dirname(inl_sim.__file__)],
               "env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}}
        address = self.ray_address or os.environ.get("RAY_ADDRESS") or "local"
        kwargs: dict[str, Any] = {"address": address, "runtime_env": env, "log_to_driver": False,
                                  "configure_logging": False}
        if address == "local":
            kwargs.update(num_cpus=self.jobs, include_dashboard=False)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
        log.info("ray: connecting to %s", "a new local instance" if address == "local" else address)
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise ExecutorError(f"ray_address: {address!r} cannot be reached ({exc}); start a cluster with "
                                f"'ray start --head' and pass the address it prints (with RAY_AUTH_MODE=token "
                                f"if it uses token authentication), or omit --ray-address for a local "
                                f"instance") from exc
        return True


def _cancel_unfinished(ray: Any, refs: list) -> None:
    """Cancel the tasks whose results are not in yet, on an instance that stays up.

    Only those: cancelling a task while its result arrives trips a check inside Ray that
    ends the driver process with status 1 and no Python traceback ("Tried to complete task
    that was not pending", ray-project/ray#54846; seen here in 1 of 3 test runs when every
    task was cancelled).  A study that started Ray cancels nothing: ``ray.shutdown()``
    ends its job, and Ray stops the job's tasks.
    """
    if not refs:
        return
    with suppress(Exception):   # never mask the error that stopped us
        _, unfinished = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in unfinished:
            with suppress(Exception):
                ray.cancel(ref, force=True)


def _ray_run_task(task: Task) -> RunResult:
    import torch
    torch.set_num_threads(1)
    return run_task(task)


def _ray_get(ray: Any, ref: Any) -> RunResult:
    """``ray.get``, turning a task's error back into the worker's own exception."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from exc
        raise


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ExecutorError(f"executor: 'ray' needs Ray, which is not installed; {RAY_HINT}") from exc
    return ray


#: Executors by name (``--executor``).
EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "process": ProcessExecutor, "ray": RayExecutor}


def resolve_executor(executor: str | None, jobs: int | None, ray_address: str | None = None) -> str:
    """The executor's name, checked: None means ``ray`` with an address, ``process`` when
    ``jobs > 1``, else ``local`` (0.1's behaviour)."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS):
        raise ExecutorError(f"jobs: {repr(jobs)[:40]} must be an integer in 1..{MAX_JOBS}; use e.g. --jobs 4")
    if executor is None:
        executor = "ray" if ray_address is not None else "process" if jobs is not None and jobs > 1 else "local"
    if executor not in EXECUTORS:
        raise ExecutorError(f"executor: {executor!r} is not one of {sorted(EXECUTORS)}; "
                            f"use e.g. --executor process")
    if executor == "local" and jobs is not None and jobs > 1:
        raise ExecutorError(f"jobs: {jobs} with executor 'local' would run one at a time; "
                            f"use --executor process (or ray), or drop --jobs")
    if ray_address is not None and executor != "ray":
        raise ExecutorError(f"ray_address: {ray_address!r} is only used by executor 'ray', not {executor!r}; "
                            f"add --executor ray or drop --ray-address")
    return executor


def execute(tasks: Sequence[Task], *, executor: str | None = None, jobs: int | None = None,
            ray_address: str | None = None, progress: bool | None = None,
            on_result: Callable[[Task, RunResult], None] | None = None) -> list[RunResult]:
    """Run every task and return their results in task order.

    Parameters
    ----------
    tasks
        Picklable ``(Scenario, seed, method)`` triples.
    executor
        ``"local"`` (this process), ``"process"`` (spawned workers) or ``"ray"``; None
        picks as :func:`resolve_executor` says (``local`` for the defaults).
    jobs
        Runs at once: worker processes, or the CPUs of a local Ray instance.  None: one
        per core (``process``) or what the Ray cluster schedules (``ray``).
    ray_address
        An existing Ray cluster (``"auto"``, ``"ray://host:10001"``); only with ``ray``.
    progress
        A progress bar over runs (None: only on an interactive terminal).
    on_result
        Called in the driver as ``on_result(task, result)`` as each run finishes, in
        completion order; the place to write a run's folder.  An exception it raises
        stops the study like a worker's error.

    Raises
    ------
    ExecutorError
        For a bad executor name, ``jobs`` value, unreachable cluster or missing Ray.
    Exception
        The first worker error, as its own type; pending runs are cancelled.
    """
    name = resolve_executor(executor, jobs, ray_address)
    from tqdm.auto import tqdm
    tasks = list(tasks)
    results: list[RunResult | None] = [None] * len(tasks)
    bar = tqdm(total=len(tasks), desc="runs", unit="run", disable=None if progress is None else not progress)
    runner = EXECUTORS[name](jobs, ray_address)
    try:
        with closing(runner.stream(tasks)) as stream:
            for index, result in stream:
                results[index] = result
                if on_result is not None:
                    on_result(tasks[index], result)
                bar.update()
                log.info("run %s seed %d done (%s)", tasks[index][2], tasks[index][1], name)
    finally:
        bar.close()
    return [r for r in results if r is not None]
