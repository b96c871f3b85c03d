//! Topic names and filters: validation, matching, specificity, routing index.
//!
//! - [`validate_topic_name`] / [`validate_topic_filter`]: the MQTT rules for what a
//!   client may publish to or subscribe to (3.1.1 and 5.0 section 4.7, 5.0 section
//!   4.8.2 for `$share/<group>/<filter>`), checked before any I/O.
//! - [`matches()`]: the wildcard matching rule, including the `$` rule (MQTT-4.7.2-1).
//! - [`effective_filter`] / [`topic_matches`]: a shared subscription
//!   (`$share/<group>/<filter>`) and a subscription under a *stripped prefix*
//!   (by default `$queue/` and `$exclusive/`, see [`DEFAULT_STRIPPED_PREFIXES`]) are
//!   delivered by the broker under topics that match the inner filter, so the client
//!   matches on that inner filter.
//! - [`compare_specificity`]: which of two filters is more specific (literal beats
//!   `+` beats `#`, level by level).
//! - [`FilterIndex`]: the routing index that picks the single most specific
//!   subscription for an incoming topic.

use std::cmp::Ordering;
use std::fmt;

mod index;

pub use index::{FilterIndex, InsertOutcome, Match};

/// Largest topic name or filter in bytes: both travel as UTF-8 strings with a
/// two-byte length prefix (MQTT-4.7.3-3).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Group-less prefixes stripped from a filter before matching unless configured
/// otherwise: a subscription to `$queue/a/b` (or `$exclusive/a/b`) is delivered by
/// the broker as topic `a/b` (EMQX-style queue and exclusive subscriptions).
pub const DEFAULT_STRIPPED_PREFIXES: &[&str] = &["$queue", "$exclusive"];

/// The prefix of a shared subscription (MQTT 5.0 section 4.8.2).
const SHARE_PREFIX: &str = "$share/";

/// How many characters of an offending topic an error message quotes.
const QUOTE_LIMIT: usize = 100;

/// Whether an error is about a topic name (publish) or a topic filter (subscribe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// A topic name, as used in PUBLISH and in a will.
    Name,
    /// A topic filter, as used in SUBSCRIBE and UNSUBSCRIBE.
    Filter,
}

impl fmt::Display for TopicKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopicKind::Name => "Topic name",
            TopicKind::Filter => "Topic filter",
        })
    }
}

/// Why a topic name or filter was refused. Every variant maps onto
/// `MQTTInvalidTopicError` in the Python API; the message quotes the offending
/// string (shortened when very long, control characters escaped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The empty string is never a valid topic name or filter (MQTT-4.7.3-1).
    #[error("{0} must not be empty")]
    Empty(TopicKind),
    /// Longer than a UTF-8 string field can carry (MQTT-4.7.3-3).
    #[error("{kind} is {len} bytes long; the maximum is {MAX_TOPIC_LEN} bytes")]
    TooLong { kind: TopicKind, len: usize },
    /// Contains the character U+0000 (MQTT-4.7.3-2).
    #[error("{kind} must not contain U+0000: '{}'", Quoted(.topic))]
    NullCharacter { kind: TopicKind, topic: String },
    /// A topic name containing `+` or `#` (MQTT-4.7.1-1).
    #[error("Wildcards not allowed in publish topic: '{}'", Quoted(.topic))]
    WildcardInName { topic: String },
    /// A topic filter breaking a wildcard or shared-subscription rule
    /// (MQTT-4.7.1-2, MQTT-4.7.1-3, MQTT-4.8.2-1, MQTT-4.8.2-2).
    #[error("Invalid topic filter '{}': {reason}", Quoted(.filter))]
    InvalidFilter {
        filter: String,
        reason: &'static str,
    },
}

/// Displays a user string inside quotes: control characters escaped, cut after
/// [`QUOTE_LIMIT`] characters so a 64 KiB topic does not flood a log line.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(QUOTE_LIMIT) {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        if chars.next().is_some() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// Checks the rules every topic name and filter shares: non-empty, at most
/// 65535 bytes, no U+0000.
fn check_common(topic: &str, kind: TopicKind) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty(kind));
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong {
            kind,
            len: topic.len(),
        });
    }
    if topic.contains('\0') {
        return Err(TopicError::NullCharacter {
            kind,
            topic: topic.to_owned(),
        });
    }
    Ok(())
}

/// A topic name that [`validate_topic_name`] accepted: what
/// [`ClientSession::publish_qos0_valid`](crate::session::ClientSession::publish_qos0_valid)
/// takes, so that a name checked once (e.g. by the handle that queued the
/// publish, on another thread) is not scanned again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidTopicName<'a>(&'a str);

impl<'a> ValidTopicName<'a> {
    /// Checks `topic` ([`validate_topic_name`]).
    pub fn new(topic: &'a str) -> Result<Self, TopicError> {
        validate_topic_name(topic)?;
        Ok(ValidTopicName(topic))
    }

