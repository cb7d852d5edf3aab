// Write weft workflows in JavaScript.
//
// A workflow is a function `(ctx, input) => result` registered with
// `workflow(fn)`; payloads are JSON. Build it into a WebAssembly component
// with componentize-js (`cargo xtask guests` does, see the README):
//
//   import { workflow, RetryPolicy } from './weft.js';
//   export const { run, query } = workflow((ctx, req) => {
//     const account = ctx.activity('validate_account', req.account).result();
//     ctx.sleep(60); // durable
//     return { holder: account.holder };
//   });
//
// Waits block (the host answers from history), so a workflow reads like
// straight-line code; `result()` is synchronous. Every nondeterministic
// thing goes through the host and is recorded: activities, timers,
// signals, child workflows, and also `Date.now()`, `new Date()`,
// `Math.random()` and `crypto.getRandomValues()`, which weft answers from
// history (workflow time, the execution's recorded random stream). What
// stays forbidden, failing with a `SandboxViolation`: `fetch`, timers of
// the JS event loop (`setTimeout`: use `ctx.sleep`); there are no file or
// socket APIs. Do those in an activity.

import * as host from 'weft:workflow/host@0.1.0';

export const CANCELLED = 'Cancelled';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const encode = (value) => encoder.encode(JSON.stringify(value === undefined ? null : value));
const decode = (bytes) => (bytes.length === 0 ? null : JSON.parse(decoder.decode(bytes)));
const ms = (seconds) => (seconds === undefined || seconds === null ? undefined : BigInt(Math.round(seconds * 1000)));

// Why an activity, a child or the workflow failed. Throw one from a
// workflow to fail it with that type; any other error fails it with the
// error's name as the type.
export class Failure extends Error {
  constructor(message, { errorType = 'Error', nonRetryable = false, details = null } = {}) {
    super(message);
    this.errorType = errorType;
    this.nonRetryable = nonRetryable;
    this.details = details;
  }

  get isCancelled() {
    return this.errorType === CANCELLED;
  }

  toWit() {
    return {
      message: this.message,
      errorType: this.errorType,
      nonRetryable: this.nonRetryable,
      details: this.details === null ? undefined : encode(this.details),
    };
  }

  static fromWit(f) {
    const details = f.details === undefined || f.details === null ? null : decode(f.details);
    return new Failure(f.message, { errorType: f.errorType, nonRetryable: f.nonRetryable, details });
  }

  static of(e) {
    if (e instanceof Failure) return e;
    return new Failure(String(e && e.message !== undefined ? e.message : e), {
      errorType: (e && e.name) || 'Error',
    });
  }
}

// How failed activity attempts are retried (seconds). Unset fields take
// weft's defaults: 1 s initial interval, backoff 2.0, maximum 100 x the
// initial interval, unlimited attempts.
export class RetryPolicy {
  constructor({
    initialInterval,
    backoffCoefficient,
    maximumInterval,
    maximumAttempts = 0,
    nonRetryableErrorTypes = [],
    jitter = 0,
  } = {}) {
    Object.assign(this, {
      initialInterval, backoffCoefficient, maximumInterval, maximumAttempts,
      nonRetryableErrorTypes, jitter,
    });
  }

  toWit() {
    return {
      initialIntervalMs: ms(this.initialInterval) ?? 0n,
      backoffCoefficient: this.backoffCoefficient ?? 0,
      maximumIntervalMs: ms(this.maximumInterval) ?? 0n,
      maximumAttempts: this.maximumAttempts,
      nonRetryableErrorTypes: this.nonRetryableErrorTypes,
      jitter: this.jitter,
    };
  }
}

// Outcomes of handles that resolved while another was awaited.
const resolved = new Map();
const queries = new Map();
let cancelRequested = false;

function answerQuery(name, args) {
  const handler = queries.get(name);
  if (handler === undefined) {
    const known = [...queries.keys()].sort();
    const failure = new Failure(`this workflow has no query \`${name}\` (it has: ${JSON.stringify(known)})`, {
      errorType: 'UnknownQuery',
      nonRetryable: true,
    });
    return { tag: 'err', val: failure.toWit() };
  }
  try {
    return { tag: 'ok', val: encode(handler(decode(args))) };
  } catch (e) {
    return { tag: 'err', val: Failure.of(e).toWit() };
  }
}

// `host.waitAny`, answering the queries that arrive meanwhile.
function waitAny(handles) {
  for (;;) {
    const result = host.waitAny(Uint32Array.from(handles));
    if (result.tag === 'wake') {
      if (result.val.outcome.tag === 'cancel-requested') cancelRequested = true;
      return result.val;
    }
    host.answerQuery(answerQuery(result.val.name, result.val.args));
  }
}

function take(handle) {
  while (!resolved.has(handle)) {
    const wake = waitAny([handle]);
    resolved.set(wake.handle, wake.outcome);
  }
  const outcome = resolved.get(handle);
  resolved.delete(handle);
  return outcome;
}

// A command in flight (an activity, a timer, a signal, a child): wait for
// it with `result()` or race it with `ctx.select`.
export class Pending {
  constructor(handle) {
    this.handle = handle;
  }

  // Block until the command resolves; its value, or throw its Failure.
  result() {
    const outcome = take(this.handle);
    switch (outcome.tag) {
      case 'completed':
        return decode(outcome.val);
      case 'failed':
        throw Failure.fromWit(outcome.val);
      case 'fired':
        return null;
      case 'cancelled':
        throw new Failure('the timer was cancelled', { errorType: CANCELLED, nonRetryable: true });
      default:
        throw new Failure('the workflow was asked to cancel', { errorType: CANCELLED, nonRetryable: true });
    }
  }
}

