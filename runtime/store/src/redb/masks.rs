//! Masking policies by workflow type: what `weft component deploy --mask`
//! and a component's `weft:mask` section declared, kept so a restarted
//! server masks the same fields. The store only keeps them; what they
//! mean is `weft_core::mask`.

use super::rows::{decode_row, encode_row};
use super::txn::Txn;
use crate::StoreError;
use redb::{ReadTransaction, ReadableTable, TableDefinition};
use weft_core::mask::MaskPolicy;

/// Workflow type (qualified) -> `MaskPolicy` (versioned row).
pub(crate) const MASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("mask_policies");

/// Replace `workflow_type`'s policy; an empty one removes the row.
pub(crate) fn put(
    txn: &Txn<'_>,
    workflow_type: &str,
    policy: &MaskPolicy,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(MASKS)?;
    if policy.is_empty() {
        table.remove(workflow_type)?;
    } else {
        table.insert(workflow_type, encode_row(policy)?.as_slice())?;
    }
    Ok(())
}

/// Every stored policy, by workflow type.
pub(crate) fn all(txn: &ReadTransaction) -> Result<Vec<(String, MaskPolicy)>, StoreError> {
    let table = txn.open_table(MASKS)?;
    let mut out = Vec::new();
    for row in table.iter()? {
        let (key, value) = row?;
        out.push((
            key.value().to_owned(),
            decode_row("mask_policies", value.value())?,
        ));
    }
    Ok(out)
}
