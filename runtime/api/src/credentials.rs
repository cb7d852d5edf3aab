//! The client side of authentication: the bearer credential (an API key
//! or a JWT) every call of a client carries.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::Channel;

/// Adds `authorization: Bearer <credential>` to every request (nothing
/// without a credential). Never printed: its `Debug` hides the value.
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// Send `credential` (an API key or a JWT) with every call; `None`
    /// sends none.
    pub fn new(credential: Option<&str>) -> Result<Bearer, String> {
        let Some(credential) = credential.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(Bearer(None));
        };
        let mut value: MetadataValue<Ascii> = format!("Bearer {credential}")
            .parse()
            .map_err(|_| "the API key or JWT has characters a header cannot carry".to_owned())?;
        value.set_sensitive(true);
        Ok(Bearer(Some(value)))
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Bearer(<redacted>)"
        } else {
            "Bearer(none)"
        })
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A client of the API that sends a credential with every call.
pub type Client = crate::pb::weft_client::WeftClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

/// A [`Client`] on `channel`, sending `bearer`.
pub fn client(channel: Channel, bearer: Bearer) -> Client {
    crate::pb::weft_client::WeftClient::with_interceptor(channel, bearer)
}
