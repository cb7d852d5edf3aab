//! Who is calling, and what they may do.
//!
//! Every call is authenticated once, by [`Auth::authenticate`], into a
//! [`Principal`]: an identity and its [`Grant`]s. Three kinds of
//! credential: an API key or a JWT in `authorization: Bearer ...`
//! metadata, or a client certificate (mutual TLS) whose DNS name the
//! configuration maps to grants. With authentication off (`weft dev`),
//! every call is the anonymous principal with every grant.
//!
//! What each RPC needs is one table, in `guard.rs`; [`Principal::check`]
//! decides it.
//!
//! A grant is `namespace:role` or `namespace:worker:queue`, with `*` for
//! every namespace (a grant on `*` is also a system-wide one: namespaces,
//! keys, the audit log). Roles nest: `admin` has `writer`, `reader` and
//! `worker`; `writer` has `reader`. `worker` alone reads nothing: it polls
//! and reports on its queues (all of the namespace's, without `:queue`).
//! `unmask` is apart: no role has it, `admin` included, and it makes no
//! call by itself; with it, a caller sees the fields a masking policy
//! hides (`weft_core::mask`) as they are.

mod grants;
mod jwt;
mod keys;

pub(crate) use grants::Need;
pub use grants::{Grant, Principal, Role, parse_grants};
pub use jwt::JwtConfig;
pub use keys::{ApiKeys, NewApiKey, create_api_key};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tonic::{Request, Status};
use weft_core::Timestamp;

/// How callers authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Nobody authenticates: every call may do everything (`weft dev`).
    None,
    /// API keys (and mapped client certificates).
    #[default]
    ApiKey,
    /// JWTs, and API keys too (so that tools and the first admin need no
    /// identity provider); and mapped client certificates.
    Jwt,
}

impl std::str::FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(AuthMode::None),
            "api-key" => Ok(AuthMode::ApiKey),
            "jwt" => Ok(AuthMode::Jwt),
            other => Err(format!(
                "auth mode `{other}` is not one of none, api-key, jwt"
            )),
        }
    }
}

impl std::fmt::Display for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthMode::None => "none",
            AuthMode::ApiKey => "api-key",
            AuthMode::Jwt => "jwt",
        })
    }
}

/// Access control's configuration.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// How callers authenticate.
    pub mode: AuthMode,
    /// JWT verification, for [`AuthMode::Jwt`].
    pub jwt: Option<JwtConfig>,
    /// Client certificate DNS name -> grants: a client presenting a
    /// certificate for that name (under mutual TLS) is `cert:<name>` with
    /// those grants, unless it also sends a bearer credential.
    pub certificates: BTreeMap<String, Vec<String>>,
}

/// Most certificates remembered (by their bytes' hash) with the identity
/// they map to.
const CERTIFICATE_CACHE: usize = 4096;

/// The authenticator of a server.
pub struct Auth {
    mode: AuthMode,
    keys: ApiKeys,
    jwt: Option<jwt::JwtVerifier>,
    certificates: Vec<(String, Vec<Grant>)>,
    /// Certificate hash -> the principal it maps to (if any).
    certificate_cache: Mutex<HashMap<[u8; 32], Option<Arc<Principal>>>>,
    anonymous: Arc<Principal>,
}

impl Auth {
    /// No authentication: everyone is [`Principal::anonymous`].
    pub fn none() -> Arc<Auth> {
        Arc::new(Auth {
            mode: AuthMode::None,
            keys: ApiKeys::empty(),
            jwt: None,
            certificates: Vec::new(),
            certificate_cache: Mutex::new(HashMap::new()),
            anonymous: Arc::new(Principal::anonymous()),
        })
    }

    /// The authenticator `config` describes, with the API keys of
    /// `runtime`'s store.
    pub async fn new(
        config: AuthConfig,
        runtime: &weft_server::Runtime,
    ) -> Result<Arc<Auth>, String> {
        if config.mode == AuthMode::None {
            return Ok(Auth::none());
        }
        let jwt = match (config.mode, config.jwt) {
            (AuthMode::Jwt, Some(jwt)) => Some(jwt::JwtVerifier::new(jwt)?),
            (AuthMode::Jwt, None) => {
                return Err("auth mode jwt needs a JWKS file or an HMAC secret".into());
            }
            _ => None,
        };
        let mut certificates = Vec::new();
        for (name, grants) in config.certificates {
            let grants = parse_grants(&grants).map_err(|e| format!("certificate `{name}`: {e}"))?;
            tokio_rustls::rustls::pki_types::DnsName::try_from(name.as_str())
                .map_err(|_| format!("certificate name `{name}` is not a DNS name"))?;
            certificates.push((name, grants));
        }
        let keys = ApiKeys::load(runtime)
            .await
            .map_err(|e| format!("cannot read the API keys: {e}"))?;
        Ok(Arc::new(Auth {
            mode: config.mode,
            keys,
            jwt,
            certificates,
            certificate_cache: Mutex::new(HashMap::new()),
            anonymous: Arc::new(Principal::anonymous()),
        }))
    }

    /// The API keys (for the key management RPCs).
    pub fn keys(&self) -> &ApiKeys {
        &self.keys
    }

