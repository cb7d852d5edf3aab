//! JWTs from an identity provider: verified against a JWKS file (RSA,
//! EC or Ed25519 keys, chosen by the token's `kid`) or an HMAC secret;
//! issuer, audience and expiry checked; grants from a claim holding
//! `namespace:role` strings (Temporal's `permissions: ["payments:writer"]`).

use super::grants::{Principal, parse_grants};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How JWTs are verified.
#[derive(Debug, Clone, Default)]
pub struct JwtConfig {
    /// A JWKS file (the identity provider's public keys).
    pub jwks_file: Option<PathBuf>,
    /// A file holding an HMAC secret (HS256, HS384, HS512).
    pub hmac_secret_file: Option<PathBuf>,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry.
    pub audience: String,
    /// The claim with the grants; `permissions` if empty.
    pub permissions_claim: String,
}

enum Keys {
    Jwks(Vec<(Option<String>, Algorithm, DecodingKey)>),
    Hmac(DecodingKey),
}

/// Most verified tokens remembered (a token is verified once, then looked
/// up until it expires).
const CACHE: usize = 10_000;

pub(crate) struct JwtVerifier {
    keys: Keys,
    issuer: String,
    audience: String,
    claim: String,
    /// Token -> its principal and expiry (seconds since the epoch).
    verified: Mutex<HashMap<String, (Arc<Principal>, u64)>>,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl JwtVerifier {
    pub(crate) fn new(config: JwtConfig) -> Result<JwtVerifier, String> {
        if config.issuer.is_empty() || config.audience.is_empty() {
            return Err("JWT verification needs an issuer and an audience".into());
        }
        let keys = match (&config.jwks_file, &config.hmac_secret_file) {
            (Some(path), None) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read the JWKS file {}: {e}", path.display()))?;
                let set: JwkSet = serde_json::from_str(&text).map_err(|e| {
                    format!("the JWKS file {} is not a JWK set: {e}", path.display())
                })?;
                let mut keys = Vec::new();
                for jwk in &set.keys {
                    let key = DecodingKey::from_jwk(jwk)
                        .map_err(|e| format!("a key of {} is not usable: {e}", path.display()))?;
                    let alg = match jwk.common.key_algorithm {
                        Some(alg) => alg.to_string().parse().map_err(|_| {
                            format!(
                                "a key of {} has an algorithm weft does not take",
                                path.display()
                            )
                        })?,
                        None => default_algorithm(&key),
                    };
                    keys.push((jwk.common.key_id.clone(), alg, key));
                }
                if keys.is_empty() {
                    return Err(format!("the JWKS file {} has no keys", path.display()));
                }
                Keys::Jwks(keys)
            }
            (None, Some(path)) => {
                let secret = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
                    format!("cannot read the JWT secret file {}: {e}", path.display())
                })?);
                let secret = secret.trim_ascii();
                if secret.len() < 32 {
                    return Err(format!(
                        "the JWT secret in {} is shorter than 32 bytes",
                        path.display()
                    ));
                }
                Keys::Hmac(DecodingKey::from_secret(secret).map_err(|e| e.to_string())?)
            }
            _ => {
                return Err(
                    "JWT verification needs one of a JWKS file or an HMAC secret file".into(),
                );
            }
        };
        Ok(JwtVerifier {
            keys,
            issuer: config.issuer,
            audience: config.audience,
            claim: if config.permissions_claim.is_empty() {
                "permissions".into()
            } else {
                config.permissions_claim
            },
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn verify(&self, token: &str) -> Result<Arc<Principal>, String> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((principal, exp)) = verified.get(token) {
            if *exp > now {
                return Ok(principal.clone());
            }
            verified.remove(token);
        }
        drop(verified);
        let (principal, exp) = self.check(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= CACHE {
            verified.retain(|_, (_, exp)| *exp > now);
            if verified.len() >= CACHE {
                verified.clear();
            }
        }
        verified.insert(token.to_owned(), (principal.clone(), exp));
        Ok(principal)
    }

    fn check(&self, token: &str) -> Result<(Arc<Principal>, u64), String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| format!("the bearer credential is not a JWT: {e}"))?;
        let (alg, key) = match &self.keys {
            Keys::Hmac(key) => {
                if !matches!(
                    header.alg,
                    Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                ) {
                    return Err(format!(
                        "JWT refused: algorithm {:?} where this server takes HMAC",
                        header.alg
                    ));
                }
                (header.alg, key)
            }
            Keys::Jwks(keys) => {
                let found = keys.iter().find(|(kid, _, _)| match &header.kid {
                    Some(wanted) => kid.as_deref() == Some(wanted.as_str()),
                    None => keys.len() == 1,
                });
                let Some((_, alg, key)) = found else {
                    return Err(format!(
                        "JWT refused: no key {} in the JWKS",
                        header.kid.as_deref().unwrap_or("(the token names none)")
                    ));
                };
                (*alg, key)
            }
        };
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| format!("JWT refused: {e}"))?;
        let claims = data.claims;
        let grants: Vec<String> = match claims.rest.get(&self.claim) {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let grants = parse_grants(&grants)
            .map_err(|e| format!("JWT refused: claim `{}`: {e}", self.claim))?;
        let principal = Principal {
            identity: format!("jwt:{}", claims.sub),
            method: "jwt",
            grants,
        };
        Ok((Arc::new(principal), claims.exp))
    }
}

/// The algorithm a JWK without an `alg` is used with.
fn default_algorithm(key: &DecodingKey) -> Algorithm {
    match key.family() {
        jsonwebtoken::AlgorithmFamily::Ec => Algorithm::ES256,
        jsonwebtoken::AlgorithmFamily::Ed => Algorithm::EdDSA,
        jsonwebtoken::AlgorithmFamily::Hmac => Algorithm::HS256,
        _ => Algorithm::RS256,
    }
}
