//! Which subscription an incoming message goes to (SPEC 1.7).
//!
//! Exactly one subscription gets each message: with 5.0 subscription
//! identifiers on the message, a subscription registered with one of them
//! decides first; otherwise the subscription whose matching filter is the most
//! specific (literal beats `+` beats `#`, level by level), the first registered
//! on a tie. `$share/<group>/f` and the stripped prefixes match on `f`.

use std::collections::{BTreeMap, BTreeSet};

use zmqtt_proto::topic::{FilterIndex, InsertOutcome, TopicError};

use crate::connection::command::SubKey;

/// The routing table of one driver.
///
/// Empty until the first subscription: a client that never subscribes (or no
/// longer does) holds no table at all.
#[derive(Debug, Default)]
pub(crate) struct Router {
    tables: Option<Box<Tables>>,
}

#[derive(Debug)]
struct Tables {
    index: FilterIndex<SubKey>,
    /// 5.0 subscription identifier → subscriptions registered with it.
    identifiers: BTreeMap<u32, BTreeSet<SubKey>>,
    /// Each subscription's filters and identifier, to undo its registration.
    registered: BTreeMap<SubKey, (Vec<String>, Option<u32>)>,
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub key: SubKey,
    /// Another subscription holds the same filter and gets nothing.
    pub tied: bool,
}

impl Router {
    /// Registers `key` for `filters`; `stripped_prefixes` are the client's
    /// (used when the table is made). Returns, for each filter another live
    /// subscription already holds, that filter and its holder (SPEC 1.7: the
    /// new subscription gets nothing for it; the caller logs a WARNING).
    /// Nothing changes when a filter is invalid.
    pub(crate) fn insert(
        &mut self,
        key: SubKey,
        filters: &[String],
        identifier: Option<u32>,
        stripped_prefixes: &[String],
    ) -> Result<Vec<(String, SubKey)>, TopicError> {
        for filter in filters {
            zmqtt_proto::topic::validate_topic_filter(filter)?;
        }
        let tables = self.tables.get_or_insert_with(|| {
            Box::new(Tables {
                index: FilterIndex::with_stripped_prefixes(stripped_prefixes.iter().cloned()),
                identifiers: BTreeMap::new(),
                registered: BTreeMap::new(),
            })
        });
        let mut duplicates = Vec::new();
        for filter in filters {
            if let InsertOutcome::Duplicate { owner } = tables.index.insert(filter, key)? {
                duplicates.push((filter.clone(), owner));
            }
        }
        if let Some(identifier) = identifier {
            tables
                .identifiers
                .entry(identifier)
                .or_default()
                .insert(key);
        }
        tables
            .registered
            .insert(key, (filters.to_vec(), identifier));
        Ok(duplicates)
    }

    /// Removes every registration of `key`; the table goes with the last one.
    pub(crate) fn remove(&mut self, key: SubKey) {
        let Some(tables) = self.tables.as_mut() else {
            return;
        };
        let Some((filters, identifier)) = tables.registered.remove(&key) else {
            return;
        };
        for filter in &filters {
            tables.index.remove(filter, &key);
        }
        if let Some(identifier) = identifier {
            if let Some(keys) = tables.identifiers.get_mut(&identifier) {
                keys.remove(&key);
                if keys.is_empty() {
                    tables.identifiers.remove(&identifier);
                }
            }
        }
        if tables.registered.is_empty() {
            self.tables = None;
        }
    }

    /// The one subscription that gets a message on `topic` carrying the 5.0
    /// subscription `identifiers` (empty on 3.1.1).
    pub(crate) fn route(&self, topic: &str, identifiers: &[u32]) -> Option<Route> {
        let tables = self.tables.as_ref()?;
        let candidates: BTreeSet<SubKey> = identifiers
            .iter()
            .filter_map(|identifier| tables.identifiers.get(identifier))
            .flatten()
            .copied()
            .collect();
        if candidates.is_empty() {
            return tables.index.best_match(topic).map(|found| Route {
                key: found.key,
                tied: found.tied,
            });
        }
        // The broker named the subscriptions; among them the most specific
        // matching filter wins, else the first registered.
        let by_specificity = tables.index.all_matches(topic);
        let key = by_specificity
            .into_iter()
            .find(|key| candidates.contains(key))
            .copied()
            .or_else(|| candidates.first().copied())?;
        Some(Route { key, tied: false })
    }

    /// Whether any registered subscription other than `except` holds `filter`
    /// (the exact string), so that UNSUBSCRIBE must not remove it at the broker.
    pub(crate) fn filter_in_use(&self, filter: &str, except: SubKey) -> bool {
        self.tables.as_ref().is_some_and(|tables| {
            tables
                .registered
                .iter()
                .any(|(key, (filters, _))| *key != except && filters.iter().any(|f| f == filter))
        })
    }

