//! What the API's access control keeps in the store: API keys and the
//! audit log. The checks themselves live at the edge (`weft-api`'s `auth`);
//! the runtime only stores and reads their records.

use crate::{Runtime, RuntimeError};
use weft_core::Timestamp;
use weft_store::{ApiKeyRecord, AuditFilter, AuditRecord};

impl Runtime {
    /// Create or replace an API key record; durable on return.
    pub async fn put_api_key(&self, key: ApiKeyRecord) -> Result<(), RuntimeError> {
        Ok(self.inner.services.store.put_api_key(key).await?)
    }

    /// Every API key record.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, RuntimeError> {
        Ok(self.inner.services.store.api_keys().await?)
    }

    /// Append entries to the audit log; durable on return.
    pub async fn append_audit(&self, entries: Vec<AuditRecord>) -> Result<(), RuntimeError> {
        Ok(self.inner.services.store.append_audit(entries).await?)
    }

    /// Audit entries in time order, per `filter`.
    pub async fn audit_log(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, RuntimeError> {
        Ok(self.inner.services.store.audit_log(filter).await?)
    }

    /// The runtime's clock, now: the time audit entries and keys are
    /// stamped with.
    pub fn now(&self) -> Timestamp {
        self.inner.services.clock.now()
    }
}
