"""Dask for ``snncosim sweep``: a LocalCluster (worker processes, one thread each) or a running scheduler, the
check that every worker runs this snncosim, and the points submitted and collected as they finish (tqdm over
``distributed.as_completed``). A point whose task itself failed on Dask's side (a worker that died, a function
that could not be unpickled) comes back as a ``failed`` row with the error and the traceback Dask kept."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import traceback
import uuid
import warnings

from golden.core.errors import SnnCosimError

from .sweep_task import failed_row, run_task, source_digest, worker_environment

__all__ = ["require_dask", "default_workers", "open_client", "check_workers", "run_tasks"]

INSTALL_HINT = "python3 -m pip install 'snncosim[sweep]' (or 'dask[distributed]>=2024.1')"
WORKER_WAIT_SECONDS = 60


def require_dask() -> None:
    """Raise one clear error when Dask's distributed scheduler is not installed."""
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise SnnCosimError(f"snncosim sweep runs on Dask, which is not installed here ({exc.name or exc}); "
                            f"install it with {INSTALL_HINT}") from None


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def open_client(scheduler: str | None, workers: int):
    """A ``distributed.Client``: to a new LocalCluster of ``workers`` processes, or to the scheduler at
    ``scheduler``. Closed (and the local workers ended) when the block ends, also on Ctrl-C."""
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler is None:
        scratch = tempfile.mkdtemp(prefix="snncosim-dask-")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.CRITICAL, local_directory=scratch)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise SnnCosimError(f"--scheduler {scheduler}: cannot connect ({' '.join(str(exc).split())[:200]}); "
                                f"start one with 'dask scheduler' (docs/sweep.md)") from None
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)


def check_workers(client, where: str) -> dict:
    """Wait for at least one worker, then check that each imports snncosim and runs the same sources as this
    process (else their figures and verdicts would be another version's). Returns ``{address: environment}``."""
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
    except (TimeoutError, OSError):
        raise SnnCosimError(f"{where}: no worker joined within {WORKER_WAIT_SECONDS} s; start workers with "
                            f"'dask worker ADDRESS --nthreads 1' (docs/sweep.md)") from None
    try:
        environments = client.run(worker_environment)
    except Exception as exc:  # noqa: BLE001 - e.g. ModuleNotFoundError on a worker without the package
        raise SnnCosimError(f"{where}: a worker cannot run snncosim ({' '.join(str(exc).split())[:200]}); install "
                            f"the package on every worker: {INSTALL_HINT}") from None
    here = source_digest()
    for address, environment in environments.items():
        if environment.get("sources") != here:
            raise SnnCosimError(f"{where}: worker {address} ({environment.get('host')}) runs other snncosim sources "
                                f"than this machine; install the same version on every worker")
    return environments


def run_tasks(client, tasks: list, source, data, settings, *, progress: bool = True) -> list[dict]:
    """Submit every task, collect the rows as they finish (a progress bar with the failed and mismatch counts),
    return them in task order. On an interruption the tasks still pending are cancelled."""
    from distributed import as_completed
    from tqdm import tqdm

    # shared as the results of tasks (not scattered): the scheduler can make them again if the workers holding
    # them die, so a lost worker costs its own point only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "large object in the task graph": sent once, on purpose
        shared_source = client.submit(_shared, source, key=f"snncosim-sweep-source-{uuid.uuid4().hex}")
        shared_data = client.submit(_shared, data, key=f"snncosim-sweep-data-{uuid.uuid4().hex}")
    token = uuid.uuid4().hex[:12]
    futures = {client.submit(run_task, task, shared_source, shared_data, settings,
                             key=f"snncosim-point-{task.index}-shard-{task.shard}-{token}"): task for task in tasks}
    rows: list[dict] = []
    bad = {"failed": 0, "mismatch": 0}
    try:
        with tqdm(total=len(futures), desc="sweep", unit="point", disable=not progress, dynamic_ncols=True) as bar:
            for future in as_completed(futures):
                row = _row_of(future, futures[future], source)
                rows.append(row)
                if row.get("status") in bad:
                    bad[row["status"]] += 1
                bar.set_postfix(bad, refresh=False)
                bar.update()
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(list(futures))
        raise
    return sorted(rows, key=lambda r: (r["point"], r.get("shard", 0)))


def _shared(value):
    return value


def _row_of(future, task, source) -> dict:
    if future.status == "finished":
        try:
            return future.result()
        except Exception as exc:  # noqa: BLE001 - e.g. the result could not be deserialised
            return failed_row(task, source, exc, traceback.format_exc(), worker="(client)")
    exc = future.exception()
    lines = traceback.format_tb(future.traceback()) if future.traceback() is not None else []
    text = "Traceback (kept by Dask):\n" + "".join(lines) + "".join(traceback.format_exception_only(exc))
    return failed_row(task, source, exc, text, worker="(dask)")
