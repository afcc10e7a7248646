//! Secrets handed to clients and the hashes that stand for them in storage.
//!
//! A store never holds a token a client could replay: it holds the SHA-256 of
//! it, and a presented token is looked up by hashing it again.

use std::fmt;

use sha2::{Digest, Sha256};

/// Failure of the operating system's random source. Rare enough to be an
/// internal error, serious enough never to fall back to a weaker source.
#[derive(Debug, thiserror::Error)]
#[error("the system random source failed: {0}")]
pub struct RandomSourceError(String);

/// A random secret of 256 bits, hex-encoded, handed to a client once (an email
/// verification token). Debug output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueToken(String);

impl OpaqueToken {
    /// Bytes of entropy in a token: twice the 128-bit minimum.
    const ENTROPY_BYTES: usize = 32;

    /// Draws a new token from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, RandomSourceError> {
        let mut bytes = [0_u8; Self::ENTROPY_BYTES];
        getrandom::fill(&mut bytes).map_err(|error| RandomSourceError(error.to_string()))?;
        Ok(Self(hex::encode(bytes)))
    }

    /// The token itself, to hand to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash under which the token is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken(<redacted>)")
    }
}

/// The SHA-256 of a token, as stored and compared. A fast hash is right here:
/// tokens carry at least 128 bits of entropy, so they cannot be guessed from it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a token as presented by a client.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Rebuilds a hash read back from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest, for storage.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_carry_256_bits_and_differ() {
        let first = OpaqueToken::generate().unwrap();
        let second = OpaqueToken::generate().unwrap();
        assert_eq!(first.expose().len(), 64);
        assert!(first.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(first, second);
    }

    #[test]
    fn a_token_hashes_to_its_sha256() {
        // SHA-256("abc") from FIPS 180-2, appendix B.1.
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hex::encode(TokenHash::of("abc").as_bytes()), expected);
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let token = OpaqueToken::generate().unwrap();
        assert!(!format!("{token:?}").contains(token.expose()));
    }
}
