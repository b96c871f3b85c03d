use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;

const NO_PREFIXES: &[&str] = &[];

fn filter_error(filter: &str) -> String {
    validate_topic_filter(filter).expect_err(filter).to_string()
}

// ---- topic names ----------------------------------------------------------

#[test]
fn mqtt_4_7_3_1_empty_topic_name_is_rejected() {
    assert_eq!(
        validate_topic_name(""),
        Err(TopicError::Empty(TopicKind::Name))
    );
    assert_eq!(
        validate_topic_name("").unwrap_err().to_string(),
        "Topic name must not be empty"
    );
}

#[test]
fn mqtt_4_7_3_2_topic_name_with_null_character_is_rejected() {
    let err = validate_topic_name("a\0b").unwrap_err();
    assert_eq!(
        err,
        TopicError::NullCharacter {
            kind: TopicKind::Name,
            topic: "a\0b".into()
        }
    );
    assert_eq!(
        err.to_string(),
        r"Topic name must not contain U+0000: 'a\u{0}b'"
    );
}

#[test]
fn mqtt_4_7_3_3_topic_name_longer_than_65535_bytes_is_rejected() {
    assert_eq!(validate_topic_name(&"a".repeat(65_535)), Ok(()));
    let err = validate_topic_name(&"a".repeat(65_536)).unwrap_err();
    assert_eq!(
        err,
        TopicError::TooLong {
            kind: TopicKind::Name,
            len: 65_536
        }
    );
    assert_eq!(
        err.to_string(),
        "Topic name is 65536 bytes long; the maximum is 65535 bytes"
    );
    // The limit is in bytes, not characters: 'é' is two bytes in UTF-8.
    assert!(validate_topic_name(&"é".repeat(32_768)).is_err());
    assert_eq!(validate_topic_name(&"é".repeat(32_767)), Ok(()));
}

#[test]
fn mqtt_4_7_1_1_wildcards_in_topic_name_are_rejected() {
    for topic in ["a/+", "+", "#", "a/#", "a+b", "a#", "sport/+/player1"] {
        let err = validate_topic_name(topic).unwrap_err();
        assert_eq!(
            err,
            TopicError::WildcardInName {
                topic: topic.into()
            }
        );
        assert_eq!(
            err.to_string(),
            format!("Wildcards not allowed in publish topic: '{topic}'")
        );
    }
}

#[test]
fn valid_topic_names_are_accepted() {
    // Empty levels, a lone separator, `$` topics, spaces and non-ASCII are all
    // legal topic names (MQTT 4.7.1.1, 4.7.3).
    for topic in [
        "a",
        "/",
        "//",
        "a//b",
        "/a",
        "a/",
        "$SYS/broker/uptime",
        "a b",
        "ünïcödé/日本",
        "sport/tennis/player1",
    ] {
        assert_eq!(validate_topic_name(topic), Ok(()), "{topic:?}");
    }
}

// ---- topic filters --------------------------------------------------------

#[test]
fn mqtt_4_7_3_1_empty_topic_filter_is_rejected() {
    assert_eq!(
        validate_topic_filter(""),
        Err(TopicError::Empty(TopicKind::Filter))
    );
    assert_eq!(filter_error(""), "Topic filter must not be empty");
}

#[test]
fn mqtt_4_7_3_2_topic_filter_with_null_character_is_rejected() {
    assert_eq!(
        validate_topic_filter("a/\0/#"),
        Err(TopicError::NullCharacter {
            kind: TopicKind::Filter,
            topic: "a/\0/#".into()
        })
    );
}

#[test]
fn mqtt_4_7_3_3_topic_filter_longer_than_65535_bytes_is_rejected() {
    let mut filter = "a/".repeat(32_766);
    filter.push_str("+/#");
    assert_eq!(filter.len(), 65_535);
    assert_eq!(validate_topic_filter(&filter), Ok(()));
    filter.insert(0, 'x');
    assert_eq!(
        validate_topic_filter(&filter),
        Err(TopicError::TooLong {
            kind: TopicKind::Filter,
            len: 65_536
        })
    );
}

