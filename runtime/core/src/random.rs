/// The execution's deterministic random stream.
///
/// BLAKE3 in keyed XOF mode over the seed recorded in `ExecutionStarted`:
/// a fixed, specified function, so a history replays to the same bytes on
/// every machine and every future build. Every consumer (the `random-bytes`
/// import and WASI `get-random-bytes`) draws from this one stream in call
/// order, which replay reproduces.
#[derive(Clone)]
pub struct RandomStream {
    reader: blake3::OutputReader,
}

impl RandomStream {
    /// The stream for an execution seeded with `seed`.
    pub fn new(seed: &[u8; 32]) -> Self {
        RandomStream {
            reader: blake3::Hasher::new_keyed(seed).finalize_xof(),
        }
    }

    /// Fill `out` with the next bytes of the stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        self.reader.fill(out);
    }

    /// The stream the `n`-th side effect of a run (0-based, counted in
    /// the guest's call order) draws from while its code runs: derived
    /// from, but independent of, the main stream, so the side effect's
    /// draws never move the main stream's position (a replay that returns
    /// its recorded value draws the same, and changed side-effect code may
    /// draw more or less without shifting anything after it).
    pub fn for_side_effect(seed: &[u8; 32], n: u32) -> Self {
        let mut material = [0u8; 36];
        material[..32].copy_from_slice(seed);
        material[32..].copy_from_slice(&n.to_le_bytes());
        let key = blake3::derive_key("weft 2026 side-effect random stream", &material);
        RandomStream::new(&key)
    }

    /// Seed for the guest's "insecure" random (hash-map seeds and the like),
    /// derived from, but independent of, the main stream.
    pub fn insecure_seed(seed: &[u8; 32]) -> u128 {
        let key = blake3::derive_key("weft 2026 insecure-random-seed", seed);
        let mut half = [0u8; 16];
        half.copy_from_slice(&key[..16]);
        u128::from_le_bytes(half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_regardless_of_chunking() {
        let mut a = RandomStream::new(&[1; 32]);
        let mut b = RandomStream::new(&[1; 32]);
        let mut whole = [0u8; 48];
        a.fill(&mut whole);
        let (mut x, mut y) = ([0u8; 16], [0u8; 32]);
        b.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(&whole[..16], &x);
        assert_eq!(&whole[16..], &y);
        let mut c = RandomStream::new(&[2; 32]);
        let mut other = [0u8; 48];
        c.fill(&mut other);
        assert_ne!(whole, other);
    }

    #[test]
    fn side_effect_streams_are_their_own() {
        let draw = |mut s: RandomStream| {
            let mut out = [0u8; 32];
            s.fill(&mut out);
            out
        };
        let main = draw(RandomStream::new(&[1; 32]));
        let first = draw(RandomStream::for_side_effect(&[1; 32], 0));
        assert_eq!(first, draw(RandomStream::for_side_effect(&[1; 32], 0)));
        assert_ne!(first, main);
        assert_ne!(first, draw(RandomStream::for_side_effect(&[1; 32], 1)));
        assert_ne!(first, draw(RandomStream::for_side_effect(&[2; 32], 0)));
    }
}