    /// Whether `key` is registered.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: SubKey) -> bool {
        self.tables
            .as_ref()
            .is_some_and(|tables| tables.registered.contains_key(&key))
    }

    /// Whether a table is allocated.
    #[cfg(test)]
    fn has_tables(&self) -> bool {
        self.tables.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes() -> Vec<String> {
        vec!["$queue".to_owned(), "$exclusive".to_owned()]
    }

    /// A router whose `insert` always passes the test's stripped prefixes.
    struct TestRouter(Router);

    impl TestRouter {
        fn insert(
            &mut self,
            key: SubKey,
            filters: &[String],
            identifier: Option<u32>,
        ) -> Result<Vec<(String, SubKey)>, TopicError> {
            self.0.insert(key, filters, identifier, &prefixes())
        }
    }

    impl std::ops::Deref for TestRouter {
        type Target = Router;
        fn deref(&self) -> &Router {
            &self.0
        }
    }

    impl std::ops::DerefMut for TestRouter {
        fn deref_mut(&mut self) -> &mut Router {
            &mut self.0
        }
    }

    fn router() -> TestRouter {
        TestRouter(Router::default())
    }

    fn filters(list: &[&str]) -> Vec<String> {
        list.iter().map(|f| (*f).to_owned()).collect()
    }

    #[test]
    fn most_specific_filter_wins_whatever_the_registration_order() {
        let mut router = router();
        router.insert(1, &filters(&["#"]), None).unwrap();
        router.insert(2, &filters(&["a/+"]), None).unwrap();
        router.insert(3, &filters(&["a/b"]), None).unwrap();
        router.insert(4, &filters(&["a/#"]), None).unwrap();
        let key = |topic| router.route(topic, &[]).map(|r| r.key);
        assert_eq!(key("a/b"), Some(3));
        assert_eq!(key("a/c"), Some(2));
        assert_eq!(key("a/c/d"), Some(4));
        assert_eq!(key("x"), Some(1));
        assert_eq!(key("$SYS/x"), None, "MQTT-4.7.2-1");
    }

    #[test]
    fn same_filter_twice_goes_to_the_first_and_is_reported() {
        let mut router = router();
        assert!(router
            .insert(1, &filters(&["a/b"]), None)
            .unwrap()
            .is_empty());
        let duplicates = router.insert(2, &filters(&["a/b", "c"]), None).unwrap();
        assert_eq!(duplicates, vec![("a/b".to_owned(), 1)]);
        assert_eq!(router.route("a/b", &[]), Some(Route { key: 1, tied: true }));
        assert_eq!(router.route("c", &[]).map(|r| r.key), Some(2));
        router.remove(1);
        assert_eq!(
            router.route("a/b", &[]),
            Some(Route {
                key: 2,
                tied: false
            })
        );
    }

    #[test]
    fn shared_and_stripped_prefixes_match_on_the_inner_filter() {
        let mut router = router();
        router.insert(1, &filters(&["$share/g/s/+"]), None).unwrap();
        router.insert(2, &filters(&["$queue/q/#"]), None).unwrap();
        assert_eq!(router.route("s/1", &[]).map(|r| r.key), Some(1));
        assert_eq!(router.route("q/1/2", &[]).map(|r| r.key), Some(2));
        assert_eq!(router.route("$queue/q/1", &[]), None);
    }

    #[test]
    fn subscription_identifiers_decide_first() {
        let mut router = router();
        router.insert(1, &filters(&["a/b"]), Some(10)).unwrap();
        router.insert(2, &filters(&["a/#"]), Some(20)).unwrap();
        assert_eq!(router.route("a/b", &[]).map(|r| r.key), Some(1));
        assert_eq!(router.route("a/b", &[20]).map(|r| r.key), Some(2));
        // Both named: the most specific of them.
        assert_eq!(router.route("a/b", &[20, 10]).map(|r| r.key), Some(1));
        // An identifier nobody holds falls back to the filters.
        assert_eq!(router.route("a/b", &[99]).map(|r| r.key), Some(1));
        router.remove(2);
        assert_eq!(router.route("a/b/c", &[20]), None);
    }

    #[test]
    fn invalid_filter_changes_nothing() {
        let mut router = router();
        assert!(router.insert(1, &filters(&["ok", "a/#/b"]), None).is_err());
        assert!(!router.contains(1));
        assert_eq!(router.route("ok", &[]), None);
    }

    #[test]
    fn filter_in_use_ignores_the_asking_subscription() {
        let mut router = router();
        router.insert(1, &filters(&["a"]), None).unwrap();
        assert!(!router.filter_in_use("a", 1));
        router.insert(2, &filters(&["a"]), None).unwrap();
        assert!(router.filter_in_use("a", 1));
        assert!(!router.filter_in_use("$share/g/a", 1), "exact strings only");
    }

    #[test]
    fn the_table_exists_only_while_something_is_subscribed() {
        let mut router = router();
        assert!(!router.has_tables());
        assert_eq!(router.route("a", &[]), None);
        assert!(!router.filter_in_use("a", 0));
        router.remove(1);
        router.insert(1, &filters(&["a"]), Some(7)).unwrap();
        router.insert(2, &filters(&["b"]), None).unwrap();
        assert!(router.has_tables());
        router.remove(1);
        assert!(router.has_tables());
        assert_eq!(router.route("b", &[]).map(|r| r.key), Some(2));
        router.remove(2);
        assert!(!router.has_tables());
        // Made again, with the stripped prefixes, by the next subscription.
        router.insert(3, &filters(&["$queue/q/#"]), None).unwrap();
        assert_eq!(router.route("q/1", &[]).map(|r| r.key), Some(3));
    }
}
