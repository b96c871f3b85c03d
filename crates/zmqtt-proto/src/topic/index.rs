//! [`FilterIndex`]: routes a topic to the one most specific subscription.

use std::collections::HashMap;
use std::ops::ControlFlow;

use super::{effective_filter, validate_topic_filter, TopicError, DEFAULT_STRIPPED_PREFIXES};

/// Position of a node in the arena.
type NodeId = usize;

/// The root node: never freed.
const ROOT: NodeId = 0;

/// How a node hangs off its parent (needed to detach it when it becomes unused).
#[derive(Debug, Clone)]
enum Edge {
    Root,
    Literal(Box<str>),
    SingleWildcard,
}

/// Where a filter's registrations live in the node its path leads to.
#[derive(Debug, Clone, Copy)]
enum Terminal {
    /// The filter ends at the node (`a/b` at node `a/b`).
    Exact,
    /// The filter is the node's path followed by `#` (`a/#` at node `a`).
    MultiWildcard,
}

/// One level of the trie. A node's path is the sequence of edges from the root.
#[derive(Debug, Clone)]
struct Node<K> {
    parent: NodeId,
    edge: Edge,
    literals: HashMap<Box<str>, NodeId>,
    single_wildcard: Option<NodeId>,
    /// Keys of filters equal to this node's path, in registration order.
    exact: Vec<K>,
    /// Keys of filters equal to this node's path plus `/#` (`#` at the root), in
    /// registration order.
    multi_wildcard: Vec<K>,
}

impl<K> Node<K> {
    fn new(parent: NodeId, edge: Edge) -> Self {
        Node {
            parent,
            edge,
            literals: HashMap::new(),
            single_wildcard: None,
            exact: Vec::new(),
            multi_wildcard: Vec::new(),
        }
    }

    fn is_unused(&self) -> bool {
        self.literals.is_empty()
            && self.single_wildcard.is_none()
            && self.exact.is_empty()
            && self.multi_wildcard.is_empty()
    }

    fn keys_mut(&mut self, terminal: Terminal) -> &mut Vec<K> {
        match terminal {
            Terminal::Exact => &mut self.exact,
            Terminal::MultiWildcard => &mut self.multi_wildcard,
        }
    }
}

/// The result of [`FilterIndex::best_match`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<K> {
    /// The key of the most specific matching subscription (the first registered
    /// one among equally specific ones).
    pub key: K,
    /// Another key registered the same effective filter, so it matched equally
    /// specifically and gets nothing (SPEC 1.7: the caller logs a WARNING).
    pub tied: bool,
}

/// What [`FilterIndex::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InsertOutcome<K> {
    /// Registered; no other key holds this effective filter.
    Added,
    /// Registered, but `owner` registered the same effective filter first: the new
    /// registration receives nothing while `owner` holds it (SPEC 1.7: the caller
    /// logs a WARNING). It takes over when `owner` is removed.
    Duplicate { owner: K },
    /// This key already held this effective filter: nothing changed.
    AlreadyRegistered,
}

/// The routing index: subscription filters mapped to keys (subscription ids),
/// answering "which single subscription gets a message on this topic".
///
/// Filters are stored by their [`effective_filter`] (computed with the index's
/// stripped prefixes) in a trie over levels: each node has its literal children
/// in a `HashMap`, at most one `+` child, and the keys of filters ending at the
/// node or at a `#` right below it. Nodes live in an arena (no recursion, no
/// recursive drop), so even a 65535-level filter is handled.
///
/// Complexity, for a topic or filter of `L` levels:
/// - [`insert`](Self::insert), [`remove`](Self::remove): O(L) hash lookups, plus
///   a scan of the keys registered for that very filter.
/// - [`best_match`](Self::best_match), [`all_matches`](Self::all_matches):
///   visit only trie nodes whose path matches a prefix of the topic, so
///   subscriptions that diverge from the topic at some level (a different
///   literal) cost nothing past that level. With literal filters that is O(L);
///   each `+` branch adds the nodes under it that follow the topic, bounded by
///   the number of filters. `best_match` stops at the first (most specific) hit.
/// - [`remove_key`](Self::remove_key): O(number of trie nodes) — keys are only
///   `Eq`, so it scans; unsubscribing is rare compared to routing.
#[derive(Debug, Clone)]
pub struct FilterIndex<K> {
    /// The arena; `None` marks a freed slot listed in `free`.
    nodes: Vec<Option<Node<K>>>,
    free: Vec<NodeId>,
    stripped_prefixes: Vec<String>,
    len: usize,
}

impl<K: Clone + Eq> Default for FilterIndex<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq> FilterIndex<K> {
    /// An empty index stripping [`DEFAULT_STRIPPED_PREFIXES`].
    pub fn new() -> Self {
        Self::with_stripped_prefixes(DEFAULT_STRIPPED_PREFIXES.iter().copied())
    }