// The workflow's handle on the host. Every method is recorded in (or
// answered from) the execution's history.
export class Ctx {
  // Schedule activity `name` (timeouts in seconds) and return at once.
  activity(name, input = null, options = {}) {
    const wit = {
      taskQueue: options.taskQueue,
      startToCloseTimeoutMs: ms(options.startToClose),
      scheduleToStartTimeoutMs: ms(options.scheduleToStart),
      scheduleToCloseTimeoutMs: ms(options.scheduleToClose),
      heartbeatTimeoutMs: ms(options.heartbeatTimeout),
      retry: options.retry ? options.retry.toWit() : undefined,
      local: Boolean(options.local),
    };
    return new Pending(host.scheduleActivity(name, encode(input), wit));
  }

  // Start a child workflow of a deployed type. `parentClosePolicy`:
  // terminate, request-cancel or abandon.
  child(workflowType, input = null, { workflowId, taskQueue, parentClosePolicy = 'terminate' } = {}) {
    return new Pending(host.startChild(workflowType, encode(input), { workflowId, taskQueue, parentClosePolicy }));
  }

  // A durable timer, to race against other commands.
  timer(seconds) {
    return new Pending(host.startTimer(ms(seconds) ?? 0n));
  }

  // Sleep durably: survives restarts, costs nothing while waiting.
  sleep(seconds) {
    this.timer(seconds).result();
  }

  cancelTimer(timer) {
    host.cancelTimer(timer.handle);
  }

  // Wait for the next signal named `name` (its JSON payload).
  signal(name) {
    return new Pending(host.receiveSignal(name));
  }

  // Block until one of `pending` resolves; its index.
  select(...pending) {
    const handles = pending.map((p) => p.handle);
    const ready = handles.findIndex((h) => resolved.has(h));
    if (ready >= 0) return ready;
    const wake = waitAny(handles);
    resolved.set(wake.handle, wake.outcome);
    return handles.indexOf(wake.handle);
  }

  // Wait for all; their results in order (throws the first failure).
  joinAll(pending) {
    return pending.map((p) => p.result());
  }

  // Answer query `name` with `handler(args)` (read-only).
  onQuery(name, handler) {
    queries.set(name, handler);
  }

  upsertSearchAttributes(attributes) {
    host.upsertSearchAttributes(Object.entries(attributes).sort());
  }

  upsertMemo(memo) {
    host.upsertMemo(Object.entries(memo).sort());
  }

  get isCancelRequested() {
    return cancelRequested;
  }

  // End this run and continue as a new one with `input`. Does not return.
  continueAsNew(input) {
    host.continueAsNew(encode(input));
    throw new Error('continue-as-new returned');
  }

  patched(changeId) {
    return host.patched(changeId);
  }

  // Compute a value once and record it; later runs (replays) return the
  // record, even if `fn` changed since. `fn` runs in every run, so state it
  // touches (Math.random's generator, say) evolves the same way each time;
  // its random draws come from a stream of its own. It must only compute:
  // a command or a wait inside it fails the execution.
  sideEffect(fn) {
    const recorded = host.beginSideEffect();
    let encoded;
    let value;
    try {
      value = fn();
      encoded = encode(value);
    } finally {
      // Threw, or not encodable: nothing is recorded, in every run.
      host.endSideEffect(encoded);
    }
    if (recorded !== undefined && recorded !== null) return decode(recorded);
    return value;
  }

  // Workflow time (what `new Date()` returns too).
  now() {
    return new Date(Number(host.now() / 1000000n));
  }

  // A random 64-bit integer (BigInt) from the execution's replayable stream.
  random() {
    const bytes = host.randomBytes(8);
    let value = 0n;
    for (let i = 7; i >= 0; i -= 1) value = (value << 8n) | BigInt(bytes[i]);
    return value;
  }

  randomBytes(n) {
    return host.randomBytes(n);
  }

  // Log a line (not repeated on replay).
  info(message) {
    host.log('info', message);
  }
}

// A workflow tried something that is not recorded in history (the
// network, an event-loop timer): do it in an activity.
export class SandboxViolation extends Failure {
  constructor(message) {
    super(message, { errorType: 'SandboxViolation', nonRetryable: true });
  }
}

function forbidden(what, instead) {
  return () => {
    throw new SandboxViolation(`a workflow cannot ${what}: ${instead}`);
  };
}

// The engine's own ways out, replaced by clear failures: fetch would reach
// an unlinked HTTP interface (an opaque trap), and event-loop timers are
// neither durable nor recorded.
function installSandbox() {
  globalThis.fetch = forbidden('do network I/O (fetch)', 'call an activity instead');
  globalThis.setTimeout = forbidden('use setTimeout', 'use ctx.sleep or ctx.timer, which are durable');
  globalThis.setInterval = forbidden('use setInterval', 'use ctx.sleep or ctx.timer, which are durable');
}

// Make `fn(ctx, input)` this component's workflow: returns the `run` and
// `query` exports (export them from the component's module).
export function workflow(fn) {
  return {
    run(input) {
      installSandbox();
      let output;
      try {
        output = fn(new Ctx(), decode(input));
      } catch (e) {
        throw { payload: Failure.of(e).toWit() };
      }
      return encode(output);
    },
    query(name, args) {
      const answer = answerQuery(name, args);
      if (answer.tag === 'err') throw { payload: answer.val };
      return answer.val;
    },
  };
}