#[test]
fn mqtt_4_7_1_2_multi_level_wildcard_alone_and_last() {
    for filter in ["#", "a/#", "/#", "a/b/#", "+/#", "a//#", "$SYS/#"] {
        assert_eq!(validate_topic_filter(filter), Ok(()), "{filter:?}");
    }
    for filter in ["a/#/b", "#/a", "#/", "#/#"] {
        assert_eq!(
            filter_error(filter),
            format!("Invalid topic filter '{filter}': '#' must be the last level")
        );
    }
    for filter in ["a#", "a/b#", "##", "#a", "a/#b"] {
        assert_eq!(
            filter_error(filter),
            format!("Invalid topic filter '{filter}': '#' must occupy a whole level")
        );
    }
}

#[test]
fn mqtt_4_7_1_3_single_level_wildcard_whole_level() {
    for filter in ["+", "+/a", "a/+/b", "+/+", "/+", "+/", "+/#", "a/+", "+//+"] {
        assert_eq!(validate_topic_filter(filter), Ok(()), "{filter:?}");
    }
    for filter in ["a+", "a/+b", "++", "+a/b", "a/b+/c"] {
        assert_eq!(
            filter_error(filter),
            format!("Invalid topic filter '{filter}': '+' must occupy a whole level")
        );
    }
}

#[test]
fn plain_filters_without_wildcards_are_valid() {
    for filter in [
        "a",
        "/",
        "a//b",
        "$SYS/broker",
        "$share",
        "$sharex/a",
        "$queue/a",
    ] {
        assert_eq!(validate_topic_filter(filter), Ok(()), "{filter:?}");
    }
}

#[test]
fn mqtt_4_8_2_1_shared_subscription_needs_a_group_name() {
    for filter in ["$share/", "$share//a", "$share//#"] {
        assert_eq!(
            filter_error(filter),
            format!(
                "Invalid topic filter '{filter}': shared subscription group name must not be empty"
            )
        );
    }
}

#[test]
fn mqtt_4_8_2_2_shared_subscription_group_name_rules() {
    for filter in ["$share/g+/a", "$share/+/a", "$share/#/a", "$share/g#/a"] {
        assert_eq!(
            filter_error(filter),
            format!(
                "Invalid topic filter '{filter}': shared subscription group name must not contain '+' or '#'"
            )
        );
    }
    assert_eq!(
        filter_error("$share/group"),
        "Invalid topic filter '$share/group': shared subscription group name must be followed by '/' and a topic filter"
    );
    assert_eq!(
        filter_error("$share/group/"),
        "Invalid topic filter '$share/group/': shared subscription needs a topic filter after the group name"
    );
}

#[test]
fn mqtt_4_8_2_2_shared_subscription_inner_filter_is_validated() {
    for filter in [
        "$share/g/a",
        "$share/g/#",
        "$share/g/+/a/#",
        "$share/g//",
        "$share/g/$SYS/#",
    ] {
        assert_eq!(validate_topic_filter(filter), Ok(()), "{filter:?}");
    }
    assert_eq!(
        filter_error("$share/g/a/#/b"),
        "Invalid topic filter '$share/g/a/#/b': '#' must be the last level"
    );
    assert_eq!(
        filter_error("$share/g/a+"),
        "Invalid topic filter '$share/g/a+': '+' must occupy a whole level"
    );
}

#[test]
fn error_messages_shorten_very_long_topics() {
    let filter = format!("{}#", "a".repeat(1000));
    let message = filter_error(&filter);
    assert!(message.starts_with(&format!("Invalid topic filter '{}…'", "a".repeat(100))));
    assert!(message.len() < 200, "{message}");
}

// ---- matching -------------------------------------------------------------

