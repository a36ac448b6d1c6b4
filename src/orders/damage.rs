//! Damaged inputs for the tests that hold a fast reader to a general one: single-character
//! changes, insertions and deletions at places a small xorshift picks, so that the cases are
//! the same from run to run.

/// A source of damage: its positions and the characters it puts in.
pub(crate) struct Damage {
    state: u64,
    alphabet: &'static [u8],
}

impl Damage {
    pub(crate) fn new(seed: u64, alphabet: &'static [u8]) -> Damage {
        Damage {
            state: seed,
            alphabet,
        }
    }

    /// A number below `bound` (not 0).
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state % bound as u64) as usize
    }

    /// One character of `text` changed, one inserted before it, or it deleted.
    pub(crate) fn apply(&mut self, text: &mut Vec<u8>) {
        let at = self.below(text.len());
        match self.below(3) {
            0 => text[at] = self.alphabet[self.below(self.alphabet.len())],
            1 => {
                let byte = self.alphabet[self.below(self.alphabet.len())];
                text.insert(at, byte);
            }
            _ => {
                text.remove(at);
            }
        }
    }
}
