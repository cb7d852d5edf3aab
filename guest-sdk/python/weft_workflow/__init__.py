"""Write weft workflows in Python.

A workflow is a function ``fn(ctx, input) -> result`` decorated with
:func:`workflow`; payloads are JSON. Build it into a WebAssembly component
with componentize-py (``cargo xtask guests`` does, see the README)::

    from weft_workflow import RetryPolicy, workflow

    @workflow
    def payment(ctx, req):
        account = ctx.activity("validate_account", req["account"]).result()
        charge = ctx.activity(
            "charge", [account["account"], req["amount_cents"], req["currency"]],
            retry=RetryPolicy(initial_interval=0.2, maximum_attempts=5),
            start_to_close=10,
        ).result()
        ctx.sleep(60)  # durable
        return {"charge_id": charge["charge_id"]}

Every nondeterministic thing goes through the host and is recorded:
activities, timers, signals, child workflows, and also Python's own
``time.time()``, ``datetime.now()``, ``random`` and ``uuid.uuid4()``, which
weft answers from history (workflow time, the execution's recorded random
stream). What stays forbidden: files (``open`` raises
:class:`SandboxViolation`), sockets (the execution fails, naming the
call), threads, ``time.sleep`` (use :meth:`Ctx.sleep`), and reading
anything that differs between machines. Do those in an activity.
"""

from __future__ import annotations

import builtins
import json
import random as _random
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Sequence

import wit_world
from componentize_py_types import Err, Ok
from wit_world.imports import host
from wit_world.imports import types as wit

__all__ = [
    "CANCELLED",
    "Ctx",
    "Failure",
    "Pending",
    "RetryPolicy",
    "SandboxViolation",
    "workflow",
]

#: Error type of cancellations.
CANCELLED = "Cancelled"


class Failure(Exception):
    """Why an activity, a child or the workflow failed. Raise one from a
    workflow to fail it with that type; any other exception fails it with
    the exception's class name as the type."""

    def __init__(
        self,
        message: str,
        error_type: str = "Error",
        non_retryable: bool = False,
        details: Any = None,
    ):
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.non_retryable = non_retryable
        self.details = details

    @property
    def is_cancelled(self) -> bool:
        """True for the failure a wait returns once the execution was asked
        to cancel."""
        return self.error_type == CANCELLED

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}"

    def _to_wit(self) -> wit.Failure:
        details = None if self.details is None else _encode(self.details)
        return wit.Failure(self.message, self.error_type, self.non_retryable, details)

    @staticmethod
    def _from_wit(f: wit.Failure) -> "Failure":
        details = None if f.details is None else json.loads(f.details)
        return Failure(f.message, f.error_type, f.non_retryable, details)


class SandboxViolation(Failure, PermissionError):
    """A workflow tried something that is not recorded in history (a file,
    a socket): do it in an activity. Also a ``PermissionError``, so library
    code that copes with an unreadable file (``linecache``, say) copes with
    this too."""

    def __init__(self, message: str):
        super().__init__(message, error_type="SandboxViolation", non_retryable=True)


def _encode(value: Any) -> bytes:
    # Compact, like serde_json and JSON.stringify: the same value gives the
    # same bytes in every SDK, so histories match across languages.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _decode(data: bytes) -> Any:
    return json.loads(data) if data else None


def _ms(seconds: Optional[float]) -> Optional[int]:
    return None if seconds is None else int(round(seconds * 1000))


@dataclass
class RetryPolicy:
    """How failed activity attempts are retried (seconds). Unset fields take
    weft's defaults: 1 s initial interval, backoff 2.0, maximum 100 x the
    initial interval, unlimited attempts."""

    initial_interval: Optional[float] = None
    backoff_coefficient: Optional[float] = None
    maximum_interval: Optional[float] = None
    maximum_attempts: int = 0
    non_retryable_error_types: List[str] = field(default_factory=list)
    jitter: float = 0.0

    def _to_wit(self) -> wit.RetryPolicy:
        return wit.RetryPolicy(
            initial_interval_ms=_ms(self.initial_interval) or 0,
            backoff_coefficient=self.backoff_coefficient or 0.0,
            maximum_interval_ms=_ms(self.maximum_interval) or 0,
            maximum_attempts=self.maximum_attempts,
            non_retryable_error_types=list(self.non_retryable_error_types),
            jitter=self.jitter,
        )


# Outcomes of handles that resolved while another was awaited.
_resolved: Dict[int, Any] = {}
_cancel_requested = False
_queries: Dict[str, Callable[[Any], Any]] = {}