/// (filter, topic, matches?)
const MATCH_TABLE: &[(&str, &str, bool)] = &[
    // literals
    ("a/b", "a/b", true),
    ("a/b", "a/c", false),
    ("a/b", "a", false),
    ("a/b", "a/b/c", false),
    ("A", "a", false),
    // `+` matches exactly one level (MQTT 4.7.1.3), also an empty one
    ("a/+", "a/b", true),
    ("a/+", "a", false),
    ("a/+", "a/", true),
    ("a/+", "a/b/c", false),
    ("+", "a", true),
    ("+", "/a", false),
    ("+/+", "/a", true),
    ("/+", "/a", true),
    ("+/b", "a/b", true),
    ("a/+/b", "a//b", true),
    ("sport/+", "sport", false),
    ("sport/+", "sport/", true),
    ("sport/tennis/+", "sport/tennis/player1", true),
    ("sport/tennis/+", "sport/tennis/player1/ranking", false),
    // `#` matches the parent level and any number of children (MQTT 4.7.1.2)
    ("a/#", "a", true),
    ("a/#", "a/", true),
    ("a/#", "a/b", true),
    ("a/#", "a/b/c", true),
    ("a/#", "b", false),
    ("a/#", "ab", false),
    ("sport/tennis/player1/#", "sport/tennis/player1", true),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/ranking",
        true,
    ),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/score/wimbledon",
        true,
    ),
    ("#", "a", true),
    ("#", "/", true),
    ("#", "/a", true),
    ("#", "a/b/c", true),
    ("+/#", "a", true),
    ("+/#", "a/b/c", true),
    ("/#", "/a", true),
    ("/#", "a", false),
    // empty levels are levels
    ("a//b", "a//b", true),
    ("a//b", "a/b", false),
    ("a/b", "a//b", false),
    ("/a", "/a", true),
    ("/a", "a", false),
    ("a/", "a/", true),
    ("a/", "a", false),
    ("/finance", "/finance", true),
    ("+/+", "/finance", true),
    ("/+", "/finance", true),
    ("+", "/finance", false),
    // `$` topics (MQTT-4.7.2-1): wildcards at the first level never match them
    ("#", "$SYS", false),
    ("#", "$SYS/broker/uptime", false),
    ("+", "$SYS", false),
    ("+/broker/uptime", "$SYS/broker/uptime", false),
    ("+/#", "$SYS/broker", false),
    ("+/monitor/Clients", "$SYS/monitor/Clients", false),
    ("$SYS/#", "$SYS/broker/uptime", true),
    ("$SYS/#", "$SYS", true),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
    ("$SYS/broker", "$SYS/broker", true),
    // ... only at the first level, and only for `$` as first character
    ("a/#", "a/$b", true),
    ("a/+", "a/$b", true),
    ("#", "a/$SYS", true),
    ("+", "x$", true),
];

#[test]
fn matching_table() {
    for &(filter, topic, expected) in MATCH_TABLE {
        assert_eq!(
            matches(filter, topic),
            expected,
            "matches({filter:?}, {topic:?})"
        );
        assert_eq!(
            topic_matches(filter, topic, DEFAULT_STRIPPED_PREFIXES),
            expected,
            "topic_matches({filter:?}, {topic:?})"
        );
    }
}

#[test]
fn mqtt_4_7_2_1_wildcard_filters_skip_dollar_topics() {
    for filter in ["#", "+", "+/#", "+/x", "+/+"] {
        for topic in ["$SYS", "$SYS/x", "$x/y", "$"] {
            assert!(!matches(filter, topic), "{filter:?} {topic:?}");
        }
    }
}

#[test]
fn matching_invalid_input_does_not_panic() {
    // Not meaningful answers, only no panic and no endless loop.
    for (filter, topic) in [
        ("", ""),
        ("a/#/b", "a/x/y"),
        ("##", "a"),
        ("+a", "$b"),
        ("", "a"),
        ("a", ""),
    ] {
        let _ = matches(filter, topic);
        let _ = compare_specificity(filter, topic);
    }
    assert!(matches("", ""));
    assert!(!matches("", "a"));
}

// ---- prefixes -------------------------------------------------------------

