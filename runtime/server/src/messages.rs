//! What clients send to executions: signals, queries, cancellation and
//! termination.

use crate::RuntimeError;
use crate::config::{StartWorkflow, WorkflowOutcome};
use crate::runtime::Runtime;
use crate::util::lock;
use weft_core::{Event, EventKind, ExecutionId, InboxMessage, Payload};
use weft_store::{ExecutionRecord, ExecutionStatus, ListFilter};

impl Runtime {
    /// Send signal `name` to the running execution of `workflow_id`.
    /// Returns once the signal is durable in the execution's inbox: it is
    /// delivered (in order with other signals) even if the runtime stops
    /// before the workflow sees it.
    pub async fn signal(
        &self,
        workflow_id: &str,
        name: &str,
        payload: Payload,
    ) -> Result<(), RuntimeError> {
        let record = self.running(workflow_id).await?;
        self.check_payload(&format!("payload of signal `{name}`"), &payload)?;
        self.check_history_room(&record, &format!("signal `{name}`"), payload.len())?;
        let message = InboxMessage::Signal {
            name: name.to_owned(),
            payload,
        };
        let message = InboxMessage::from_caller(self.caller(), message);
        self.send(workflow_id, &record, message).await
    }

    /// Signal the running execution of `req.workflow_id`, starting it first
    /// (with `req`) if it has no running run; one atomic step. Returns the
    /// execution signalled and whether this call started it.
    pub async fn signal_with_start(
        &self,
        req: StartWorkflow,
        name: &str,
        payload: Payload,
    ) -> Result<(ExecutionId, bool), RuntimeError> {
        self.check_payload(&format!("payload of signal `{name}`"), &payload)?;
        let new = self.new_execution(req)?;
        let message = InboxMessage::Signal {
            name: name.to_owned(),
            payload,
        };
        let message = InboxMessage::from_caller(self.caller(), message);
        let (record, entry, started) = self
            .inner
            .services
            .store
            .signal_with_start(new, message)
            .await?;
        if started {
            crate::node::activate(&self.inner, record.key);
        }
        self.inner.registry.deliver(entry);
        Ok((record.id, started))
    }

    /// Ask the running execution of `workflow_id` to cancel. The workflow
    /// sees the request at its next wait (as a `Cancelled` failure) and may
    /// compensate before it returns; its running activities see it through
    /// their context (`is_cancelled`, `heartbeat`).
    /// Its open children are asked to cancel too (whatever their
    /// parent-close policy), and theirs, and so on.
    pub async fn cancel(&self, workflow_id: &str, reason: &str) -> Result<(), RuntimeError> {
        let mut pending = vec![(workflow_id.to_owned(), reason.to_owned())];
        let mut first = true;
        while let Some((id, reason)) = pending.pop() {
            let record = match self.running(&id).await {
                Ok(record) => record,
                // A child may have closed meanwhile; only the target counts.
                Err(_) if !first => continue,
                Err(e) => return Err(e),
            };
            let message = InboxMessage::CancelRequested {
                reason: reason.clone(),
            };
            // The children's cancellations are the caller's doing too.
            let message = InboxMessage::from_caller(self.caller(), message);
            match self.send(&id, &record, message).await {
                Ok(()) => {}
                Err(_) if !first => continue,
                Err(e) => return Err(e),
            }
            first = false;
            self.inner.dispatch.cancel_attempts(record.key);
            if record.children > 0 {
                let history = self
                    .inner
                    .services
                    .store
                    .load_execution(record.key)
                    .await?
                    .history;
                let state = weft_core::ExecutionState::from_history(record.id.clone(), history)
                    .map_err(|e| {
                        RuntimeError::Store(weft_store::StoreError::Corrupt {
                            table: "history",
                            reason: e.to_string(),
                        })
                    })?;
                let why = format!("parent {} cancelled: {reason}", record.id);
                for (child, _) in state.open_children() {
                    pending.push((child, why.clone()));
                }
            }
        }
        Ok(())
    }

    /// Executions (every run, newest first) that pass `filter`: by type,
    /// status, start time and search attributes.
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<ExecutionRecord>, RuntimeError> {
        Ok(self.inner.services.store.list_executions(filter).await?)
    }

    /// How many executions pass `filter` (at most its limit).
    pub async fn count(&self, filter: ListFilter) -> Result<u64, RuntimeError> {
        Ok(self.inner.services.store.count_executions(filter).await?)
    }

    /// End the running execution of `workflow_id` now: no workflow code
    /// runs, its pending activities are abandoned (running ones are told
    /// to stop), and `ExecutionTerminated` closes its history.
    pub async fn terminate(&self, workflow_id: &str, reason: &str) -> Result<(), RuntimeError> {
        let now = self.inner.services.clock.now();
        let events = |_: &ExecutionRecord| {
            vec![
                Event::new(
                    now,
                    EventKind::ExecutionTerminated {
                        reason: reason.to_owned(),
                    },
                )
                .by(self.caller.clone()),
            ]
        };
        let record = self
            .append(workflow_id, events, Some(ExecutionStatus::Terminated))
            .await?;
        self.inner.dispatch.cancel_attempts(record.key);
        self.inner.registry.closed(
            record.key,
            Some(WorkflowOutcome::Terminated(reason.to_owned())),
        );
        Ok(())
    }

