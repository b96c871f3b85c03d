//! [`Topic`]: the topic name a publish is sent to, as the caller gave it.

use std::borrow::Cow;
use std::fmt;

use arrayvec::ArrayString;

/// The longest topic kept inline (the type is 64 bytes).
const INLINE_CAPACITY: usize = 56;

/// The topic name of a publish: what [`Client::publish`](crate::Client::publish)
/// takes. Made from `&str`, `String`, `&String`, `Cow<str>` or
/// `Box<str>`; names up to 56 bytes are stored inline, so publishing to one
/// costs no allocation (a `String` is taken over as it is). Validity is
/// checked when the publish is sent.
#[derive(Clone)]
pub struct Topic(Repr);

#[derive(Clone)]
enum Repr {
    Inline(ArrayString<INLINE_CAPACITY>),
    Owned(String),
}

impl Topic {
    /// The topic name.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(text) => text,
            Repr::Owned(text) => text,
        }
    }

    /// The topic name as a `String` (allocates unless it already is one).
    pub fn into_string(self) -> String {
        match self.0 {
            Repr::Inline(text) => text.as_str().to_owned(),
            Repr::Owned(text) => text,
        }
    }
}

impl From<&str> for Topic {
    fn from(text: &str) -> Self {
        match ArrayString::from(text) {
            Ok(inline) => Topic(Repr::Inline(inline)),
            Err(_) => Topic(Repr::Owned(text.to_owned())),
        }
    }
}

impl From<&String> for Topic {
    fn from(text: &String) -> Self {
        Topic::from(text.as_str())
    }
}

impl From<String> for Topic {
    fn from(text: String) -> Self {
        Topic(Repr::Owned(text))
    }
}

impl From<Box<str>> for Topic {
    fn from(text: Box<str>) -> Self {
        Topic::from(String::from(text))
    }
}

impl From<Cow<'_, str>> for Topic {
    fn from(text: Cow<'_, str>) -> Self {
        match text {
            Cow::Borrowed(text) => Topic::from(text),
            Cow::Owned(text) => Topic::from(text),
        }
    }
}

/// Equal when the names are, however each is stored.
impl PartialEq for Topic {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Topic {}

impl std::hash::Hash for Topic {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_inline_and_read_back_whole() {
        for text in [
            "",
            "a",
            "sensors/ü/temperature",
            &"x".repeat(INLINE_CAPACITY),
        ] {
            let topic = Topic::from(text);
            assert!(matches!(topic.0, Repr::Inline { .. }), "{text:?}");
            assert_eq!(topic.as_str(), text);
            assert_eq!(topic.clone().into_string(), text);
        }
    }

    #[test]
    fn long_names_and_strings_are_owned() {
        let long = "y".repeat(INLINE_CAPACITY + 1);
        let topic = Topic::from(long.as_str());
        assert!(matches!(topic.0, Repr::Owned(_)));
        assert_eq!(topic.as_str(), long);
        let given = String::from("a/b");
        let pointer = given.as_ptr();
        let topic = Topic::from(given);
        assert_eq!(topic.as_str(), "a/b");
        // Taken over, not copied.
        let back = topic.into_string();
        assert_eq!(back.as_ptr(), pointer);
    }

    #[test]
    fn every_source_gives_the_same_topic() {
        let text = String::from("a/b/c");
        let expected = Topic::from("a/b/c");
        assert_eq!(Topic::from(&text), expected);
        assert_eq!(Topic::from(Cow::Borrowed("a/b/c")), expected);
        assert_eq!(Topic::from(Box::<str>::from("a/b/c")), expected);
        assert_eq!(Topic::from(text.clone()), expected);
        assert_eq!(format!("{expected} {expected:?}"), "a/b/c \"a/b/c\"");
        assert_eq!(std::mem::size_of::<Topic>(), 64);
    }
}