#[test]
fn mqtt_4_8_2_shared_subscription_matches_on_its_inner_filter() {
    assert_eq!(effective_filter("$share/g/a/b", NO_PREFIXES), "a/b");
    assert_eq!(effective_filter("$share/g/#", NO_PREFIXES), "#");
    assert_eq!(effective_filter("$share/g/+/x", NO_PREFIXES), "+/x");
    assert!(topic_matches("$share/g/a/+", "a/b", NO_PREFIXES));
    assert!(topic_matches("$share/group/#", "a/b", NO_PREFIXES));
    assert!(!topic_matches("$share/g/a/+", "$share/g/a/b", NO_PREFIXES));
    // MQTT-4.7.2-1 applies to the inner filter.
    assert!(!topic_matches("$share/g/#", "$SYS/x", NO_PREFIXES));
    assert!(topic_matches("$share/g/$SYS/#", "$SYS/x", NO_PREFIXES));
}

#[test]
fn malformed_share_prefix_is_left_alone() {
    for filter in ["$share", "$share/", "$share/g", "$share//a", "$share/g/"] {
        assert_eq!(effective_filter(filter, NO_PREFIXES), filter);
    }
}

#[test]
fn default_stripped_prefixes_are_queue_and_exclusive() {
    assert_eq!(DEFAULT_STRIPPED_PREFIXES, &["$queue", "$exclusive"]);
    assert_eq!(
        effective_filter("$queue/a/b", DEFAULT_STRIPPED_PREFIXES),
        "a/b"
    );
    assert_eq!(
        effective_filter("$exclusive/a/+", DEFAULT_STRIPPED_PREFIXES),
        "a/+"
    );
    assert_eq!(effective_filter("$queue/#", DEFAULT_STRIPPED_PREFIXES), "#");
    assert!(topic_matches(
        "$queue/a/b",
        "a/b",
        DEFAULT_STRIPPED_PREFIXES
    ));
    assert!(!topic_matches(
        "$queue/a/b",
        "$queue/a/b",
        DEFAULT_STRIPPED_PREFIXES
    ));
    assert!(topic_matches(
        "$exclusive/a/#",
        "a/b/c",
        DEFAULT_STRIPPED_PREFIXES
    ));
}

#[test]
fn stripped_prefix_needs_a_whole_level_and_a_rest() {
    let prefixes = DEFAULT_STRIPPED_PREFIXES;
    assert_eq!(effective_filter("$queue", prefixes), "$queue");
    assert_eq!(effective_filter("$queue/", prefixes), "$queue/");
    assert_eq!(effective_filter("$queuex/a", prefixes), "$queuex/a");
    assert_eq!(effective_filter("a/$queue/b", prefixes), "a/$queue/b");
    // Only one prefix is removed.
    assert_eq!(
        effective_filter("$queue/$exclusive/a", prefixes),
        "$exclusive/a"
    );
    assert_eq!(effective_filter("$share/g/$queue/a", prefixes), "$queue/a");
}

#[test]
fn stripped_prefixes_are_configurable() {
    assert_eq!(effective_filter("$queue/a", NO_PREFIXES), "$queue/a");
    assert!(topic_matches("$queue/a", "$queue/a", NO_PREFIXES));
    assert!(!topic_matches("$queue/a", "a", NO_PREFIXES));

    let custom = vec!["$local/".to_string(), String::new()];
    assert_eq!(effective_filter("$local/a/b", &custom), "a/b");
    assert_eq!(effective_filter("$queue/a/b", &custom), "$queue/a/b");
    // An empty prefix strips nothing, not even a leading empty level.
    assert_eq!(effective_filter("/a", &custom), "/a");
}

// ---- specificity ----------------------------------------------------------

