//! Grants and principals: what a caller may do, and the check of one call
//! against it.

use weft_core::Caller;
use weft_core::namespace::{DEFAULT_NAMESPACE, check_namespace};

/// A role in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Describe, list, show, query.
    Reader,
    /// Start, signal, update, cancel, terminate, reset.
    Writer,
    /// Poll, complete, fail, heartbeat, on its queues.
    Worker,
    /// Deploy, upgrade, fail a parked execution; namespaces and keys
    /// (on `*`).
    Admin,
    /// See masked fields as they are (payloads, failures, memo): what a
    /// caller without it is shown with `***` in their place. Needed by no
    /// call; given by no other role, `admin` included, so that who may
    /// read personal data is decided apart from who runs the system (an
    /// auditor holds `reader` and `unmask`, an operator `admin` alone).
    Unmask,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Worker => "worker",
            Role::Admin => "admin",
            Role::Unmask => "unmask",
        }
    }

    /// Whether holding `self` gives `needed`.
    fn gives(self, needed: Role) -> bool {
        match self {
            Role::Admin => needed != Role::Unmask,
            Role::Unmask => needed == Role::Unmask,
            Role::Writer => matches!(needed, Role::Writer | Role::Reader),
            Role::Reader => needed == Role::Reader,
            Role::Worker => needed == Role::Worker,
        }
    }
}

/// One permission: a role in a namespace (or all), for a worker maybe
/// limited to one queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    /// `None`: every namespace, and system-wide.
    namespace: Option<String>,
    role: Role,
    /// For a worker: the one queue it may take tasks from.
    queue: Option<String>,
}

impl std::str::FromStr for Grant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.splitn(3, ':');
        let (Some(ns), Some(role)) = (parts.next(), parts.next()) else {
            return Err(format!(
                "grant `{s}` is not `namespace:role` or `namespace:worker:queue` \
                 (roles: reader, writer, worker, admin, unmask; `*` for every namespace)"
            ));
        };
        let namespace = match ns {
            "*" => None,
            ns => {
                if ns != DEFAULT_NAMESPACE {
                    check_namespace(ns).map_err(|e| format!("grant `{s}`: {e}"))?;
                }
                Some(ns.to_owned())
            }
        };
        let role = match role {
            "reader" => Role::Reader,
            "writer" => Role::Writer,
            "worker" => Role::Worker,
            "admin" => Role::Admin,
            "unmask" => Role::Unmask,
            other => {
                return Err(format!(
                    "grant `{s}`: role `{other}` is not one of reader, writer, worker, admin, \
                     unmask"
                ));
            }
        };
        let queue = parts.next().map(str::to_owned);
        match &queue {
            Some(_) if role != Role::Worker => {
                return Err(format!("grant `{s}`: only the worker role names a queue"));
            }
            Some(q) if q.is_empty() => return Err(format!("grant `{s}`: the queue is empty")),
            _ => {}
        }
        Ok(Grant {
            namespace,
            role,
            queue,
        })
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = self.namespace.as_deref().unwrap_or("*");
        write!(f, "{ns}:{}", self.role.name())?;
        if let Some(queue) = &self.queue {
            write!(f, ":{queue}")?;
        }
        Ok(())
    }
}

impl Grant {
    fn covers(&self, namespace: &str, role: Role, queue: Option<&str>) -> bool {
        let in_namespace = self.namespace.as_deref().is_none_or(|ns| ns == namespace);
        let on_queue = match (&self.queue, queue) {
            (Some(mine), Some(wanted)) => mine == wanted,
            (Some(_), None) => false,
            (None, _) => true,
        };
        in_namespace && self.role.gives(role) && on_queue
    }
}

/// Parse grants, naming the first bad one.
pub fn parse_grants(grants: &[String]) -> Result<Vec<Grant>, String> {
    grants.iter().map(|g| g.parse()).collect()
}