def _wait_any(handles: Sequence[int]) -> wit.Wake:
    """``host.wait_any``, answering the queries that arrive meanwhile."""
    global _cancel_requested
    while True:
        result = host.wait_any(list(handles))
        if isinstance(result, wit.WaitResult_Wake):
            wake = result.value
            if isinstance(wake.outcome, wit.Outcome_CancelRequested):
                _cancel_requested = True
            return wake
        query = result.value
        host.answer_query(_answer_query(query.name, query.args))


def _answer_query(name: str, args: bytes):
    handler = _queries.get(name)
    if handler is None:
        known = sorted(_queries)
        failure = Failure(
            f"this workflow has no query `{name}` (it has: {known})",
            error_type="UnknownQuery",
            non_retryable=True,
        )
        return Err(failure._to_wit())
    try:
        return Ok(_encode(handler(_decode(args))))
    except Failure as f:
        return Err(f._to_wit())
    except Exception as e:  # noqa: BLE001 - the handler's error is the answer
        return Err(Failure(str(e), error_type=type(e).__name__)._to_wit())


def _take(handle: int):
    while handle not in _resolved:
        wake = _wait_any([handle])
        _resolved[wake.handle] = wake.outcome
    return _resolved.pop(handle)


class Pending:
    """A command in flight (an activity, a timer, a signal, a child):
    wait for it with :meth:`result` or race it with :meth:`Ctx.select`."""

    def __init__(self, handle: int):
        self.handle = handle

    def result(self) -> Any:
        """Block until the command resolves; its value, or raise its
        :class:`Failure`."""
        outcome = _take(self.handle)
        if isinstance(outcome, wit.Outcome_Completed):
            return _decode(outcome.value)
        if isinstance(outcome, wit.Outcome_Failed):
            raise Failure._from_wit(outcome.value)
        if isinstance(outcome, wit.Outcome_Fired):
            return None
        if isinstance(outcome, wit.Outcome_Cancelled):
            raise Failure("the timer was cancelled", error_type=CANCELLED, non_retryable=True)
        raise Failure("the workflow was asked to cancel", error_type=CANCELLED, non_retryable=True)


class Ctx:
    """The workflow's handle on the host. Every method is recorded in (or
    answered from) the execution's history."""

    def activity(
        self,
        name: str,
        input: Any = None,
        *,
        task_queue: Optional[str] = None,
        start_to_close: Optional[float] = None,
        schedule_to_start: Optional[float] = None,
        schedule_to_close: Optional[float] = None,
        heartbeat_timeout: Optional[float] = None,
        retry: Optional[RetryPolicy] = None,
        local: bool = False,
    ) -> Pending:
        """Schedule activity ``name`` (timeouts in seconds) and return at
        once; ``.result()`` waits for it."""
        options = wit.ActivityOptions(
            task_queue=task_queue,
            start_to_close_timeout_ms=_ms(start_to_close),
            schedule_to_start_timeout_ms=_ms(schedule_to_start),
            schedule_to_close_timeout_ms=_ms(schedule_to_close),
            heartbeat_timeout_ms=_ms(heartbeat_timeout),
            retry=None if retry is None else retry._to_wit(),
            local=local,
        )
        return Pending(host.schedule_activity(name, _encode(input), options))

    def child(
        self,
        workflow_type: str,
        input: Any = None,
        *,
        workflow_id: Optional[str] = None,
        task_queue: Optional[str] = None,
        parent_close_policy: str = "terminate",
    ) -> Pending:
        """Start a child workflow of a deployed type; ``.result()`` waits for
        its result. ``parent_close_policy``: terminate, request-cancel or
        abandon."""
        policy = {
            "terminate": wit.ParentClosePolicy.TERMINATE,
            "request-cancel": wit.ParentClosePolicy.REQUEST_CANCEL,
            "abandon": wit.ParentClosePolicy.ABANDON,
        }[parent_close_policy]
        options = wit.ChildOptions(workflow_id, task_queue, policy)
        return Pending(host.start_child(workflow_type, _encode(input), options))

    def timer(self, seconds: float) -> Pending:
        """A durable timer, as a :class:`Pending` to race against others."""
        return Pending(host.start_timer(_ms(seconds) or 0))

    def sleep(self, seconds: float) -> None:
        """Sleep durably: survives restarts, costs nothing while waiting."""
        self.timer(seconds).result()

    def cancel_timer(self, timer: Pending) -> None:
        """Cancel a timer that has not fired."""
        host.cancel_timer(timer.handle)

    def signal(self, name: str) -> Pending:
        """Wait for the next signal named ``name`` (its JSON payload)."""
        return Pending(host.receive_signal(name))

    def select(self, *pending: Pending) -> int:
        """Block until one of ``pending`` resolves; its index. Its result
        stays available through its :class:`Pending`."""
        handles = [p.handle for p in pending]
        for i, h in enumerate(handles):
            if h in _resolved:
                return i
        wake = _wait_any(handles)
        _resolved[wake.handle] = wake.outcome
        return handles.index(wake.handle)

    def join_all(self, pending: Sequence[Pending]) -> List[Any]:
        """Wait for all of ``pending``; their results in order (raises the
        first failure)."""
        return [p.result() for p in pending]

    def on_query(self, name: str, handler: Callable[[Any], Any]) -> None:
        """Answer query ``name`` with ``handler(args)`` (read-only: it must
        not schedule or wait)."""
        _queries[name] = handler

    def upsert_search_attributes(self, **attributes: str) -> None:
        host.upsert_search_attributes(sorted(attributes.items()))

    def upsert_memo(self, **memo: str) -> None:
        host.upsert_memo(sorted(memo.items()))

    @property
    def is_cancel_requested(self) -> bool:
        """True once a wait returned the execution's cancellation request."""
        return _cancel_requested

    def continue_as_new(self, input: Any) -> None:
        """End this run and continue as a new one with ``input``. Does not
        return."""
        host.continue_as_new(_encode(input))
        raise AssertionError("continue-as-new returned")

    def patched(self, change_id: str) -> bool:
        """Code versioning: True if this execution runs the code guarded by
        ``change_id``."""
        return host.patched(change_id)

    def side_effect(self, fn: Callable[[], Any]) -> Any:
        """Compute a value once and record it; later runs (replays) return
        the record, even if ``fn`` changed since. ``fn`` runs in every run,
        so state it touches (``random``'s generator, say) evolves the same
        way each time; its random draws come from a stream of its own. It
        must only compute: a command or a wait inside it fails the
        execution."""
        recorded = host.begin_side_effect()
        encoded = None
        try:
            value = fn()
            encoded = _encode(value)
        finally:
            # Raised, or not encodable: nothing is recorded, in every run.
            host.end_side_effect(encoded)
        if recorded is not None:
            return _decode(recorded)
        return value

    def now(self) -> datetime:
        """Workflow time (what ``datetime.now(timezone.utc)`` returns too)."""
        return datetime.fromtimestamp(host.now() / 1e9, tz=timezone.utc)

    def random(self) -> int:
        """A random 64-bit integer from the execution's replayable stream."""
        return int.from_bytes(host.random_bytes(8), "little")

    def random_bytes(self, n: int) -> bytes:
        return host.random_bytes(n)

    def info(self, message: str) -> None:
        """Log a line (not repeated on replay)."""
        host.log(wit.Level.INFO, message)


