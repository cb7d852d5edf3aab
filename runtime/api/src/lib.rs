//! weft's gRPC API: the `weft.v1.Weft` service over a [`Runtime`], the
//! server (with reflection), and the generated client for the CLI.
//!
//! Names are namespaced here, at the edge: a request's workflow id and
//! task queue become the runtime's `<namespace>::<name>` (see
//! `weft_core::namespace`), and responses carry the client's names.

pub mod auth;
mod convert;
mod credentials;
mod guard;
mod masking;
mod proofs;
mod serve;
mod service;
mod tls;

pub use auth::{Auth, AuthConfig, AuthMode};
pub use convert::api_key;
pub use credentials::{Bearer, Client, client};
pub use proofs::audited_history;
pub use serve::serve;
pub use tls::{ClientTls, ServerTls, TlsError, TlsFiles};

/// Generated protobuf types, client and server.
pub mod pb {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("weft.v1");

    /// The encoded file descriptor set (for server reflection).
    pub const DESCRIPTOR: &[u8] = tonic::include_file_descriptor_set!("weft_descriptor");
}