    /// A name the caller has already passed through [`ValidTopicName::new`]
    /// or [`validate_topic_name`] (the proof could not travel with it, e.g.
    /// across a channel). Not checked again: a name that was never checked
    /// is sent as it is, and the broker then closes the connection.
    pub fn checked_before(topic: &'a str) -> Self {
        ValidTopicName(topic)
    }

    /// The name.
    pub fn as_str(self) -> &'a str {
        self.0
    }
}

/// Checks a topic name a client publishes to (or sets as a will topic):
/// non-empty (MQTT-4.7.3-1), no U+0000 (MQTT-4.7.3-2), at most 65535 bytes
/// (MQTT-4.7.3-3) and no wildcard `+` or `#` (MQTT-4.7.1-1).
pub fn validate_topic_name(topic: &str) -> Result<(), TopicError> {
    // Called for every publish: byte scans only (U+0000, `+` and `#` are
    // ASCII, so no UTF-8 decoding), with U+0000 reported first.
    let kind = TopicKind::Name;
    if topic.is_empty() {
        return Err(TopicError::Empty(kind));
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong {
            kind,
            len: topic.len(),
        });
    }
    // A quick scan, eight bytes at a time, first: a valid topic (the common
    // case) needs nothing else.
    if !contains_nul_or_wildcard(topic.as_bytes()) {
        return Ok(());
    }
    let mut wildcard = false;
    for &byte in topic.as_bytes() {
        match byte {
            0 => {
                return Err(TopicError::NullCharacter {
                    kind,
                    topic: topic.to_owned(),
                })
            }
            b'+' | b'#' => wildcard = true,
            _ => {}
        }
    }
    if wildcard {
        return Err(TopicError::WildcardInName {
            topic: topic.to_owned(),
        });
    }
    Ok(())
}

/// Whether `bytes` holds U+0000, `+` or `#`: what `contains_any_byte` finds
/// with those three needles, in two word tests instead of three (`+` 0x2B
/// and `#` 0x23 differ only in bit 0x08, so setting that bit in every byte
/// turns both into 0x2B and nothing else into it), and with the last, partial
/// word read overlapping the one before instead of byte by byte.
#[inline]
pub(crate) fn contains_nul_or_wildcard(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS != 0;
    let special =
        |word: u64| has_zero(word) || has_zero((word | (ONES * 0x08)) ^ (ONES * u64::from(b'+')));
    let word_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|chunk| <[u8; 8]>::try_from(chunk).ok())
            .map(u64::from_ne_bytes)
    };
    if bytes.len() < 8 {
        return bytes.iter().any(|byte| matches!(byte, 0 | b'+' | b'#'));
    }
    let mut at = 0;
    while at + 8 <= bytes.len() {
        match word_at(at) {
            Some(word) if !special(word) => at += 8,
            _ => return true,
        }
    }
    at < bytes.len() && word_at(bytes.len() - 8).map_or(true, special)
}

/// Whether `bytes` holds any of `needles`: eight bytes per step with the
/// classic "word has a zero byte" test, cheaper than a byte loop or `memchr`
/// for short strings such as topics (validated on every publish).
#[inline]
pub(crate) fn contains_any_byte(bytes: &[u8], needles: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Exact: non-zero if and only if some byte of `word` is zero.
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS != 0;
    let chunks = bytes.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        let Ok(word) = <[u8; 8]>::try_from(chunk).map(u64::from_ne_bytes) else {
            return true;
        };
        if needles
            .iter()
            .any(|&needle| has_zero(word ^ (ONES * u64::from(needle))))
        {
            return true;
        }
    }
    tail.iter().any(|byte| needles.contains(byte))
}

/// Checks a topic filter a client subscribes to: non-empty (MQTT-4.7.3-1), no
/// U+0000 (MQTT-4.7.3-2), at most 65535 bytes (MQTT-4.7.3-3), `#` only as the
/// whole last level (MQTT-4.7.1-2), `+` only as a whole level (MQTT-4.7.1-3).
///
/// A filter starting with `$share/` is a shared subscription: it needs a
/// non-empty group name without `+` or `#` (MQTT-4.8.2-1, MQTT-4.8.2-2), then `/`
/// and a non-empty filter, which must itself be valid.
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    check_common(filter, TopicKind::Filter)?;
    let invalid = |reason| TopicError::InvalidFilter {
        filter: filter.to_owned(),
        reason,
    };
    let inner = match filter.strip_prefix(SHARE_PREFIX) {
        Some(rest) => split_share(rest).map_err(invalid)?,
        None => filter,
    };
    check_filter_levels(inner).map_err(invalid)
}