    /// An empty index stripping the given group-less prefixes (see
    /// [`effective_filter`]); pass an empty list to strip none. `$share/<group>/`
    /// is always stripped.
    pub fn with_stripped_prefixes<I, S>(prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        FilterIndex {
            nodes: vec![Some(Node::new(ROOT, Edge::Root))],
            free: Vec::new(),
            stripped_prefixes: prefixes.into_iter().map(Into::into).collect(),
            len: 0,
        }
    }

    /// The prefixes this index strips from filters.
    pub fn stripped_prefixes(&self) -> &[String] {
        &self.stripped_prefixes
    }

    /// How many (filter, key) registrations the index holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the index holds no registration.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Registers `filter` for `key`, after the registrations made so far (which
    /// decides ties). The filter is validated first ([`validate_topic_filter`]);
    /// an invalid one is refused and nothing changes.
    pub fn insert(&mut self, filter: &str, key: K) -> Result<InsertOutcome<K>, TopicError> {
        validate_topic_filter(filter)?;
        let (path, terminal) = split_terminal(effective_filter(filter, &self.stripped_prefixes));
        let mut node = ROOT;
        if let Some(path) = path {
            for level in path.split('/') {
                node = self.child_or_insert(node, level);
            }
        }
        let Some(keys) = self.node_mut(node).map(|n| n.keys_mut(terminal)) else {
            // Unreachable: `child_or_insert` only returns live nodes.
            return Ok(InsertOutcome::AlreadyRegistered);
        };
        if keys.contains(&key) {
            return Ok(InsertOutcome::AlreadyRegistered);
        }
        let outcome = match keys.first() {
            Some(owner) => InsertOutcome::Duplicate {
                owner: owner.clone(),
            },
            None => InsertOutcome::Added,
        };
        keys.push(key);
        self.len = self.len.saturating_add(1);
        Ok(outcome)
    }

    /// Removes the registration of `filter` (compared by effective filter) for
    /// `key`. Returns whether there was one.
    pub fn remove(&mut self, filter: &str, key: &K) -> bool {
        let (path, terminal) = split_terminal(effective_filter(filter, &self.stripped_prefixes));
        let Some(node) = self.find(path) else {
            return false;
        };
        let removed = self.node_mut(node).is_some_and(|n| {
            let keys = n.keys_mut(terminal);
            match keys.iter().position(|k| k == key) {
                Some(position) => {
                    keys.remove(position);
                    true
                }
                None => false,
            }
        });
        if removed {
            self.len = self.len.saturating_sub(1);
            self.prune(node);
        }
        removed
    }

    /// Removes every registration of `key`. Returns how many there were.
    pub fn remove_key(&mut self, key: &K) -> usize {
        let mut removed = 0usize;
        let mut touched = Vec::new();
        for (id, node) in self.nodes.iter_mut().enumerate() {
            let Some(node) = node else { continue };
            let before = node.exact.len() + node.multi_wildcard.len();
            node.exact.retain(|k| k != key);
            node.multi_wildcard.retain(|k| k != key);
            let after = node.exact.len() + node.multi_wildcard.len();
            if after < before {
                removed += before - after;
                touched.push(id);
            }
        }
        self.len = self.len.saturating_sub(removed);
        for id in touched {
            self.prune(id);
        }
        removed
    }

    /// Removes every registration.
    pub fn clear(&mut self) {
        self.nodes = vec![Some(Node::new(ROOT, Edge::Root))];
        self.free.clear();
        self.len = 0;
    }

