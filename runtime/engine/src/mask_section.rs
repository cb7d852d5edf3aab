//! The masking rules a component declares in itself: custom sections
//! named [`MASK_SECTION`], anywhere in the component (the Rust SDK's
//! `sensitive!` puts one in the core module; a build step may append one
//! at the top level, as it appends the interpreter mark).
//!
//! Format: UTF-8 text, one rule per line (`[target=]path`, see
//! `weft_core::mask::MaskPolicy::add_rule`); blank lines and lines
//! starting with `#` are ignored. Several sections, or several `sensitive!`
//! calls (which the linker concatenates into one section), add up.

use weft_core::mask::{MaskPolicy, RuleError};

/// The custom section's name.
pub const MASK_SECTION: &str = "weft:mask";

/// A `weft:mask` section that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaskSectionError {
    /// The section is not UTF-8.
    #[error("the component's `weft:mask` section is not UTF-8 text")]
    NotText,
    /// A rule in it is not one.
    #[error("the component's `weft:mask` section: {0}")]
    Rule(#[from] RuleError),
}

/// The policy the component's `weft:mask` sections declare (empty if it
/// has none). Sections of a component that does not parse are not found;
/// deploy refuses such a component anyway.
pub fn declared_mask(bytes: &[u8]) -> Result<MaskPolicy, MaskSectionError> {
    let mut policy = MaskPolicy::default();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(wasmparser::Payload::CustomSection(section)) = payload else {
            if payload.is_err() {
                break;
            }
            continue;
        };
        if section.name() != MASK_SECTION {
            continue;
        }
        let text = std::str::from_utf8(section.data()).map_err(|_| MaskSectionError::NotText)?;
        for line in text.lines().map(str::trim) {
            // The SDK pads with NULs when it aligns statics; skip them too.
            let line = line.trim_matches('\0');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            policy.add_rule(line)?;
        }
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_section(name: &str, payload: &[u8]) -> Vec<u8> {
        // An empty core module, then one custom section.
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        let mut body = vec![name.len() as u8];
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(payload);
        bytes.push(0);
        bytes.push(body.len() as u8);
        bytes.extend(body);
        bytes
    }

    #[test]
    fn the_declared_rules_are_read_and_other_sections_ignored() {
        let bytes = with_section(
            MASK_SECTION,
            b"$.applicant\n# why\n\nactivity:screen=$[0]\n",
        );
        let policy = declared_mask(&bytes).unwrap();
        assert_eq!(
            policy,
            MaskPolicy::from_rules(&["$.applicant", "activity:screen=$[0]"]).unwrap()
        );
        let other = with_section("weft:other", b"$.applicant\n");
        assert!(declared_mask(&other).unwrap().is_empty());
        assert!(declared_mask(b"not wasm").unwrap().is_empty());
    }

    #[test]
    fn a_bad_rule_or_text_is_an_error() {
        assert!(matches!(
            declared_mask(&with_section(MASK_SECTION, b"$..x\n")),
            Err(MaskSectionError::Rule(_))
        ));
        assert_eq!(
            declared_mask(&with_section(MASK_SECTION, b"\xff\n")),
            Err(MaskSectionError::NotText)
        );
    }
}
