"""Serve weft activities from Python.

A :class:`Worker` long-polls one task queue of a weft server over gRPC,
runs the registered function for each task it gets, and reports the
attempt: its JSON result, or its failure. Payloads are JSON, as in every
weft SDK.

    worker = Worker("127.0.0.1:7233", task_queue="payments")

    @worker.activity("charge")
    def charge(ctx, args):
        account, amount, currency = args
        return {"charge_id": processor.charge(ctx.idempotency_key, account, amount)}

    worker.run()

Each attempt carries an idempotency key that is the same for every attempt
of one activity: pass it to the system you call, so that a repeated attempt
(after a timeout, a lost report or a worker crash) has no second effect.

A worker that dies holding a task loses nothing: the attempt times out on
the server (start-to-close, or heartbeat if the activity has a heartbeat
timeout) and is retried, on any worker.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Union

import grpc

from weft.v1 import weft_pb2 as pb
from weft.v1 import weft_pb2_grpc as pb_grpc

__all__ = [
    "ActivityContext",
    "ActivityError",
    "AttemptSuperseded",
    "Cancelled",
    "Worker",
]

log = logging.getLogger("weft_worker")


class ActivityError(Exception):
    """An activity's failure, retried by the caller's retry policy unless
    ``non_retryable`` is set or its ``error_type`` is listed as
    non-retryable. ``retry_after`` (seconds) asks for the next attempt after
    that delay instead of the policy's backoff."""

    def __init__(
        self,
        message: str,
        error_type: str = "Error",
        non_retryable: bool = False,
        retry_after: Optional[float] = None,
    ):
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.non_retryable = non_retryable
        self.retry_after = retry_after


class Cancelled(ActivityError):
    """Raised by :meth:`ActivityContext.heartbeat` once the workflow asked
    to cancel. Let it propagate (after cleaning up): the attempt is reported
    as cancelled and not retried."""

    def __init__(self, message: str = "the activity was cancelled"):
        super().__init__(message, error_type="Cancelled", non_retryable=True)


class AttemptSuperseded(Exception):
    """Raised by :meth:`ActivityContext.heartbeat` when this attempt is no
    longer current (it timed out and may be running elsewhere, or the
    execution closed). Stop: the result would be dropped."""


@dataclass
class ActivityContext:
    """What an activity knows about the attempt it runs."""

    workflow_id: str
    run_id: str
    activity_name: str
    attempt: int
    idempotency_key: str
    #: When this attempt times out, seconds since the epoch.
    deadline: float
    #: Heartbeat at least this often (seconds), or None.
    heartbeat_timeout: Optional[float]
    _token: bytes
    _namespace: str
    _stub: Any
    _details: Optional[bytes]
    _cancel_requested: bool = False

    def last_heartbeat_details(self, default: Any = None) -> Any:
        """The progress the last heartbeat of an earlier attempt reported:
        resume from there."""
        if self._details is None:
            return default
        return json.loads(self._details)

    @property
    def is_cancelled(self) -> bool:
        """True once a heartbeat learned that the workflow asked to cancel."""
        return self._cancel_requested

    def heartbeat(self, details: Any = None) -> None:
        """Report liveness, with optional JSON progress details kept for the
        next attempt. Raises :class:`Cancelled` once the workflow asked to
        cancel, :class:`AttemptSuperseded` if this attempt timed out."""
        request = pb.RecordActivityHeartbeatRequest(
            task_token=self._token, namespace=self._namespace
        )
        if details is not None:
            request.details = json.dumps(details).encode()
        try:
            reply = self._stub.RecordActivityHeartbeat(request, timeout=30)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                raise AttemptSuperseded(e.details()) from None
            raise
        if reply.cancel_requested:
            self._cancel_requested = True
            raise Cancelled()


Activity = Callable[[ActivityContext, Any], Any]


