"""The payment example's activities, served from Python.

    python payment_worker.py --address 127.0.0.1:7233 --task-queue payments-py \
        --ledger /tmp/charges.jsonl

Start payment workflows with that task queue (``weft workflow start
--task-queue payments-py ...``) and their activities run here instead of
in the server's native Rust implementation.

``charge`` talks to a stand-in card processor: an append-only ledger file
keyed by the attempt's idempotency key. Its first attempt charges the card
and then "loses" the processor's answer (raises a transient error), the
classic duplicate: the retry charges again under the same key, and the
ledger returns the first charge instead of making a second one.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import signal
import sys

from weft_worker import ActivityError, Worker


class Ledger:
    """A card processor that honours idempotency keys: one charge per key,
    across attempts, workers and restarts (a JSON-lines file under a lock)."""

    def __init__(self, path: str):
        self.path = path

    def charge(self, key: str, account: str, amount: int) -> str:
        with open(self.path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            charges = [json.loads(line) for line in f if line.strip()]
            for c in charges:
                if c["key"] == key:
                    return c["charge_id"]
            charge_id = f"py_ch_{len(charges) + 1:06}_{account}"
            f.write(json.dumps({"key": key, "charge_id": charge_id, "amount": amount}) + "\n")
            f.flush()
            return charge_id


def serve(worker: Worker, ledger: Ledger) -> None:
    @worker.activity("validate_account")
    def validate_account(ctx, account):
        account = account.strip()
        if not account or account.startswith("closed"):
            raise ActivityError(
                f"account `{account}` cannot be charged",
                error_type="AccountInvalid",
                non_retryable=True,
            )
        return {"account": account, "holder": f"Holder of {account}"}

    @worker.activity("charge")
    def charge(ctx, args):
        account, amount, _currency = args
        charge_id = ledger.charge(ctx.idempotency_key, account, amount)
        if ctx.attempt == 1:
            # Charged, but the answer is "lost": the retry must not charge
            # twice.
            raise ActivityError("processor answer lost, try again", error_type="CardNetworkBusy")
        return {"charge_id": charge_id}

    @worker.activity("send_receipt")
    def send_receipt(ctx, args):
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", default="127.0.0.1:7233")
    p.add_argument("--task-queue", default="payments-py")
    p.add_argument("--namespace", default="")
    p.add_argument("--ledger", required=True)
    p.add_argument("--identity")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--tls-ca", help="CA certificate (PEM): speak TLS, trusting it")
    p.add_argument("--tls-cert", help="client certificate (PEM), for mutual TLS")
    p.add_argument("--tls-key", help="the client certificate's key (PEM)")
    # The API key comes from WEFT_API_KEY: a command line is visible to
    # every user of the machine.
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    address = args.address.removeprefix("http://").removeprefix("https://")
    worker = Worker(
        address,
        task_queue=args.task_queue,
        namespace=args.namespace,
        identity=args.identity,
        max_concurrent=args.concurrency,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    serve(worker, Ledger(args.ledger))
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    print(f"serving {args.task_queue} on {address} as {worker.identity}", flush=True)
    worker.run()


if __name__ == "__main__":
    sys.exit(main())