    /// Ask the latest run of `workflow_id` query `name` with `args` (JSON
    /// for the SDKs). Answered from the committed state, running or
    /// closed, by replaying its history: nothing is recorded, and the
    /// execution, cached or not, is untouched.
    pub async fn query(
        &self,
        workflow_id: &str,
        name: &str,
        args: Payload,
    ) -> Result<Payload, RuntimeError> {
        self.check_payload(&format!("arguments of query `{name}`"), &args)?;
        let record = self.describe(workflow_id).await?;
        if record.erased_at().is_some() {
            return Err(RuntimeError::Erased(workflow_id.to_owned()));
        }
        self.inner
            .services
            .ensure_component(record.component)
            .await?;
        let history = self
            .inner
            .services
            .store
            .load_execution(record.key)
            .await?
            .history;
        let answer = self
            .inner
            .services
            .engine
            .query(record.id, history, name, args)
            .await?;
        answer.map_err(RuntimeError::QueryFailed)
    }

    /// Send update `name` with `args` to the running execution of
    /// `workflow_id` and wait for the workflow's answer. The workflow's
    /// validator for the update (if it registered one) checks the request
    /// first, against the execution's committed state: a rejection returns
    /// [`RuntimeError::UpdateRejected`] and records nothing. An accepted
    /// request is recorded, delivered in order like a signal, and answered
    /// when the workflow's reply is committed.
    pub async fn update(
        &self,
        workflow_id: &str,
        name: &str,
        args: Payload,
    ) -> Result<Payload, RuntimeError> {
        self.check_payload(&format!("arguments of update `{name}`"), &args)?;
        let record = self.running(workflow_id).await?;
        self.check_history_room(&record, &format!("update `{name}`"), args.len())?;
        let validator = format!("__weft_update_validator/{name}");
        match self.query(workflow_id, &validator, args.clone()).await {
            Ok(_) => {}
            // No validator registered: every request is accepted.
            Err(RuntimeError::QueryFailed(f)) if f.error_type == "UnknownQuery" => {}
            Err(RuntimeError::QueryFailed(f)) => return Err(RuntimeError::UpdateRejected(f)),
            Err(e) => return Err(e),
        }
        let update_id = crate::util::random_hex::<12>("an update id")?;
        // Listen before sending, so a fast answer is not missed.
        let (tx, rx) = tokio::sync::oneshot::channel();
        lock(&self.inner.registry.update_waiters).insert((record.key, update_id.clone()), tx);
        let message = InboxMessage::Update {
            update_id: update_id.clone(),
            name: name.to_owned(),
            args,
        };
        let message = InboxMessage::from_caller(self.caller(), message);
        if let Err(e) = self.send(workflow_id, &record, message).await {
            lock(&self.inner.registry.update_waiters).remove(&(record.key, update_id));
            return Err(e);
        }
        let mut shutdown = self.inner.services.shutdown.clone();
        let answer = tokio::select! {
            answer = rx => answer.ok(),
            _ = shutdown.wait_for(|s| *s) => None,
        };
        match answer {
            Some(Ok(value)) => Ok(value),
            Some(Err(failure)) => Err(RuntimeError::UpdateFailed(failure)),
            None => Err(RuntimeError::ShuttingDown),
        }
    }

    async fn running(&self, workflow_id: &str) -> Result<ExecutionRecord, RuntimeError> {
        let record = self.describe(workflow_id).await?;
        if record.status != ExecutionStatus::Running {
            return Err(RuntimeError::NotRunning(workflow_id.to_owned()));
        }
        Ok(record)
    }

    async fn send(
        &self,
        workflow_id: &str,
        record: &ExecutionRecord,
        message: InboxMessage,
    ) -> Result<(), RuntimeError> {
        match self.inner.services.store.send(record.key, message).await? {
            Some(entry) => {
                self.inner.registry.deliver(entry);
                Ok(())
            }
            // Closed between the lookup and the write.
            None => Err(RuntimeError::NotRunning(workflow_id.to_owned())),
        }
    }

    /// Refuse a message to an execution whose history has no room for it:
    /// by count, its events, plus one for each message already waiting in
    /// its inbox, plus this one, plus its closing event; by bytes, its size
    /// as of its last workflow task here, plus this payload, plus room to
    /// close. (A message that passes this but still does not fit, once
    /// those waiting ahead of it are in, terminates the execution when it
    /// is delivered, naming the limit.)
    fn check_history_room(
        &self,
        record: &ExecutionRecord,
        what: &str,
        payload_bytes: usize,
    ) -> Result<(), RuntimeError> {
        let limits = self.inner.services.engine.config().limits;
        let waiting = record.next_inbox.saturating_sub(record.consumed_inbox);
        let events = usize::try_from(record.next_event + waiting).unwrap_or(usize::MAX);
        // Unknown (not run here since the start): the count alone decides.
        let bytes = lock(&self.inner.registry.history_bytes)
            .get(&record.key)
            .copied()
            .unwrap_or(0);
        let more = (1, payload_bytes as u64);
        if let Some(reason) =
            limits.history_room((events, bytes), more, weft_core::HISTORY_CLOSING_RESERVE)
        {
            return Err(RuntimeError::HistoryFull(format!(
                "execution `{}` cannot take {what} ({waiting} message(s) are waiting to enter \
                 its history already): {reason}",
                record.id.workflow_id
            )));
        }
        Ok(())
    }

    fn check_payload(&self, what: &str, payload: &[u8]) -> Result<(), RuntimeError> {
        self.inner
            .services
            .engine
            .config()
            .limits
            .check_payload(what, payload)
            .map_err(RuntimeError::PayloadTooLarge)
    }
}
