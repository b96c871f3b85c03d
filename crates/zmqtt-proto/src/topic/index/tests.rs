use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;
use crate::topic::{compare_specificity, matches, TopicKind};

fn best(index: &FilterIndex<u32>, topic: &str) -> Option<(u32, bool)> {
    index.best_match(topic).map(|m| (m.key, m.tied))
}

fn index_of(filters: &[(&str, u32)]) -> FilterIndex<u32> {
    let mut index = FilterIndex::new();
    for &(filter, key) in filters {
        index.insert(filter, key).unwrap();
    }
    index
}

#[test]
fn most_specific_filter_wins_whatever_the_registration_order() {
    // Registered least specific first, so registration order cannot explain the result.
    let chain = ["#", "+/+", "+/b", "a/#", "a/+", "a/b"];
    let mut index = FilterIndex::new();
    for (key, filter) in (0u32..6).zip(chain) {
        assert_eq!(index.insert(filter, key), Ok(InsertOutcome::Added));
    }
    assert_eq!(index.len(), chain.len());
    // Removing the winner each time hands the topic to the next in the order.
    for (key, filter) in (0u32..6).zip(chain).rev() {
        assert_eq!(best(&index, "a/b"), Some((key, false)), "winner {filter}");
        assert!(index.remove(filter, &key));
    }
    assert_eq!(best(&index, "a/b"), None);
    assert!(index.is_empty());
}

#[test]
fn first_differing_level_decides() {
    let index = index_of(&[("a/+/c", 1), ("a/b/#", 2), ("+/b/c", 3)]);
    // `a/b/#` has a literal where `a/+/c` has `+`.
    assert_eq!(best(&index, "a/b/c"), Some((2, false)));
    assert_eq!(best(&index, "a/x/c"), Some((1, false)));
    assert_eq!(best(&index, "x/b/c"), Some((3, false)));
    assert_eq!(best(&index, "x/y/c"), None);
}

#[test]
fn exact_filter_beats_multi_level_wildcard_on_the_parent_level() {
    let index = index_of(&[("a/#", 1), ("a", 2)]);
    assert_eq!(best(&index, "a"), Some((2, false)));
    assert_eq!(best(&index, "a/b"), Some((1, false)));
    assert_eq!(best(&index, "b"), None);
}

#[test]
fn same_effective_filter_ties_first_registered_wins() {
    let mut index = FilterIndex::new();
    assert_eq!(index.insert("a/+", 1), Ok(InsertOutcome::Added));
    assert_eq!(
        index.insert("$share/g/a/+", 2),
        Ok(InsertOutcome::Duplicate { owner: 1 })
    );
    assert_eq!(
        index.insert("a/+", 3),
        Ok(InsertOutcome::Duplicate { owner: 1 })
    );
    assert_eq!(index.len(), 3);
    assert_eq!(best(&index, "a/b"), Some((1, true)));

    // The next registration takes over when the owner leaves.
    assert!(index.remove("a/+", &1));
    assert_eq!(best(&index, "a/b"), Some((2, true)));
    assert_eq!(
        index.insert("a/+", 1),
        Ok(InsertOutcome::Duplicate { owner: 2 })
    );
    assert_eq!(index.remove_key(&2), 1);
    assert_eq!(best(&index, "a/b"), Some((3, true)));
    assert_eq!(index.remove_key(&1), 1);
    assert_eq!(best(&index, "a/b"), Some((3, false)));
}

#[test]
fn a_more_specific_filter_is_not_a_tie() {
    let index = index_of(&[("a/#", 1), ("a/+", 2), ("a/b", 3)]);
    assert_eq!(best(&index, "a/b"), Some((3, false)));
}

#[test]
fn same_key_same_effective_filter_is_registered_once() {
    let mut index = FilterIndex::new();
    assert_eq!(index.insert("a/b", 7), Ok(InsertOutcome::Added));
    assert_eq!(index.insert("a/b", 7), Ok(InsertOutcome::AlreadyRegistered));
    assert_eq!(
        index.insert("$queue/a/b", 7),
        Ok(InsertOutcome::AlreadyRegistered)
    );
    assert_eq!(index.len(), 1);
    assert_eq!(best(&index, "a/b"), Some((7, false)));
    assert!(index.remove("$share/g/a/b", &7));
    assert!(index.is_empty());
}

