//! The shape of a session's knowledge graph — counts by type, isolated
//! nodes, the longest `leads_to` chain and whether the chain loops —
//! computed from rows already read: pure functions, tested on their own.

use std::collections::{BTreeMap, HashMap, HashSet};

use entity::kg_edge::EdgeType;
use serde::Serialize;

/// The shape of a session's current graph: its current nodes and the edges
/// between them (edges touching a superseded node are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GraphSummary {
    /// How many nodes are current.
    pub current_nodes: u64,
    /// How many edges join two current nodes.
    pub edges: u64,
    /// Current nodes by node type.
    pub nodes_by_type: BTreeMap<String, u64>,
    /// Edges by edge type (`leads_to`, `revises`, …).
    pub edges_by_type: BTreeMap<String, u64>,
    /// Current nodes that no edge touches, in id order.
    pub isolated_nodes: Vec<String>,
    /// The longest chain of `leads_to` edges, counted in edges (a chain of
    /// four nodes is 3). Exact when the `leads_to` graph has no cycle; with
    /// cycles, the longest chain once each cycle is cut at one edge (a
    /// lower bound: longest simple paths are NP-hard in general).
    pub longest_leads_to_chain: u64,
    /// Whether the `leads_to` edges form a cycle.
    pub has_leads_to_cycle: bool,
}

/// Builds the summary of a graph given as (id, type) nodes and
/// (source, target, type) edges.
pub(crate) fn summarise(
    nodes: &[(String, String)],
    edges: &[(String, String, EdgeType)],
) -> GraphSummary {
    let current: HashSet<&str> = nodes.iter().map(|(id, _)| id.as_str()).collect();
    let live: Vec<&(String, String, EdgeType)> = edges
        .iter()
        .filter(|(s, t, _)| current.contains(s.as_str()) && current.contains(t.as_str()))
        .collect();

    let mut summary = GraphSummary {
        current_nodes: nodes.len() as u64,
        edges: live.len() as u64,
        ..GraphSummary::default()
    };
    for (_, node_type) in nodes {
        *summary.nodes_by_type.entry(node_type.clone()).or_default() += 1;
    }
    let mut touched: HashSet<&str> = HashSet::new();
    for (source, target, edge_type) in &live {
        *summary
            .edges_by_type
            .entry(edge_type_name(*edge_type))
            .or_default() += 1;
        touched.insert(source);
        touched.insert(target);
    }
    summary.isolated_nodes = nodes
        .iter()
        .filter(|(id, _)| !touched.contains(id.as_str()))
        .map(|(id, _)| id.clone())
        .collect();

    let leads_to: Vec<(&str, &str)> = live
        .iter()
        .filter(|(_, _, t)| *t == EdgeType::LeadsTo)
        .map(|(s, t, _)| (s.as_str(), t.as_str()))
        .collect();
    let (longest, cyclic) = longest_chain(&leads_to);
    summary.longest_leads_to_chain = longest;
    summary.has_leads_to_cycle = cyclic;
    summary
}

fn edge_type_name(edge_type: EdgeType) -> String {
    use sea_orm::ActiveEnum;
    edge_type.to_value()
}

/// The longest path (in edges) of a directed graph, and whether it has a
/// cycle. A depth-first search cuts every back edge (the edges that close a
/// cycle), which leaves a DAG whose longest path is found from the search's
/// finishing order: O(V + E), and it terminates whatever the cycles.
fn longest_chain(edges: &[(&str, &str)]) -> (u64, bool) {
    let mut successors: HashMap<&str, Vec<&str>> = HashMap::new();
    for (source, target) in edges {
        successors.entry(source).or_default().push(target);
        successors.entry(target).or_default();
    }
    let mut roots: Vec<&str> = successors.keys().copied().collect();
    roots.sort_unstable(); // deterministic results
    for next in successors.values_mut() {
        next.sort_unstable();
    }

    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Open,
        Done,
    }
    let mut state: HashMap<&str, State> = HashMap::new();
    let mut longest_from: HashMap<&str, u64> = HashMap::new();
    let mut cyclic = false;
    for root in roots {
        if state.contains_key(root) {
            continue;
        }
        // (node, index of the next successor to look at)
        let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
        state.insert(root, State::Open);
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            let successors_of = &successors[node];
            if let Some(&target) = successors_of.get(*next) {
                *next += 1;
                match state.get(target) {
                    None => {
                        state.insert(target, State::Open);
                        stack.push((target, 0));
                    }
                    Some(State::Open) => cyclic = true, // a back edge: cut
                    Some(State::Done) => {}
                }
            } else {
                let best = successors_of
                    .iter()
                    .filter(|t| state.get(**t) == Some(&State::Done))
                    .map(|t| longest_from[t] + 1)
                    .max()
                    .unwrap_or(0);
                longest_from.insert(node, best);
                state.insert(node, State::Done);
                stack.pop();
            }
        }
    }
    (longest_from.values().copied().max().unwrap_or(0), cyclic)
}

#[cfg(test)]
mod tests {
    use super::{EdgeType, longest_chain, summarise};

    fn node(id: &str, node_type: &str) -> (String, String) {
        (id.to_owned(), node_type.to_owned())
    }

    fn edge(source: &str, target: &str, edge_type: EdgeType) -> (String, String, EdgeType) {
        (source.to_owned(), target.to_owned(), edge_type)
    }

    #[test]
    fn the_summary_counts_current_nodes_and_the_edges_between_them_only() {
        let nodes = [
            node("a", "attribute"),
            node("b", "value"),
            node("c", "value"),
        ];
        // "gone" is superseded (not among the current nodes).
        let edges = [
            edge("a", "b", EdgeType::LeadsTo),
            edge("b", "gone", EdgeType::LeadsTo),
            edge("a", "b", EdgeType::Revises),
        ];
        let summary = summarise(&nodes, &edges);
        assert_eq!(summary.current_nodes, 3);
        assert_eq!(summary.edges, 2);
        assert_eq!(summary.nodes_by_type.get("value"), Some(&2));
        assert_eq!(summary.edges_by_type.get("leads_to"), Some(&1));
        assert_eq!(summary.edges_by_type.get("revises"), Some(&1));
        assert_eq!(summary.isolated_nodes, vec!["c".to_owned()]);
        assert_eq!(summary.longest_leads_to_chain, 1);
        assert!(!summary.has_leads_to_cycle);
    }

    #[test]
    fn the_longest_chain_of_a_path_counts_its_edges() {
        assert_eq!(
            longest_chain(&[("a", "b"), ("b", "c"), ("c", "d")]),
            (3, false)
        );
        assert_eq!(longest_chain(&[]), (0, false));
    }

    #[test]
    fn the_longest_chain_takes_the_longer_branch() {
        let edges = [
            ("a", "b"),
            ("b", "c"),
            ("a", "x"),
            ("x", "y"),
            ("y", "z"),
            ("z", "c"),
        ];
        assert_eq!(longest_chain(&edges), (4, false));
    }

    #[test]
    fn cycles_terminate_and_are_reported() {
        assert_eq!(longest_chain(&[("a", "a")]), (0, true));
        let (length, cyclic) = longest_chain(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]);
        assert!(cyclic);
        assert_eq!(length, 3, "a→b→c→d survives cutting c→a");
    }
}