/// What a call needs (the `guard.rs` table's column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Nothing: anyone, with or without credentials (health).
    Public,
    /// Any authenticated caller (who am I).
    Authenticated,
    /// A role on every namespace (`*:role`).
    System(Role),
    /// A role in the call's namespace.
    In(Role),
    /// The worker role on the call's queue.
    Queue,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who: `key:<id> (<name>)`, `jwt:<subject>`, `cert:<name>`,
    /// `anonymous`.
    pub identity: String,
    /// How it authenticated: `api-key`, `jwt`, `certificate`, `none`.
    pub method: &'static str,
    /// What it may do.
    pub grants: Vec<Grant>,
}

impl Principal {
    /// The caller when authentication is off: may do everything, and
    /// sees masked fields (whoever reaches a server without
    /// authentication could read its database as well; the logs stay
    /// masked either way).
    pub fn anonymous() -> Principal {
        let everywhere = |role| Grant {
            namespace: None,
            role,
            queue: None,
        };
        Principal {
            identity: "anonymous".into(),
            method: "none",
            grants: vec![everywhere(Role::Admin), everywhere(Role::Unmask)],
        }
    }

    /// Whether this principal sees the masked fields of `namespace`'s
    /// executions (empty: the default namespace) as they are.
    pub fn may_unmask(&self, namespace: &str) -> bool {
        self.check(Need::In(Role::Unmask), namespace, None).is_ok()
    }

    /// The caller, as history and the audit log record it.
    pub fn caller(&self) -> Caller {
        Caller::new(self.identity.clone())
    }

    /// Whether this principal may make a call needing `need` in
    /// `namespace` (empty: the default one) on `queue`; if not, why, naming
    /// the missing grant.
    pub(crate) fn check(
        &self,
        need: Need,
        namespace: &str,
        queue: Option<&str>,
    ) -> Result<(), String> {
        let namespace = if namespace.is_empty() {
            DEFAULT_NAMESPACE
        } else {
            namespace
        };
        let (allowed, missing) = match need {
            Need::Public | Need::Authenticated => (true, String::new()),
            Need::System(role) => (
                self.grants
                    .iter()
                    .any(|g| g.namespace.is_none() && g.role.gives(role)),
                format!("*:{}", role.name()),
            ),
            Need::In(role) => (
                self.grants.iter().any(|g| g.covers(namespace, role, None)),
                format!("{namespace}:{}", role.name()),
            ),
            Need::Queue => {
                let queue = queue.unwrap_or_default();
                (
                    self.grants
                        .iter()
                        .any(|g| g.covers(namespace, Role::Worker, Some(queue))),
                    format!("{namespace}:worker:{queue}"),
                )
            }
        };
        if allowed {
            return Ok(());
        }
        let has = if self.grants.is_empty() {
            "none".to_owned()
        } else {
            self.grants
                .iter()
                .map(Grant::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(format!(
            "{} lacks the grant `{missing}` this call needs (it has: {has})",
            self.identity
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(grants: &[&str]) -> Principal {
        let grants: Vec<String> = grants.iter().map(|g| (*g).to_owned()).collect();
        Principal {
            identity: "t".into(),
            method: "api-key",
            grants: parse_grants(&grants).unwrap(),
        }
    }

    #[test]
    fn unmask_is_a_grant_of_its_own_that_admin_does_not_give() {
        assert!(!principal(&["*:admin"]).may_unmask("default"));
        assert!(!principal(&["default:writer"]).may_unmask("default"));
        let auditor = principal(&["pay:reader", "pay:unmask"]);
        assert!(auditor.may_unmask("pay"));
        assert!(!auditor.may_unmask("default"), "only in its namespace");
        assert!(principal(&["*:unmask"]).may_unmask("anything"));
        assert!(
            principal(&["default:unmask"]).may_unmask(""),
            "empty is the default"
        );
        // Unmask alone makes no call: it is no reader.
        let only = principal(&["pay:unmask"]);
        assert!(only.check(Need::In(Role::Reader), "pay", None).is_err());
        assert!(Principal::anonymous().may_unmask("default"));
    }

    #[test]
    fn unmask_parses_prints_and_takes_no_queue() {
        let grant: Grant = "pay:unmask".parse().unwrap();
        assert_eq!(grant.to_string(), "pay:unmask");
        assert!("pay:unmask:q".parse::<Grant>().is_err());
        let e = "pay:unmasked".parse::<Grant>().unwrap_err();
        assert!(e.contains("unmask"), "{e}");
    }
}