#[test]
fn invalid_filter_is_refused_and_changes_nothing() {
    let mut index: FilterIndex<u32> = FilterIndex::new();
    assert_eq!(
        index.insert("a/#/b", 1),
        Err(TopicError::InvalidFilter {
            filter: "a/#/b".into(),
            reason: "'#' must be the last level"
        })
    );
    assert_eq!(
        index.insert("", 1),
        Err(TopicError::Empty(TopicKind::Filter))
    );
    assert!(index.insert("$share//a", 1).is_err());
    assert!(index.is_empty());
    assert_eq!(index.live_nodes(), 1);
}

#[test]
fn mqtt_4_7_2_1_wildcards_at_first_level_skip_dollar_topics() {
    let mut index = index_of(&[("#", 1), ("+/x", 2), ("+/#", 3)]);
    assert_eq!(best(&index, "$SYS/x"), None);
    assert_eq!(best(&index, "$SYS"), None);
    assert!(index.all_matches("$SYS/x").is_empty());
    assert_eq!(best(&index, "a/x"), Some((2, false)));
    index.insert("$SYS/#", 4).unwrap();
    assert_eq!(best(&index, "$SYS/x"), Some((4, false)));
    assert_eq!(best(&index, "$SYS"), Some((4, false)));
    // Deeper levels starting with `$` are ordinary.
    assert_eq!(best(&index, "a/$x"), Some((3, false)));
}

#[test]
fn empty_levels_are_routed_like_any_level() {
    let index = index_of(&[("a//b", 1), ("/+", 2), ("/#", 3), ("+/+", 4), ("a/+/b", 5)]);
    assert_eq!(best(&index, "a//b"), Some((1, false)));
    assert_eq!(best(&index, "a/x/b"), Some((5, false)));
    assert_eq!(best(&index, "/a"), Some((2, false)));
    assert_eq!(best(&index, "/a/b"), Some((3, false)));
    assert_eq!(best(&index, "/"), Some((2, false)));
    assert_eq!(best(&index, "x/"), Some((4, false)));
    assert_eq!(best(&index, "a/b"), Some((4, false)));
}

#[test]
fn lone_wildcards() {
    let index = index_of(&[("#", 1), ("+", 2)]);
    assert_eq!(best(&index, "a"), Some((2, false)));
    assert_eq!(best(&index, "a/b"), Some((1, false)));
    assert_eq!(best(&index, "/"), Some((1, false)));
}

#[test]
fn shared_and_stripped_prefixes_route_on_the_inner_filter() {
    let index = index_of(&[("$share/g/a/+", 1), ("$queue/a/b", 2), ("$exclusive/c", 3)]);
    assert_eq!(best(&index, "a/b"), Some((2, false)));
    assert_eq!(best(&index, "a/x"), Some((1, false)));
    assert_eq!(best(&index, "c"), Some((3, false)));
    assert_eq!(best(&index, "$queue/a/b"), None);
    assert_eq!(best(&index, "$share/g/a/x"), None);
}

#[test]
fn stripped_prefixes_come_from_the_index_configuration() {
    let mut index: FilterIndex<u32> = FilterIndex::with_stripped_prefixes(Vec::<String>::new());
    assert!(index.stripped_prefixes().is_empty());
    index.insert("$queue/a", 1).unwrap();
    index.insert("$share/g/a", 2).unwrap();
    assert_eq!(best(&index, "$queue/a"), Some((1, false)));
    assert_eq!(best(&index, "a"), Some((2, false)));

    let mut custom = FilterIndex::with_stripped_prefixes(["$local"]);
    custom.insert("$local/a", 1).unwrap();
    custom.insert("$queue/a", 2).unwrap();
    assert_eq!(best(&custom, "a"), Some((1, false)));
    assert_eq!(best(&custom, "$queue/a"), Some((2, false)));

    let default: FilterIndex<u32> = FilterIndex::default();
    assert_eq!(default.stripped_prefixes(), ["$queue", "$exclusive"]);
}

#[test]
fn remove_reports_what_it_removed() {
    let mut index = index_of(&[("a/+", 1), ("a/#", 1), ("a/+", 2)]);
    assert!(!index.remove("a/+", &3));
    assert!(!index.remove("b/+", &1));
    assert!(!index.remove("a/+/+", &1));
    assert!(!index.remove("a", &1));
    assert!(index.remove("a/+", &1));
    assert!(!index.remove("a/+", &1));
    assert_eq!(best(&index, "a/b"), Some((2, false)));
    assert_eq!(index.len(), 2);
}

