/// Errors of the engine boundary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The bytes are not a valid weft workflow component.
    #[error("invalid workflow component: {0}")]
    InvalidModule(String),
    /// wasmtime could not be configured or instantiate the component.
    #[error("wasm engine error: {0}")]
    Engine(String),
}
