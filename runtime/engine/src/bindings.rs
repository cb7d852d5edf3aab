//! Host-side bindings of the `weft:workflow` world. Converted to core
//! types in `host.rs`; nothing outside this crate sees them.

wasmtime::component::bindgen!({
    path: "../../proto/wit",
    world: "workflow",
    imports: { default: async | trappable },
    exports: { default: async },
});