    /// The key of the most specific registered filter matching `topic` (see
    /// [`compare_specificity`](super::compare_specificity)); among registrations
    /// of the same effective filter the first registered wins and `tied` is set.
    /// The `$` rule (MQTT-4.7.2-1) applies: `#` and `+/…` never match `$SYS/…`.
    pub fn best_match(&self, topic: &str) -> Option<Match<K>> {
        let mut best = None;
        self.walk(topic, |keys| match keys.split_first() {
            Some((first, others)) => {
                best = Some(Match {
                    key: first.clone(),
                    tied: !others.is_empty(),
                });
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        });
        best
    }

    /// Every key with a filter matching `topic`, each once, most specific match
    /// first (registration order among equally specific ones).
    pub fn all_matches(&self, topic: &str) -> Vec<&K> {
        let mut found: Vec<&K> = Vec::new();
        self.walk(topic, |keys| {
            for key in keys {
                if !found.contains(&key) {
                    found.push(key);
                }
            }
            ControlFlow::Continue(())
        });
        found
    }

    /// Calls `visit` with the keys of each registered filter matching `topic`,
    /// most specific filter first, until it breaks.
    ///
    /// Depth-first over the nodes that follow the topic, children tried in the
    /// order literal, `+`, then the node's own `#`; at the end of the topic the
    /// exact filter comes before the `#` below it. That is exactly the order of
    /// [`compare_specificity`](super::compare_specificity) restricted to filters
    /// matching the topic, so the first hit is the most specific one.
    fn walk<'s>(&'s self, topic: &str, mut visit: impl FnMut(&'s [K]) -> ControlFlow<()>) {
        enum Step {
            /// A node reached after consuming `depth` topic levels.
            Node(NodeId, usize),
            /// The `#` registrations of a node.
            MultiWildcard(NodeId),
        }
        let levels: Vec<&str> = topic.split('/').collect();
        let dollar_topic = topic.starts_with('$');
        let mut stack = vec![Step::Node(ROOT, 0)];
        while let Some(step) = stack.pop() {
            let mut offer = |keys: &'s [K]| {
                if keys.is_empty() {
                    ControlFlow::Continue(())
                } else {
                    visit(keys)
                }
            };
            match step {
                Step::MultiWildcard(id) => {
                    if let Some(node) = self.node(id) {
                        if offer(&node.multi_wildcard).is_break() {
                            return;
                        }
                    }
                }
                Step::Node(id, depth) => {
                    let Some(node) = self.node(id) else { continue };
                    match levels.get(depth) {
                        None => {
                            if offer(&node.exact).is_break()
                                || offer(&node.multi_wildcard).is_break()
                            {
                                return;
                            }
                        }
                        Some(level) => {
                            // MQTT-4.7.2-1: no wildcard at the first level for `$` topics.
                            if !(depth == 0 && dollar_topic) {
                                stack.push(Step::MultiWildcard(id));
                                if let Some(child) = node.single_wildcard {
                                    stack.push(Step::Node(child, depth + 1));
                                }
                            }
                            if let Some(&child) = node.literals.get(*level) {
                                stack.push(Step::Node(child, depth + 1));
                            }
                        }
                    }
                }
            }
        }
    }

    fn node(&self, id: NodeId) -> Option<&Node<K>> {
        self.nodes.get(id).and_then(Option::as_ref)
    }

    fn node_mut(&mut self, id: NodeId) -> Option<&mut Node<K>> {
        self.nodes.get_mut(id).and_then(Option::as_mut)
    }

    /// The node reached from the root along `path` (`None` = the root itself),
    /// if it exists.
    fn find(&self, path: Option<&str>) -> Option<NodeId> {
        let mut id = ROOT;
        if let Some(path) = path {
            for level in path.split('/') {
                let node = self.node(id)?;
                id = if level == "+" {
                    node.single_wildcard?
                } else {
                    *node.literals.get(level)?
                };
            }
        }
        Some(id)
    }

    /// The child of `parent` for `level` (`+` or a literal), created if missing.
    fn child_or_insert(&mut self, parent: NodeId, level: &str) -> NodeId {
        let existing = self.node(parent).and_then(|node| {
            if level == "+" {
                node.single_wildcard
            } else {
                node.literals.get(level).copied()
            }
        });
        if let Some(id) = existing {
            return id;
        }
        let edge = if level == "+" {
            Edge::SingleWildcard
        } else {
            Edge::Literal(level.into())
        };
        let id = self.alloc(Node::new(parent, edge.clone()));
        if let Some(node) = self.node_mut(parent) {
            match edge {
                Edge::SingleWildcard => node.single_wildcard = Some(id),
                Edge::Literal(level) => {
                    node.literals.insert(level, id);
                }
                Edge::Root => {}
            }
        }
        id
    }

    fn alloc(&mut self, node: Node<K>) -> NodeId {
        if let Some(id) = self.free.pop() {
            if let Some(slot) = self.nodes.get_mut(id) {
                *slot = Some(node);
                return id;
            }
        }
        self.nodes.push(Some(node));
        self.nodes.len() - 1
    }

    /// Frees `id` and then its ancestors for as long as they hold nothing.
    fn prune(&mut self, mut id: NodeId) {
        while id != ROOT {
            let Some(node) = self.node(id).filter(|node| node.is_unused()) else {
                return;
            };
            let (parent, edge) = (node.parent, node.edge.clone());
            if let Some(parent_node) = self.node_mut(parent) {
                match edge {
                    Edge::Literal(level) => {
                        parent_node.literals.remove(&level);
                    }
                    Edge::SingleWildcard => parent_node.single_wildcard = None,
                    Edge::Root => {}
                }
            }
            if let Some(slot) = self.nodes.get_mut(id) {
                *slot = None;
                self.free.push(id);
            }
            id = parent;
        }
    }

    /// How many trie nodes are live (the root included).
    #[cfg(test)]
    fn live_nodes(&self) -> usize {
        self.nodes.iter().filter(|node| node.is_some()).count()
    }
}

/// Splits an effective filter into the trie path leading to its node (`None` =
/// the root) and where in that node it is registered.
fn split_terminal(filter: &str) -> (Option<&str>, Terminal) {
    if filter == "#" {
        (None, Terminal::MultiWildcard)
    } else if let Some(path) = filter.strip_suffix("/#") {
        (Some(path), Terminal::MultiWildcard)
    } else {
        (Some(filter), Terminal::Exact)
    }
}

#[cfg(test)]
mod tests;