#[test]
fn remove_key_removes_every_filter_of_that_key() {
    let mut index = index_of(&[("a/+", 1), ("a/#", 1), ("x/y/z", 1), ("a/b", 2), ("#", 3)]);
    assert_eq!(index.remove_key(&1), 3);
    assert_eq!(index.remove_key(&1), 0);
    assert_eq!(index.len(), 2);
    assert_eq!(best(&index, "a/c"), Some((3, false)));
    assert_eq!(best(&index, "a/b"), Some((2, false)));
    assert_eq!(best(&index, "x/y/z"), Some((3, false)));
}

#[test]
fn removal_frees_unused_nodes_and_they_are_reused() {
    let mut index = FilterIndex::new();
    index.insert("a/b/c", 1).unwrap();
    index.insert("a/+/#", 2).unwrap();
    index.insert("a/b", 3).unwrap();
    // root, a, a/b, a/b/c, a/+
    assert_eq!(index.live_nodes(), 5);
    assert!(index.remove("a/b/c", &1));
    assert_eq!(index.live_nodes(), 4); // a/b stays: it holds key 3
    assert_eq!(index.remove_key(&2), 1);
    assert_eq!(index.live_nodes(), 3);
    assert!(index.remove("a/b", &3));
    assert_eq!(index.live_nodes(), 1);

    let arena = index.nodes.len();
    for round in 0..10 {
        index.insert("a/b/c", round).unwrap();
        index.insert("a/+/#", round).unwrap();
        assert_eq!(index.remove_key(&round), 2);
    }
    assert_eq!(index.nodes.len(), arena);
    assert_eq!(index.live_nodes(), 1);
}

#[test]
fn clear_empties_the_index() {
    let mut index = index_of(&[("a/b", 1), ("#", 2)]);
    index.clear();
    assert!(index.is_empty());
    assert_eq!(best(&index, "a/b"), None);
    assert_eq!(index.live_nodes(), 1);
}

#[test]
fn all_matches_lists_each_key_once_most_specific_first() {
    let index = index_of(&[
        ("#", 1),
        ("+/b", 2),
        ("a/#", 3),
        ("a/+", 4),
        ("a/b", 5),
        ("a/b", 6),
        ("+/+", 4),
        ("x/y", 7),
    ]);
    assert_eq!(index.all_matches("a/b"), [&5, &6, &4, &3, &2, &1]);
    assert_eq!(index.all_matches("x/y"), [&7, &4, &1]);
    assert_eq!(index.all_matches("a"), [&3, &1]);
}

#[test]
fn deepest_possible_filter_does_not_overflow_the_stack() {
    // 65535 separators: a valid filter and topic of 65536 empty levels.
    let deep = "/".repeat(65_535);
    let mut index = FilterIndex::new();
    index.insert(&deep, 1).unwrap();
    index.insert("#", 2).unwrap();
    index
        .insert(&format!("{}+/#", "/".repeat(65_532)), 3)
        .unwrap();
    assert_eq!(best(&index, &deep), Some((1, false)));
    assert_eq!(index.all_matches(&deep), [&1, &3, &2]);
    assert!(index.remove(&deep, &1));
    assert_eq!(best(&index, &deep), Some((3, false)));
    assert_eq!(index.remove_key(&3), 1);
    assert_eq!(best(&index, &deep), Some((2, false)));
    assert_eq!(index.live_nodes(), 1);
}

#[test]
fn arbitrary_topics_never_panic() {
    let index = index_of(&[("#", 1), ("+/+", 2), ("a/#", 3)]);
    for topic in ["", "/", "+", "#", "a/#/b", "\0", "$", "a//"] {
        let _ = index.best_match(topic);
        let _ = index.all_matches(topic);
    }
    assert_eq!(best(&index, ""), Some((1, false)));
}

// ---- model check ----------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Insert(String, u8),
    Remove(String, u8),
    RemoveKey(u8),
}

fn filter_strategy() -> impl Strategy<Value = String> {
    let level = prop::sample::select(vec!["a", "b", "$s", "", "+"]);
    let prefix = prop::sample::select(vec!["", "", "", "$share/g/", "$share/h/", "$queue/"]);
    (prefix, prop::collection::vec(level, 0..4), 0u8..3).prop_map(|(prefix, levels, tail)| {
        let mut levels = levels;
        match tail {
            // `#` as the last level.
            0 => levels.push("#"),
            // `#` in a wrong place now and then, to exercise refusals.
            1 if levels.len() > 1 => levels.insert(0, "#"),
            _ => {}
        }
        format!("{prefix}{}", levels.join("/"))
    })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (filter_strategy(), 0u8..4).prop_map(|(f, k)| Op::Insert(f, k)),
        2 => (filter_strategy(), 0u8..4).prop_map(|(f, k)| Op::Remove(f, k)),
        1 => (0u8..4).prop_map(Op::RemoveKey),
    ]
}

