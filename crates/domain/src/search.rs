//! Searching the messages one can read, and showing where they match.

use chrono::{DateTime, Utc};

use crate::error::ValidationError;
use crate::message::Message;
use crate::room::{RoomId, RoomName};
use crate::user::UserId;

/// What to look for: 1 to [`SearchText::MAX_CHARS`] characters after
/// trimming, without control characters. Its words are what matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    /// The longest search, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Trims and checks a search text.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        let length = trimmed.chars().count();
        if length == 0 || length > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(ValidationError::SearchText);
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its words (split at white space).
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.0.split_whitespace()
    }

    /// How often the words occur in `body`, ignoring case, if every one
    /// occurs (what the in-memory store ranks by); `None` if one is missing.
    pub fn occurrences(&self, body: &str) -> Option<usize> {
        let body: Vec<char> = body.chars().collect();
        self.words().try_fold(0, |total, word| {
            let word: Vec<char> = word.chars().collect();
            let found = matches(&body, &word).len();
            (found > 0).then_some(total + found)
        })
    }
}

/// Whether two characters are equal ignoring case.
fn same_letter(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

/// The character ranges of `body` where `word` occurs, ignoring case, not
/// overlapping.
fn matches(body: &[char], word: &[char]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    if word.is_empty() || word.len() > body.len() {
        return found;
    }
    let mut start = 0;
    while start + word.len() <= body.len() {
        let here = body[start..start + word.len()]
            .iter()
            .zip(word)
            .all(|(a, b)| same_letter(*a, *b));
        if here {
            found.push((start, start + word.len()));
            start += word.len();
        } else {
            start += 1;
        }
    }
    found
}

/// How many results one search returns: 1 to [`SearchLimit::MAX`],
/// [`SearchLimit::DEFAULT`] by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchLimit(usize);

impl SearchLimit {
    /// The most results.
    pub const MAX: usize = 50;

    /// The results when no limit is given.
    pub const DEFAULT: usize = 20;

    /// Checks a requested number of results.
    pub fn new(limit: i64) -> Result<Self, ValidationError> {
        match usize::try_from(limit) {
            Ok(limit) if (1..=Self::MAX).contains(&limit) => Ok(Self(limit)),
            _ => Err(ValidationError::SearchLimit),
        }
    }

    /// The number.
    pub fn get(&self) -> usize {
        self.0
    }
}

impl Default for SearchLimit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

/// A search of the messages `user` can read now: those of the rooms they
/// are a member of (or of one of them), not deleted; of the
/// [`SearchQuery::CANDIDATES`] newest matches, the best first (ties: newest
/// first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Who searches (only their rooms are searched).
    pub user: UserId,
    /// What to look for.
    pub text: SearchText,
    /// Only this room (one the user is a member of).
    pub room: Option<RoomId>,
    /// Only messages sent before this time (to look further back).
    pub before: Option<DateTime<Utc>>,
    /// At most this many results.
    pub limit: SearchLimit,
}

impl SearchQuery {
    /// How many of the newest matches are ranked: a word in every other
    /// message costs as little as a rare one, and older matches are one
    /// `before` away.
    pub const CANDIDATES: usize = 200;
}

/// One message found, with the name of its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// The message (never deleted).
    pub message: Message,
    /// Its room's name.
    pub room_name: RoomName,
}

/// A piece of a snippet: text that matches the search or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The text.
    pub text: String,
    /// Whether it is an occurrence of a searched word.
    pub matched: bool,
}

/// The part of a found message shown with a result: the body, or a window
/// of at most [`Snippet::MAX_CHARS`] characters around its first match
/// (with "…" where cut), in segments marking the occurrences of the
/// searched words. Plain text: clients show it as text, never as markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet(Vec<Segment>);

impl Snippet {
    /// The longest snippet, in characters (without the "…" marks).
    pub const MAX_CHARS: usize = 200;

    /// How many characters a window keeps before the first match.
    const LEAD_CHARS: usize = 60;

