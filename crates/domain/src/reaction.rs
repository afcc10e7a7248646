//! Reactions: members put an emoji on a message. Each distinct emoji is
//! shown once per message with the users who chose it.

use unicode_properties::{EmojiStatus, UnicodeEmoji};
use unicode_segmentation::UnicodeSegmentation;

use crate::error::ValidationError;
use crate::message::MessageId;
use crate::user::UserId;

/// The emoji presentation selector (VS16): makes a text-default character
/// such as ❤ an emoji (❤️).
const EMOJI_PRESENTATION: char = '\u{FE0F}';

/// The combining keycap that ends a keycap sequence (1️⃣, #️⃣).
const KEYCAP: char = '\u{20E3}';

/// One emoji: exactly one extended grapheme cluster (UAX #29) of at most
/// [`Emoji::MAX_BYTES`] bytes, made only of emoji characters and emoji
/// components (UTS #51), that is shown as an emoji: it holds a character
/// with emoji presentation (😀, a flag's regional indicators), a
/// pictographic character with VS16 (❤️), or a keycap (1️⃣). Plain text ("a",
/// "1", "❤" without VS16), several emoji and anything with spaces or
/// control characters are refused. ZWJ sequences (👩‍💻) and skin tones (👍🏽)
/// are one emoji.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Emoji(String);

impl Emoji {
    /// The longest emoji accepted, in UTF-8 bytes (family ZWJ sequences
    /// with skin tones reach about 30).
    pub const MAX_BYTES: usize = 32;

    /// Checks one emoji, exactly as given (not trimmed, not normalised:
    /// two spellings are two reactions, as clients send what they show).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let mut clusters = raw.graphemes(true);
        let single = clusters.next().is_some() && clusters.next().is_none();
        let chars: Vec<char> = raw.chars().collect();
        let all_emoji = chars.iter().all(|c| c.is_emoji_char_or_emoji_component());
        let shown_as_emoji = chars.iter().enumerate().any(|(at, c)| {
            has_emoji_presentation(*c)
                || *c == KEYCAP
                || (!c.is_ascii()
                    && c.is_emoji_char()
                    && chars.get(at + 1) == Some(&EMOJI_PRESENTATION))
        });
        if !single || raw.len() > Self::MAX_BYTES || !all_emoji || !shown_as_emoji {
            return Err(ValidationError::Emoji);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The emoji.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `c` is shown as an emoji by default (`Emoji_Presentation=Yes`).
fn has_emoji_presentation(c: char) -> bool {
    matches!(
        c.emoji_status(),
        EmojiStatus::EmojiPresentation
            | EmojiStatus::EmojiPresentationAndModifierBase
            | EmojiStatus::EmojiPresentationAndEmojiComponent
            | EmojiStatus::EmojiPresentationAndModifierAndEmojiComponent
    )
}

/// One distinct emoji on a message, with who chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    /// The emoji.
    pub emoji: Emoji,
    /// The users who reacted with it, in the order they did (never empty:
    /// an emoji nobody has is not shown).
    pub user_ids: Vec<UserId>,
}

impl Reaction {
    /// The most distinct emoji one message carries: a 21st is refused
    /// ([`crate::error::ConflictError::TooManyReactions`]); adding oneself
    /// to an emoji already there always works.
    pub const MAX_PER_MESSAGE: usize = 20;
}

/// A reaction added or removed: what a `reaction_added` or
/// `reaction_removed` event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionChange {
    /// The message reacted to.
    pub message_id: MessageId,
    /// The emoji.
    pub emoji: Emoji,
    /// Who added or removed it.
    pub user_id: UserId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_emoji_of_every_shape_are_accepted() {
        for emoji in [
            "😀",
            "👍",
            "👍🏽",
            "❤️",
            "👩‍💻",
            "👨‍👩‍👧‍👦",
            "🇫🇷",
            "1️⃣",
            "#️⃣",
            "🏳️‍🌈",
            "🫠",
        ] {
            assert_eq!(Emoji::parse(emoji).unwrap().as_str(), emoji, "{emoji}");
        }
    }

    #[test]
    fn text_several_emoji_and_oversized_clusters_are_refused() {
        let long_cluster = format!("👍{}", "\u{FE0F}".repeat(10));
        for bad in [
            "",
            "a",
            "1",
            "#",
            "❤",
            "😀😀",
            "😀 ",
            " 😀",
            "👍a",
            "\u{FE0F}",
            "\u{200D}",
            "\u{0}",
            "é",
            "<b>",
            long_cluster.as_str(),
        ] {
            assert_eq!(Emoji::parse(bad), Err(ValidationError::Emoji), "{bad:?}");
        }
    }

    #[test]
    fn the_byte_limit_is_exact() {
        // 👨‍👩‍👧‍👦 is 25 bytes; with skin tones family sequences stay under 32.
        assert!(Emoji::parse("👨‍👩‍👧‍👦").unwrap().as_str().len() <= Emoji::MAX_BYTES);
        let kiss = "👩🏻‍❤️‍💋‍👨🏼";
        assert!(kiss.len() > Emoji::MAX_BYTES);
        assert_eq!(Emoji::parse(kiss), Err(ValidationError::Emoji));
    }
}