class Worker:
    """Serves activities of one or more task queues, running up to
    ``max_concurrent`` at once (one poller thread each: a thread polls only
    when it is free, so the limit holds; with several queues the threads
    are shared out among them). Start more workers to add capacity."""

    def __init__(
        self,
        target: str,
        task_queue: Union[str, Sequence[str]],
        namespace: str = "",
        identity: Optional[str] = None,
        max_concurrent: int = 4,
        poll_wait: float = 10.0,
        tls_ca: Optional[str] = None,
        tls_cert: Optional[str] = None,
        tls_key: Optional[str] = None,
        tls_server_name: Optional[str] = None,
        api_key: Optional[str] = None,
    ):
        """``target`` is ``host:port``. With ``tls_ca`` (a PEM file) the
        channel is TLS, trusting that CA; ``tls_cert`` and ``tls_key`` add a
        client certificate (mutual TLS); ``tls_server_name`` overrides the
        name expected in the server's certificate. ``api_key`` (a ``weft_...``
        key with the worker role on these queues, or a JWT; default: the
        ``WEFT_API_KEY`` environment variable) goes with every call. A
        server that refuses the credential stops the worker: :meth:`run`
        raises the error."""
        self.target = target
        self.task_queues = [task_queue] if isinstance(task_queue, str) else list(task_queue)
        if not self.task_queues or max_concurrent < len(self.task_queues):
            raise ValueError("need at least one task queue, and one poller per queue")
        self.namespace = namespace
        self.identity = identity or f"python-{socket.gethostname()}-{os.getpid()}"
        self.max_concurrent = max(1, max_concurrent)
        self.poll_wait = poll_wait
        self._activities: Dict[str, Activity] = {}
        self._stop = threading.Event()
        self._refused: Optional[grpc.RpcError] = None
        self._channel = _channel(target, tls_ca, tls_cert, tls_key, tls_server_name)
        api_key = api_key if api_key is not None else os.environ.get("WEFT_API_KEY")
        calls = self._channel
        if api_key:
            calls = grpc.intercept_channel(self._channel, _Bearer(api_key))
        self._stub = pb_grpc.WeftStub(calls)

    def activity(self, name: Optional[str] = None) -> Callable[[Activity], Activity]:
        """Decorator: register ``fn(ctx, input)`` as activity ``name`` (the
        function's name by default)."""

        def register(fn: Activity) -> Activity:
            self.register(name or fn.__name__, fn)
            return fn

        return register

    def register(self, name: str, fn: Activity) -> None:
        """Register ``fn(ctx, input)`` as activity ``name``."""
        self._activities[name] = fn

    def run(self) -> None:
        """Serve until :meth:`stop` is called (or Ctrl-C)."""
        threads = [
            threading.Thread(
                target=self._poll_loop,
                args=(self.task_queues[i % len(self.task_queues)],),
                name=f"weft-poller-{i}",
                daemon=True,
            )
            for i in range(self.max_concurrent)
        ]
        for t in threads:
            t.start()
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=0.5)
        except KeyboardInterrupt:
            self.stop()
        finally:
            for t in threads:
                t.join()
            self._channel.close()
        if self._refused is not None:
            raise self._refused

    def stop(self) -> None:
        """Stop polling; attempts in flight finish and report first."""
        self._stop.set()

    def _poll_loop(self, task_queue: str) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            request = pb.PollActivityTaskRequest(
                namespace=self.namespace,
                task_queue=task_queue,
                identity=self.identity,
                wait_ms=int(self.poll_wait * 1000),
            )
            try:
                reply = self._stub.PollActivityTask(request, timeout=self.poll_wait + 30)
                backoff = 0.1
            except grpc.RpcError as e:
                if self._stop.is_set():
                    return
                if e.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    # Retrying would not help: stop, and let run() raise it.
                    log.error("the server refused this worker (%s): %s", e.code(), e.details())
                    self._refused = e
                    self._stop.set()
                    return
                log.warning("poll failed (%s): %s; retrying", e.code(), e.details())
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if reply.HasField("task"):
                self._run_task(reply.task)

    def _run_task(self, task: pb.ActivityTask) -> None:
        ctx = ActivityContext(
            workflow_id=task.workflow_id,
            run_id=task.run_id,
            activity_name=task.activity_name,
            attempt=task.attempt,
            idempotency_key=task.idempotency_key,
            deadline=task.deadline_ms / 1000,
            heartbeat_timeout=(task.heartbeat_timeout_ms / 1000) or None,
            _token=task.task_token,
            _namespace=self.namespace,
            _stub=self._stub,
            _details=task.heartbeat_details if task.HasField("heartbeat_details") else None,
            _cancel_requested=task.cancel_requested,
        )
        fn = self._activities.get(task.activity_name)
        try:
            if fn is None:
                raise ActivityError(
                    f"no activity `{task.activity_name}` is registered with this worker",
                    error_type="ActivityNotRegistered",
                )
            args = json.loads(task.input) if task.input else None
            result = fn(ctx, args)
            self._report(
                "CompleteActivityTask",
                pb.CompleteActivityTaskRequest(
                    task_token=task.task_token,
                    result=json.dumps(result).encode(),
                    namespace=self.namespace,
                ),
            )
        except AttemptSuperseded:
            log.info("attempt %s of %s superseded; dropped", task.attempt, task.activity_name)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            request = _failure_request(task.task_token, e)
            request.namespace = self.namespace
            self._report("FailActivityTask", request)

    def _report(self, method: str, request: Any) -> None:
        try:
            getattr(self._stub, method)(request, timeout=30)
        except grpc.RpcError as e:
            # NOT_FOUND: the attempt timed out meanwhile; its retry owns
            # the task. Anything else: the attempt will time out and retry.
            log.warning("%s not accepted (%s): %s", method, e.code(), e.details())


class _Bearer(grpc.UnaryUnaryClientInterceptor):
    """Adds ``authorization: Bearer <credential>`` to every call."""

    def __init__(self, credential: str):
        self._metadata = ("authorization", f"Bearer {credential.strip()}")

    def intercept_unary_unary(self, continuation, client_call_details, request):
        metadata = list(client_call_details.metadata or [])
        metadata.append(self._metadata)
        details = client_call_details._replace(metadata=metadata)
        return continuation(details, request)


def _channel(
    target: str,
    ca: Optional[str],
    cert: Optional[str],
    key: Optional[str],
    server_name: Optional[str],
) -> grpc.Channel:
    if ca is None and cert is None and key is None:
        return grpc.insecure_channel(target)
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs its key, and a key its certificate")

    def read(path: Optional[str]) -> Optional[bytes]:
        if path is None:
            return None
        with open(path, "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
    )
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(target, credentials, options=options)


def _failure_request(token: bytes, e: Exception) -> pb.FailActivityTaskRequest:
    if isinstance(e, ActivityError):
        failure = pb.Failure(
            message=e.message, error_type=e.error_type, non_retryable=e.non_retryable
        )
        request = pb.FailActivityTaskRequest(task_token=token, failure=failure)
        if e.retry_after is not None:
            request.next_retry_delay_ms = int(e.retry_after * 1000)
        return request
    failure = pb.Failure(message=str(e), error_type=type(e).__name__, non_retryable=False)
    return pb.FailActivityTaskRequest(task_token=token, failure=failure)
