//! Namespaces: isolated sets of workflow ids, task queues and visibility.
//!
//! Inside the runtime a namespaced name (workflow id or task queue) is
//! `<namespace>::<name>`; the default namespace's names carry no prefix,
//! so the in-process API and existing data need no namespace. Namespace
//! names are `[a-z0-9._-]{1,64}` and client-given names may not contain
//! `::`, so the mapping is unambiguous.

/// The namespace of names without a prefix.
pub const DEFAULT_NAMESPACE: &str = "default";

const SEPARATOR: &str = "::";

/// Why a namespace or a name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

/// Check a namespace name.
pub fn check_namespace(namespace: &str) -> Result<(), NameError> {
    let ok = !namespace.is_empty()
        && namespace.len() <= 64
        && namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(NameError(format!(
            "namespace `{namespace}` is not valid: use 1 to 64 of a-z, 0-9, `.`, `_`, `-`"
        )))
    }
}

/// The runtime's name for `name` (a workflow id or task queue) in
/// `namespace` (empty means the default one).
pub fn qualify(namespace: &str, what: &str, name: &str) -> Result<String, NameError> {
    if name.is_empty() || name.len() > 1_000 {
        return Err(NameError(format!("{what} must be 1 to 1000 bytes long")));
    }
    if name.contains(SEPARATOR) || name.chars().any(char::is_control) {
        return Err(NameError(format!(
            "{what} `{}` may not contain `::` or control characters",
            name.escape_debug()
        )));
    }
    if namespace.is_empty() || namespace == DEFAULT_NAMESPACE {
        return Ok(name.to_owned());
    }
    check_namespace(namespace)?;
    Ok(format!("{namespace}{SEPARATOR}{name}"))
}

/// Split a runtime name into its namespace and the client's name.
pub fn split(qualified: &str) -> (&str, &str) {
    match qualified.split_once(SEPARATOR) {
        Some((namespace, name)) => (namespace, name),
        None => (DEFAULT_NAMESPACE, qualified),
    }
}

/// The namespace a runtime name belongs to.
pub fn namespace_of(qualified: &str) -> &str {
    split(qualified).0
}

/// `name` (e.g. a child's workflow id chosen by its parent) in the same
/// namespace as `sibling`, unless it is already qualified.
pub fn same_namespace(sibling: &str, name: &str) -> String {
    match namespace_of(sibling) {
        DEFAULT_NAMESPACE => name.to_owned(),
        _ if name.contains(SEPARATOR) => name.to_owned(),
        namespace => format!("{namespace}{SEPARATOR}{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_cannot_collide() {
        assert_eq!(qualify("", "workflow id", "order-1").unwrap(), "order-1");
        assert_eq!(
            qualify("default", "workflow id", "order-1").unwrap(),
            "order-1"
        );
        let q = qualify("payments", "workflow id", "order-1").unwrap();
        assert_eq!(q, "payments::order-1");
        assert_eq!(split(&q), ("payments", "order-1"));
        assert_eq!(split("order-1"), ("default", "order-1"));
        // A default-namespace id cannot pose as a namespaced one.
        assert!(qualify("", "workflow id", "payments::order-1").is_err());
        assert!(qualify("Pay Ments", "workflow id", "x").is_err());
        assert!(qualify("p", "workflow id", "").is_err());
        assert!(qualify("p", "workflow id", "a\nb").is_err());
        assert_eq!(
            same_namespace(&q, "order-1/account"),
            "payments::order-1/account"
        );
        assert_eq!(same_namespace("order-1", "acct"), "acct");
    }
}