fn sorted_most_specific_first(filters: &[&'static str]) -> Vec<&'static str> {
    let mut sorted = filters.to_vec();
    sorted.sort_by(|a, b| compare_specificity(b, a));
    sorted
}

#[test]
fn specificity_order_for_two_levels() {
    let expected = ["a/b", "a/+", "a/#", "+/b", "+/+", "+/#", "#"];
    for filter in expected {
        assert!(matches(filter, "a/b"));
    }
    let shuffled = ["+/+", "#", "a/#", "+/#", "a/b", "+/b", "a/+"];
    assert_eq!(sorted_most_specific_first(&shuffled), expected);
    for pair in expected.windows(2) {
        assert_eq!(compare_specificity(pair[0], pair[1]), Ordering::Greater);
        assert_eq!(compare_specificity(pair[1], pair[0]), Ordering::Less);
    }
}

#[test]
fn specificity_order_for_three_levels() {
    let expected = [
        "a/b/c", "a/b/+", "a/b/#", "a/+/c", "a/+/+", "a/+/#", "a/#", "+/b/c", "+/+/+", "+/#", "#",
    ];
    for filter in expected {
        assert!(matches(filter, "a/b/c"));
    }
    let mut shuffled = expected;
    shuffled.reverse();
    shuffled.swap(2, 7);
    assert_eq!(sorted_most_specific_first(&shuffled), expected);
}

#[test]
fn exact_end_beats_multi_level_wildcard() {
    // Both match topic `a`; `a/#` would also take `a/b`.
    assert_eq!(compare_specificity("a", "a/#"), Ordering::Greater);
    assert_eq!(compare_specificity("a/+", "a/+/#"), Ordering::Greater);
    // Non-overlapping pairs still get a fixed answer (end of filter sits between
    // `+` and `#`), which keeps the order total.
    assert_eq!(compare_specificity("a", "a/b"), Ordering::Less);
    assert_eq!(compare_specificity("a", "a/+"), Ordering::Less);
}

#[test]
fn specificity_ignores_literal_text() {
    assert_eq!(compare_specificity("a/x", "a/y"), Ordering::Equal);
    assert_eq!(compare_specificity("a/+", "b/+"), Ordering::Equal);
    assert_eq!(compare_specificity("a/#", "a/#"), Ordering::Equal);
    assert_eq!(compare_specificity("#", "#"), Ordering::Equal);
}

// ---- properties -----------------------------------------------------------

fn level() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "$s", "", "+", "#"])
}

/// Filter-like strings, `#` anywhere (so also invalid ones).
fn filter_like() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..5).prop_map(|levels| levels.join("/"))
}

/// Valid filters: levels from a small alphabet, optionally a final `#`.
fn valid_filter() -> impl Strategy<Value = String> {
    let inner = prop::sample::select(vec!["a", "b", "$s", "", "+"]);
    (prop::collection::vec(inner, 0..4), any::<bool>()).prop_map(|(mut levels, hash)| {
        // A single empty level would be the empty (invalid) filter.
        if hash || levels.is_empty() || levels == [""] {
            levels.push("#");
        }
        levels.join("/")
    })
}

/// Every topic of up to three levels over `a`, `$s` and the empty level.
fn small_topics() -> Vec<String> {
    let alphabet = ["a", "$s", ""];
    let mut topics: Vec<String> = alphabet.iter().map(|l| l.to_string()).collect();
    let mut last = topics.clone();
    for _ in 1..3 {
        last = last
            .iter()
            .flat_map(|t| alphabet.iter().map(move |l| format!("{t}/{l}")))
            .collect();
        topics.extend(last.iter().cloned());
    }
    topics.retain(|t| !t.is_empty());
    topics
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_strings(a in ".{0,40}", b in ".{0,40}") {
        let _ = validate_topic_name(&a);
        let _ = validate_topic_filter(&a);
        let _ = matches(&a, &b);
        let _ = topic_matches(&a, &b, DEFAULT_STRIPPED_PREFIXES);
        let _ = compare_specificity(&a, &b);
        let effective = effective_filter(&a, DEFAULT_STRIPPED_PREFIXES);
        prop_assert!(a.ends_with(effective));
    }

    #[test]
    fn a_valid_topic_name_matches_itself_as_a_filter(name in "[ab$/ ]{1,12}") {
        prop_assert_eq!(validate_topic_name(&name), Ok(()));
        prop_assert_eq!(validate_topic_filter(&name), Ok(()));
        prop_assert!(matches(&name, &name));
    }

    #[test]
    fn specificity_is_antisymmetric_and_transitive(
        a in filter_like(), b in filter_like(), c in filter_like()
    ) {
        prop_assert_eq!(compare_specificity(&a, &b), compare_specificity(&b, &a).reverse());
        if compare_specificity(&a, &b) != Ordering::Less
            && compare_specificity(&b, &c) != Ordering::Less
        {
            prop_assert_ne!(compare_specificity(&a, &c), Ordering::Less);
        }
    }

    #[test]
    fn co_matching_filters_tie_only_when_identical(a in valid_filter(), b in valid_filter()) {
        prop_assert_eq!(validate_topic_filter(&a), Ok(()));
        prop_assert_eq!(validate_topic_filter(&b), Ok(()));
        for topic in small_topics() {
            if matches(&a, &topic) && matches(&b, &topic) {
                prop_assert_eq!(compare_specificity(&a, &b) == Ordering::Equal, a == b);
            }
        }
    }
}

