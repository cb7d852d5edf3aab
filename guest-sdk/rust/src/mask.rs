//! The guest's side of masking: `sensitive!` declares fields of this
//! workflow's payloads sensitive, in a custom section of the component
//! (`weft:mask`) that the server reads when the component is deployed.
//! The workflow itself still sees the real values; callers of the API
//! without the `unmask` permission, and the server's logs, do not.

/// Declare sensitive fields, one rule each: a JSON path (`"$.applicant"`)
/// names a field of the workflow's input; `"result=$.ssn"`,
/// `"signal=..."`, `"update=..."`, `"query=..."` name fields of the other
/// payloads, `"activity:screen=$[0].name"` and
/// `"activity-result:screen=$.report"` those of an activity's arguments
/// and result. Paths: `$`, `.field`, `["field"]`, `[N]`, `[*]`, `.*`.
///
/// ```ignore
/// weft_sdk::sensitive!("$.applicant", "$.dob", "activity:screen=$[0].name");
/// ```
///
/// Rules are checked when the component is deployed: a bad one refuses
/// the deploy, naming it. Several `sensitive!` calls add up.
#[macro_export]
macro_rules! sensitive {
    ($($rule:literal),+ $(,)?) => {
        const _: () = {
            // One rule a line: the linker concatenates the sections of
            // several calls, so each ends its own last line.
            const RULES: &str = concat!($($rule, "\n"),+);
            #[used]
            #[unsafe(link_section = "weft:mask")]
            static WEFT_MASK: [u8; RULES.len()] = $crate::__mask_bytes::<{ RULES.len() }>(RULES);
        };
    };
}

/// `text` as an array of its bytes (for `sensitive!`'s static).
#[doc(hidden)]
pub const fn __mask_bytes<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N && i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}
