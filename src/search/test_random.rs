//! A small, seeded random generator for the search layer's unit tests:
//! the same cases on every run, no dependency.

/// Marsaglia's xorshift64.
pub(crate) struct XorShift(u64);

impl XorShift {
    /// A generator from a non-zero `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    /// A number below `n` (which must not be 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