/// Splits what follows `$share/` into the inner filter, checking the group name.
fn split_share(rest: &str) -> Result<&str, &'static str> {
    let Some((group, inner)) = rest.split_once('/') else {
        return Err(if rest.is_empty() {
            "shared subscription group name must not be empty"
        } else {
            "shared subscription group name must be followed by '/' and a topic filter"
        });
    };
    if group.is_empty() {
        return Err("shared subscription group name must not be empty");
    }
    if group.contains(['+', '#']) {
        return Err("shared subscription group name must not contain '+' or '#'");
    }
    if inner.is_empty() {
        return Err("shared subscription needs a topic filter after the group name");
    }
    Ok(inner)
}

/// The wildcard placement rules of a (non-shared) topic filter.
fn check_filter_levels(filter: &str) -> Result<(), &'static str> {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        match level {
            "#" if !is_last => return Err("'#' must be the last level"),
            "#" | "+" => {}
            _ if level.contains('#') => return Err("'#' must occupy a whole level"),
            _ if level.contains('+') => return Err("'+' must occupy a whole level"),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `topic` matches `filter` under the MQTT rules: levels are separated by
/// `/` (an empty level is a level), `+` matches exactly one level (also an empty
/// one), a final `#` matches any number of levels including none (`a/#` matches
/// `a`), and a filter starting with `+` or `#` never matches a topic whose first
/// level starts with `$` (MQTT-4.7.2-1).
///
/// `$share/...` and other prefixes are *not* interpreted here; see
/// [`topic_matches`]. Meant for a valid filter and topic name; any other input
/// gives some answer, never a panic.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(wanted), Some(got)) if wanted == got => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The filter a subscription effectively matches with: the inner filter of
/// `$share/<group>/<filter>`, or the rest after a stripped prefix
/// (`$queue/a/b` → `a/b` when `"$queue"` is in `stripped_prefixes`), otherwise
/// `filter` itself.
///
/// Only one prefix is removed (`$share/g/$queue/a` → `$queue/a`). A prefix is
/// stripped only when followed by `/` and a non-empty rest; a trailing `/` in a
/// configured prefix is ignored and an empty prefix never strips anything.
pub fn effective_filter<'a>(filter: &'a str, stripped_prefixes: &[impl AsRef<str>]) -> &'a str {
    if let Some(rest) = filter.strip_prefix(SHARE_PREFIX) {
        return match rest.split_once('/') {
            Some((group, inner)) if !group.is_empty() && !inner.is_empty() => inner,
            _ => filter,
        };
    }
    for prefix in stripped_prefixes {
        let prefix = prefix.as_ref().trim_end_matches('/');
        if prefix.is_empty() {
            continue;
        }
        let inner = filter
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'));
        if let Some(inner) = inner.filter(|inner| !inner.is_empty()) {
            return inner;
        }
    }
    filter
}

/// Whether a message published to `topic` matches the subscription `filter`:
/// [`matches()`] on the [`effective_filter`]. This is the rule the client routes
/// with (SPEC 1.7 `topic_matches`).
pub fn topic_matches(filter: &str, topic: &str, stripped_prefixes: &[impl AsRef<str>]) -> bool {
    matches(effective_filter(filter, stripped_prefixes), topic)
}

/// How specific one level of a filter is; the derived order is the specificity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum LevelRank {
    /// `#`: any number of further levels.
    MultiWildcard,
    /// The filter has no level here: the topic must end here too.
    End,
    /// `+`: any one level.
    SingleWildcard,
    /// A literal level: exactly that text.
    Literal,
}

fn level_rank(level: Option<&str>) -> LevelRank {
    match level {
        None => LevelRank::End,
        Some("#") => LevelRank::MultiWildcard,
        Some("+") => LevelRank::SingleWildcard,
        Some(_) => LevelRank::Literal,
    }
}

/// Compares how specific two filters are; `Greater` means `a` is more specific.
///
/// The filters are compared level by level and the first level that differs in
/// kind decides: a literal beats `+`, `+` beats `#`. A filter that has run out of
/// levels counts as more specific than `#` at that level (`a` beats `a/#`: `a/#`
/// also takes `a/b`), and less specific than `+` or a literal there — filters that
/// differ that way never match the same topic, so that choice only makes the order
/// total. For topic `a/b`: `a/b` > `a/+` > `a/#` > `+/b` > `+/+` > `#`.
///
/// `Equal` means the same sequence of level kinds: two different filters compare
/// equal only when they differ in literal text, and then no topic matches both.
/// So among filters that all match one topic, `Equal` means the same filter.
/// Prefixes are not interpreted: pass [`effective_filter`]s.
pub fn compare_specificity(a: &str, b: &str) -> Ordering {
    let mut a_levels = a.split('/');
    let mut b_levels = b.split('/');
    loop {
        let (a_level, b_level) = (a_levels.next(), b_levels.next());
        if a_level.is_none() && b_level.is_none() {
            return Ordering::Equal;
        }
        match level_rank(a_level).cmp(&level_rank(b_level)) {
            Ordering::Equal => {}
            decided => return decided,
        }
    }
}

#[cfg(test)]
mod tests;