class _ReplayableRandom(_random.Random):
    """Python's ``random`` module, seeded from the execution's recorded
    random stream on first use (so each execution gets its own sequence,
    the same on every replay, and a workflow that never uses ``random``
    draws nothing)."""

    _seeded = False

    def _ensure(self):
        if not self._seeded:
            self._seeded = True
            super().seed(int.from_bytes(host.random_bytes(32), "little"))

    def random(self):
        self._ensure()
        return super().random()

    def getrandbits(self, k):
        self._ensure()
        return super().getrandbits(k)


def _install_sandbox() -> None:
    instance = _ReplayableRandom()
    _random._inst = instance
    for name in (
        "random", "uniform", "triangular", "randint", "choice", "randrange", "sample",
        "shuffle", "choices", "normalvariate", "lognormvariate", "expovariate",
        "vonmisesvariate", "gammavariate", "gauss", "betavariate", "paretovariate",
        "weibullvariate", "getrandbits", "randbytes",
    ):
        if hasattr(instance, name):
            setattr(_random, name, getattr(instance, name))

    def no_files(*args, **kwargs):
        raise SandboxViolation(
            "a workflow cannot open files: pass data in payloads or read files in an activity"
        )

    builtins.open = no_files


def workflow(fn: Callable[[Ctx, Any], Any]) -> Callable[[Ctx, Any], Any]:
    """Make ``fn(ctx, input)`` this component's workflow."""

    class WitWorld(wit_world.WitWorld):
        def run(self, input: bytes) -> bytes:
            _install_sandbox()
            try:
                return _encode(fn(Ctx(), _decode(input)))
            except Failure as f:
                raise Err(f._to_wit())
            except Exception as e:  # noqa: BLE001 - becomes the workflow's failure
                raise Err(Failure(str(e), error_type=type(e).__name__)._to_wit())

        def query(self, name: str, args: bytes) -> bytes:
            answer = _answer_query(name, args)
            if isinstance(answer, Err):
                raise answer
            return answer.value

    # componentize-py looks for `WitWorld` in the app module.
    sys.modules[fn.__module__].WitWorld = WitWorld
    return fn