// ---- the byte scan behind topic name validation -----------------------------

#[test]
fn contains_any_byte_finds_each_needle_at_every_position() {
    for len in 0..40 {
        let clean = vec![b'a'; len];
        assert!(!contains_any_byte(&clean, &[0, b'+', b'#']), "len {len}");
        for at in 0..len {
            for needle in [0, b'+', b'#'] {
                let mut bytes = clean.clone();
                bytes[at] = needle;
                assert!(contains_any_byte(&bytes, &[0, b'+', b'#']), "{len} {at}");
                assert!(!contains_any_byte(&bytes, b"/"), "{len} {at}");
            }
        }
    }
    // Bytes next to a needle (0x2A, 0x2C around '+', 0x01 after 0) do not match.
    assert!(!contains_any_byte(
        b"*,\x01\"$*,\x01\"$*,",
        &[0, b'+', b'#']
    ));
}

#[test]
fn mqtt_4_7_1_1_and_4_7_3_2_caught_past_the_first_eight_bytes() {
    assert!(matches!(
        validate_topic_name("sensors/room1/+"),
        Err(TopicError::WildcardInName { .. })
    ));
    assert!(matches!(
        validate_topic_name("sensors/#/temp/more"),
        Err(TopicError::WildcardInName { .. })
    ));
    // U+0000 is reported before a wildcard that comes earlier.
    assert!(matches!(
        validate_topic_name("a/+/bcdefgh\0"),
        Err(TopicError::NullCharacter { .. })
    ));
    assert_eq!(validate_topic_name("sensors/room1/temperature"), Ok(()));
}

#[test]
fn contains_nul_or_wildcard_agrees_with_the_plain_scan() {
    // Every length up to three words, each special byte (and its neighbours
    // in the bit trick: 0x2A/0x2C/0x22/0x24/0x0B are not special) at every
    // position, against the byte-by-byte definition.
    for len in 0..=24 {
        for at in 0..len {
            for byte in [
                0u8, b'+', b'#', 0x2A, 0x2C, 0x22, 0x24, 0x0B, 0x08, 0xAB, 0xA3,
            ] {
                let mut bytes = vec![b'a'; len];
                bytes[at] = byte;
                let expected = bytes.iter().any(|b| matches!(b, 0 | b'+' | b'#'));
                assert_eq!(
                    contains_nul_or_wildcard(&bytes),
                    expected,
                    "len {len}, {byte:#04x} at {at}"
                );
            }
        }
        assert!(!contains_nul_or_wildcard(&vec![b'/'; len]), "len {len}");
    }
}

proptest! {
    #[test]
    fn contains_nul_or_wildcard_matches_its_definition(
        bytes in proptest::collection::vec(any::<u8>(), 0..80)
    ) {
        let expected = bytes.iter().any(|b| matches!(b, 0 | b'+' | b'#'));
        prop_assert_eq!(contains_nul_or_wildcard(&bytes), expected);
    }
}

#[test]
fn valid_topic_name_is_made_only_from_a_valid_name() {
    // MQTT-4.7.1-1, MQTT-4.7.3-1, MQTT-4.7.3-2
    assert_eq!(
        ValidTopicName::new("a/b").map(ValidTopicName::as_str),
        Ok("a/b")
    );
    for invalid in ["", "a/+", "a/#", "a\0b"] {
        assert!(ValidTopicName::new(invalid).is_err(), "{invalid:?}");
    }
    assert_eq!(
        ValidTopicName::checked_before("a/b"),
        ValidTopicName::new("a/b").unwrap()
    );
}