fn topic_strategy() -> impl Strategy<Value = String> {
    let level = prop::sample::select(vec!["a", "b", "$s", ""]);
    prop::collection::vec(level, 1..5).prop_map(|levels| levels.join("/"))
}

/// The brute-force reference: registrations (effective filter, key) in order.
#[derive(Default)]
struct Model {
    registrations: Vec<(String, u8)>,
}

impl Model {
    fn effective(filter: &str) -> String {
        effective_filter(filter, DEFAULT_STRIPPED_PREFIXES).to_owned()
    }

    fn insert(&mut self, filter: &str, key: u8) -> Result<InsertOutcome<u8>, TopicError> {
        validate_topic_filter(filter)?;
        let effective = Self::effective(filter);
        if self.registrations.contains(&(effective.clone(), key)) {
            return Ok(InsertOutcome::AlreadyRegistered);
        }
        let owner = self
            .registrations
            .iter()
            .find(|(f, _)| *f == effective)
            .map(|(_, k)| *k);
        self.registrations.push((effective, key));
        Ok(match owner {
            Some(owner) => InsertOutcome::Duplicate { owner },
            None => InsertOutcome::Added,
        })
    }

    fn remove(&mut self, filter: &str, key: u8) -> bool {
        let wanted = (Self::effective(filter), key);
        match self.registrations.iter().position(|r| *r == wanted) {
            Some(i) => {
                self.registrations.remove(i);
                true
            }
            None => false,
        }
    }

    fn remove_key(&mut self, key: u8) -> usize {
        let before = self.registrations.len();
        self.registrations.retain(|(_, k)| *k != key);
        before - self.registrations.len()
    }

    /// Scans every registration with `matches` and `compare_specificity`.
    fn best_match(&self, topic: &str) -> Option<Match<u8>> {
        let candidates: Vec<&(String, u8)> = self
            .registrations
            .iter()
            .filter(|(f, _)| matches(f, topic))
            .collect();
        let mut best: Option<&(String, u8)> = None;
        for &candidate in &candidates {
            // Strictly greater only: the first registered wins among equals.
            if best.map_or(true, |b| {
                compare_specificity(&candidate.0, &b.0) == Ordering::Greater
            }) {
                best = Some(candidate);
            }
        }
        let best = best?;
        let tied = candidates
            .iter()
            .any(|c| c.1 != best.1 && compare_specificity(&c.0, &best.0) == Ordering::Equal);
        Some(Match { key: best.1, tied })
    }

    fn all_matches(&self, topic: &str) -> Vec<u8> {
        let mut candidates: Vec<&(String, u8)> = self
            .registrations
            .iter()
            .filter(|(f, _)| matches(f, topic))
            .collect();
        candidates.sort_by(|a, b| compare_specificity(&b.0, &a.0)); // stable
        let mut keys = Vec::new();
        for (_, key) in candidates {
            if !keys.contains(key) {
                keys.push(*key);
            }
        }
        keys
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn index_agrees_with_brute_force_scan(
        ops in prop::collection::vec(op_strategy(), 0..40),
        topics in prop::collection::vec(topic_strategy(), 1..12),
    ) {
        let mut index: FilterIndex<u8> = FilterIndex::new();
        let mut model = Model::default();
        for op in &ops {
            match op {
                Op::Insert(filter, key) => {
                    prop_assert_eq!(index.insert(filter, *key), model.insert(filter, *key), "insert {}", filter);
                }
                Op::Remove(filter, key) => {
                    prop_assert_eq!(index.remove(filter, key), model.remove(filter, *key), "remove {}", filter);
                }
                Op::RemoveKey(key) => {
                    prop_assert_eq!(index.remove_key(key), model.remove_key(*key));
                }
            }
            prop_assert_eq!(index.len(), model.registrations.len());
        }
        for topic in &topics {
            prop_assert_eq!(index.best_match(topic), model.best_match(topic), "topic {}", topic);
            let all: Vec<u8> = index.all_matches(topic).into_iter().copied().collect();
            prop_assert_eq!(all, model.all_matches(topic), "topic {}", topic);
        }
        // Removing everything leaves only the root.
        for key in 0..4 {
            index.remove_key(&key);
        }
        prop_assert_eq!(index.live_nodes(), 1);
    }
}