    /// The snippet of `body` for `text`.
    pub fn of(body: &str, text: &SearchText) -> Self {
        let chars: Vec<char> = body.chars().collect();
        let mut ranges: Vec<(usize, usize)> = text
            .words()
            .flat_map(|word| matches(&chars, &word.chars().collect::<Vec<_>>()))
            .collect();
        ranges.sort_unstable();
        let first = ranges.first().map_or(0, |range| range.0);
        let (start, end) = if chars.len() <= Self::MAX_CHARS {
            (0, chars.len())
        } else {
            let start = first
                .saturating_sub(Self::LEAD_CHARS)
                .min(chars.len() - Self::MAX_CHARS);
            (start, start + Self::MAX_CHARS)
        };
        let mut segments = Vec::new();
        let mut push = |text: String, matched: bool| {
            if !text.is_empty() {
                segments.push(Segment { text, matched });
            }
        };
        let text_of = |from: usize, to: usize| chars[from..to].iter().collect::<String>();
        let mut at = start;
        let mut plain = if start > 0 {
            "…".to_owned()
        } else {
            String::new()
        };
        for (from, to) in ranges {
            let (from, to) = (from.max(at), to.min(end));
            if from >= to {
                continue;
            }
            plain.push_str(&text_of(at, from));
            push(std::mem::take(&mut plain), false);
            push(text_of(from, to), true);
            at = to;
        }
        plain.push_str(&text_of(at, end));
        if end < chars.len() {
            plain.push('…');
        }
        push(plain, false);
        Self(segments)
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(raw: &str) -> SearchText {
        SearchText::parse(raw).unwrap()
    }

    fn shown(snippet: &Snippet) -> String {
        snippet
            .segments()
            .iter()
            .map(|s| {
                if s.matched {
                    format!("[{}]", s.text)
                } else {
                    s.text.clone()
                }
            })
            .collect()
    }

    #[test]
    fn search_texts_are_trimmed_and_bounded() {
        assert_eq!(text("  hello world ").as_str(), "hello world");
        assert!(SearchText::parse(&"é".repeat(200)).is_ok());
        for bad in ["", "   ", &"x".repeat(201), "a\u{0}b", "tab\there"] {
            assert_eq!(
                SearchText::parse(bad),
                Err(ValidationError::SearchText),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn search_limits_run_from_1_to_50_with_20_by_default() {
        assert_eq!(SearchLimit::default().get(), 20);
        assert_eq!(SearchLimit::new(50).unwrap().get(), 50);
        for bad in [0, -1, 51] {
            assert_eq!(SearchLimit::new(bad), Err(ValidationError::SearchLimit));
        }
    }

    #[test]
    fn every_word_must_occur_ignoring_case() {
        assert_eq!(text("Hello").occurrences("hello HELLO hElLo"), Some(3));
        assert_eq!(text("ÉTÉ chaud").occurrences("un été très chaud"), Some(2));
        assert_eq!(text("hello moon").occurrences("hello world"), None);
        assert_eq!(text("日本").occurrences("日本語のテキスト"), Some(1));
    }

    #[test]
    fn snippets_mark_every_occurrence() {
        let snippet = Snippet::of("Deploy the deploy script", &text("deploy"));
        assert_eq!(shown(&snippet), "[Deploy] the [deploy] script");
        assert_eq!(shown(&Snippet::of("no match", &text("zzz"))), "no match");
    }

    #[test]
    fn long_bodies_are_cut_around_the_first_match() {
        let body = format!("{}needle{}", "a".repeat(300), "b".repeat(300));
        let snippet = Snippet::of(&body, &text("needle"));
        let plain: String = snippet.segments().iter().map(|s| s.text.as_str()).collect();
        assert!(plain.starts_with('…') && plain.ends_with('…'), "{plain}");
        assert_eq!(plain.chars().count(), Snippet::MAX_CHARS + 2);
        assert!(shown(&snippet).contains(&format!("{}[needle]b", "a".repeat(60))));
    }

    #[test]
    fn markup_in_a_body_stays_text() {
        let snippet = Snippet::of("<b>bold</b> move", &text("bold"));
        assert_eq!(shown(&snippet), "<b>[bold]</b> move");
    }
}