    /// Who sent `request`: from its bearer credential if it has one (a bad
    /// one is refused even with a good certificate), else from its client
    /// certificate. `now` is for API key expiry.
    pub(crate) fn authenticate<T>(
        &self,
        request: &Request<T>,
        now: Timestamp,
    ) -> Result<Arc<Principal>, Status> {
        if self.mode == AuthMode::None {
            return Ok(self.anonymous.clone());
        }
        if let Some(value) = request.metadata().get("authorization") {
            let value = value.to_str().map_err(|_| {
                Status::unauthenticated("the authorization metadata is not readable text")
            })?;
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or_else(|| {
                    Status::unauthenticated(
                        "the authorization metadata must be `Bearer <API key or JWT>`",
                    )
                })?
                .trim();
            if keys::looks_like_api_key(token) {
                return self
                    .keys
                    .verify(token, now)
                    .map_err(Status::unauthenticated);
            }
            return match &self.jwt {
                Some(jwt) => jwt.verify(token).map_err(Status::unauthenticated),
                None => Err(Status::unauthenticated(
                    "the bearer credential is not a weft API key (`weft_...`), and this \
                     server does not take JWTs (auth mode api-key)",
                )),
            };
        }
        if let Some(principal) = self.certificate_principal(request) {
            return Ok(principal);
        }
        Err(Status::unauthenticated(
            "no credentials: send `authorization: Bearer <API key>` (the CLI's --api-key or \
             WEFT_API_KEY)",
        ))
    }

    /// The principal the caller's client certificate maps to, if any.
    fn certificate_principal<T>(&self, request: &Request<T>) -> Option<Arc<Principal>> {
        if self.certificates.is_empty() {
            return None;
        }
        let certs = request.peer_certs()?;
        let leaf = certs.first()?;
        let hash = *blake3::hash(leaf.as_ref()).as_bytes();
        let mut cache = self
            .certificate_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(known) = cache.get(&hash) {
            return known.clone();
        }
        let mapped = webpki::EndEntityCert::try_from(leaf).ok().and_then(|cert| {
            self.certificates.iter().find_map(|(name, grants)| {
                let server_name =
                    tokio_rustls::rustls::pki_types::ServerName::try_from(name.as_str()).ok()?;
                cert.verify_is_valid_for_subject_name(&server_name).ok()?;
                Some(Arc::new(Principal {
                    identity: format!("cert:{name}"),
                    method: "certificate",
                    grants: grants.clone(),
                }))
            })
        });
        if cache.len() >= CERTIFICATE_CACHE {
            cache.clear();
        }
        cache.insert(hash, mapped.clone());
        mapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(grants: &[&str]) -> Principal {
        Principal {
            identity: "key:t (test)".into(),
            method: "api-key",
            grants: grants.iter().map(|g| g.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn roles_nest_and_stay_in_their_namespace() {
        let writer = principal(&["payments:writer"]);
        assert!(
            writer
                .check(Need::In(Role::Reader), "payments", None)
                .is_ok()
        );
        assert!(
            writer
                .check(Need::In(Role::Writer), "payments", None)
                .is_ok()
        );
        assert!(
            writer
                .check(Need::In(Role::Admin), "payments", None)
                .is_err()
        );
        assert!(writer.check(Need::In(Role::Reader), "loans", None).is_err());
        assert!(writer.check(Need::Queue, "payments", Some("q")).is_err());
        assert!(writer.check(Need::System(Role::Reader), "", None).is_err());

        let e = principal(&["payments:reader"])
            .check(Need::In(Role::Writer), "payments", None)
            .unwrap_err();
        assert!(
            e.contains("`payments:writer`") && e.contains("payments:reader"),
            "{e}"
        );

        let admin = principal(&["*:admin"]);
        assert!(admin.check(Need::System(Role::Admin), "", None).is_ok());
        assert!(admin.check(Need::Queue, "loans", Some("q")).is_ok());
        // The default namespace is "" on the wire.
        let default = principal(&["default:writer"]);
        assert!(default.check(Need::In(Role::Writer), "", None).is_ok());
    }

    #[test]
    fn a_worker_grant_names_its_queues() {
        let worker = principal(&["payments:worker:payments-q"]);
        assert!(
            worker
                .check(Need::Queue, "payments", Some("payments-q"))
                .is_ok()
        );
        assert!(
            worker
                .check(Need::Queue, "payments", Some("other"))
                .is_err()
        );
        assert!(
            worker
                .check(Need::Queue, "loans", Some("payments-q"))
                .is_err()
        );
        assert!(
            worker
                .check(Need::In(Role::Reader), "payments", None)
                .is_err()
        );
        let any_queue = principal(&["payments:worker"]);
        assert!(any_queue.check(Need::Queue, "payments", Some("x")).is_ok());
    }

    #[test]
    fn bad_grants_are_refused_with_the_reason() {
        for (bad, why) in [
            ("payments", "is not `namespace:role`"),
            ("payments:owner", "role `owner`"),
            ("Pay ments:reader", "not valid"),
            ("payments:writer:q", "only the worker role"),
            ("payments:worker:", "queue is empty"),
        ] {
            let e = bad.parse::<Grant>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        for good in ["*:admin", "default:reader", "loans:worker:loan-checks"] {
            assert_eq!(good.parse::<Grant>().unwrap().to_string(), good);
        }
    }
}
